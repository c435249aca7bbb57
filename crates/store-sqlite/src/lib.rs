//! Helpline's embedded SQLite store: zero set-up, one file.
//!
//! Durability: WAL journal with `synchronous=FULL`, so a committed write — and so every 201 —
//! is on disk. All writes go through one writer connection, owned by a committer task that
//! commits concurrent units of work together in one transaction and one fsync ([group
//! commit](group_commit)); each caller is answered only after that commit. Transactions start
//! with `BEGIN IMMEDIATE`: writers queue in-process instead of failing with `SQLITE_BUSY`, and
//! another process (the CLI while the server runs) waits up to `busy_timeout`. Reads use a small
//! pool of read-only connections, which WAL lets run alongside the writer.

mod convert;
mod group_commit;
mod outbox;
mod queries;

use async_trait::async_trait;
use group_commit::GroupCommit;
use helpline_core::store::{ErasedWork, Reader, Store};
use helpline_core::{Error, StoreError};
use queries::Conn;
use sqlx::sqlite::{
    SqliteConnectOptions, SqliteJournalMode, SqlitePool, SqlitePoolOptions, SqliteSynchronous,
};
use sqlx::{ConnectOptions, Connection};
use std::any::Any;
use std::str::FromStr;
use std::time::Duration;

/// How long a connection waits for another process's write lock before giving up.
const BUSY_TIMEOUT: Duration = Duration::from_secs(10);

/// Read-only connections kept for concurrent readers.
const READ_CONNECTIONS: u32 = 8;

/// The SQLite implementation of [`Store`].
pub struct SqliteStore {
    writer: GroupCommit,
    readers: SqlitePool,
}

impl SqliteStore {
    /// Opens (creating when missing) the database at `url` (`sqlite://path/to/file.db`,
    /// `sqlite:file.db`) and applies pending migrations.
    pub async fn open(url: &str) -> Result<Self, StoreError> {
        let options = SqliteConnectOptions::from_str(url)
            .map_err(|e| StoreError::Unavailable(Box::new(e)))?
            .create_if_missing(true)
            .journal_mode(SqliteJournalMode::Wal)
            .synchronous(SqliteSynchronous::Full)
            .foreign_keys(true)
            .busy_timeout(BUSY_TIMEOUT);
        let mut writer = options
            .connect()
            .await
            .map_err(|e| StoreError::Unavailable(Box::new(e)))?;
        MIGRATOR
            .run(&mut writer)
            .await
            .map_err(|e| StoreError::Migration(Box::new(e)))?;
        let readers = SqlitePoolOptions::new()
            .max_connections(READ_CONNECTIONS)
            .min_connections(0)
            .connect_with(options.create_if_missing(false).read_only(true))
            .await
            .map_err(|e| StoreError::Unavailable(Box::new(e)))?;
        Ok(Self {
            writer: GroupCommit::start(writer),
            readers,
        })
    }

    /// Closes every connection, checkpointing the WAL.
    pub async fn close(self) {
        self.readers.close().await;
        if let Some(writer) = self.writer.stop().await {
            let _ = writer.close().await;
        }
    }
}

/// The embedded migrations.
pub static MIGRATOR: sqlx::migrate::Migrator = sqlx::migrate!("./migrations");

#[async_trait]
impl Store for SqliteStore {
    fn backend(&self) -> &'static str {
        "sqlite"
    }

    async fn ping(&self) -> Result<(), StoreError> {
        let mut conn = self.readers.acquire().await.map_err(convert::db)?;
        conn.ping().await.map_err(convert::db)
    }

    async fn reader(&self) -> Result<Box<dyn Reader + '_>, StoreError> {
        let conn = self.readers.acquire().await.map_err(convert::db)?;
        Ok(Box::new(Conn(conn)))
    }

    async fn write_erased(&self, work: ErasedWork) -> Result<Box<dyn Any + Send>, Error> {
        self.writer.submit(work).await
    }
}
