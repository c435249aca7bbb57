//! Helpline's domain core.
//!
//! Everything a help desk *is*, without any IO: the checked types that raw input is parsed into
//! at the edge ([`email::EmailAddress`], [`ticket::Subject`], …), the rules (ticket numbers, who
//! may post, reopening), the [`store::Store`] trait that the database crates implement, and the
//! [`service`] functions that every entry point (HTTP API, CLI, mail intake) calls.

pub mod apikey;
pub mod attachment;
pub mod body;
pub mod catalog;
pub mod email;
pub mod error;
pub mod event;
pub mod ids;
pub mod inbound;
pub mod legacy;
pub mod mailbox;
pub mod notices;
pub mod number;
pub mod outbox;
pub mod service;
pub mod store;
pub mod thread;
pub mod ticket;
pub mod user;

pub use error::{Error, FieldError, StoreError};

/// The current time, truncated to microseconds so it survives a round trip through either store
/// unchanged (PostgreSQL keeps microseconds; keeping both stores equal keeps tests honest).
pub fn now() -> time::OffsetDateTime {
    let now = time::OffsetDateTime::now_utc();
    let micros = now.microsecond();
    now.replace_nanosecond(micros * 1_000).unwrap_or(now)
}

/// A connection URL with any password replaced by `****`, for messages and logs.
pub fn redact_url(url: &str) -> String {
    match (url.find("://"), url.rfind('@')) {
        (Some(scheme_end), Some(at)) if at > scheme_end => {
            let credentials = &url[scheme_end + 3..at];
            match credentials.split_once(':') {
                Some((user, _)) => format!("{}{user}:****{}", &url[..scheme_end + 3], &url[at..]),
                None => url.to_owned(),
            }
        }
        _ => url.to_owned(),
    }
}
