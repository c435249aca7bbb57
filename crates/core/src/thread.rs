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

/// Marks on an entry that came in by mail.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, serde::Serialize)]
pub struct EntryFlags {
    /// Threaded by its headers, but the sender is not a participant of the ticket: shown with a
    /// warning; it reopened nothing and added no collaborator.
    pub unknown_sender: bool,
    /// A delivery failure report attached to the ticket it concerns.
    pub bounce: bool,
    /// An automatic reply (RFC 3834) or bulk mail: it reopened nothing.
    pub automatic: bool,
}

impl EntryFlags {
    /// The stored bit set.
    pub fn bits(self) -> i64 {
        i64::from(self.unknown_sender)
            | i64::from(self.bounce) << 1
            | i64::from(self.automatic) << 2
    }

    /// From the stored bit set.
    pub fn from_bits(bits: i64) -> Self {
        Self {
            unknown_sender: bits & 1 != 0,
            bounce: bits & 2 != 0,
            automatic: bits & 4 != 0,
        }
    }
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
    /// Marks from mail intake.
    pub flags: EntryFlags,
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
    /// Marks from mail intake.
    pub flags: EntryFlags,
    /// Files.
    pub attachments: Vec<NewAttachment>,
}
