//! Making committed batches durable: an `fdatasync` of the WAL for the batches waiting, and only
//! then their answers.
//!
//! The write connection commits with `synchronous = NORMAL`: `COMMIT` writes the batch's WAL
//! frames and returns without syncing them. The committer hands the batch's answers here and
//! goes on with the next batch; a sync thread syncs the WAL file and answers. SQLite appends to
//! the WAL in commit order, so a sync that starts after a batch's `COMMIT` returned covers that
//! batch and every batch before it: one sync serves all batches waiting when it starts.
//!
//! [`SYNC_THREADS`] threads sync, each through a descriptor of its own, so that the next batch's
//! sync need not wait for the one in flight: the disk takes several flushes at once (on the
//! build machine two overlapping `fdatasync`s complete at nearly twice the rate of one after
//! the other), and a batch's units wait for one sync instead of the rest of the one before plus
//! their own. Whichever sync returns first answers every batch it covers, so answers never wait
//! for an older, slower sync that a newer one has overtaken.
//!
//! What readers see: a batch is visible to the read connections from its `COMMIT`, up to one
//! sync (a fraction of a millisecond) before its writers are answered. A power failure in that
//! window loses the batch — whose writers were never told it succeeded — although a reader may
//! have seen it. Every answered write is on disk.
//!
//! A failed sync leaves the WAL's state on disk unknown (and a later sync may succeed without
//! the lost pages: the kernel drops them after reporting the error), so the batches waiting are
//! answered with an error and the store takes no more writes until it is reopened. Each thread
//! syncs through its own descriptor because Linux reports a write-back error once per open file
//! description: on a shared one, a sync running beside the one that got the error could return
//! success.

use crate::group_commit::{Outcome, Reply};
use helpline_core::StoreError;
use std::any::Any;
use std::collections::VecDeque;
use std::fs::File;
use std::io;
use std::path::PathBuf;
use std::sync::{Arc, Condvar, Mutex, MutexGuard, PoisonError};
use std::thread::JoinHandle;

/// Committed units and their values, to be answered once their commit is durable.
pub(crate) type Acknowledgements = Vec<(Reply, Box<dyn Any + Send>)>;

/// Syncs that may be in flight at once, one thread each.
pub(crate) const SYNC_THREADS: usize = 2;

/// The handle the committer passes committed batches to.
pub(crate) struct Syncer {
    shared: Arc<Shared>,
    threads: Vec<JoinHandle<()>>,
}

/// What the committer and the sync threads share.
struct Shared {
    state: Mutex<State>,
    /// Signalled when a batch is handed over or the syncer is to stop.
    handed: Condvar,
}

#[derive(Default)]
struct State {
    /// Committed batches not answered yet, oldest first, each with its number in commit order.
    waiting: VecDeque<(u64, Acknowledgements)>,
    /// The number of the last batch handed over.
    committed: u64,
    /// The number of the last batch a sync (finished or in flight) started after.
    covered: u64,
    /// Why syncing failed, once it has.
    failure: Option<String>,
    /// Whether the committer is gone: the threads end once every batch is answered.
    stopping: bool,
}

impl Shared {
    fn lock(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Queues a committed batch for the next sync to start.
    fn hand(&self, batch: Acknowledgements) {
        let mut state = self.lock();
        state.committed += 1;
        let number = state.committed;
        state.waiting.push_back((number, batch));
        drop(state);
        self.handed.notify_one();
    }

    /// Lets the sync threads end once everything handed over is answered.
    fn stop(&self) {
        self.lock().stopping = true;
        self.handed.notify_all();
    }
}

impl Syncer {
    /// Starts the sync threads. `wal` is the WAL file to sync, or `None` when commits are
    /// durable by themselves (a database that is not in WAL mode commits with
    /// `synchronous = FULL`); then batches are answered as they come. `answered` is called after
    /// each sync with the number of batches it answered.
    pub(crate) fn start(
        wal: Option<PathBuf>,
        answered: impl Fn(usize) + Send + Sync + 'static,
    ) -> Result<Self, StoreError> {
        let shared = Arc::new(Shared {
            state: Mutex::default(),
            handed: Condvar::new(),
        });
        let answered = Arc::new(answered);
        let mut threads = Vec::with_capacity(SYNC_THREADS);
        for number in 0..SYNC_THREADS {
            let for_thread = Arc::clone(&shared);
            let answered = Arc::clone(&answered);
            let mut wal = wal.clone().map(WalFile::new);
            let thread = std::thread::Builder::new()
                .name(format!("sqlite-syncer-{number}"))
                .spawn(move || {
                    sync_and_answer(
                        &for_thread,
                        || match wal.as_mut() {
                            Some(wal) => wal.sync(),
                            None => Ok(()),
                        },
                        &*answered,
                    );
                })
                .map_err(|e| StoreError::Unavailable(Box::new(e)));
            match thread {
                Ok(thread) => threads.push(thread),
                Err(error) => {
                    Self { shared, threads }.stop();
                    return Err(error);
                }
            }
        }
        Ok(Self { shared, threads })
    }

    /// Answers `committed` once a sync that started after their commit has returned.
    pub(crate) fn acknowledge_when_durable(&self, committed: Acknowledgements) {
        if !committed.is_empty() {
            self.shared.hand(committed);
        }
    }

    /// Why syncing failed, once it has: the store must take no more writes.
    pub(crate) fn failure(&self) -> Option<String> {
        self.shared.lock().failure.clone()
    }

    /// Waits until every batch handed over has been synced and answered.
    pub(crate) fn stop(mut self) {
        self.shared.stop();
        for thread in std::mem::take(&mut self.threads) {
            let _ = thread.join();
        }
    }
}

impl Drop for Syncer {
    /// A syncer dropped without [`Syncer::stop`] (its committer failed to start) still lets its
    /// threads end.
    fn drop(&mut self) {
        self.shared.stop();
    }
}

/// A sync thread's loop: when batches wait that no sync covers yet, sync once for all of them
/// and answer every batch that sync covers (some may have been answered by a later sync that
/// returned sooner); until the syncer stops and nothing is left. After a failed sync nothing is
/// synced again and every batch is answered with the error.
fn sync_and_answer(
    shared: &Shared,
    mut sync: impl FnMut() -> io::Result<()>,
    answered: &dyn Fn(usize),
) {
    let mut state = shared.lock();
    loop {
        if state.committed > state.covered {
            let target = state.committed;
            state.covered = target;
            let failed_before = state.failure.is_some();
            drop(state);
            let result = if failed_before { Ok(()) } else { sync() };
            state = shared.lock();
            if let Err(error) = result
                && state.failure.is_none()
            {
                let reason = format!("fdatasync of the WAL failed: {error}");
                tracing::error!(%reason, "the SQLite store stops taking writes");
                state.failure = Some(reason);
            }
            let failure = state.failure.clone();
            let mut covered = Vec::new();
            while let Some((_, batch)) = state.waiting.pop_front_if(|(number, _)| *number <= target)
            {
                covered.push(batch);
            }
            drop(state);
            let count = covered.len();
            for batch in covered {
                match &failure {
                    None => answer(batch, Ok),
                    Some(reason) => answer(batch, |_| Err(sync_failed(reason))),
                }
            }
            answered(count);
            state = shared.lock();
        } else if state.stopping {
            return;
        } else {
            state = shared
                .handed
                .wait(state)
                .unwrap_or_else(PoisonError::into_inner);
        }
    }
}

/// Sends each unit its outcome, made from its value.
fn answer(batch: Acknowledgements, outcome: impl Fn(Box<dyn Any + Send>) -> Outcome) {
    for (reply, value) in batch {
        let _ = reply.send(outcome(value));
    }
}

/// The WAL file, opened on the first sync: it exists once something has been committed, and
/// stays (the same file, rewritten from its start after checkpoints) while the write connection
/// is open.
struct WalFile {
    path: PathBuf,
    file: Option<File>,
}

impl WalFile {
    /// Opens the file at once when it exists: Linux reports a write-back error only to
    /// descriptors open when it happened, so a descriptor opened later could sync "successfully"
    /// over pages the kernel dropped.
    fn new(path: PathBuf) -> Self {
        let file = File::open(&path).ok();
        Self { path, file }
    }

    fn sync(&mut self) -> io::Result<()> {
        let file = match &self.file {
            Some(file) => file,
            None => self.file.insert(File::open(&self.path)?),
        };
        file.sync_data()
    }
}

/// The error a committed unit gets when its commit could not be made durable.
fn sync_failed(reason: &str) -> helpline_core::Error {
    StoreError::Unavailable(Box::new(SyncFailed(format!(
        "the write may not be on disk: {reason}; the store takes no more writes until the \
         server is restarted"
    ))))
    .into()
}

/// Why a committed write was not confirmed.
#[derive(Debug)]
struct SyncFailed(String);

impl std::fmt::Display for SyncFailed {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for SyncFailed {}

#[cfg(test)]
mod tests {
    use super::*;
    use tokio::sync::oneshot;

    fn batch(values: &[u32]) -> (Acknowledgements, Vec<oneshot::Receiver<Outcome>>) {
        values
            .iter()
            .map(|value| {
                let (reply, answer) = oneshot::channel();
                ((reply, Box::new(*value) as Box<dyn Any + Send>), answer)
            })
            .unzip()
    }

    fn value(answer: oneshot::Receiver<Outcome>) -> Result<u32, String> {
        match answer.blocking_recv().expect("every unit is answered") {
            Ok(value) => Ok(*value.downcast::<u32>().expect("the value handed in")),
            Err(error) => Err(error.to_string()),
        }
    }

    fn shared() -> Arc<Shared> {
        Arc::new(Shared {
            state: Mutex::default(),
            handed: Condvar::new(),
        })
    }

    #[test]
    fn batches_are_answered_only_after_a_sync_that_started_after_them() {
        let shared = shared();
        let (first, first_answers) = batch(&[1, 2]);
        let (second, second_answers) = batch(&[3]);
        shared.hand(first);
        shared.hand(second);
        shared.stop();
        let mut syncs = 0;
        let mut answered_before_sync = Vec::new();
        let answered = Mutex::new(Vec::new());
        sync_and_answer(
            &shared,
            || {
                syncs += 1;
                answered_before_sync.push(first_answers.iter().any(|a| !a.is_empty()));
                Ok(())
            },
            &|count| answered.lock().expect("unpoisoned").push(count),
        );
        assert_eq!(syncs, 1, "one sync serves both batches waiting");
        assert_eq!(answered_before_sync, [false]);
        assert_eq!(*answered.lock().expect("unpoisoned"), [2]);
        let values: Vec<_> = first_answers
            .into_iter()
            .chain(second_answers)
            .map(value)
            .collect();
        assert_eq!(values, [Ok(1), Ok(2), Ok(3)]);
    }

    /// A batch committed while an older batch's sync is in flight gets a sync of its own at once,
    /// and when that one returns first it answers the older batch too.
    #[test]
    fn a_newer_sync_that_returns_first_answers_the_batches_before_it() {
        let shared = shared();
        let (release_slow, slow_released) = std::sync::mpsc::channel::<()>();
        let (slow_started, slow_running) = std::sync::mpsc::channel::<()>();
        let slow_thread = {
            let shared = Arc::clone(&shared);
            std::thread::spawn(move || {
                let answered = Mutex::new(Vec::new());
                sync_and_answer(
                    &shared,
                    || {
                        slow_started.send(()).expect("test waits");
                        slow_released.recv().expect("released");
                        Ok(())
                    },
                    &|count| answered.lock().expect("unpoisoned").push(count),
                );
                answered.into_inner().expect("unpoisoned")
            })
        };
        let (older, older_answers) = batch(&[1]);
        shared.hand(older);
        slow_running.recv().expect("the older batch's sync started");
        let (newer, newer_answers) = batch(&[2]);
        shared.hand(newer);
        shared.stop();
        let answered = Mutex::new(Vec::new());
        sync_and_answer(&shared, || Ok(()), &|count| {
            answered.lock().expect("unpoisoned").push(count);
        });
        assert_eq!(*answered.lock().expect("unpoisoned"), [2]);
        let values: Vec<_> = older_answers
            .into_iter()
            .chain(newer_answers)
            .map(value)
            .collect();
        assert_eq!(
            values,
            [Ok(1), Ok(2)],
            "answered while the older sync still runs"
        );
        release_slow.send(()).expect("slow sync waits");
        let slow_answered = slow_thread.join().expect("slow sync thread");
        assert_eq!(slow_answered, [0], "the newer sync had answered its batch");
    }

    #[test]
    fn a_failed_sync_fails_its_batch_and_every_later_one_without_syncing_again() {
        let shared = shared();
        let (first, first_answers) = batch(&[1]);
        shared.hand(first);
        let sender = {
            let shared = Arc::clone(&shared);
            std::thread::spawn(move || {
                // The second batch arrives after the first sync failed.
                std::thread::sleep(std::time::Duration::from_millis(50));
                let (second, second_answers) = batch(&[2]);
                shared.hand(second);
                shared.stop();
                second_answers
            })
        };
        let mut syncs = 0;
        sync_and_answer(
            &shared,
            || {
                syncs += 1;
                Err(io::Error::other("disk on fire"))
            },
            &|_| {},
        );
        let second_answers = sender.join().expect("sender");
        assert_eq!(syncs, 1, "no sync is trusted after one failed");
        for answer in first_answers.into_iter().chain(second_answers) {
            let error = value(answer).expect_err("not durable");
            assert!(error.contains("disk on fire"), "{error}");
            assert!(error.contains("may not be on disk"), "{error}");
        }
        let reason = shared.lock().failure.clone();
        assert!(reason.is_some_and(|r| r.contains("disk on fire")));
    }

    /// A sync that succeeds after another one failed does not vouch for anything: its batches
    /// get the failure too.
    #[test]
    fn a_sync_that_returns_after_another_failed_answers_with_the_failure() {
        let shared = shared();
        let (release_slow, slow_released) = std::sync::mpsc::channel::<()>();
        let (slow_started, slow_running) = std::sync::mpsc::channel::<()>();
        let (older, older_answers) = batch(&[1]);
        shared.hand(older);
        let slow_thread = {
            let shared = Arc::clone(&shared);
            std::thread::spawn(move || {
                sync_and_answer(
                    &shared,
                    || {
                        slow_started.send(()).expect("test waits");
                        slow_released.recv().expect("released");
                        Err(io::Error::other("disk on fire"))
                    },
                    &|_| {},
                );
            })
        };
        slow_running.recv().expect("the older batch's sync started");
        let (newer, newer_answers) = batch(&[2]);
        shared.hand(newer);
        let fast_thread = {
            let shared = Arc::clone(&shared);
            std::thread::spawn(move || {
                sync_and_answer(
                    &shared,
                    || {
                        // Returns only after the older sync has failed.
                        while shared.lock().failure.is_none() {
                            std::thread::sleep(std::time::Duration::from_millis(1));
                        }
                        Ok(())
                    },
                    &|_| {},
                );
            })
        };
        while shared.lock().covered < 2 {
            // Until the second thread's sync has started.
            std::thread::sleep(std::time::Duration::from_millis(1));
        }
        release_slow.send(()).expect("slow sync waits");
        for answer in older_answers.into_iter().chain(newer_answers) {
            let error = value(answer).expect_err("not durable");
            assert!(error.contains("disk on fire"), "{error}");
        }
        shared.stop();
        slow_thread.join().expect("slow sync thread");
        fast_thread.join().expect("fast sync thread");
    }
}
