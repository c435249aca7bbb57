//! Group commit: one thread owns the write connection and commits concurrent units of work
//! together.
//!
//! SQLite allows one writer at a time, and with `synchronous=FULL` every commit waits for an
//! fsync of the WAL. Committing each request on its own therefore caps writes at one fsync per
//! request, however many requests wait. Instead, units of work queue here; the committer takes
//! everything that is waiting, runs the units one after another inside one transaction — each
//! inside its own savepoint, so a unit that fails is rolled back alone — and commits once. Every
//! caller is answered only after that commit (and its fsync) has returned, so a unit reported as
//! committed is on disk, exactly as with one transaction per unit.
//!
//! Nothing waits on purpose: a lone request is committed at once, and while one batch is being
//! committed the next one gathers by itself.
//!
//! The committer is a thread of its own rather than a task: it blocks in every fsync, and the
//! units' statements run on it directly (see [`sql`](crate::sql)), so a unit's future completes
//! when polled once; it is driven with a plain `block_on` inside the runtime's context.

use crate::convert;
use crate::queries::Conn;
use futures::FutureExt;
use helpline_core::store::ErasedWork;
use helpline_core::{Error, StoreError};
use rusqlite::Connection;
use std::any::Any;
use std::fmt;
use std::panic::AssertUnwindSafe;
use tokio::sync::{mpsc, oneshot};

/// The most units committed together. Bounds the latency a batch adds to its first unit.
const MAX_BATCH: usize = 256;

/// Units that may wait for the committer before callers are slowed down.
const QUEUE_DEPTH: usize = 4096;

/// A unit's outcome, as its caller receives it.
type Outcome = Result<Box<dyn Any + Send>, Error>;

/// A unit of work waiting to be committed, and where to report its outcome.
struct Unit {
    work: ErasedWork,
    reply: oneshot::Sender<Outcome>,
}

/// The handle callers submit units to; the committer thread runs them.
pub(crate) struct GroupCommit {
    queue: mpsc::Sender<Unit>,
    stopped: oneshot::Receiver<Connection>,
}

impl GroupCommit {
    /// Starts the committer thread; it owns `writer` from now on. Units run inside the current
    /// Tokio runtime's context, so they may use Tokio's clocks and channels.
    ///
    /// The writer's automatic checkpoints must be off (`wal_autocheckpoint = 0`): SQLite would
    /// run them inside `COMMIT`, before the units are answered. The committer checkpoints itself,
    /// after answering, every [`CHECKPOINT_EVERY`] commits.
    pub(crate) fn start(writer: Connection) -> Result<Self, StoreError> {
        let (queue, receiver) = mpsc::channel(QUEUE_DEPTH);
        let (stop_signal, stopped) = oneshot::channel();
        let runtime = tokio::runtime::Handle::try_current().ok();
        std::thread::Builder::new()
            .name("sqlite-writer".to_owned())
            .spawn(move || {
                let _context = runtime.as_ref().map(tokio::runtime::Handle::enter);
                let conn = run(writer, receiver);
                let _ = stop_signal.send(conn);
            })
            .map_err(|e| StoreError::Unavailable(Box::new(e)))?;
        Ok(Self { queue, stopped })
    }

    /// Runs `work` in a transaction (shared with other units) and returns its result once that
    /// transaction is durably committed.
    pub(crate) async fn submit(&self, work: ErasedWork) -> Outcome {
        let (reply, outcome) = oneshot::channel();
        self.queue
            .send(Unit { work, reply })
            .await
            .map_err(|_| stopped())?;
        outcome.await.map_err(|_| stopped())?
    }

    /// Stops the committer once every queued unit is done and hands back the connection.
    pub(crate) async fn stop(self) -> Option<Connection> {
        drop(self.queue);
        self.stopped.await.ok()
    }
}

/// The committer: take what is waiting, commit it, repeat until every sender is gone.
fn run(mut conn: Connection, mut queue: mpsc::Receiver<Unit>) -> Connection {
    let mut commits_since_checkpoint = 0;
    while let Some(first) = queue.blocking_recv() {
        let mut units = vec![first];
        while units.len() < MAX_BATCH {
            match queue.try_recv() {
                Ok(unit) => units.push(unit),
                Err(_) => break,
            }
        }
        if units.len() == 1 {
            for unit in units {
                commit_alone(&mut conn, unit);
            }
        } else {
            commit_together(&mut conn, units);
        }
        commits_since_checkpoint += 1;
        if commits_since_checkpoint >= CHECKPOINT_EVERY {
            checkpoint(&conn);
            commits_since_checkpoint = 0;
        }
    }
    conn
}

/// Commits between two checkpoints. A commit adds a few dozen pages to the WAL, so this keeps it
/// near SQLite's default of a checkpoint per 1,000 pages.
const CHECKPOINT_EVERY: u32 = 32;

/// Copies the WAL's committed pages into the database file (`PASSIVE`: readers are not waited
/// for). Run by the writer between batches: with no commit running meanwhile it usually copies
/// everything, and the next transaction then starts the WAL file over — a checkpoint on another
/// connection, racing the writer's commits, let the file grow without end.
fn checkpoint(conn: &Connection) {
    if let Err(error) = conn.query_row("pragma wal_checkpoint(passive)", [], |_| Ok(())) {
        tracing::warn!(%error, "WAL checkpoint failed; the next one retries");
    }
}

/// One unit in its own transaction: no savepoint needed.
fn commit_alone(conn: &mut Connection, unit: Unit) {
    if let Err(error) = conn.execute_batch("BEGIN IMMEDIATE") {
        let _ = unit.reply.send(Err(convert::db(error).into()));
        return;
    }
    let outcome = match run_unit(conn, unit.work) {
        Ok(value) => match index_pending(conn).and_then(|()| conn.execute_batch("COMMIT")) {
            Ok(_) => Ok(value),
            Err(error) => {
                abandon(conn);
                Err(convert::db(error).into())
            }
        },
        Err(error) => {
            abandon(conn);
            Err(error)
        }
    };
    let _ = unit.reply.send(outcome);
}

/// Several units in one transaction, each inside the savepoint `unit`: a failed unit is rolled
/// back to its savepoint and the others go on; one commit makes the rest durable.
fn commit_together(conn: &mut Connection, units: Vec<Unit>) {
    let mut remaining = units.into_iter();
    let mut succeeded: Vec<(oneshot::Sender<Outcome>, Box<dyn Any + Send>)> = Vec::new();
    if let Err(error) = conn.execute_batch("BEGIN IMMEDIATE; SAVEPOINT unit") {
        abandon(conn);
        let message = convert::db(error).to_string();
        for unit in remaining {
            let _ = unit.reply.send(Err(batch_failed(&message)));
        }
        return;
    }
    // Whether the savepoint `unit` holds nothing yet; after a success it must be released and
    // set again, so that a later failure cannot undo the success.
    let mut savepoint_clean = true;
    while let Some(unit) = remaining.next() {
        if !savepoint_clean && let Err(error) = conn.execute_batch("RELEASE unit; SAVEPOINT unit") {
            let message = convert::db(error).to_string();
            fail_batch(conn, succeeded, &message);
            let _ = unit.reply.send(Err(batch_failed(&message)));
            // The units not yet run get a transaction of their own.
            commit_rest(conn, remaining.collect());
            return;
        }
        match run_unit(conn, unit.work) {
            Ok(value) => {
                succeeded.push((unit.reply, value));
                savepoint_clean = false;
            }
            Err(error) => match conn.execute_batch("ROLLBACK TO unit") {
                Ok(_) => {
                    let _ = unit.reply.send(Err(error));
                    savepoint_clean = true;
                }
                Err(rollback_error) => {
                    // SQLite rolls a whole transaction back on some errors (a full disk, an I/O
                    // error): the units before this one are lost with it.
                    let message = format!(
                        "{error}; then the transaction could not be rolled back to the unit: {}",
                        convert::db(rollback_error)
                    );
                    let _ = unit.reply.send(Err(error));
                    fail_batch(conn, succeeded, &message);
                    commit_rest(conn, remaining.collect());
                    return;
                }
            },
        }
    }
    match index_pending(conn).and_then(|()| conn.execute_batch("COMMIT")) {
        Ok(()) => {
            for (reply, value) in succeeded {
                let _ = reply.send(Ok(value));
            }
        }
        Err(error) => {
            let message = convert::db(error).to_string();
            fail_batch(conn, succeeded, &message);
        }
    }
}

/// Adds the entries written in this transaction to the full-text index, all in one statement
/// after the last savepoint, so that FTS5 writes one index segment per commit (see migration
/// 0008).
fn index_pending(conn: &mut Connection) -> rusqlite::Result<()> {
    conn.prepare_cached(
        "insert into thread_entry_fts (rowid, title, body) \
         select e.entry_id, e.title, e.body from fts_pending p \
         join thread_entry e on e.entry_id = p.entry_id",
    )?
    .execute([])?;
    conn.prepare_cached("delete from fts_pending")?
        .execute([])?;
    Ok(())
}

/// Commits units that have not run yet after their batch failed.
fn commit_rest(conn: &mut Connection, units: Vec<Unit>) {
    match units.len() {
        0 => {}
        1 => {
            for unit in units {
                commit_alone(conn, unit);
            }
        }
        _ => commit_together(conn, units),
    }
}

/// Runs one unit against the open transaction; a panic becomes an error for its caller only.
fn run_unit(conn: &mut Connection, work: ErasedWork) -> Outcome {
    let outcome = futures::executor::block_on(
        AssertUnwindSafe(async {
            let mut writer = Conn(&mut *conn);
            work(&mut writer).await
        })
        .catch_unwind(),
    );
    outcome.unwrap_or_else(|panic| {
        let what = panic
            .downcast_ref::<&str>()
            .map(|s| (*s).to_owned())
            .or_else(|| panic.downcast_ref::<String>().cloned())
            .unwrap_or_else(|| "a unit of work panicked".to_owned());
        tracing::error!(panic = %what, "a unit of work panicked; it was rolled back");
        Err(StoreError::Other(Box::new(BatchFailed(format!(
            "a unit of work panicked: {what}"
        ))))
        .into())
    })
}

/// Rolls the transaction back and tells every unit that had succeeded in it that it was lost.
fn fail_batch(
    conn: &mut Connection,
    succeeded: Vec<(oneshot::Sender<Outcome>, Box<dyn Any + Send>)>,
    message: &str,
) {
    abandon(conn);
    for (reply, _) in succeeded {
        let _ = reply.send(Err(batch_failed(message)));
    }
}

/// Ends whatever transaction is open. Its error is not worth reporting: either there was none
/// (SQLite already rolled it back) or the connection is gone, which the next `BEGIN` reports.
fn abandon(conn: &mut Connection) {
    let _ = conn.execute_batch("ROLLBACK");
}

/// The error a unit gets when the shared transaction it ran in could not be committed.
fn batch_failed(message: &str) -> Error {
    StoreError::Other(Box::new(BatchFailed(format!(
        "the write was not committed: {message}"
    ))))
    .into()
}

fn stopped() -> Error {
    StoreError::Unavailable(Box::new(BatchFailed(
        "the store's writer has stopped".to_owned(),
    )))
    .into()
}

/// Why a unit that ran without error was still not committed.
#[derive(Debug)]
struct BatchFailed(String);

impl fmt::Display for BatchFailed {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for BatchFailed {}
