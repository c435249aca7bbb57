//! Scratch databases for tests (this crate's and the application's): one fresh database per
//! test on the server `HELPLINE_TEST_POSTGRES_URL` names, dropped afterwards.

use sqlx::{AssertSqlSafe, Connection, Executor, PgConnection};
use std::hash::{BuildHasher, RandomState};
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::SystemTime;

/// The variable naming an administrative connection (allowed to create and drop databases).
pub const URL_VARIABLE: &str = "HELPLINE_TEST_POSTGRES_URL";

/// A per-case database, dropped by [`drop_now`](Self::drop_now) after the case, or on drop when
/// the case panicked first, so failing runs do not leave databases behind on a developer's server.
pub struct ScratchDatabase {
    admin_url: String,
    name: String,
    url: String,
    dropped: bool,
}

impl ScratchDatabase {
    /// A new empty database on the server `HELPLINE_TEST_POSTGRES_URL` names, or `None` when
    /// the variable is unset outside CI (the caller skips). On CI a missing server is a failure.
    pub async fn from_env() -> Option<Self> {
        let Some(admin_url) = std::env::var(URL_VARIABLE)
            .ok()
            .filter(|url| !url.is_empty())
        else {
            let ci = std::env::var("CI").is_ok_and(|v| v == "true" || v == "1");
            assert!(
                !ci,
                "{URL_VARIABLE} is not set, and CI must run the PostgreSQL tests: point it at a \
                 PostgreSQL server, e.g. postgres://postgres@127.0.0.1:5432/postgres"
            );
            eprintln!("skipping a PostgreSQL test: {URL_VARIABLE} is not set");
            return None;
        };
        Some(Self::create(admin_url).await)
    }

    /// A new empty database on the server behind `admin_url`.
    pub async fn create(admin_url: String) -> Self {
        let name = database_name();
        admin(&admin_url, &format!("create database {name}"))
            .await
            .unwrap_or_else(|e| panic!("create a test database over {URL_VARIABLE}: {e}"));
        let url = with_database(&admin_url, &name);
        Self {
            admin_url,
            name,
            url,
            dropped: false,
        }
    }

    /// The URL of the new database.
    pub fn url(&self) -> &str {
        &self.url
    }

    /// Drops the database. Drop every store on it first; `with (force)` ends any
    /// connection its pool has not finished closing yet.
    pub async fn drop_database(mut self) {
        let statement = self.drop_statement();
        admin(&self.admin_url, &statement)
            .await
            .unwrap_or_else(|e| panic!("{statement}: {e}"));
        self.dropped = true;
    }

    fn drop_statement(&self) -> String {
        format!("drop database if exists {} with (force)", self.name)
    }
}

impl Drop for ScratchDatabase {
    fn drop(&mut self) {
        if self.dropped {
            return;
        }
        // Reached while a panic unwinds through the runtime: drop the database from a thread
        // with its own runtime, and only report a failure (panicking here would abort).
        let (url, statement) = (self.admin_url.clone(), self.drop_statement());
        let outcome = std::thread::spawn(move || {
            tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .map_err(|e| e.to_string())?
                .block_on(admin(&url, &statement))
                .map_err(|e| e.to_string())
        })
        .join();
        if !matches!(outcome, Ok(Ok(()))) {
            eprintln!("could not drop test database {}: {outcome:?}", self.name);
        }
    }
}

/// Runs one statement over a fresh admin connection. `create/drop database` take no bind
/// parameters, hence the formatted SQL; the names interpolated are generated here.
async fn admin(url: &str, statement: &str) -> Result<(), sqlx::Error> {
    let mut conn = PgConnection::connect(url).await?;
    conn.execute(AssertSqlSafe(statement)).await?;
    conn.close().await
}

/// A database name no other case, test process or earlier run is using.
fn database_name() -> String {
    static CASES: AtomicU64 = AtomicU64::new(0);
    let seed = (
        SystemTime::now(),
        std::process::id(),
        CASES.fetch_add(1, Ordering::Relaxed),
    );
    format!("helpline_test_{:016x}", RandomState::new().hash_one(seed))
}

/// `url` with its database (the path) replaced by `database`, keeping any query parameters.
fn with_database(url: &str, database: &str) -> String {
    let (base, params) = match url.split_once('?') {
        Some((base, params)) => (base, Some(params)),
        None => (url, None),
    };
    let authority = base.find("://").map_or(0, |i| i + 3);
    let server = match base[authority..].find('/') {
        Some(slash) => &base[..authority + slash],
        None => base,
    };
    match params {
        Some(params) => format!("{server}/{database}?{params}"),
        None => format!("{server}/{database}"),
    }
}
