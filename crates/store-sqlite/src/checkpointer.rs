//! Checkpoints off the writer's path.
//!
//! A checkpoint copies the pages committed to the WAL back into the database file and syncs it,
//! so that the WAL can start over from its beginning instead of growing. Run by the writer
//! between batches it stopped every write for 5–6 ms at a time (several thousand pages and two
//! syncs). Now a thread of its own runs it on a connection of its own, alongside the writer's
//! commits (a `PASSIVE` checkpoint takes no lock a writer needs). The writer finishes the job:
//! once a pass has copied all but the last few hundred frames, it checkpoints those itself
//! between two batches, so that the next transaction finds the WAL fully copied and starts it
//! over — SQLite restarts the WAL only in a write transaction that began after a complete
//! checkpoint, which a checkpoint racing the commits never gives.

use helpline_core::StoreError;
use rusqlite::Connection;
use std::sync::mpsc;
use std::thread::JoinHandle;

/// WAL frames (pages) committed since the last checkpoint that start the next one. SQLite's own
/// automatic checkpoint runs at 1,000. A larger WAL costs less per page written: pages written
/// again meanwhile are copied once, and the writer's own part (two syncs) comes less often. Up
/// to 4,096 frames SQLite finds a page in the WAL with one hash table.
pub(crate) const CHECKPOINT_FRAMES: u32 = 3_072;

/// Frames a pass may leave for the writer to copy itself; more, and another pass is asked for.
const WRITER_FINISHES_AT: i64 = 256;

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
    /// The WAL's frames when the last checkpoint started.
    frames_at_start: u32,
}

struct Helper {
    requests: mpsc::Sender<()>,
    passes: mpsc::Receiver<Result<Pass, String>>,
    thread: JoinHandle<()>,
}

impl Checkpoints {
    /// Starts the checkpoint thread on `connection` (a read-write connection to the writer's
    /// database). Without one (no WAL, or the thread could not start) the writer checkpoints
    /// alone, as SQLite itself would.
    pub(crate) fn start(connection: Option<Connection>) -> Result<Self, StoreError> {
        let helper = match connection {
            None => None,
            Some(conn) => {
                let (requests, waiting) = mpsc::channel::<()>();
                let (done, passes) = mpsc::channel();
                let thread = std::thread::Builder::new()
                    .name("sqlite-checkpoint".to_owned())
                    .spawn(move || {
                        while waiting.recv().is_ok() {
                            let pass = passive_checkpoint(&conn).map_err(|e| e.to_string());
                            if done.send(pass).is_err() {
                                break;
                            }
                        }
                    })
                    .map_err(|e| StoreError::Unavailable(Box::new(e)))?;
                Some(Helper {
                    requests,
                    passes,
                    thread,
                })
            }
        };
        Ok(Self {
            helper,
            running: false,
            frames_at_start: 0,
        })
    }

    /// Called by the writer after each commit, with the frames the WAL now holds (`conn` is the
    /// writer's connection, between transactions): asks for a pass when enough frames have been
    /// committed since the last, and finishes a pass that has nearly caught up.
    pub(crate) fn after_commit(&mut self, conn: &Connection, frames: u32) {
        if frames < self.frames_at_start {
            // The WAL started over.
            self.frames_at_start = 0;
        }
        let Some(helper) = &self.helper else {
            if frames - self.frames_at_start >= CHECKPOINT_FRAMES {
                self.frames_at_start = frames;
                log_failure(passive_checkpoint(conn));
            }
            return;
        };
        if self.running {
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
                Ok(pass) if i64::from(frames) - pass.copied > WRITER_FINISHES_AT => {
                    // Much was committed during the pass: another one, still alongside.
                    self.running = helper.requests.send(()).is_ok();
                }
                // The rest, between two batches, so the next transaction starts the WAL over.
                Ok(_) => log_failure(passive_checkpoint(conn)),
                Err(error) => {
                    tracing::warn!(%error, "WAL checkpoint failed; the next one retries");
                }
            }
            return;
        }
        if frames - self.frames_at_start >= CHECKPOINT_FRAMES {
            self.frames_at_start = frames;
            self.running = helper.requests.send(()).is_ok();
        }
    }

    /// Waits for a pass under way and stops the thread.
    pub(crate) fn stop(self) {
        if let Some(helper) = self.helper {
            drop(helper.requests);
            let _ = helper.thread.join();
        }
    }
}

/// Copies the WAL's committed pages into the database file (`PASSIVE`: neither readers nor the
/// writer are waited for) and syncs it.
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
