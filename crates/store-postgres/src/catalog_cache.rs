//! The five catalogues a ticket view names, kept in memory between requests.
//!
//! Reading them was one round trip of the three a `GET` of a ticket took. Migration 0013 keeps a
//! counter that every change to one of their tables moves, in the same transaction; the ticket's
//! own statement reads it ([`Reader::ticket_with_customer`]), and [`Reader::catalog`] then
//! answers from memory when the copy here was read at that same counter, or reads them again
//! (with the counter, in one statement) when it moved. Several servers on one database each keep
//! a copy; none shows a catalogue older than the ticket it read with it.
//!
//! [`Reader::ticket_with_customer`]: helpline_core::store::Reader::ticket_with_customer
//! [`Reader::catalog`]: helpline_core::store::Reader::catalog

use helpline_core::store::CatalogLists;
use sqlx::Postgres;
use sqlx::pool::PoolConnection;
use sqlx::postgres::PgConnection;
use std::ops::{Deref, DerefMut};
use std::sync::{Arc, Mutex, PoisonError};

/// The last catalogues read, with the counter they were read at: `<number>:<stamp>` as the
/// statements read it, the stamp drawn anew at every change (a database rewound to an earlier
/// point counts the same numbers again).
#[derive(Default)]
pub(crate) struct CatalogCache {
    copy: Mutex<Option<(String, CatalogLists)>>,
}

impl CatalogCache {
    /// The catalogues as of `version`, when that is what is kept.
    pub(crate) fn at(&self, version: &str) -> Option<CatalogLists> {
        match &*self.copy.lock().unwrap_or_else(PoisonError::into_inner) {
            Some((kept, lists)) if kept == version => Some(lists.clone()),
            _ => None,
        }
    }

    /// Keeps `lists`, read at `version`, in place of what was kept. (Two readers racing may
    /// leave the older of their two copies: the next reader then finds it out of date and reads
    /// the catalogues again.)
    pub(crate) fn keep(&self, version: &str, lists: &CatalogLists) {
        let mut copy = self.copy.lock().unwrap_or_else(PoisonError::into_inner);
        if copy.as_ref().is_none_or(|(kept, _)| kept != version) {
            *copy = Some((version.to_owned(), lists.clone()));
        }
    }
}

/// A pooled connection handed to one reader, with the shared catalogue copy and the counter that
/// reader's last ticket statement saw.
pub(crate) struct CachingReader {
    pub(crate) conn: PoolConnection<Postgres>,
    pub(crate) cache: Arc<CatalogCache>,
    /// Set by a ticket statement and taken by the next catalogue read: it vouches for the
    /// copy only right after the ticket it came with.
    pub(crate) seen_version: Option<String>,
}

impl Deref for CachingReader {
    type Target = PgConnection;

    fn deref(&self) -> &PgConnection {
        &self.conn
    }
}

impl DerefMut for CachingReader {
    fn deref_mut(&mut self) -> &mut PgConnection {
        &mut self.conn
    }
}

/// What a connection offers for the catalogue copy: a pooled reader has it; a unit of work's
/// transaction reads the catalogues itself (it may have changed them).
pub(crate) trait CatalogCopy {
    /// The shared copy and the counter the last ticket statement saw, when this connection
    /// uses the copy.
    fn catalog_copy(&mut self) -> Option<(&CatalogCache, &mut Option<String>)>;
}

impl CatalogCopy for CachingReader {
    fn catalog_copy(&mut self) -> Option<(&CatalogCache, &mut Option<String>)> {
        Some((&self.cache, &mut self.seen_version))
    }
}

impl CatalogCopy for &mut PgConnection {
    fn catalog_copy(&mut self) -> Option<(&CatalogCache, &mut Option<String>)> {
        None
    }
}
