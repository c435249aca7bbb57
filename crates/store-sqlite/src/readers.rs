//! The read-only connections: a small pool, opened on first need and kept.

use crate::catalog_copy::CatalogCopy;
use crate::group_commit::SearchIndexer;
use helpline_core::StoreError;
use rusqlite::Connection;
use std::ops::{Deref, DerefMut};
use std::sync::Mutex;
use tokio::sync::{Semaphore, SemaphorePermit};

/// Opens one more read-only connection.
type Opener = Box<dyn Fn() -> Result<Connection, StoreError> + Send + Sync>;

/// At most `size` read-only connections, handed out one per reader.
pub(crate) struct ReaderPool {
    idle: Mutex<Vec<Connection>>,
    permits: Semaphore,
    open: Opener,
    indexer: SearchIndexer,
}

impl ReaderPool {
    /// A pool of up to `size` connections made by `open`; its readers have the entries queued
    /// for full-text indexing indexed through `indexer` before they search.
    pub(crate) fn new(
        size: usize,
        open: impl Fn() -> Result<Connection, StoreError> + Send + Sync + 'static,
        indexer: SearchIndexer,
    ) -> Self {
        Self {
            idle: Mutex::new(Vec::with_capacity(size)),
            permits: Semaphore::new(size),
            open: Box::new(open),
            indexer,
        }
    }

    /// A connection for the caller alone; waits while every connection is in use.
    pub(crate) async fn acquire(&self) -> Result<PooledReader<'_>, StoreError> {
        let permit = self
            .permits
            .acquire()
            .await
            .map_err(|e| StoreError::Unavailable(Box::new(e)))?;
        let idle = self
            .idle
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
            .pop();
        let conn = match idle {
            Some(conn) => conn,
            None => (self.open)()?,
        };
        Ok(PooledReader {
            conn: Some(conn),
            pool: self,
            _permit: permit,
        })
    }
}

/// A connection borrowed from the pool; it goes back when dropped.
pub(crate) struct PooledReader<'p> {
    conn: Option<Connection>,
    pool: &'p ReaderPool,
    _permit: SemaphorePermit<'p>,
}

/// What differs between a pooled reader and the writer inside a unit of work, beyond their
/// statements.
pub(crate) trait ConnectionRole {
    /// How the entries queued for full-text indexing get indexed before a search: the
    /// committer's handle for a pooled reader; `None` for the writer's connection, which
    /// indexes them itself, inside its transaction.
    fn search_indexer(&self) -> Option<&SearchIndexer>;

    /// The committer's copy of the catalogues, for the writer; `None` for a pooled reader,
    /// which reads them (cheaply, and beside the writer rather than in its way).
    fn catalog_copy(&mut self) -> Option<&mut CatalogCopy> {
        None
    }
}

impl ConnectionRole for PooledReader<'_> {
    fn search_indexer(&self) -> Option<&SearchIndexer> {
        Some(&self.pool.indexer)
    }
}

impl Deref for PooledReader<'_> {
    type Target = Connection;

    fn deref(&self) -> &Connection {
        self.conn
            .as_ref()
            .expect("a pooled connection is present until dropped")
    }
}

impl DerefMut for PooledReader<'_> {
    fn deref_mut(&mut self) -> &mut Connection {
        self.conn
            .as_mut()
            .expect("a pooled connection is present until dropped")
    }
}

impl Drop for PooledReader<'_> {
    fn drop(&mut self) {
        if let Some(conn) = self.conn.take() {
            // A connection left inside a transaction (a reader dropped mid-statement cannot, but
            // be safe) is not reused.
            if conn.is_autocommit() {
                self.pool
                    .idle
                    .lock()
                    .unwrap_or_else(|poisoned| poisoned.into_inner())
                    .push(conn);
            }
        }
    }
}
