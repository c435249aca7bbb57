//! Outbound mail: a notification the outbox worker decided to send becomes words
//! ([`templates`]), then RFC 5322 bytes ([`compose`]), then is delivered by SMTP or `sendmail`
//! ([`transport`]).
//!
//! Nothing here decides *whether* or *to whom* to send; loops are prevented by what the mail
//! carries: `Auto-Submitted` and `X-Auto-Response-Suppress: All` on every message the desk
//! sends on its own, and [`crate::strip::REPLY_MARKER`] at the top of customer-facing mail so
//! that the quoted copy is cut from the customer's answer.

pub mod compose;
pub mod templates;
pub mod transport;

pub use compose::{Address, AutoSubmitted, ComposeError, OutgoingAttachment, OutgoingMail, render};
pub use templates::{
    EntryContext, Notice, NoticeContext, PersonContext, RenderedNotice, TemplateError, Templates,
    TicketContext,
};
pub use transport::{MailTransport, SendError, TransportError};

#[cfg(test)]
mod loop_tests;
