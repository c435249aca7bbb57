//! The writer's copy of the five catalogues a ticket view names.
//!
//! A unit of work that renders a ticket (the answer to `POST /api/v1/tickets`) read the five
//! catalogue tables on the writer thread, where every statement delays the units queued behind
//! it. The committer keeps the catalogues it last read here, with the `catalog_version` row
//! (migration 0015) it read them at; a unit then reads only that row, and the tables again when
//! it moved. Every change to a catalogue moves the row in the same transaction and draws a new
//! random stamp, so a copy is used only in a transaction that sees exactly the catalogues it
//! was read from — also after a unit that changed them was rolled back.

use helpline_core::store::CatalogLists;

/// The `catalog_version` row as a transaction saw it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct CatalogStamp {
    pub(crate) version: i64,
    pub(crate) stamp: Vec<u8>,
}

/// The catalogues as last read, with the row they were read at.
#[derive(Debug, Default)]
pub(crate) struct CatalogCopy {
    kept: Option<(CatalogStamp, CatalogLists)>,
}

impl CatalogCopy {
    /// The catalogues as of `stamp`, when that is what is kept.
    pub(crate) fn at(&self, stamp: &CatalogStamp) -> Option<&CatalogLists> {
        match &self.kept {
            Some((kept, lists)) if kept == stamp => Some(lists),
            _ => None,
        }
    }

    /// Keeps `lists`, read at `stamp`, in place of what was kept, and lends them back.
    pub(crate) fn keep(&mut self, stamp: CatalogStamp, lists: CatalogLists) -> &CatalogLists {
        &self.kept.insert((stamp, lists)).1
    }
}
