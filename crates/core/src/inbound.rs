//! Inbound mail as the store keeps it: the raw bytes first, then the outcome of processing and
//! why it landed where it did.

use crate::ids::{EntryId, TicketId};
use time::OffsetDateTime;

/// An inbound message's row id.
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, serde::Serialize, serde::Deserialize,
)]
#[serde(transparent)]
pub struct InboundId(pub i64);

impl std::fmt::Display for InboundId {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        self.0.fmt(f)
    }
}

/// Where a message is in the pipeline.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum InboundStatus {
    /// Stored, not yet processed (or processing was interrupted).
    Pending,
    /// Became a ticket or an entry.
    Processed,
    /// The same Message-ID was processed before; nothing new was stored.
    Duplicate,
    /// Deliberately not posted (a bounce matching no ticket, our own mail coming back).
    Ignored,
    /// Could not be processed; kept with its error for an operator to look at and retry.
    Quarantined,
}

impl InboundStatus {
    /// The stored name.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Pending => "pending",
            Self::Processed => "processed",
            Self::Duplicate => "duplicate",
            Self::Ignored => "ignored",
            Self::Quarantined => "quarantined",
        }
    }

    /// Parses a stored name.
    pub fn parse(raw: &str) -> Option<Self> {
        match raw {
            "pending" => Some(Self::Pending),
            "processed" => Some(Self::Processed),
            "duplicate" => Some(Self::Duplicate),
            "ignored" => Some(Self::Ignored),
            "quarantined" => Some(Self::Quarantined),
            _ => None,
        }
    }
}

/// A raw message to store.
#[derive(Debug, Clone)]
pub struct NewInbound {
    /// `api`, `pipe`, `imap`, `pop3`.
    pub source: String,
    /// The mailbox it was fetched from (IMAP/POP3), if any.
    pub mailbox: Option<String>,
    /// Its id in that mailbox (IMAP `UIDVALIDITY:UID`, POP3 UIDL): the same message fetched
    /// twice is stored once.
    pub source_uid: Option<String>,
    /// The bytes, exactly as received.
    pub raw: Vec<u8>,
}

/// How processing ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct InboundOutcome {
    /// Processed, duplicate, ignored or quarantined.
    pub status: InboundStatus,
    /// `normal`, `auto_reply`, `bulk` or `bounce`, when it could be classified.
    pub class: Option<String>,
    /// Why it landed where it did (the rule that matched), or the error.
    pub rule: String,
    /// Its Message-ID, when it has one.
    pub message_id: Option<String>,
    /// The ticket it went to.
    pub ticket_id: Option<TicketId>,
    /// The entry it became.
    pub entry_id: Option<EntryId>,
}

/// A stored inbound message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct InboundRecord {
    /// Row id.
    pub id: InboundId,
    /// Source.
    pub source: String,
    /// Mailbox.
    pub mailbox: Option<String>,
    /// Id in the mailbox.
    pub source_uid: Option<String>,
    /// Size in bytes.
    pub size: i64,
    /// Current status.
    pub status: InboundStatus,
    /// Class, once classified.
    pub class: Option<String>,
    /// Why it landed where it did, or the error that quarantined it.
    pub rule: Option<String>,
    /// Message-ID, once parsed.
    pub message_id: Option<String>,
    /// Ticket.
    pub ticket_id: Option<TicketId>,
    /// Entry.
    pub entry_id: Option<EntryId>,
    /// How many times processing was tried.
    pub attempts: i64,
    /// When it was stored.
    pub received_at: OffsetDateTime,
    /// When processing last ended.
    pub processed_at: Option<OffsetDateTime>,
}
