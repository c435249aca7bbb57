//! A ticket's thread: customer messages, staff responses and internal notes.

use crate::attachment::{Attachment, NewAttachment};
use crate::body::MessageBody;
use crate::ids::{ApiKeyId, EntryId, StaffId, TicketId, UserId};
use crate::ticket::Source;
use std::net::IpAddr;
use time::OffsetDateTime;

/// What kind of entry this is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum EntryKind {
    /// From a customer (osTicket `M`).
    Message,
    /// From staff, visible to the customer (osTicket `R`).
    Response,
    /// Staff-only note (osTicket `N`).
    Note,
}

impl EntryKind {
    /// The stored and displayed name.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Message => "message",
            Self::Response => "response",
            Self::Note => "note",
        }
    }

    /// Parses a stored name.
    pub fn parse(raw: &str) -> Option<Self> {
        match raw {
            "message" => Some(Self::Message),
            "response" => Some(Self::Response),
            "note" => Some(Self::Note),
            _ => None,
        }
    }
}

/// Who wrote an entry.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(tag = "type", content = "id", rename_all = "lowercase")]
pub enum Author {
    /// A customer.
    User(UserId),
    /// A staff member.
    Staff(StaffId),
    /// The system itself (automatic notes).
    System,
}

/// Mail headers kept with an entry that came in or went out by email, for threading.
#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Serialize)]
pub struct MailIds {
    /// The entry's own Message-ID, with angle brackets.
    pub message_id: Option<String>,
    /// The In-Reply-To header.
    pub in_reply_to: Option<String>,
    /// The References header.
    pub references: Option<String>,
}

/// A thread entry as stored.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct ThreadEntry {
    /// Row id; entries of a ticket are ordered by it.
    pub id: EntryId,
    /// The ticket.
    pub ticket_id: TicketId,
    /// Message, response or note.
    pub kind: EntryKind,
    /// Who wrote it.
    pub author: Author,
    /// The name shown for the author.
    pub display_name: String,
    /// Note title, or the subject of the first message.
    pub title: Option<String>,
    /// The body.
    pub body: MessageBody,
    /// Channel.
    pub source: Source,
    /// The author's address, when known.
    pub ip: Option<IpAddr>,
    /// The API key that posted it, apart from the author (None for CLI, mail or web).
    pub api_key_id: Option<ApiKeyId>,
    /// Mail threading ids.
    pub mail: MailIds,
    /// When it was posted.
    pub created_at: OffsetDateTime,
    /// Files attached to it.
    pub attachments: Vec<Attachment>,
}

/// A checked entry to append to a thread.
#[derive(Debug, Clone)]
pub struct NewEntry {
    /// Message, response or note.
    pub kind: EntryKind,
    /// Who wrote it.
    pub author: Author,
    /// The name shown for the author.
    pub display_name: String,
    /// Note title or first-message subject.
    pub title: Option<String>,
    /// The body.
    pub body: MessageBody,
    /// Channel.
    pub source: Source,
    /// The author's address.
    pub ip: Option<IpAddr>,
    /// The credential posting it.
    pub api_key_id: Option<ApiKeyId>,
    /// Mail threading ids.
    pub mail: MailIds,
    /// Files.
    pub attachments: Vec<NewAttachment>,
}
