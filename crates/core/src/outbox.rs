//! The transactional outbox: every change someone must hear about (by mail or by webhook) is
//! written as a job in the same transaction as the change itself, so a committed change is
//! always announced and a rolled-back one never is. Workers claim jobs atomically, retry them
//! with backoff and park them as dead after too many tries; nothing here does IO.
//!
//! Jobs come in three kinds. A [`JobKind::Dispatch`] job is the announcement of one change,
//! written by the service that made the change. A worker expands it — in one transaction that
//! also marks it done — into one [`JobKind::Mail`] job per notice recipient and one
//! [`JobKind::Webhook`] job per subscribed endpoint, so each mail and each delivery is retried
//! on its own and none is sent twice because another failed.

use crate::Error;
use crate::event::Actor;
use crate::ids::{EntryId, JobId, TicketId, WebhookId};
use crate::store::Writer;
use serde::{Deserialize, Serialize};
use time::OffsetDateTime;

/// What a job does.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum JobKind {
    /// Announces one change; expanded into mail and webhook jobs.
    Dispatch,
    /// Sends one notification mail.
    Mail,
    /// Delivers one event to one webhook endpoint.
    Webhook,
}

impl JobKind {
    /// Every kind.
    pub const ALL: [JobKind; 3] = [Self::Dispatch, Self::Mail, Self::Webhook];

    /// The stored name.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Dispatch => "dispatch",
            Self::Mail => "mail",
            Self::Webhook => "webhook",
        }
    }

    /// A kind from its stored name.
    pub fn from_stored(text: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|kind| kind.as_str() == text)
    }
}

/// Where a job stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum JobState {
    /// Waiting for its next attempt (or running, while a worker's claim lasts).
    Pending,
    /// Finished.
    Done,
    /// Given up after too many failures, or failed for good; `outbox retry` revives it.
    Dead,
}

impl JobState {
    /// The stored name.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Pending => "pending",
            Self::Done => "done",
            Self::Dead => "dead",
        }
    }

    /// A state from its stored name.
    pub fn from_stored(text: &str) -> Option<Self> {
        [Self::Pending, Self::Done, Self::Dead]
            .into_iter()
            .find(|state| state.as_str() == text)
    }
}

/// A job to add.
#[derive(Debug, Clone)]
pub struct NewJob {
    /// What it does.
    pub kind: JobKind,
    /// Its input, as JSON text (for webhooks: the exact body to send).
    pub payload: String,
    /// A key to count recent jobs by (e.g. `autoresponse:ann@example.com`), for rate limits.
    pub topic: Option<String>,
    /// The endpoint a webhook delivery goes to.
    pub webhook_id: Option<WebhookId>,
    /// Not before.
    pub run_at: OffsetDateTime,
}

/// A job as stored.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Job {
    /// Row id (stable across retries).
    pub id: JobId,
    /// What it does.
    pub kind: JobKind,
    /// Where it stands.
    pub state: JobState,
    /// Its input (JSON text).
    pub payload: String,
    /// Its rate-limit key.
    pub topic: Option<String>,
    /// Its webhook endpoint.
    pub webhook_id: Option<WebhookId>,
    /// Attempts started so far.
    pub attempts: u32,
    /// When it may run next (while claimed: when the claim runs out).
    pub next_attempt_at: OffsetDateTime,
    /// What the last attempt said (an error, or the receiver's answer).
    pub last_result: Option<String>,
    /// The node that claimed it last (cleared when an attempt ends).
    pub claimed_by: Option<String>,
    /// When it was added.
    pub created_at: OffsetDateTime,
    /// When it was done or parked as dead.
    pub finished_at: Option<OffsetDateTime>,
}

/// How an attempt ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum JobResult {
    /// Done; the note (e.g. the receiver's status) is kept.
    Done(Option<String>),
    /// Failed; try again at the given time.
    Retry {
        /// When.
        at: OffsetDateTime,
        /// Why it failed.
        error: String,
    },
    /// Failed for good (or too often): park it.
    Dead(String),
}

/// What a finished attempt stores, the same on every store.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RecordedResult {
    /// The job's state from now on.
    pub state: JobState,
    /// When to try again (a retry); the claim's time stays otherwise.
    pub next_attempt_at: Option<OffsetDateTime>,
    /// When it ended for good (done or dead).
    pub finished_at: Option<OffsetDateTime>,
    /// The note or error, NUL replaced by U+FFFD.
    pub note: Option<String>,
}

impl JobResult {
    /// What recording this result at `now` stores. Receivers and mail servers may answer with
    /// anything; PostgreSQL text cannot hold NUL, so both stores keep it as U+FFFD.
    pub fn recorded(&self, now: OffsetDateTime) -> RecordedResult {
        let (state, next_attempt_at, finished_at, note) = match self {
            JobResult::Done(note) => (JobState::Done, None, Some(now), note.as_deref()),
            JobResult::Retry { at, error } => {
                (JobState::Pending, Some(*at), None, Some(error.as_str()))
            }
            JobResult::Dead(error) => (JobState::Dead, None, Some(now), Some(error.as_str())),
        };
        RecordedResult {
            state,
            next_attempt_at,
            finished_at,
            note: note.map(|text| text.replace('\0', "\u{fffd}")),
        }
    }
}

/// Which jobs [`crate::store::Reader::jobs`] lists: every given filter must hold. Newest first.
#[derive(Debug, Clone, Default)]
pub struct JobQuery {
    /// State.
    pub state: Option<JobState>,
    /// Kind.
    pub kind: Option<JobKind>,
    /// Webhook endpoint.
    pub webhook_id: Option<WebhookId>,
    /// Only ids below this (the paging cursor).
    pub before: Option<JobId>,
    /// At most this many.
    pub limit: u32,
}

/// The events webhooks can subscribe to.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum EventType {
    /// A ticket was opened.
    #[serde(rename = "ticket.created")]
    TicketCreated,
    /// A ticket's fields or collaborators changed.
    #[serde(rename = "ticket.updated")]
    TicketUpdated,
    /// A customer posted a message (the client reply).
    #[serde(rename = "message.created")]
    MessageCreated,
    /// Staff replied.
    #[serde(rename = "reply.created")]
    ReplyCreated,
    /// Staff posted an internal note.
    #[serde(rename = "note.created")]
    NoteCreated,
    /// The status changed (also when a message reopened the ticket).
    #[serde(rename = "status.changed")]
    StatusChanged,
}

impl EventType {
    /// Every event type.
    pub const ALL: [EventType; 6] = [
        Self::TicketCreated,
        Self::TicketUpdated,
        Self::MessageCreated,
        Self::ReplyCreated,
        Self::NoteCreated,
        Self::StatusChanged,
    ];

    /// The public name, e.g. `ticket.created`.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::TicketCreated => "ticket.created",
            Self::TicketUpdated => "ticket.updated",
            Self::MessageCreated => "message.created",
            Self::ReplyCreated => "reply.created",
            Self::NoteCreated => "note.created",
            Self::StatusChanged => "status.changed",
        }
    }

    /// An event type from its public name.
    pub fn parse(text: &str) -> Option<Self> {
        Self::ALL
            .into_iter()
            .find(|kind| kind.as_str() == text.trim())
    }
}

impl std::fmt::Display for EventType {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Which notification mails a change may cause (the API's `"notify": false` turns all off).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct NoticeSwitches {
    /// Alerts to staff.
    pub alert: bool,
    /// Mail to the customer: the new-ticket autoresponse, or a staff reply.
    pub customer: bool,
}

impl NoticeSwitches {
    /// Everything the desk's settings allow.
    pub const ALL: Self = Self {
        alert: true,
        customer: true,
    };
    /// No mail at all.
    pub const NONE: Self = Self {
        alert: false,
        customer: false,
    };

    /// All when `notify`, none otherwise.
    pub fn from_notify(notify: bool) -> Self {
        if notify { Self::ALL } else { Self::NONE }
    }
}

/// A ticket's fields as they were right after a change, carried by its announcement so that
/// an event describes the ticket at the time of the change, however late it is dispatched.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TicketSnapshot {
    /// Subject.
    pub subject: String,
    /// Status.
    pub status_id: crate::ids::StatusId,
    /// Priority.
    pub priority_id: crate::ids::PriorityId,
    /// Department.
    pub department_id: crate::ids::DepartmentId,
    /// Assignee.
    pub assignee_id: Option<crate::ids::StaffId>,
    /// Last change.
    #[serde(with = "time::serde::rfc3339")]
    pub updated_at: OffsetDateTime,
}

impl TicketSnapshot {
    /// The snapshot of `ticket`.
    pub fn of(ticket: &crate::ticket::Ticket) -> Self {
        Self {
            subject: ticket.subject.as_str().to_owned(),
            status_id: ticket.status_id,
            priority_id: ticket.priority_id,
            department_id: ticket.department_id,
            assignee_id: ticket.assignee_id,
            updated_at: ticket.updated_at,
        }
    }
}

/// One change, as a dispatch job carries it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Announcement {
    /// What happened.
    pub event: EventType,
    /// The ticket.
    pub ticket_id: TicketId,
    /// The entry posted, for events that post one.
    pub entry_id: Option<EntryId>,
    /// Who did it.
    pub actor: Actor,
    /// Which mails it may cause.
    pub notices: NoticeSwitches,
    /// Details (old and new values), shown in the webhook payload.
    pub data: serde_json::Value,
    /// When it happened.
    #[serde(with = "time::serde::rfc3339")]
    pub occurred_at: OffsetDateTime,
    /// The ticket right after the change.
    #[serde(default)]
    pub ticket: Option<TicketSnapshot>,
}

/// Writes the dispatch job for a change, inside the change's own transaction — unless nothing
/// can hear it: it asks for no mail and no webhook is subscribed to its event, so its dispatch
/// would add nothing. Then no job is written and `None` is returned. (A webhook added in the
/// moment between such a change and its dispatch used to receive it; it no longer does.)
pub async fn announce(
    tx: &mut dyn Writer,
    announcement: &Announcement,
) -> Result<Option<JobId>, Error> {
    if !announcement.notices.alert && !announcement.notices.customer {
        let webhooks = tx.webhooks().await?;
        if !webhooks
            .iter()
            .any(|hook| hook.events.contains(&announcement.event))
        {
            return Ok(None);
        }
    }
    let payload = serde_json::to_string(announcement).map_err(|e| {
        Error::Store(crate::StoreError::Corrupt(format!(
            "an announcement could not be encoded: {e}"
        )))
    })?;
    Ok(Some(
        tx.insert_job(
            &NewJob {
                kind: JobKind::Dispatch,
                payload,
                topic: None,
                webhook_id: None,
                run_at: announcement.occurred_at,
            },
            announcement.occurred_at,
        )
        .await?,
    ))
}

/// A webhook endpoint to add.
#[derive(Debug, Clone)]
pub struct NewWebhook {
    /// Where deliveries are POSTed (`http` or `https`).
    pub url: String,
    /// The events it receives (at least one).
    pub events: Vec<EventType>,
    /// Its signing secret (`whsec_…`), kept readable because every delivery is signed with it.
    pub secret: String,
    /// A note for operators.
    pub description: Option<String>,
}

/// A webhook endpoint.
#[derive(Clone, PartialEq, Eq, Serialize)]
pub struct Webhook {
    /// Row id.
    pub id: WebhookId,
    /// Where deliveries go.
    pub url: String,
    /// The events it receives.
    pub events: Vec<EventType>,
    /// Its signing secret; never serialised.
    #[serde(skip)]
    pub secret: String,
    /// A note for operators.
    pub description: Option<String>,
    /// When it was added.
    pub created_at: OffsetDateTime,
}

impl std::fmt::Debug for Webhook {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Webhook")
            .field("id", &self.id)
            .field("url", &self.url)
            .field("events", &self.events)
            .field("description", &self.description)
            .finish_non_exhaustive()
    }
}

/// Event names as stored: a comma-separated list.
pub fn events_to_text(events: &[EventType]) -> String {
    events
        .iter()
        .map(|e| e.as_str())
        .collect::<Vec<_>>()
        .join(",")
}

/// Stored event names back; `None` when one is unknown.
pub fn events_from_text(text: &str) -> Option<Vec<EventType>> {
    text.split(',')
        .filter(|part| !part.trim().is_empty())
        .map(EventType::parse)
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_round_trip() {
        for kind in JobKind::ALL {
            assert_eq!(JobKind::from_stored(kind.as_str()), Some(kind));
        }
        for state in [JobState::Pending, JobState::Done, JobState::Dead] {
            assert_eq!(JobState::from_stored(state.as_str()), Some(state));
        }
        let text = events_to_text(&EventType::ALL);
        assert_eq!(events_from_text(&text), Some(EventType::ALL.to_vec()));
        assert_eq!(events_from_text("ticket.created,nope"), None);
        assert_eq!(
            serde_json::to_string(&EventType::StatusChanged)
                .ok()
                .as_deref(),
            Some("\"status.changed\"")
        );
    }
}
