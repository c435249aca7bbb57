//! Opening the store a database URL names.

use anyhow::{Context, Result, bail};
use helpline_core::store::Store;
use std::sync::Arc;

/// Opens (and migrates) the database at `url`, choosing the backend by the URL's scheme.
pub async fn open(url: &str) -> Result<Arc<dyn Store>> {
    if url.starts_with("sqlite:") {
        let store = helpline_store_sqlite::SqliteStore::open(url)
            .await
            .with_context(|| format!("cannot open SQLite database {url}"))?;
        Ok(Arc::new(store))
    } else if url.starts_with("postgres://") || url.starts_with("postgresql://") {
        let store = helpline_store_postgres::PostgresStore::open(url)
            .await
            .with_context(|| format!("cannot open PostgreSQL database {}", redact(url)))?;
        Ok(Arc::new(store))
    } else {
        bail!(
            "database URL '{}' must start with sqlite:// or postgres://",
            redact(url)
        )
    }
}

pub use helpline_core::redact_url as redact;

#[cfg(test)]
mod tests {
    use super::redact;

    #[test]
    fn passwords_are_hidden() {
        assert_eq!(
            redact("postgres://app:s3cret@db.example.com/helpline"),
            "postgres://app:****@db.example.com/helpline"
        );
        assert_eq!(redact("sqlite://helpline.db"), "sqlite://helpline.db");
    }
}
