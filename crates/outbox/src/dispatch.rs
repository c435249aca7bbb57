//! Expanding an announced change into its mail and webhook jobs, inside one transaction.

use crate::jobs::{MailJob, WebhookEnvelope};
use crate::worker::MailSetup;
use helpline_core::Error;
use helpline_core::ids::JobId;
use helpline_core::notices::{self, NoticeKind, TicketFacts};
use helpline_core::outbox::{Announcement, JobKind, NewJob, TicketSnapshot, Webhook};
use helpline_core::store::Writer;
use helpline_core::thread::EntryKind;
use serde_json::json;
use time::OffsetDateTime;

/// What one announcement became.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct Expansion {
    /// Mail jobs added.
    pub mails: usize,
    /// Webhook deliveries added.
    pub deliveries: usize,
    /// Autoresponses left out by the per-recipient limit.
    pub rate_limited: usize,
}

/// Adds the jobs `announcement` (the payload of dispatch job `id`) causes; `webhooks` are
/// every endpoint (read once per batch by the caller).
pub async fn expand(
    tx: &mut dyn Writer,
    id: JobId,
    announcement: &Announcement,
    mail: &MailSetup,
    webhooks: &[Webhook],
    now: OffsetDateTime,
) -> Result<Expansion, Error> {
    let mut expansion = Expansion::default();
    let hooks: Vec<&Webhook> = webhooks
        .iter()
        .filter(|hook| hook.events.contains(&announcement.event))
        .collect();
    let wants_mail = mail.notices.enabled
        && (announcement.notices.alert || announcement.notices.customer)
        && mail.transport.is_some();
    if hooks.is_empty() && !wants_mail {
        return Ok(expansion);
    }
    let Some(ticket) = tx.ticket(announcement.ticket_id).await? else {
        // Nothing to tell about a ticket that no longer exists.
        return Ok(expansion);
    };

    let department = tx.department(ticket.department_id).await?;
    let department_name = department.as_ref().map_or("", |d| d.name.as_str());
    let owner = tx.user(ticket.user_id).await?.ok_or_else(|| {
        Error::Store(helpline_core::StoreError::Corrupt(format!(
            "ticket {} has no customer",
            ticket.number
        )))
    })?;

    if !hooks.is_empty() {
        // The ticket as the change left it (older announcements carry no snapshot: as it is).
        let snapshot = announcement
            .ticket
            .clone()
            .unwrap_or_else(|| TicketSnapshot::of(&ticket));
        let status = tx.status(snapshot.status_id).await?;
        let priority = tx.priority(snapshot.priority_id).await?;
        let snapshot_department = if snapshot.department_id == ticket.department_id {
            department.clone()
        } else {
            tx.department(snapshot.department_id).await?
        };
        let entry = match announcement.entry_id {
            Some(entry_id) => tx
                .entries(ticket.id)
                .await?
                .into_iter()
                .find(|e| e.id == entry_id),
            None => None,
        };
        let data = json!({
            "ticket": {
                "id": ticket.id,
                "number": ticket.number,
                "subject": snapshot.subject,
                "status": status.as_ref().map(|s| s.name.as_str()),
                "state": status.as_ref().map(|s| s.state),
                "department": snapshot_department.as_ref().map_or("", |d| d.name.as_str()),
                "priority": priority.as_ref().map(|p| p.name.as_str()),
                "assignee_id": snapshot.assignee_id,
                "customer": {
                    "id": owner.id,
                    "name": owner.name,
                    "email": owner.primary_email(),
                },
                "created_at": rfc3339(ticket.created_at),
                "updated_at": rfc3339(snapshot.updated_at),
            },
            "entry": entry.as_ref().map(|e| json!({
                "id": e.id,
                "kind": e.kind.as_str(),
                "author": e.display_name,
                "title": e.title,
                "body": e.body.as_str(),
                "format": e.body.format().as_str(),
                "source": e.source.as_str(),
                "attachments": e.attachments.iter().map(|a| json!({
                    "id": a.id, "filename": a.filename, "content_type": a.content_type,
                    "size": a.size,
                })).collect::<Vec<_>>(),
                "created_at": rfc3339(e.created_at),
            })),
            "details": announcement.data,
            "actor": announcement.actor,
        });
        let envelope = WebhookEnvelope {
            id: format!("evt_{}", id.0),
            kind: announcement.event.as_str().to_owned(),
            timestamp: rfc3339(announcement.occurred_at),
            data,
        };
        let body = serde_json::to_string(&envelope).map_err(|e| {
            Error::Store(helpline_core::StoreError::Corrupt(format!(
                "a webhook payload could not be encoded: {e}"
            )))
        })?;
        for hook in &hooks {
            tx.insert_job(
                &NewJob {
                    kind: JobKind::Webhook,
                    payload: body.clone(),
                    topic: None,
                    webhook_id: Some(hook.id),
                    run_at: now,
                },
                now,
            )
            .await?;
            expansion.deliveries += 1;
        }
    }

    if wants_mail {
        let mut collaborators = Vec::new();
        for collaborator in tx.collaborators(ticket.id).await? {
            if let Some(user) = tx.user(collaborator.user_id).await? {
                collaborators.push(user);
            }
        }
        let staff = tx.staff().await?;
        let facts = TicketFacts {
            ticket: &ticket,
            department_name,
            owner: &owner,
            collaborators: &collaborators,
            staff: &staff,
        };
        let planned = notices::plan(&mail.notices, announcement, &facts);
        let Some(sender) = mail.notices.sender(department_name).cloned() else {
            return Ok(expansion);
        };
        let Some(entry_id) = announcement.entry_id else {
            return Ok(expansion);
        };
        let domain = sender
            .as_str()
            .rsplit_once('@')
            .map_or("helpline.invalid", |(_, domain)| domain)
            .to_owned();
        for notice in planned {
            let topic = (notice.kind == NoticeKind::Autoresponse)
                .then(|| format!("autoresponse:{}", notice.email.key()));
            if let Some(topic) = &topic {
                // Serialise concurrent expansions for one recipient so the count is exact.
                tx.lock_key(topic).await?;
                let window =
                    time::Duration::minutes(i64::from(mail.notices.autoresponse_window_minutes));
                let recent = tx.count_jobs_since(topic, now - window).await?;
                if recent >= u64::from(mail.notices.autoresponse_limit) {
                    tracing::info!(
                        recipient = %notice.email,
                        recent,
                        "autoresponse left out: the per-recipient limit is reached"
                    );
                    expansion.rate_limited += 1;
                    continue;
                }
            }
            let job = MailJob {
                notice: notice.kind,
                ticket_id: ticket.id,
                entry_id,
                recipient: notice.recipient,
                to_email: notice.email.to_string(),
                to_name: notice.name.clone(),
                from: sender.to_string(),
                message_id: helpline_mail::message_id::sign(
                    &mail.secret,
                    ticket.id,
                    entry_id,
                    &domain,
                ),
            };
            let payload = serde_json::to_string(&job).map_err(|e| {
                Error::Store(helpline_core::StoreError::Corrupt(format!(
                    "a mail job could not be encoded: {e}"
                )))
            })?;
            tx.insert_job(
                &NewJob {
                    kind: JobKind::Mail,
                    payload,
                    topic,
                    webhook_id: None,
                    run_at: now,
                },
                now,
            )
            .await?;
            expansion.mails += 1;
        }
    }
    Ok(expansion)
}

/// A time as webhook payloads show it.
pub(crate) fn rfc3339(at: OffsetDateTime) -> String {
    at.format(&time::format_description::well_known::Rfc3339)
        .unwrap_or_default()
}

/// Whether an entry kind is visible to customers (its attachments go out with staff replies).
pub(crate) fn customer_visible(kind: EntryKind) -> bool {
    kind != EntryKind::Note
}
