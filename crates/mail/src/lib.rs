//! Helpline's mail handling: parse raw RFC 5322 bytes into an [`InboundMail`], classify it
//! (normal, auto-reply, bulk, bounce), decide which ticket it threads onto, and compute the text
//! shown on the thread with quoted history stripped — all without IO — plus the network clients
//! that collect mail from mailboxes ([`pop3`]).

pub mod classify;
pub mod fetch;
pub mod imap;
pub mod message_id;
pub mod osticket_id;
pub mod outbound;
pub mod parse;
pub mod pipeline;
pub mod pop3;
pub mod sources;
pub mod strip;
pub mod tls;

pub use parse::{InboundMail, MailAttachment, Mailbox, ParseError};
