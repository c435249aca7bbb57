//! Helpline's mail handling, without IO: parse raw RFC 5322 bytes into an [`InboundMail`],
//! classify it (normal, auto-reply, bulk, bounce), decide which ticket it threads onto, and
//! compute the text shown on the thread with quoted history stripped.

pub mod classify;
pub mod message_id;
pub mod parse;
pub mod pipeline;
pub mod strip;

pub use parse::{InboundMail, MailAttachment, Mailbox, ParseError};
