//! Importers that bring another help desk's data into Helpline, through the same [`Store`]
//! trait every other entry point uses (so both stores get the same import).
//!
//! [`osticket`] reads an osTicket database over a MySQL/MariaDB connection. Every imported record
//! is recorded in the store's legacy-id map in the same unit of work as the record itself, so an
//! interrupted import never leaves a record without its map entry, and a re-run with `resume`
//! continues exactly where the last committed unit ended.
//!
//! [`Store`]: helpline_core::store::Store

pub mod osticket;
mod report;

pub use report::{DuplicateUser, ImportReport, KindReport, Skipped};

/// Where an import tells how far it is (the command line draws a progress bar from it).
pub trait Progress: Send + Sync {
    /// A new phase begins (`departments`, `tickets`, …) with `total` records to go through.
    fn phase(&self, name: &str, total: u64);
    /// `n` more records of the current phase are done.
    fn advance(&self, n: u64);
    /// The import is over (successfully or not).
    fn finish(&self) {}
}

/// A [`Progress`] that shows nothing.
#[derive(Debug, Clone, Copy, Default)]
pub struct NoProgress;

impl Progress for NoProgress {
    fn phase(&self, _name: &str, _total: u64) {}
    fn advance(&self, _n: u64) {}
}
