//! The shared conformance suite on SQLite, one fresh database file per case.

use helpline_store_conformance::{TestStore, conformance_suite};
use helpline_store_sqlite::SqliteStore;

async fn fresh_store() -> Option<TestStore> {
    let dir = tempfile::tempdir().expect("temporary directory");
    let url = format!("sqlite://{}", dir.path().join("helpline.db").display());
    let store = SqliteStore::open(&url).await.expect("open SQLite store");
    Some(TestStore {
        store: Box::new(store),
        cleanup: Some(Box::pin(async move { drop(dir) })),
    })
}

conformance_suite!(fresh_store);
