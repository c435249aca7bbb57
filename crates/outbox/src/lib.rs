//! Outbound delivery. Every change that someone must hear about is written, in the change's own
//! transaction, as a job in the store's outbox; the workers here claim jobs, expand them into
//! notification mails and webhook deliveries, send them, and retry with backoff until they are
//! done or parked as dead.

pub mod dispatch;
pub mod jobs;
pub mod webhook;
pub mod worker;

pub use worker::{MailSetup, Outbox, OutboxSettings, RoundReport};
