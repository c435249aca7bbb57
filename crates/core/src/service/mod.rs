//! The operations every entry point calls: the HTTP API, the CLI and (later) mail intake.
//! Each checks its rules and performs its writes through one [`crate::store::Store::write`].

pub mod auth;
pub mod catalog;
pub mod idempotency;
pub mod keys;
pub mod listing;
pub mod mailboxes;
pub mod posting;
pub mod tickets;
pub mod updates;
pub mod users;

use crate::number::NumberFormat;
use crate::store::{TxFuture, Writer};

/// A unit of work a service prepares and a caller runs with [`crate::store::Store::write`]
/// (directly, or wrapped, e.g. by [`idempotency::run_idempotent`]).
pub type Work<T> = Box<dyn for<'t> FnOnce(&'t mut dyn Writer) -> TxFuture<'t, T> + Send>;

/// The desk-wide settings the services need (from the configuration file; never global).
#[derive(Debug, Clone)]
pub struct DeskSettings {
    /// How ticket numbers are made.
    pub number_format: NumberFormat,
    /// Whether changes made here may ask for notification mail: `false` on a server with no
    /// mail server set. Its changes then ask for none — and a change that no webhook is
    /// subscribed to is not announced at all, since its dispatch would do nothing.
    pub sends_mail: bool,
}

impl Default for DeskSettings {
    fn default() -> Self {
        Self {
            number_format: NumberFormat::default(),
            sends_mail: true,
        }
    }
}

/// Turns a uniqueness violation into a [`crate::Error::Conflict`] with `message`; other store
/// errors pass through.
pub(crate) fn conflict_on_constraint(
    error: crate::StoreError,
    message: impl FnOnce() -> String,
) -> crate::Error {
    match error {
        crate::StoreError::Constraint { .. } => crate::Error::Conflict(message()),
        other => crate::Error::Store(other),
    }
}

/// A JSON object for an event's details.
pub(crate) fn event_data(value: serde_json::Value) -> String {
    value.to_string()
}
