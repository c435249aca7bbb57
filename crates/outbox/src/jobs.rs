//! The payloads of mail and webhook jobs.

use helpline_core::ids::{EntryId, TicketId};
use helpline_core::notices::{NoticeKind, Recipient};
use serde::{Deserialize, Serialize};

/// One notification mail to send, fixed when the change was expanded (so every retry sends
/// the same Message-ID).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct MailJob {
    /// Which notice.
    pub notice: NoticeKind,
    /// The ticket.
    pub ticket_id: TicketId,
    /// The entry it is about.
    pub entry_id: EntryId,
    /// Who receives it.
    pub recipient: Recipient,
    /// Their address.
    pub to_email: String,
    /// Their name.
    pub to_name: String,
    /// The sender (also Reply-To and the envelope sender).
    pub from: String,
    /// Its signed Message-ID.
    pub message_id: String,
}

/// The JSON body of every webhook delivery.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct WebhookEnvelope {
    /// The event's stable id (`evt_…`): the same in every delivery of this event.
    pub id: String,
    /// The event type, e.g. `ticket.created`.
    #[serde(rename = "type")]
    pub kind: String,
    /// When it happened (RFC 3339).
    pub timestamp: String,
    /// The ticket, the entry and the details.
    pub data: serde_json::Value,
}
