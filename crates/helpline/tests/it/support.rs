//! The test harness: an app on a free port, a per-test database, a raw HTTP client.

use helpline_api::{ApiSettings, AppState};
use helpline_core::apikey::{KeySecret, NewApiKey, Scope};
use helpline_core::event::Actor;
use helpline_core::service::DeskSettings;
use helpline_core::service::keys::create_api_key;
use helpline_core::store::Store;
use helpline_store_postgres::testing::ScratchDatabase;
use std::net::SocketAddr;
use std::sync::Arc;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio::sync::oneshot;

/// Which store a test runs on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Backend {
    Sqlite,
    Postgres,
}

/// Generates one test per store for each listed case (`async fn case(backend: Backend)`).
#[macro_export]
macro_rules! on_both_stores {
    ($($case:ident),* $(,)?) => {
        mod sqlite {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $case() {
                    super::$case($crate::support::Backend::Sqlite).await;
                }
            )*
        }
        mod postgres {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $case() {
                    super::$case($crate::support::Backend::Postgres).await;
                }
            )*
        }
    };
}

/// A database for one test, removed afterwards.
pub enum TestDatabase {
    Sqlite(tempfile::TempDir),
    Postgres(ScratchDatabase),
}

impl TestDatabase {
    /// A fresh database URL, or `None` to skip (PostgreSQL not configured outside CI).
    pub async fn create(backend: Backend) -> Option<(String, Self)> {
        match backend {
            Backend::Sqlite => {
                let dir = tempfile::tempdir().expect("temporary directory");
                let url = format!("sqlite://{}", dir.path().join("helpline.db").display());
                Some((url, Self::Sqlite(dir)))
            }
            Backend::Postgres => {
                let scratch = ScratchDatabase::from_env().await?;
                Some((scratch.url().to_owned(), Self::Postgres(scratch)))
            }
        }
    }

    /// Removes the database.
    pub async fn remove(self) {
        match self {
            Self::Sqlite(dir) => drop(dir),
            Self::Postgres(scratch) => scratch.drop_database().await,
        }
    }
}

/// A running app.
pub struct TestApp {
    pub address: SocketAddr,
    pub store: Arc<dyn Store>,
    /// A key bound to 127.0.0.1 with `tickets:create` and `cron:run`.
    pub key: String,
    /// The mail intake settings the app runs with.
    pub intake: helpline_mail::pipeline::IntakeSettings,
    shutdown: Option<oneshot::Sender<()>>,
    server: Option<tokio::task::JoinHandle<()>>,
    database: Option<TestDatabase>,
}

impl TestApp {
    /// An app with default settings.
    pub async fn spawn(backend: Backend) -> Option<Self> {
        Self::spawn_with(backend, |_, _| {}).await
    }

    /// An app whose settings `adjust` changes first.
    pub async fn spawn_with(
        backend: Backend,
        adjust: impl FnOnce(&mut ApiSettings, &mut DeskSettings),
    ) -> Option<Self> {
        let (database_url, database) = TestDatabase::create(backend).await?;
        let store: Arc<dyn Store> = open_store(&database_url).await;
        let mut api = ApiSettings::default();
        let mut desk = DeskSettings::default();
        adjust(&mut api, &mut desk);
        let listener = helpline_api::bind("127.0.0.1:0".parse().expect("address")).expect("bind");
        let address = listener.local_addr().expect("address");
        let intake = helpline_mail::pipeline::IntakeSettings::load(
            &*store,
            vec!["support@helpline.test".into()],
        )
        .await
        .expect("intake settings");
        let state = AppState::new(Arc::clone(&store), desk, api, intake.clone());
        let (shutdown, stop) = oneshot::channel::<()>();
        let server = tokio::spawn(async move {
            helpline_api::serve(listener, state, async {
                let _ = stop.await;
            })
            .await
            .expect("server runs");
        });
        let mut app = Self {
            address,
            store,
            key: String::new(),
            intake,
            shutdown: Some(shutdown),
            server: Some(server),
            database: Some(database),
        };
        app.key = app
            .create_key(&[Scope::TicketsCreate, Scope::CronRun], &["127.0.0.1"])
            .await;
        Some(app)
    }

    /// Creates a key and returns its secret.
    pub async fn create_key(&self, scopes: &[Scope], ips: &[&str]) -> String {
        let secret = KeySecret::generate();
        create_api_key(
            &*self.store,
            NewApiKey {
                secret: secret.clone(),
                ip_rules: ips.iter().map(|ip| ip.parse().expect("rule")).collect(),
                scopes: scopes.to_vec(),
                note: None,
            },
            Actor::system(),
        )
        .await
        .expect("key created");
        secret.expose().to_owned()
    }

    /// Sends `POST path` with the app's key.
    pub async fn post(&self, path: &str, body: &[u8]) -> RawResponse {
        let key = self.key.clone();
        self.request("POST", path, &[("X-API-Key", &key)], body)
            .await
    }

    /// Sends one request over a new connection.
    pub async fn request(
        &self,
        method: &str,
        path: &str,
        headers: &[(&str, &str)],
        body: &[u8],
    ) -> RawResponse {
        raw_request(self.address, method, path, headers, body).await
    }

    /// Stops the server and removes the database.
    pub async fn finish(mut self) {
        if let Some(shutdown) = self.shutdown.take() {
            let _ = shutdown.send(());
        }
        if let Some(server) = self.server.take() {
            let _ = server.await;
        }
        drop(self.store);
        if let Some(database) = self.database.take() {
            database.remove().await;
        }
    }
}

/// A v1 answer.
#[derive(Debug)]
pub struct Reply {
    pub status: u16,
    pub json: serde_json::Value,
    pub raw: RawResponse,
}

impl TestApp {
    /// Sends a v1 request with `key` as a Bearer token and checks the answer against the OpenAPI
    /// document.
    pub async fn v1(
        &self,
        method: &str,
        path: &str,
        key: &str,
        body: Option<serde_json::Value>,
    ) -> Reply {
        let bearer = format!("Bearer {key}");
        let body = body.map(|b| b.to_string()).unwrap_or_default();
        self.v1_raw(
            method,
            path,
            &[
                ("Authorization", &bearer),
                ("Content-Type", "application/json"),
            ],
            body.as_bytes(),
        )
        .await
    }

    /// Sends a v1 request exactly as given and checks the answer against the OpenAPI document.
    pub async fn v1_raw(
        &self,
        method: &str,
        path: &str,
        headers: &[(&str, &str)],
        body: &[u8],
    ) -> Reply {
        let raw = self.request(method, path, headers, body).await;
        crate::spec::check(
            method,
            path,
            raw.status,
            raw.header("content-type"),
            &raw.body,
        );
        let json = if raw.body.is_empty() {
            serde_json::Value::Null
        } else {
            serde_json::from_slice(&raw.body).unwrap_or(serde_json::Value::Null)
        };
        Reply {
            status: raw.status,
            json,
            raw,
        }
    }

    /// A key with `scopes` from 127.0.0.1.
    pub async fn key_with(&self, scopes: &[Scope]) -> String {
        self.create_key(scopes, &["127.0.0.1"]).await
    }
}

/// Opens the store behind a URL (as the binary does).
pub async fn open_store(url: &str) -> Arc<dyn Store> {
    if url.starts_with("sqlite:") {
        Arc::new(
            helpline_store_sqlite::SqliteStore::open(url)
                .await
                .expect("open SQLite"),
        )
    } else {
        Arc::new(
            helpline_store_postgres::PostgresStore::open(url)
                .await
                .expect("open PostgreSQL"),
        )
    }
}

/// A response as it came over the wire.
#[derive(Debug)]
pub struct RawResponse {
    /// The status line, e.g. `HTTP/1.1 201 Created`.
    pub status_line: String,
    pub status: u16,
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
}

impl RawResponse {
    /// The body as text.
    pub fn text(&self) -> String {
        String::from_utf8_lossy(&self.body).into_owned()
    }

    /// A header's value (case-insensitive name).
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }
}

/// Writes exactly the given request (plus Host, Content-Length and Connection: close) and reads
/// the whole answer, so tests see status lines and headers as a client would.
pub async fn raw_request(
    address: SocketAddr,
    method: &str,
    path: &str,
    headers: &[(&str, &str)],
    body: &[u8],
) -> RawResponse {
    let mut stream = TcpStream::connect(address).await.expect("connect");
    let mut head = format!(
        "{method} {path} HTTP/1.1\r\nHost: {address}\r\nContent-Length: {}\r\nConnection: close\r\n",
        body.len()
    );
    for (name, value) in headers {
        head.push_str(&format!("{name}: {value}\r\n"));
    }
    head.push_str("\r\n");
    stream.write_all(head.as_bytes()).await.expect("write head");
    // A server may answer (e.g. 401, 413) before reading the body and close; that is fine.
    let _ = stream.write_all(body).await;
    let mut raw = Vec::new();
    if let Err(error) = stream.read_to_end(&mut raw).await {
        eprintln!(
            "reading the answer from {address} failed after {} bytes: {error}",
            raw.len()
        );
    }
    parse_response(&raw)
}

fn parse_response(raw: &[u8]) -> RawResponse {
    let split = raw
        .windows(4)
        .position(|w| w == b"\r\n\r\n")
        .unwrap_or_else(|| {
            panic!(
                "no complete response head in {:?}",
                String::from_utf8_lossy(raw)
            )
        });
    let head = String::from_utf8_lossy(&raw[..split]).into_owned();
    let mut lines = head.split("\r\n");
    let status_line = lines.next().unwrap_or_default().to_owned();
    let status = status_line
        .split(' ')
        .nth(1)
        .and_then(|code| code.parse().ok())
        .unwrap_or_else(|| panic!("bad status line {status_line:?}"));
    let headers = lines
        .filter_map(|line| line.split_once(':'))
        .map(|(n, v)| (n.trim().to_owned(), v.trim().to_owned()))
        .collect();
    RawResponse {
        status_line,
        status,
        headers,
        body: raw[split + 4..].to_vec(),
    }
}

/// True when no ticket, entry, customer, file, attachment, collaborator or idempotency key
/// exists: nothing of a refused request was kept.
pub async fn nothing_written(store: &dyn Store) -> bool {
    let counts = store
        .reader()
        .await
        .expect("reader")
        .row_counts()
        .await
        .expect("counts");
    counts.tickets == 0
        && counts.entries == 0
        && counts.users == 0
        && counts.files == 0
        && counts.attachments == 0
        && counts.collaborators == 0
        && counts.idempotency_keys == 0
}
