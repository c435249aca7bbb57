//! Checkpoints off the writer's path.
//!
//! A checkpoint copies the pages committed to the WAL back into the database file and syncs it,
//! so that the WAL can start over from its beginning instead of growing. Run by the writer
//! between batches it stopped every write for 5–6 ms at a time (several thousand pages and two
//! syncs). Now a thread of its own runs it on a connection of its own, alongside the writer's
//! commits (a `PASSIVE` checkpoint takes no lock a writer needs). The writer finishes the job:
//! once a pass has copied all but the last few dozen frames, it checkpoints those itself
//! between two batches, so that the next transaction finds the WAL fully copied and starts it
//! over — SQLite restarts the WAL only in a write transaction that began after a complete
//! checkpoint, which a checkpoint racing the commits never gives. The thread also syncs the
//! database file after each pass, so that the writer's part has only its own pages to sync.

use helpline_core::StoreError;
use rusqlite::Connection;
use std::sync::mpsc;
use std::thread::JoinHandle;

/// WAL frames (pages) committed since the last checkpoint that start the next one. SQLite's own
/// automatic checkpoint runs at 1,000. A larger WAL costs less per page written: pages written
/// again meanwhile are copied once, and the writer's own part (two syncs) and the database
/// file's syncs, which the WAL's syncs wait behind on the disk, come less often. At 8,000
/// frames (a WAL file of 33–39 MB with what the passes chase; SQLite's WAL index then holds
/// two or three hash tables of about 4,096 frames) creates ran about 5 % faster than at 3,072
/// (`bench/ab`, both orders: +6.5 and +2.9 %); 16,000 gained nothing certain over 8,000.
pub(crate) const CHECKPOINT_FRAMES: u32 = 8_000;

/// Frames a pass may leave for the writer to copy itself; more, and another pass is asked for.
/// Every write waits while the writer copies, so its part is kept small: each pass only copies
/// what was committed during the one before, so the passes soon come this close.
const WRITER_FINISHES_AT: i64 = 64;

/// Passes that may chase the commits before the writer finishes whatever is left. Under writes
/// heavy enough that every pass leaves more than [`WRITER_FINISHES_AT`] frames, chasing on would
/// never let the WAL start over; the writer's part is then at most what one pass left. (Under
/// 9,000 creates a second, most checkpoints needed one to four passes, a few five or six.)
const MOST_PASSES: u32 = 6;

/// What a pass of the checkpoint left: how many of the WAL's frames are copied.
#[derive(Debug, Clone, Copy)]
struct Pass {
    copied: i64,
}

/// The checkpoint thread, seen from the writer; runs the writer's side of the work too.
pub(crate) struct Checkpoints {
    helper: Option<Helper>,
    /// Whether the helper is running a pass.
    running: bool,
    /// Passes run since the checkpoint started.
    passes: u32,
    /// The WAL's frames when the last checkpoint started.
    frames_at_start: u32,
}

struct Helper {
    requests: mpsc::Sender<()>,
    passes: mpsc::Receiver<Result<Pass, String>>,
    thread: JoinHandle<()>,
}

impl Helper {
    fn start(conn: Connection) -> Result<Self, StoreError> {
        let (requests, waiting) = mpsc::channel::<()>();
        let (done, passes) = mpsc::channel();
        let database_file = DatabaseFile::open(&conn);
        let thread = std::thread::Builder::new()
            .name("sqlite-checkpoint".to_owned())
            .spawn(move || {
                while waiting.recv().is_ok() {
                    let pass = passive_checkpoint(&conn).map_err(|e| e.to_string());
                    if pass.is_ok() {
                        database_file.sync();
                    }
                    if done.send(pass).is_err() {
                        break;
                    }
                }
            })
            .map_err(|e| StoreError::Unavailable(Box::new(e)))?;
        Ok(Self {
            requests,
            passes,
            thread,
        })
    }
}

impl Checkpoints {
    /// Starts the checkpoint thread on `connection` (a read-write connection to the writer's
    /// database). Without one (no WAL, or the thread could not start) the writer checkpoints
    /// alone, as SQLite itself would.
    pub(crate) fn start(connection: Option<Connection>) -> Self {
        let helper = connection.and_then(|conn| match Helper::start(conn) {
            Ok(helper) => Some(helper),
            Err(error) => {
                tracing::warn!(%error, "no checkpoint thread; the writer checkpoints alone");
                None
            }
        });
        Self {
            helper,
            running: false,
            passes: 0,
            frames_at_start: 0,
        }
    }

    /// Called by the writer after each commit, with the frames the WAL now holds (`conn` is the
    /// writer's connection, between transactions): asks for a pass when enough frames have been
    /// committed since the last, and finishes a pass that has nearly caught up.
    pub(crate) fn after_commit(&mut self, conn: &Connection, frames: u32) {
        if frames < self.frames_at_start {
            // The WAL started over.
            self.frames_at_start = 0;
        }
        if self.running {
            self.take_pass(conn, frames);
        } else if frames - self.frames_at_start >= CHECKPOINT_FRAMES {
            self.frames_at_start = frames;
            self.passes = 0;
            self.ask_for_pass(conn);
        }
    }

    /// The running pass's outcome, when it is in: another pass when it fell far behind (up to
    /// [`MOST_PASSES`]), else the writer's part.
    fn take_pass(&mut self, conn: &Connection, frames: u32) {
        let Some(helper) = &self.helper else {
            self.running = false;
            return;
        };
        let pass = match helper.passes.try_recv() {
            Err(mpsc::TryRecvError::Empty) => return,
            Err(mpsc::TryRecvError::Disconnected) => {
                tracing::warn!("the checkpoint thread stopped; the writer checkpoints alone");
                self.helper = None;
                self.running = false;
                return;
            }
            Ok(pass) => pass,
        };
        self.running = false;
        match pass {
            Ok(pass)
                if i64::from(frames) - pass.copied > WRITER_FINISHES_AT
                    && self.passes < MOST_PASSES =>
            {
                // Much was committed during the pass: another one, still alongside.
                self.ask_for_pass(conn);
            }
            // The rest, between two batches, so the next transaction starts the WAL over.
            Ok(_) => log_failure(passive_checkpoint(conn)),
            Err(error) => {
                tracing::warn!(%error, "WAL checkpoint failed; the next one retries");
            }
        }
    }

    /// Has the thread run a pass; without one (or once it is gone) runs it here.
    fn ask_for_pass(&mut self, conn: &Connection) {
        self.passes += 1;
        if let Some(helper) = &self.helper {
            if helper.requests.send(()).is_ok() {
                self.running = true;
                return;
            }
            tracing::warn!("the checkpoint thread stopped; the writer checkpoints alone");
            self.helper = None;
        }
        log_failure(passive_checkpoint(conn));
    }

    /// Waits for a pass under way and stops the thread.
    pub(crate) fn stop(self) {
        if let Some(helper) = self.helper {
            drop(helper.requests);
            let _ = helper.thread.join();
        }
    }
}

/// The database file, for the checkpoint thread to sync after each pass.
///
/// SQLite syncs the database file only in the pass that copies the WAL to its end — the
/// writer's — so that one sync would write out every page the thread's passes copied before it:
/// 4 ms on the writer's path at each checkpoint (p50, `perf trace` of the writer's `fsync`s
/// under the compatible create), every write waiting. Synced here after each pass, the pages
/// the passes copied are on disk before the writer's part begins, and its sync writes only the
/// last few dozen frames' pages. An extra sync of the file never costs durability; a failure
/// here is only logged, since the kernel reports a write-back error to every open descriptor of
/// the file, SQLite's among them, whose own sync then fails the checkpoint.
struct DatabaseFile(Option<std::fs::File>);

impl DatabaseFile {
    fn open(conn: &Connection) -> Self {
        let file = conn
            .path()
            .filter(|path| !path.is_empty())
            .and_then(|path| match std::fs::File::open(path) {
                Ok(file) => Some(file),
                Err(error) => {
                    tracing::warn!(%error, path, "cannot open the database file to sync it");
                    None
                }
            });
        Self(file)
    }

    fn sync(&self) {
        if let Some(file) = &self.0
            && let Err(error) = file.sync_data()
        {
            tracing::warn!(%error, "syncing the database file after a checkpoint pass failed");
        }
    }
}

/// Copies the WAL's committed pages into the database file (`PASSIVE`: neither readers nor the
/// writer are waited for); SQLite syncs the file only when the pass copied the WAL to its end.
fn passive_checkpoint(conn: &Connection) -> rusqlite::Result<Pass> {
    conn.query_row("pragma wal_checkpoint(passive)", [], |row| {
        Ok(Pass {
            copied: row.get(2)?,
        })
    })
}

fn log_failure(result: rusqlite::Result<Pass>) {
    if let Err(error) = result {
        tracing::warn!(%error, "WAL checkpoint failed; the next one retries");
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::MetadataExt;
    use std::time::{Duration, Instant};

    /// A writer and a checkpoint connection on a WAL database holding a few committed frames.
    fn database(dir: &std::path::Path) -> (Connection, Connection) {
        let path = dir.join("wal.db");
        let writer = Connection::open(&path).expect("writer");
        writer
            .execute_batch(
                "pragma journal_mode = wal; pragma wal_autocheckpoint = 0; \
                 create table t (x); insert into t values (1), (2), (3);",
            )
            .expect("set up");
        let helper = Connection::open(&path).expect("helper");
        (writer, helper)
    }

    /// Reports `first`, then `later` after every commit until no pass is running, as the
    /// writer would.
    fn run_to_the_end(checkpoints: &mut Checkpoints, writer: &Connection, first: u32, later: u32) {
        let deadline = Instant::now() + Duration::from_secs(10);
        checkpoints.after_commit(writer, first);
        while checkpoints.running {
            assert!(Instant::now() < deadline, "the checkpoint never finished");
            std::thread::sleep(Duration::from_millis(5));
            checkpoints.after_commit(writer, later);
        }
    }

    /// Every pass falls far behind (the WAL reported much longer than what the passes find
    /// copied): after [`MOST_PASSES`] passes the writer finishes, and the WAL is then fully
    /// copied, so the next transaction starts it over.
    #[test]
    fn the_writer_finishes_after_a_bounded_number_of_passes() {
        let dir = tempfile::tempdir().expect("temporary directory");
        let (writer, helper) = database(dir.path());
        let mut checkpoints = Checkpoints::start(Some(helper));
        run_to_the_end(&mut checkpoints, &writer, 100_000, 100_000);
        assert_eq!(checkpoints.passes, MOST_PASSES);
        let (log, copied): (i64, i64) = writer
            .query_row("pragma wal_checkpoint(passive)", [], |row| {
                Ok((row.get(1)?, row.get(2)?))
            })
            .expect("checkpoint state");
        assert_eq!(log, copied, "everything copied");
        checkpoints.stop();
    }

    /// The file the checkpoint thread syncs after each pass is the database file itself (the
    /// same inode), and syncing it through that read-only descriptor works; an in-memory
    /// database has no file to sync.
    #[test]
    fn the_checkpoint_thread_holds_the_database_file_itself() {
        let dir = tempfile::tempdir().expect("temporary directory");
        let (_writer, helper) = database(dir.path());
        let file = DatabaseFile::open(&helper);
        let opened = file.0.as_ref().expect("the database file is open");
        let expected = std::fs::metadata(dir.path().join("wal.db")).expect("database file");
        let metadata = opened.metadata().expect("metadata");
        assert_eq!(
            (metadata.dev(), metadata.ino()),
            (expected.dev(), expected.ino()),
            "the database file itself"
        );
        opened
            .sync_data()
            .expect("a read-only descriptor can be synced");
        file.sync();

        let memory = Connection::open_in_memory().expect("in-memory database");
        assert!(DatabaseFile::open(&memory).0.is_none());
    }

    /// A pass that caught up is finished by the writer at once; below the threshold nothing
    /// starts.
    #[test]
    fn one_pass_suffices_when_it_catches_up() {
        let dir = tempfile::tempdir().expect("temporary directory");
        let (writer, helper) = database(dir.path());
        let mut checkpoints = Checkpoints::start(Some(helper));
        checkpoints.after_commit(&writer, CHECKPOINT_FRAMES - 1);
        assert!(!checkpoints.running, "below the threshold");
        // The WAL really holds a few frames: the pass leaves none behind.
        run_to_the_end(&mut checkpoints, &writer, CHECKPOINT_FRAMES, 10);
        assert_eq!(checkpoints.passes, 1);
        checkpoints.stop();
    }
}
