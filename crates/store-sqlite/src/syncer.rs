//! Making committed batches durable: one `fdatasync` of the WAL for every batch waiting, and
//! only then the answers.
//!
//! The write connection commits with `synchronous = NORMAL`: `COMMIT` writes the batch's WAL
//! frames and returns without syncing them. The committer hands the batch's answers here and
//! goes on with the next batch; this thread syncs the WAL file and answers. SQLite appends to
//! the WAL in commit order, so a sync that starts after a batch's `COMMIT` returned covers that
//! batch and every batch before it: one sync serves all batches waiting.
//!
//! What readers see: a batch is visible to the read connections from its `COMMIT`, up to one
//! sync (a fraction of a millisecond) before its writers are answered. A power failure in that
//! window loses the batch — whose writers were never told it succeeded — although a reader may
//! have seen it. Every answered write is on disk.
//!
//! A failed sync leaves the WAL's state on disk unknown (and a later sync may succeed without
//! the lost pages: the kernel drops them after reporting the error), so the batches waiting are
//! answered with an error and the store takes no more writes until it is reopened.

use crate::group_commit::{Outcome, Reply};
use helpline_core::StoreError;
use std::any::Any;
use std::fs::File;
use std::io;
use std::path::PathBuf;
use std::sync::mpsc;
use std::sync::{Arc, Mutex, PoisonError};
use std::thread::JoinHandle;

/// Committed units and their values, to be answered once their commit is durable.
pub(crate) type Acknowledgements = Vec<(Reply, Box<dyn Any + Send>)>;

/// The handle the committer passes committed batches to.
pub(crate) struct Syncer {
    queue: mpsc::Sender<Acknowledgements>,
    failure: Arc<Mutex<Option<String>>>,
    thread: JoinHandle<()>,
}

impl Syncer {
    /// Starts the syncer thread. `wal` is the WAL file to sync, or `None` when commits are
    /// durable by themselves (a database that is not in WAL mode commits with
    /// `synchronous = FULL`); then batches are answered as they come. `idle` is called after
    /// each round of answers, when the syncer has nothing left.
    pub(crate) fn start(
        wal: Option<PathBuf>,
        idle: impl Fn() + Send + 'static,
    ) -> Result<Self, StoreError> {
        let (queue, waiting) = mpsc::channel();
        let failure = Arc::new(Mutex::new(None));
        let reported = Arc::clone(&failure);
        let mut wal = wal.map(WalFile::new);
        let thread = std::thread::Builder::new()
            .name("sqlite-syncer".to_owned())
            .spawn(move || {
                sync_and_answer(
                    &waiting,
                    &reported,
                    || match wal.as_mut() {
                        Some(wal) => wal.sync(),
                        None => Ok(()),
                    },
                    idle,
                );
            })
            .map_err(|e| StoreError::Unavailable(Box::new(e)))?;
        Ok(Self {
            queue,
            failure,
            thread,
        })
    }

    /// Answers `committed` once a sync that started after their commit has returned.
    pub(crate) fn acknowledge_when_durable(&self, committed: Acknowledgements) {
        if committed.is_empty() {
            return;
        }
        if let Err(mpsc::SendError(committed)) = self.queue.send(committed) {
            // Only a panic in the syncer ends it early; nothing says these commits are durable.
            answer(committed, |_| {
                Err(sync_failed("the syncer thread has stopped"))
            });
        }
    }

    /// Why syncing failed, once it has: the store must take no more writes.
    pub(crate) fn failure(&self) -> Option<String> {
        self.failure
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .clone()
    }

    /// Waits until every batch handed over has been synced and answered.
    pub(crate) fn stop(self) {
        drop(self.queue);
        let _ = self.thread.join();
    }
}

/// The syncer's loop: take every batch waiting, sync once, answer them, report `idle`; until the
/// committer is gone. After a failed sync nothing is synced again and every batch is answered
/// with the error.
fn sync_and_answer(
    waiting: &mpsc::Receiver<Acknowledgements>,
    failure: &Mutex<Option<String>>,
    mut sync: impl FnMut() -> io::Result<()>,
    idle: impl Fn(),
) {
    while let Ok(mut batch) = waiting.recv() {
        while let Ok(more) = waiting.try_recv() {
            batch.extend(more);
        }
        let failed = failure
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .clone();
        let failed = match failed {
            Some(reason) => Some(reason),
            None => sync().err().map(|error| {
                let reason = format!("fdatasync of the WAL failed: {error}");
                tracing::error!(%reason, "the SQLite store stops taking writes");
                *failure.lock().unwrap_or_else(PoisonError::into_inner) = Some(reason.clone());
                reason
            }),
        };
        match failed {
            None => answer(batch, Ok),
            Some(reason) => answer(batch, |_| Err(sync_failed(&reason))),
        }
        idle();
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
    fn new(path: PathBuf) -> Self {
        Self { path, file: None }
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

    #[test]
    fn batches_are_answered_only_after_a_sync_that_started_after_them() {
        let (queue, waiting) = mpsc::channel();
        let failure = Mutex::new(None);
        let (first, first_answers) = batch(&[1, 2]);
        let (second, second_answers) = batch(&[3]);
        queue.send(first).expect("open");
        queue.send(second).expect("open");
        drop(queue);
        let mut syncs = 0;
        let mut answered_before_sync = Vec::new();
        sync_and_answer(
            &waiting,
            &failure,
            || {
                syncs += 1;
                answered_before_sync.push(first_answers.iter().any(|a| !a.is_empty()));
                Ok(())
            },
            || {},
        );
        assert_eq!(syncs, 1, "one sync serves both batches waiting");
        assert_eq!(answered_before_sync, [false]);
        let values: Vec<_> = first_answers
            .into_iter()
            .chain(second_answers)
            .map(value)
            .collect();
        assert_eq!(values, [Ok(1), Ok(2), Ok(3)]);
    }

    #[test]
    fn a_failed_sync_fails_its_batch_and_every_later_one_without_syncing_again() {
        let (queue, waiting) = mpsc::channel();
        let failure = Mutex::new(None);
        let (first, first_answers) = batch(&[1]);
        queue.send(first).expect("open");
        let sender = std::thread::spawn(move || {
            // The second batch arrives after the first sync failed.
            std::thread::sleep(std::time::Duration::from_millis(50));
            let (second, second_answers) = batch(&[2]);
            queue.send(second).expect("open");
            second_answers
        });
        let mut syncs = 0;
        sync_and_answer(
            &waiting,
            &failure,
            || {
                syncs += 1;
                Err(io::Error::other("disk on fire"))
            },
            || {},
        );
        let second_answers = sender.join().expect("sender");
        assert_eq!(syncs, 1, "no sync is trusted after one failed");
        for answer in first_answers.into_iter().chain(second_answers) {
            let error = value(answer).expect_err("not durable");
            assert!(error.contains("disk on fire"), "{error}");
            assert!(error.contains("may not be on disk"), "{error}");
        }
        let reason = failure.lock().expect("unpoisoned").clone();
        assert!(reason.is_some_and(|r| r.contains("disk on fire")));
    }
}
