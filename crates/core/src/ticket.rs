//! Tickets.

use crate::attachment::NewAttachment;
use crate::body::MessageBody;
use crate::ids::{DepartmentId, PriorityId, StaffId, StatusId, TicketId, TopicId, UserId};
use crate::user::CustomerContact;
use std::fmt;
use std::net::IpAddr;
use time::OffsetDateTime;

/// The longest subject accepted (osTicket's stock form allows 50; mail subjects are often longer).
pub const MAX_SUBJECT_LEN: usize = 255;

/// The number customers and staff quote (`482913`, `HD-000042`). Unique; not the row id.
#[derive(Debug, Clone, PartialEq, Eq, Hash, serde::Serialize)]
#[serde(transparent)]
pub struct TicketNumber(String);

impl TicketNumber {
    /// Parses a number from a URL or a request: 1–20 characters of letters, digits, `-` or `_`.
    pub fn parse(raw: &str) -> Result<Self, String> {
        let raw = raw.trim();
        let ok = !raw.is_empty()
            && raw.len() <= 20
            && raw
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_');
        if ok {
            Ok(Self(raw.to_owned()))
        } else {
            Err(format!("'{raw}' is not a ticket number"))
        }
    }

    /// Wraps a number the generator or the store produced.
    pub(crate) fn from_trusted(raw: String) -> Self {
        Self(raw)
    }

    /// Wraps a number read back from the database.
    pub fn from_stored(raw: String) -> Self {
        Self(raw)
    }

    /// The number as text.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for TicketNumber {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// A non-empty, single-line subject of bounded length.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
#[serde(transparent)]
pub struct Subject(String);

impl Subject {
    /// Parses a subject: trimmed, line breaks and other control characters folded to spaces,
    /// not empty, at most [`MAX_SUBJECT_LEN`] characters.
    pub fn parse(raw: &str) -> Result<Self, String> {
        let folded: String = raw
            .split(char::is_control)
            .map(str::trim)
            .filter(|part| !part.is_empty())
            .collect::<Vec<_>>()
            .join(" ");
        if folded.is_empty() {
            return Err("is required".into());
        }
        if folded.chars().count() > MAX_SUBJECT_LEN {
            return Err(format!("is longer than {MAX_SUBJECT_LEN} characters"));
        }
        Ok(Self(folded))
    }

    /// Wraps a subject read back from the database.
    pub fn from_stored(raw: String) -> Self {
        Self(raw)
    }

    /// The subject as text.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// The channel a ticket or entry came through.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Source {
    /// The HTTP API.
    Api,
    /// Email.
    Email,
    /// A web form.
    Web,
    /// Staff took a phone call.
    Phone,
    /// Anything else.
    Other,
}

impl Source {
    /// The stored and displayed name.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Api => "api",
            Self::Email => "email",
            Self::Web => "web",
            Self::Phone => "phone",
            Self::Other => "other",
        }
    }

    /// Parses a name case-insensitively (`API`, `Email`, `web`, …).
    pub fn parse(raw: &str) -> Option<Self> {
        match raw.trim().to_ascii_lowercase().as_str() {
            "api" => Some(Self::Api),
            "email" => Some(Self::Email),
            "web" => Some(Self::Web),
            "phone" => Some(Self::Phone),
            "other" => Some(Self::Other),
            _ => None,
        }
    }
}

/// A ticket as stored.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct Ticket {
    /// Row id.
    pub id: TicketId,
    /// The number people quote.
    pub number: TicketNumber,
    /// Subject line.
    pub subject: Subject,
    /// The customer who owns it.
    pub user_id: UserId,
    /// Department handling it.
    pub department_id: DepartmentId,
    /// Help topic, if one was chosen.
    pub topic_id: Option<TopicId>,
    /// Current status.
    pub status_id: StatusId,
    /// Current priority.
    pub priority_id: PriorityId,
    /// Channel it came in through.
    pub source: Source,
    /// Address the customer wrote from, when known.
    pub ip: Option<IpAddr>,
    /// Staff member it is assigned to.
    pub assignee_id: Option<StaffId>,
    /// True once staff answered the latest customer message.
    pub is_answered: bool,
    /// When it should be resolved by.
    pub due_at: Option<OffsetDateTime>,
    /// Creation time.
    pub created_at: OffsetDateTime,
    /// Last change of any kind.
    pub updated_at: OffsetDateTime,
    /// Last customer message.
    pub last_message_at: Option<OffsetDateTime>,
    /// Last staff response.
    pub last_response_at: Option<OffsetDateTime>,
    /// When it was last closed (cleared on reopen).
    pub closed_at: Option<OffsetDateTime>,
    /// When it was last reopened.
    pub reopened_at: Option<OffsetDateTime>,
}

/// Notification switches a creator may set; recorded now, honoured by the outbound mailer.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
pub struct NotifyOptions {
    /// Alert staff about the new ticket.
    pub alert: bool,
    /// Send the customer the new-ticket autoresponse.
    pub autorespond: bool,
}

impl Default for NotifyOptions {
    fn default() -> Self {
        Self {
            alert: true,
            autorespond: true,
        }
    }
}

/// Checked input for opening a ticket, from any channel.
#[derive(Debug, Clone)]
pub struct NewTicket {
    /// Who it is for.
    pub contact: CustomerContact,
    /// Subject line.
    pub subject: Subject,
    /// The first message.
    pub message: MessageBody,
    /// Help topic requested.
    pub topic_id: Option<TopicId>,
    /// Priority requested.
    pub priority_id: Option<PriorityId>,
    /// Channel.
    pub source: Source,
    /// The customer's address.
    pub ip: Option<IpAddr>,
    /// Files attached to the first message.
    pub attachments: Vec<NewAttachment>,
    /// Notification switches.
    pub notify: NotifyOptions,
    /// Mail headers of the first message, when it came by mail.
    pub mail: crate::thread::MailIds,
    /// Marks on the first message from mail intake.
    pub flags: crate::thread::EntryFlags,
}

/// A customer who takes part in a ticket besides its owner: they may post messages on it and
/// (once mail goes out) receive its replies.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct Collaborator {
    /// The ticket.
    pub ticket_id: TicketId,
    /// The customer.
    pub user_id: UserId,
    /// When they were added.
    pub created_at: OffsetDateTime,
}
