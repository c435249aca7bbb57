//! Helpline's PostgreSQL store: for desks that outgrow one file or want their database served.
//!
//! Durability: every unit of work is one transaction, and PostgreSQL's default
//! `synchronous_commit=on` means a commit — and so every 201 — has reached the server's WAL on
//! disk. Unlike SQLite there is no single writer: units of work run side by side on pooled
//! connections under READ COMMITTED, so the queries themselves keep find-or-create, ticket
//! numbers, counters and file deduplication race-free (see `queries`). Reads use the same pool.

mod catalog_cache;
mod convert;
mod outbox;
mod queries;
pub mod testing;

use async_trait::async_trait;
use catalog_cache::{CachingReader, CatalogCache};
use helpline_core::store::{ErasedWork, Reader, Store};
use helpline_core::{Error, StoreError};
use queries::Conn;
use sqlx::ConnectOptions;
use sqlx::Connection;
use sqlx::postgres::{PgConnectOptions, PgPool, PgPoolOptions};
use std::any::Any;
use std::str::FromStr;
use std::sync::Arc;
use std::time::Duration;

/// Connections kept open at most. Writers and readers share them; beyond this many, units of
/// work queue for a connection instead of crowding the server (whose own default limit is 100).
const MAX_CONNECTIONS: u32 = 10;

/// How long a request waits for a free connection before reporting the database unavailable.
const ACQUIRE_TIMEOUT: Duration = Duration::from_secs(30);

/// A pooled connection idle at least this long is pinged before it is handed out.
///
/// Pinging every connection on every acquire (sqlx's default) costs a round trip to the server
/// per acquire: two of the eleven a created ticket took. A connection in steady use has just
/// proved itself alive; one that sat idle may have been cut by a server restart or a firewall
/// meanwhile, and a failed ping makes the pool open a fresh connection instead.
const PING_IDLE_AFTER: Duration = Duration::from_secs(1);

/// The PostgreSQL implementation of [`Store`].
pub struct PostgresStore {
    pool: PgPool,
    catalog: Arc<CatalogCache>,
}

impl PostgresStore {
    /// Connects to the database at `url` (`postgres://user:password@host:5432/dbname`) and
    /// applies pending migrations. The database itself must exist.
    pub async fn open(url: &str) -> Result<Self, StoreError> {
        let options =
            PgConnectOptions::from_str(url).map_err(|e| StoreError::Unavailable(Box::new(e)))?;
        // One direct connection first: an unreachable server fails at once (the pool would keep
        // retrying until its acquire timeout), which `helpline pipe` needs to tell the mail
        // server "try again later" promptly.
        let probe = options
            .connect()
            .await
            .map_err(|e| StoreError::Unavailable(Box::new(e)))?;
        let _ = probe.close().await;
        let pool = PgPoolOptions::new()
            .max_connections(MAX_CONNECTIONS)
            .min_connections(0)
            .acquire_timeout(ACQUIRE_TIMEOUT)
            .test_before_acquire(false)
            .before_acquire(|conn, meta| {
                Box::pin(async move {
                    if meta.idle_for >= PING_IDLE_AFTER {
                        conn.ping().await?;
                    }
                    Ok(true)
                })
            })
            .connect_with(options)
            .await
            .map_err(|e| StoreError::Unavailable(Box::new(e)))?;
        // The migrator takes an advisory lock, so two servers starting at once do not both
        // apply the same migration.
        MIGRATOR
            .run(&pool)
            .await
            .map_err(|e| StoreError::Migration(Box::new(e)))?;
        Ok(Self {
            pool,
            catalog: Arc::default(),
        })
    }

    /// Closes every connection, waiting for the ones in use to be returned.
    pub async fn close(self) {
        self.pool.close().await;
    }
}

/// The embedded migrations.
pub static MIGRATOR: sqlx::migrate::Migrator = sqlx::migrate!("./migrations");

#[async_trait]
impl Store for PostgresStore {
    fn backend(&self) -> &'static str {
        "postgres"
    }

    async fn ping(&self) -> Result<(), StoreError> {
        let mut conn = self.pool.acquire().await.map_err(convert::db)?;
        conn.ping().await.map_err(convert::db)
    }

    async fn reader(&self) -> Result<Box<dyn Reader + '_>, StoreError> {
        let conn = self.pool.acquire().await.map_err(convert::db)?;
        Ok(Box::new(Conn(CachingReader {
            conn,
            cache: Arc::clone(&self.catalog),
            seen_version: None,
        })))
    }

    async fn write_erased(&self, work: ErasedWork) -> Result<Box<dyn Any + Send>, Error> {
        let mut tx = self.pool.begin().await.map_err(convert::db)?;
        let outcome = {
            let mut conn = Conn(&mut *tx);
            work(&mut conn).await
        };
        match outcome {
            Ok(value) => {
                tx.commit().await.map_err(convert::db)?;
                Ok(value)
            }
            Err(error) => {
                // The work's own error says what went wrong; a failed rollback (the connection
                // broke, say) is only logged. The server discards the transaction either way,
                // and the pool tests a released connection, discarding it when broken.
                if let Err(rollback) = tx.rollback().await {
                    tracing::warn!(error = %rollback, "rolling back a failed unit of work failed");
                }
                Err(error)
            }
        }
    }
}
