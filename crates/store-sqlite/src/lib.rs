//! Helpline's embedded SQLite store: zero set-up, one file.
//!
//! Durability: a committed write — and so every 201 — is on disk. All writes go through one
//! writer connection, owned by a thread that commits concurrent units of work together in one
//! transaction ([group commit](group_commit)); two more threads sync the WAL, each sync
//! covering every batch committed before it started ([syncer]), and each caller is answered only
//! after such a sync.
//! Transactions start with `BEGIN IMMEDIATE`: another process writing the same file (the CLI
//! while the server runs) waits up to `busy_timeout` instead of failing with `SQLITE_BUSY`.
//! Reads use a small pool of read-only connections, which WAL lets run alongside the writer. A
//! third thread copies the WAL back into the database file ([checkpoints](checkpointer)). New
//! entries are added to the full-text index every few commits, and before any search (see
//! [group commit](group_commit)).
//!
//! Statements run through rusqlite on the calling thread ([`sql`]); sqlx only applies the
//! migrations, so databases migrated by earlier versions keep their history.

mod catalog_copy;
mod checkpointer;
mod convert;
mod group_commit;
mod outbox;
mod queries;
mod readers;
mod search_text;

pub use search_text::register as register_search_text;
mod sql;
mod syncer;

use async_trait::async_trait;
use group_commit::GroupCommit;
use helpline_core::store::{ErasedWork, Reader, Store};
use helpline_core::{Error, StoreError};
use queries::Conn;
use readers::ReaderPool;
use rusqlite::{Connection, OpenFlags};
use sqlx::sqlite::{SqliteConnectOptions, SqliteJournalMode, SqliteSynchronous};
use sqlx::{ConnectOptions, Connection as _};
use std::any::Any;
use std::path::Path;
use std::str::FromStr;
use std::time::Duration;

/// How long a connection waits for another process's write lock before giving up.
const BUSY_TIMEOUT: Duration = Duration::from_secs(10);

/// Read-only connections kept for concurrent readers.
const READ_CONNECTIONS: usize = 8;

/// Prepared statements each connection keeps (the store has about 120 distinct ones).
const STATEMENT_CACHE: usize = 256;

/// The SQLite implementation of [`Store`].
pub struct SqliteStore {
    writer: GroupCommit,
    readers: ReaderPool,
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
        let path = options.get_filename().to_path_buf();
        let mut migrator = options
            .connect()
            .await
            .map_err(|e| StoreError::Unavailable(Box::new(e)))?;
        MIGRATOR
            .run(&mut migrator)
            .await
            .map_err(|e| StoreError::Migration(Box::new(e)))?;
        migrator
            .close()
            .await
            .map_err(|e| StoreError::Unavailable(Box::new(e)))?;

        let mut writer = open_connection(&path, false)?;
        index_queued_entries(&mut writer)?;
        let wal = wal_file(&writer, &path)?;
        let checkpointer = match wal {
            Some(_) => Some(open_connection(&path, false)?),
            None => None,
        };
        let writer = GroupCommit::start(writer, wal, checkpointer)?;
        let opener_path = path.clone();
        let readers = ReaderPool::new(
            READ_CONNECTIONS,
            move || open_connection(&opener_path, true),
            writer.search_indexer(),
        );
        Ok(Self { writer, readers })
    }

    /// Closes every connection, checkpointing the WAL.
    pub async fn close(self) {
        drop(self.readers);
        if let Some(writer) = self.writer.stop().await {
            let _ = writer.close();
        }
    }
}

/// A connection to the database file with the store's settings: the writer's (durable commits,
/// foreign keys enforced) or a reader's (read-only).
fn open_connection(path: &Path, read_only: bool) -> Result<Connection, StoreError> {
    let flags = if read_only {
        OpenFlags::SQLITE_OPEN_READ_ONLY | OpenFlags::SQLITE_OPEN_NO_MUTEX
    } else {
        OpenFlags::SQLITE_OPEN_READ_WRITE | OpenFlags::SQLITE_OPEN_NO_MUTEX
    };
    let unavailable = |e: rusqlite::Error| StoreError::Unavailable(Box::new(e));
    let conn = if read_only {
        Connection::open_with_flags(path, flags)
    } else {
        // The writer appends the WAL: its frames go out in one write per commit.
        let vfs = helpline_sqlite_wal_vfs::register()
            .map_err(|e| StoreError::Unavailable(Box::new(e)))?;
        Connection::open_with_flags_and_vfs(path, flags, vfs)
    }
    .map_err(unavailable)?;
    conn.busy_timeout(BUSY_TIMEOUT).map_err(unavailable)?;
    search_text::register(&conn).map_err(unavailable)?;
    conn.set_prepared_statement_cache_capacity(STATEMENT_CACHE);
    conn.execute_batch(if read_only {
        "pragma foreign_keys = on;"
    } else {
        "pragma journal_mode = wal; pragma synchronous = full; pragma foreign_keys = on; \
         pragma temp_store = memory; pragma wal_autocheckpoint = 0;"
    })
    .map_err(unavailable)?;
    Ok(conn)
}

/// Indexes the entries left queued for full-text indexing — by a migration (0012 queues them
/// all) or by the last run, whose writer indexes every few commits — in one transaction, before
/// the store takes any write, so that the first search does not wait for them.
fn index_queued_entries(writer: &mut Connection) -> Result<(), StoreError> {
    let unavailable = |e: rusqlite::Error| StoreError::Unavailable(Box::new(e));
    let queued: i64 = writer
        .query_row("select count(*) from fts_pending", [], |row| row.get(0))
        .map_err(unavailable)?;
    if queued == 0 {
        return Ok(());
    }
    let started = std::time::Instant::now();
    let tx = writer
        .transaction_with_behavior(rusqlite::TransactionBehavior::Immediate)
        .map_err(unavailable)?;
    group_commit::index_pending(&tx).map_err(unavailable)?;
    tx.commit().map_err(unavailable)?;
    tracing::info!(
        entries = queued,
        ms = started.elapsed().as_millis() as u64,
        "full-text index: queued entries indexed"
    );
    Ok(())
}

/// The WAL file the syncer must sync after each commit, once the writer is switched to
/// `synchronous = NORMAL`; `None` when the database is not in WAL mode (a file system without
/// shared memory), where the writer keeps `synchronous = FULL` and syncs each commit itself.
fn wal_file(writer: &Connection, path: &Path) -> Result<Option<std::path::PathBuf>, StoreError> {
    let unavailable = |e: rusqlite::Error| StoreError::Unavailable(Box::new(e));
    let mode: String = writer
        .query_row("pragma journal_mode", [], |row| row.get(0))
        .map_err(unavailable)?;
    if !mode.eq_ignore_ascii_case("wal") {
        return Ok(None);
    }
    writer
        .execute_batch("pragma synchronous = normal;")
        .map_err(unavailable)?;
    let mut wal = path.as_os_str().to_owned();
    wal.push("-wal");
    Ok(Some(wal.into()))
}

/// The embedded migrations.
pub static MIGRATOR: sqlx::migrate::Migrator = sqlx::migrate!("./migrations");

#[async_trait]
impl Store for SqliteStore {
    fn backend(&self) -> &'static str {
        "sqlite"
    }

    async fn ping(&self) -> Result<(), StoreError> {
        let conn = self.readers.acquire().await?;
        conn.query_row("select 1", [], |_| Ok(()))
            .map_err(convert::db)
    }

    async fn reader(&self) -> Result<Box<dyn Reader + '_>, StoreError> {
        let conn = self.readers.acquire().await?;
        Ok(Box::new(Conn(conn)))
    }

    async fn write_erased(&self, work: ErasedWork) -> Result<Box<dyn Any + Send>, Error> {
        self.writer.submit(work).await
    }
}
