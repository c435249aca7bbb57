//! What an import did, per kind of record, for the operator.

use std::collections::BTreeMap;
use std::fmt;
use std::time::Duration;

/// One source record that was not imported, and why.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct Skipped {
    /// The record's id in the source.
    pub source_id: i64,
    /// Why it was left out, in words an operator can act on.
    pub reason: String,
}

/// The counts of one kind of record. `read = written + matched + resumed + skipped`.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct KindReport {
    /// The kind (`department`, `ticket`, `attachment`, …).
    pub kind: &'static str,
    /// Records read from the source.
    pub read: u64,
    /// New records written.
    pub written: u64,
    /// Records mapped onto one that already existed (a department of the same name, a key with
    /// the same secret, a duplicate user onto the user whose address it shares).
    pub matched: u64,
    /// Records a previous run already imported (skipped on `resume`).
    pub resumed: u64,
    /// Of those, records changed in the source since and brought up to date here (tickets).
    pub refreshed: u64,
    /// Records left out, each with its reason.
    pub skipped: Vec<Skipped>,
    /// Time spent on this kind (reading and writing).
    #[serde(skip)]
    pub elapsed: Duration,
}

impl KindReport {
    pub(crate) fn new(kind: &'static str) -> Self {
        Self {
            kind,
            read: 0,
            written: 0,
            matched: 0,
            resumed: 0,
            refreshed: 0,
            skipped: Vec::new(),
            elapsed: Duration::ZERO,
        }
    }

    pub(crate) fn skip(&mut self, source_id: i64, reason: impl Into<String>) {
        self.skipped.push(Skipped {
            source_id,
            reason: reason.into(),
        });
    }
}

/// A user osTicket created twice for one customer (concurrent requests for a new address): it
/// has no address row of its own and points at another user's. Mapped onto that user.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct DuplicateUser {
    /// The duplicate's `user.id`.
    pub source_id: i64,
    /// The `user.id` owning the shared address.
    pub same_as: i64,
    /// The shared address.
    pub address: String,
}

/// The outcome of a whole import.
#[derive(Debug, Clone, Default, serde::Serialize)]
pub struct ImportReport {
    /// Where the data came from (password removed).
    pub source: String,
    /// What the source is (`osTicket 1.18 (schema 5fb92bef…)`).
    pub version: String,
    /// Every kind, in the order they were imported.
    pub kinds: Vec<KindReport>,
    /// Duplicate users merged onto the user whose address they share.
    pub duplicate_users: Vec<DuplicateUser>,
    /// Things the operator should know that are not skips (a status mapped to another state,
    /// placeholder bodies, renumbered tickets, …).
    pub notes: Vec<String>,
    /// How long the import took.
    #[serde(skip)]
    pub elapsed: Duration,
}

impl ImportReport {
    /// The counts of `kind` (`ticket`, `entry`, …).
    pub fn kind(&self, kind: &str) -> Option<&KindReport> {
        self.kinds.iter().find(|k| k.kind == kind)
    }

    /// Records written or matched in this run, over every kind.
    pub fn total_imported(&self) -> u64 {
        self.kinds.iter().map(|k| k.written + k.matched).sum()
    }

    /// Records left out, over every kind.
    pub fn total_skipped(&self) -> usize {
        self.kinds.iter().map(|k| k.skipped.len()).sum()
    }
}

impl fmt::Display for ImportReport {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(f, "Imported from {} ({})", self.source, self.version)?;
        writeln!(
            f,
            "{:<14}{:>10}{:>10}{:>10}{:>10}{:>10}{:>10}",
            "kind", "read", "written", "matched", "resumed", "skipped", "seconds"
        )?;
        for kind in &self.kinds {
            writeln!(
                f,
                "{:<14}{:>10}{:>10}{:>10}{:>10}{:>10}{:>10.1}",
                kind.kind,
                kind.read,
                kind.written,
                kind.matched,
                kind.resumed,
                kind.skipped.len(),
                kind.elapsed.as_secs_f64()
            )?;
        }
        writeln!(
            f,
            "(matched: mapped onto a record that already existed; resumed: imported by an \
             earlier run)"
        )?;
        if !self.duplicate_users.is_empty() {
            writeln!(
                f,
                "\nDuplicate users ({}): osTicket made these twice for one customer (concurrent \
                 requests for a new address); each is mapped onto the user owning the address:",
                self.duplicate_users.len()
            )?;
            for dup in &self.duplicate_users {
                writeln!(
                    f,
                    "  user {} = user {} <{}>",
                    dup.source_id, dup.same_as, dup.address
                )?;
            }
        }
        let skipped: usize = self.total_skipped();
        if skipped > 0 {
            writeln!(f, "\nSkipped ({skipped}), by kind and reason (source ids):")?;
            for kind in self.kinds.iter().filter(|k| !k.skipped.is_empty()) {
                let mut by_reason: BTreeMap<&str, Vec<i64>> = BTreeMap::new();
                for skip in &kind.skipped {
                    by_reason
                        .entry(&skip.reason)
                        .or_default()
                        .push(skip.source_id);
                }
                for (reason, ids) in by_reason {
                    let ids: Vec<String> = ids.iter().map(ToString::to_string).collect();
                    writeln!(f, "  {} {}: {reason}", kind.kind, ids.join(", "))?;
                }
            }
        }
        if !self.notes.is_empty() {
            writeln!(f, "\nNotes:")?;
            for note in &self.notes {
                writeln!(f, "  - {note}")?;
            }
        }
        let seconds = self.elapsed.as_secs_f64();
        let imported = self.total_imported();
        if seconds > 0.0 {
            writeln!(
                f,
                "\n{imported} records imported in {seconds:.1} s ({:.0} records/s)",
                imported as f64 / seconds
            )?;
        }
        Ok(())
    }
}
