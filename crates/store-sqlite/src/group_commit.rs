//! Group commit: one thread owns the write connection and commits concurrent units of work
//! together.
//!
//! SQLite allows one writer at a time, and a durable commit waits for an fsync of the WAL.
//! Committing each request on its own therefore caps writes at one fsync per request, however
//! many requests wait. Instead, units of work queue here; the committer runs them one after
//! another inside one transaction — each inside its own savepoint, so a unit that fails is
//! rolled back alone — and commits them together. Every caller is answered only after that
//! commit is on disk, so a unit reported as committed is durable, exactly as with one
//! transaction per unit.
//!
//! The fsync is not on the committer's path: the write connection runs with
//! `synchronous=NORMAL` (SQLite writes the WAL frames at `COMMIT` but does not sync them), and
//! the [syncer](crate::syncer)'s threads make each committed batch durable with an `fdatasync`
//! of the WAL and only then answer its units. While syncs are in flight the committer runs the
//! units arriving meanwhile into the next transaction, and commits it as soon as fewer than
//! [`SYNC_THREADS`] committed batches wait for their sync: the disk overlaps that many syncs, so
//! a batch is committed as early as a sync can start for it, and the batches grow with the load
//! (each commit writes the pages its units share — index roots, the last page of each table —
//! once). Nothing waits on purpose: with no sync in flight, a lone unit is committed at once. A
//! unit that failed is answered at once: it left nothing behind to wait for.
//!
//! Full-text indexing is deferred: entries wait in `fts_pending` (a trigger queues each one) and
//! are indexed in the commit of every [`INDEX_EVERY`]th batch, or of a batch a search asked for
//! ([`SearchIndexer`]). FTS5 writes one index segment per indexing, whatever its size, so
//! indexing every commit made that segment (and its merges) the costliest part of a small
//! commit. A search first has everything queued indexed, so it still finds every entry committed
//! before it started.
//!
//! The committer is a thread of its own rather than a task: the units' statements run on it
//! directly (see [`sql`](crate::sql)), so a unit's future completes when polled once; it is
//! driven with a plain `block_on` inside the runtime's context.

use crate::catalog_copy::CatalogCopy;
use crate::checkpointer::Checkpoints;
use crate::convert;
use crate::queries::Conn;
use crate::readers::ConnectionRole;
use crate::syncer::{Acknowledgements, SYNC_THREADS, Syncer};
use futures::FutureExt;
use helpline_core::store::ErasedWork;
use helpline_core::{Error, StoreError};
use rusqlite::Connection;
use std::any::Any;
use std::cell::Cell;
use std::ffi::c_int;
use std::fmt;
use std::panic::AssertUnwindSafe;
use std::path::PathBuf;
use tokio::sync::mpsc::error::TryRecvError;
use tokio::sync::{mpsc, oneshot};

/// The most units committed together, even while every sync thread is busy. Bounds the work a batch
/// adds to its first unit's latency.
const MAX_BATCH: usize = 256;

/// Units that may wait for the committer before callers are slowed down.
const QUEUE_DEPTH: usize = 4096;

/// A unit's outcome, as its caller receives it.
pub(crate) type Outcome = Result<Box<dyn Any + Send>, Error>;

/// Where a unit's outcome goes.
pub(crate) type Reply = oneshot::Sender<Outcome>;

/// Batches committed between two indexings of the queued entries, unless a search asks sooner.
/// Each indexing writes one FTS5 segment: fewer, larger segments mean less writing and merging.
const INDEX_EVERY: u32 = 16;

/// Pages of the full-text index's segments merged after each indexing (FTS5's `merge` command;
/// its automatic merge is off, migration 0014). FTS5's own merge did 64 pages per level of the
/// index at once every 64 pages written, which made the slowest commits; this slice keeps the
/// segments as few (about twenty at 650,000 entries, as with the automatic merge, measured with
/// SQLite's own FTS5 on 82-entry indexings) at an even cost.
const MERGE_PAGES: i64 = 16;

/// A unit of work waiting to be committed, and where to report its outcome.
struct Unit {
    work: ErasedWork,
    reply: Reply,
    /// Whether the batch this unit commits in must index every queued entry.
    index: bool,
}

/// What the committer waits for.
enum Message {
    /// A unit to run.
    Unit(Unit),
    /// A sync has returned and answered this many committed batches.
    Synced(usize),
}

/// The handle callers submit units to; the committer thread runs them.
pub(crate) struct GroupCommit {
    queue: mpsc::Sender<Message>,
    stopped: oneshot::Receiver<Connection>,
}

/// Asks the committer to index the entries queued for full-text indexing, for a search that
/// must find them. Holds no claim on the committer: once the store is closed, asking fails.
#[derive(Clone)]
pub(crate) struct SearchIndexer {
    queue: mpsc::WeakSender<Message>,
}

impl SearchIndexer {
    /// Returns once every entry queued before the call is indexed and committed.
    pub(crate) async fn index_queued(&self) -> Result<(), Error> {
        let queue = self.queue.upgrade().ok_or_else(stopped)?;
        let (reply, outcome) = oneshot::channel();
        let nothing: ErasedWork =
            Box::new(|_| Box::pin(async { Ok(Box::new(()) as Box<dyn Any + Send>) }));
        queue
            .send(Message::Unit(Unit {
                work: nothing,
                reply,
                index: true,
            }))
            .await
            .map_err(|_| stopped())?;
        drop(queue);
        outcome.await.map_err(|_| stopped())??;
        Ok(())
    }
}

impl GroupCommit {
    /// Starts the committer thread; it owns `writer` from now on. Units run inside the current
    /// Tokio runtime's context, so they may use Tokio's clocks and channels.
    ///
    /// In WAL mode the writer must run with `synchronous = NORMAL` and `wal` name the WAL file,
    /// which the syncer syncs; otherwise (`wal` is `None`) with `synchronous = FULL`. Automatic
    /// checkpoints must be off (`wal_autocheckpoint = 0`): SQLite would run them inside
    /// `COMMIT`. Checkpoints run on `checkpointer`, a read-write connection to the same database
    /// (see [`Checkpoints`]); without one the committer runs them itself.
    pub(crate) fn start(
        writer: Connection,
        wal: Option<PathBuf>,
        checkpointer: Option<Connection>,
    ) -> Result<Self, StoreError> {
        let (queue, receiver) = mpsc::channel(QUEUE_DEPTH);
        let (stop_signal, stopped) = oneshot::channel();
        let runtime = tokio::runtime::Handle::try_current().ok();
        // Weak: the committer stops once every caller's sender is gone.
        let committer = queue.downgrade();
        writer.wal_hook(Some(note_wal_frames));
        let checkpoints = Checkpoints::start(checkpointer);
        let syncer = Syncer::start(wal, move |batches| {
            if batches > 0
                && let Some(committer) = committer.upgrade()
            {
                let _ = committer.blocking_send(Message::Synced(batches));
            }
        })?;
        std::thread::Builder::new()
            .name("sqlite-writer".to_owned())
            .spawn(move || {
                let _context = runtime.as_ref().map(tokio::runtime::Handle::enter);
                let mut checkpoints = checkpoints;
                let conn = run(writer, receiver, &syncer, &mut checkpoints);
                checkpoints.stop();
                syncer.stop();
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
            .send(Message::Unit(Unit {
                work,
                reply,
                index: false,
            }))
            .await
            .map_err(|_| stopped())?;
        outcome.await.map_err(|_| stopped())?
    }

    /// A handle for searches to have the queued entries indexed.
    pub(crate) fn search_indexer(&self) -> SearchIndexer {
        SearchIndexer {
            queue: self.queue.downgrade(),
        }
    }

    /// Stops the committer once every queued unit is done and hands back the connection.
    pub(crate) async fn stop(self) -> Option<Connection> {
        drop(self.queue);
        self.stopped.await.ok()
    }
}

/// The committer: run units as they come into the open transaction; commit it whenever a sync
/// can start for it at once (or the batch is full); repeat until every caller's sender is gone.
fn run(
    mut conn: Connection,
    mut queue: mpsc::Receiver<Message>,
    syncer: &Syncer,
    checkpoints: &mut Checkpoints,
) -> Connection {
    let mut open: Option<Batch> = None;
    let mut catalog = CatalogCopy::default();
    // Committed batches the syncer has not answered yet.
    let mut unanswered: usize = 0;
    let mut since_indexing = 0;
    let mut commit = |conn: &mut Connection, batch: Batch| {
        hand_over(conn, batch, syncer, checkpoints, &mut since_indexing)
    };
    loop {
        let message = match queue.try_recv() {
            Ok(message) => message,
            Err(TryRecvError::Disconnected) => break,
            Err(TryRecvError::Empty) => {
                if unanswered < SYNC_THREADS
                    && let Some(batch) = open.take()
                {
                    unanswered += usize::from(commit(&mut conn, batch));
                    continue;
                }
                match queue.blocking_recv() {
                    Some(message) => message,
                    None => break,
                }
            }
        };
        match message {
            Message::Synced(batches) => unanswered = unanswered.saturating_sub(batches),
            Message::Unit(unit) => {
                if let Some(failure) = syncer.failure() {
                    let _ = unit.reply.send(Err(unsynced(&failure)));
                    continue;
                }
                open = Batch::run(&mut conn, &mut catalog, open, unit);
                if let Some(full) = open.take_if(|batch| batch.units >= MAX_BATCH) {
                    unanswered += usize::from(commit(&mut conn, full));
                }
            }
        }
    }
    if let Some(mut batch) = open {
        // Leave nothing queued behind.
        batch.index_requested = true;
        commit(&mut conn, batch);
    }
    conn
}

thread_local! {
    /// The frames the WAL held after the writer's last commit, as SQLite reported them.
    static WAL_FRAMES: Cell<u32> = const { Cell::new(0) };
}

/// SQLite's WAL hook: called in the committing thread after each commit.
fn note_wal_frames(_: &rusqlite::hooks::Wal, frames: c_int) -> rusqlite::Result<()> {
    WAL_FRAMES.with(|cell| cell.set(u32::try_from(frames).unwrap_or(0)));
    Ok(())
}

/// Commits `batch` (indexing the queued entries when asked or when it is time), hands its units
/// to the syncer and has the WAL checkpointed when it is time. Returns whether the syncer got
/// anything to answer.
fn hand_over(
    conn: &mut Connection,
    batch: Batch,
    syncer: &Syncer,
    checkpoints: &mut Checkpoints,
    since_indexing: &mut u32,
) -> bool {
    *since_indexing += 1;
    if (batch.index_requested || *since_indexing >= INDEX_EVERY) && try_index_queue(conn) {
        *since_indexing = 0;
    }
    let committed = batch.commit(conn);
    let handed = !committed.is_empty();
    syncer.acknowledge_when_durable(committed);
    checkpoints.after_commit(conn, WAL_FRAMES.with(Cell::get));
    handed
}

/// The open transaction units are gathered in, each inside the savepoint `unit`.
struct Batch {
    /// The units that succeeded, with their values, to be answered once durable.
    succeeded: Acknowledgements,
    /// Whether the savepoint `unit` holds nothing yet; after a success it must be released and
    /// set again, so that a later failure cannot undo the success.
    savepoint_clean: bool,
    /// Units run in this transaction, failed ones included.
    units: usize,
    /// Whether a unit asked for the queued entries to be indexed in this commit.
    index_requested: bool,
}

impl Batch {
    /// Runs `unit` in `open` (or in a new transaction when there is none). Returns the batch to
    /// go on with: `None` when the transaction was lost, after answering everyone in it.
    fn run(
        conn: &mut Connection,
        catalog: &mut CatalogCopy,
        open: Option<Batch>,
        unit: Unit,
    ) -> Option<Batch> {
        let mut batch = match open {
            Some(batch) if batch.savepoint_clean => batch,
            Some(batch) => match run_cached(conn, &["RELEASE unit", "SAVEPOINT unit"]) {
                Ok(()) => Self {
                    savepoint_clean: true,
                    ..batch
                },
                Err(error) => {
                    // The units before this one are lost; this one gets a transaction of its
                    // own.
                    batch.fail(conn, &convert::db(error).to_string());
                    return Self::run(conn, catalog, None, unit);
                }
            },
            None => match run_cached(conn, &["BEGIN IMMEDIATE", "SAVEPOINT unit"]) {
                Ok(()) => Self {
                    succeeded: Acknowledgements::new(),
                    savepoint_clean: true,
                    units: 0,
                    index_requested: false,
                },
                Err(error) => {
                    abandon(conn);
                    let _ = unit.reply.send(Err(convert::db(error).into()));
                    return None;
                }
            },
        };
        batch.units += 1;
        batch.index_requested |= unit.index;
        match run_unit(conn, catalog, unit.work) {
            Ok(value) => {
                batch.succeeded.push((unit.reply, value));
                batch.savepoint_clean = false;
                Some(batch)
            }
            Err(error) => match conn.execute_batch("ROLLBACK TO unit") {
                Ok(()) => {
                    let _ = unit.reply.send(Err(error));
                    Some(batch)
                }
                Err(rollback_error) => {
                    // SQLite rolls a whole transaction back on some errors (a full disk, an I/O
                    // error): the units before this one are lost with it.
                    let message = format!(
                        "{error}; then the transaction could not be rolled back to the unit: {}",
                        convert::db(rollback_error)
                    );
                    let _ = unit.reply.send(Err(error));
                    batch.fail(conn, &message);
                    None
                }
            },
        }
    }

    /// Commits. Returns the units to answer once durable; when the commit fails they have been
    /// answered with the error already.
    fn commit(self, conn: &mut Connection) -> Acknowledgements {
        match run_cached(conn, &["COMMIT"]) {
            Ok(()) => self.succeeded,
            Err(error) => {
                self.fail(conn, &convert::db(error).to_string());
                Acknowledgements::new()
            }
        }
    }

    /// Rolls the transaction back and tells every unit that had succeeded in it that it was
    /// lost.
    fn fail(self, conn: &mut Connection, message: &str) {
        abandon(conn);
        for (reply, _) in self.succeeded {
            let _ = reply.send(Err(batch_failed(message)));
        }
    }
}

/// Runs each statement from the connection's statement cache: these run several times per batch,
/// and `execute_batch` would parse them anew every time.
fn run_cached(conn: &Connection, statements: &[&str]) -> rusqlite::Result<()> {
    for sql in statements {
        conn.prepare_cached(sql)?.execute([])?;
    }
    Ok(())
}

/// Indexes the queued entries in the open transaction, inside a savepoint of their own: when that
/// fails (an entry written outside the store whose text the index cannot take, say), the
/// entries stay queued, the failure is logged, and the batch's units still commit. Returns
/// whether the queue was indexed.
fn try_index_queue(conn: &Connection) -> bool {
    let indexed = run_cached(conn, &["SAVEPOINT fts"])
        .and_then(|()| index_pending(conn))
        .and_then(|()| run_cached(conn, &["RELEASE fts"]));
    match indexed {
        Ok(()) => true,
        Err(error) => {
            tracing::error!(%error, "full-text indexing failed; the entries stay queued");
            let _ = run_cached(conn, &["ROLLBACK TO fts", "RELEASE fts"]);
            false
        }
    }
}

/// Adds every queued entry to the full-text index, all in one statement after the last
/// savepoint, so that FTS5 writes one index segment (see migration 0008), each entry as
/// `search_text` renders it (migration 0012); then merges up to [`MERGE_PAGES`] pages of the
/// index's segments (migration 0014).
pub(crate) fn index_pending(conn: &Connection) -> rusqlite::Result<()> {
    let indexed = conn
        .prepare_cached(
            "insert into thread_entry_fts (rowid, title, body) \
             select e.entry_id, e.title, search_text(e.body, e.format) from fts_pending p \
             join thread_entry e on e.entry_id = p.entry_id",
        )?
        .execute([])?;
    conn.prepare_cached("delete from fts_pending")?
        .execute([])?;
    if indexed > 0 {
        merge_index_slice(conn);
    }
    Ok(())
}

/// Merges up to [`MERGE_PAGES`] pages of the full-text index's segments, inside a savepoint of
/// its own: a merge that fails leaves the entries just indexed in place (the next indexing
/// merges again), and is only logged.
fn merge_index_slice(conn: &Connection) {
    let merged = run_cached(conn, &["SAVEPOINT fts_merge"])
        .and_then(|()| {
            conn.prepare_cached(
                "insert into thread_entry_fts (thread_entry_fts, rank) values ('merge', ?1)",
            )?
            .execute([MERGE_PAGES])
        })
        .and_then(|_| run_cached(conn, &["RELEASE fts_merge"]));
    if let Err(error) = merged {
        tracing::warn!(%error, "merging the full-text index's segments failed; the next indexing merges again");
        let _ = run_cached(conn, &["ROLLBACK TO fts_merge", "RELEASE fts_merge"]);
    }
}

/// Runs one unit against the open transaction; a panic becomes an error for its caller only.
fn run_unit(conn: &mut Connection, catalog: &mut CatalogCopy, work: ErasedWork) -> Outcome {
    let outcome = futures::executor::block_on(
        AssertUnwindSafe(async {
            let mut writer = Conn(UnitConnection { conn, catalog });
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

/// The writer's connection as a unit of work sees it, with the committer's catalogue copy.
struct UnitConnection<'a> {
    conn: &'a mut Connection,
    catalog: &'a mut CatalogCopy,
}

impl ConnectionRole for UnitConnection<'_> {
    fn search_indexer(&self) -> Option<&SearchIndexer> {
        None
    }

    fn catalog_copy(&mut self) -> Option<&mut CatalogCopy> {
        Some(self.catalog)
    }
}

impl std::ops::Deref for UnitConnection<'_> {
    type Target = Connection;

    fn deref(&self) -> &Connection {
        self.conn
    }
}

impl std::ops::DerefMut for UnitConnection<'_> {
    fn deref_mut(&mut self) -> &mut Connection {
        self.conn
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

/// The error every unit gets once syncing the WAL has failed: the store stops taking writes.
fn unsynced(failure: &str) -> Error {
    StoreError::Unavailable(Box::new(BatchFailed(format!(
        "the store stopped taking writes after the WAL could not be synced to disk ({failure}); \
         restart the server"
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
