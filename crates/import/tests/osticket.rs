//! The osTicket importer on a real osTicket 1.18.1 database (`../shared/fixtures/osticket`),
//! loaded into a MariaDB database of its own for each test, imported into SQLite (a temporary
//! file) and PostgreSQL (a scratch database). Every expected count is computed from the source
//! with SQL.
//!
//! `HELPLINE_TEST_MYSQL_URL` names the MariaDB/MySQL server (e.g. `mysql://root@127.0.0.1:3306`,
//! an account that may create and drop databases); `HELPLINE_TEST_POSTGRES_URL` the PostgreSQL
//! one. Under `CI=true` a missing server fails the test; otherwise the test says why it skips.

use helpline_core::apikey::{KeySecret, Scope};
use helpline_core::attachment::sha256_hex;
use helpline_core::catalog::StatusState;
use helpline_core::inbound::{InboundStatus, NewInbound};
use helpline_core::legacy::{LegacyKind, OSTICKET_SECRET_SALT_SETTING};
use helpline_core::service::DeskSettings;
use helpline_core::store::{RowCounts, Store};
use helpline_core::thread::{Author, EntryKind};
use helpline_core::ticket::TicketNumber;
use helpline_import::NoProgress;
use helpline_import::osticket::{self, ImportError, Options};
use helpline_mail::osticket_id::{OsticketInstallation, RecipientClass};
use helpline_mail::pipeline::{self, IntakeSettings};
use helpline_store_postgres::testing::ScratchDatabase;
use sqlx::mysql::MySqlConnection;
use sqlx::{AssertSqlSafe, Connection, Executor, Row};
use std::hash::{BuildHasher, RandomState};
use std::path::PathBuf;
use std::process::Command;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Instant;

const MYSQL_URL_VARIABLE: &str = "HELPLINE_TEST_MYSQL_URL";

fn is_ci() -> bool {
    std::env::var("CI").is_ok_and(|v| v == "true" || v == "1")
}

/// The MariaDB server's URL (without a database), or `None` to skip.
fn mysql_server() -> Option<String> {
    match std::env::var(MYSQL_URL_VARIABLE) {
        // The server only: the tests name their own databases.
        Ok(url) if !url.is_empty() => Some(match url.split_once("://") {
            Some((scheme, rest)) => {
                format!(
                    "{scheme}://{}",
                    rest.split(['/', '?']).next().unwrap_or_default()
                )
            }
            None => url,
        }),
        _ => {
            assert!(
                !is_ci(),
                "{MYSQL_URL_VARIABLE} is not set, and CI must run the osTicket import tests: \
                 point it at a MariaDB or MySQL server, e.g. mysql://root@127.0.0.1:3306"
            );
            eprintln!("skipping an osTicket import test: {MYSQL_URL_VARIABLE} is not set");
            None
        }
    }
}

fn fixture() -> PathBuf {
    let shared = std::env::var("HELPLINE_SHARED_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|_| PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../../shared"));
    let path = shared.join("fixtures/osticket/osticket-v1.18.1.sql.gz");
    assert!(
        path.exists(),
        "the osTicket fixture {} is missing: the shared/ folder must sit beside the repository \
         (or set HELPLINE_SHARED_DIR)",
        path.display()
    );
    path
}

/// A MariaDB database of this test's own, dropped at the end (or when the test panics).
struct SourceDb {
    server: String,
    name: String,
    dropped: bool,
}

impl SourceDb {
    /// An empty database.
    async fn empty(server: &str) -> Self {
        static CASES: AtomicU64 = AtomicU64::new(0);
        let seed = (
            std::time::SystemTime::now(),
            std::process::id(),
            CASES.fetch_add(1, Ordering::Relaxed),
        );
        let name = format!("helpline_ost_{:016x}", RandomState::new().hash_one(seed));
        let mut conn = MySqlConnection::connect(server)
            .await
            .unwrap_or_else(|e| panic!("connect to {MYSQL_URL_VARIABLE}: {e}"));
        conn.execute(AssertSqlSafe(format!(
            "create database `{name}` character set utf8mb4"
        )))
        .await
        .expect("create the source database");
        conn.close().await.expect("close");
        Self {
            server: server.to_owned(),
            name,
            dropped: false,
        }
    }

    /// A database holding the osTicket fixture, loaded with the `mariadb` client.
    async fn fixture(server: &str) -> Self {
        let db = Self::empty(server).await;
        let started = Instant::now();
        let url = url_parts(server);
        let client = if Command::new("mariadb").arg("--version").output().is_ok() {
            "mariadb"
        } else {
            "mysql"
        };
        let mut command = Command::new("sh");
        command
            .arg("-c")
            .arg(format!(
                "zcat \"$1\" | {client} -h \"$2\" -P \"$3\" -u \"$4\" \"$5\""
            ))
            .arg("sh")
            .arg(fixture())
            .arg(&url.host)
            .arg(url.port.to_string())
            .arg(&url.user)
            .arg(&db.name);
        if let Some(password) = &url.password {
            command.env("MYSQL_PWD", password);
        }
        let output = command.output().expect("run zcat | mariadb");
        assert!(
            output.status.success(),
            "loading the fixture failed: {}",
            String::from_utf8_lossy(&output.stderr)
        );
        eprintln!(
            "osTicket fixture loaded into {} in {:.1} s",
            db.name,
            started.elapsed().as_secs_f64()
        );
        db
    }

    fn url(&self) -> String {
        format!("{}/{}", self.server, self.name)
    }

    async fn connect(&self) -> MySqlConnection {
        MySqlConnection::connect(&self.url())
            .await
            .expect("connect to the source database")
    }

    async fn drop_now(mut self) {
        let mut conn = MySqlConnection::connect(&self.server)
            .await
            .expect("connect to drop");
        conn.execute(AssertSqlSafe(format!(
            "drop database if exists `{}`",
            self.name
        )))
        .await
        .expect("drop the source database");
        self.dropped = true;
    }
}

impl Drop for SourceDb {
    fn drop(&mut self) {
        if self.dropped {
            return;
        }
        let (server, name) = (self.server.clone(), self.name.clone());
        let _ = std::thread::spawn(move || {
            let runtime = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .ok()?;
            runtime.block_on(async {
                let mut conn = MySqlConnection::connect(&server).await.ok()?;
                conn.execute(AssertSqlSafe(format!("drop database if exists `{name}`")))
                    .await
                    .ok()
            })
        })
        .join();
    }
}

struct UrlParts {
    host: String,
    port: u16,
    user: String,
    password: Option<String>,
}

/// mysql://USER[:PASS]@HOST[:PORT] (enough for the test server's URL).
fn url_parts(url: &str) -> UrlParts {
    let rest = url.split_once("://").map_or(url, |(_, rest)| rest);
    let rest = rest.split('/').next().unwrap_or_default();
    let (credentials, host) = rest.rsplit_once('@').unwrap_or(("root", rest));
    let (user, password) = match credentials.split_once(':') {
        Some((user, password)) => (user.to_owned(), Some(password.to_owned())),
        None => (credentials.to_owned(), None),
    };
    let (host, port) = match host.rsplit_once(':') {
        Some((host, port)) => (host.to_owned(), port.parse().unwrap_or(3306)),
        None => (host.to_owned(), 3306),
    };
    UrlParts {
        host,
        port,
        user,
        password,
    }
}

async fn scalar(conn: &mut MySqlConnection, sql: &str) -> i64 {
    sqlx::query_scalar::<_, i64>(AssertSqlSafe(format!("select cast(({sql}) as signed)")))
        .fetch_one(conn)
        .await
        .unwrap_or_else(|e| panic!("{sql}: {e}"))
}

/// A Helpline database for one test.
enum Target {
    Sqlite(tempfile::TempDir),
    Postgres(ScratchDatabase),
}

async fn sqlite_target() -> (Arc<dyn Store>, Target) {
    let dir = tempfile::tempdir().expect("temporary directory");
    let url = format!("sqlite://{}", dir.path().join("helpline.db").display());
    let store = helpline_store_sqlite::SqliteStore::open(&url)
        .await
        .expect("open SQLite");
    (Arc::new(store), Target::Sqlite(dir))
}

async fn postgres_target() -> Option<(Arc<dyn Store>, Target)> {
    let scratch = ScratchDatabase::from_env().await?;
    let store = helpline_store_postgres::PostgresStore::open(scratch.url())
        .await
        .expect("open PostgreSQL");
    Some((Arc::new(store), Target::Postgres(scratch)))
}

impl Target {
    async fn remove(self, store: Arc<dyn Store>) {
        drop(store);
        match self {
            Self::Sqlite(dir) => drop(dir),
            Self::Postgres(scratch) => scratch.drop_database().await,
        }
    }
}

fn options() -> Options {
    Options {
        secret_salt: Some("kx9-test-secret-salt".into()),
        ..Options::default()
    }
}

async fn counts(store: &dyn Store) -> RowCounts {
    store
        .reader()
        .await
        .expect("reader")
        .row_counts()
        .await
        .expect("row counts")
}

async fn mapped(store: &dyn Store, kind: LegacyKind) -> usize {
    store
        .reader()
        .await
        .expect("reader")
        .legacy_ids(kind)
        .await
        .expect("legacy ids")
        .len()
}

async fn target_of(store: &dyn Store, kind: LegacyKind, source_id: i64) -> Option<i64> {
    store
        .reader()
        .await
        .expect("reader")
        .legacy_id(kind, source_id)
        .await
        .expect("legacy id")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_fixture_imports_into_sqlite() {
    let Some(server) = mysql_server() else { return };
    let source = SourceDb::fixture(&server).await;
    let (store, target) = sqlite_target().await;
    full_import(&source, &*store, "SQLite").await;
    target.remove(store).await;
    source.drop_now().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_fixture_imports_into_postgres() {
    let Some(server) = mysql_server() else { return };
    let Some((store, target)) = postgres_target().await else {
        return;
    };
    let source = SourceDb::fixture(&server).await;
    full_import(&source, &*store, "PostgreSQL").await;
    target.remove(store).await;
    source.drop_now().await;
}

/// The whole fixture into one store: counts, spot checks, mail threading, re-runs.
async fn full_import(source: &SourceDb, store: &dyn Store, backend: &str) {
    let url = source.url();
    let started = Instant::now();
    let report = osticket::import(&url, "ost_", &options(), store, &NoProgress)
        .await
        .unwrap_or_else(|e| panic!("import into {backend}: {e}"));
    let took = started.elapsed().as_secs_f64();
    eprintln!("{report}");
    eprintln!(
        "{backend}: {} records in {took:.1} s ({:.0} records/s)",
        report.total_imported(),
        report.total_imported() as f64 / took
    );

    let mut src = source.connect().await;
    // Counts per kind, from the source's own tables.
    let expected = [
        (
            LegacyKind::Department,
            "select count(*) from ost_department",
        ),
        (LegacyKind::Topic, "select count(*) from ost_help_topic"),
        (LegacyKind::Status, "select count(*) from ost_ticket_status"),
        (
            LegacyKind::Priority,
            "select count(*) from ost_ticket_priority",
        ),
        (LegacyKind::Sla, "select count(*) from ost_sla"),
        (
            LegacyKind::Organization,
            "select count(*) from ost_organization",
        ),
        (LegacyKind::Staff, "select count(*) from ost_staff"),
        (LegacyKind::User, "select count(*) from ost_user"),
        (LegacyKind::Ticket, "select count(*) from ost_ticket"),
        (
            LegacyKind::Entry,
            "select count(*) from ost_thread_entry e join ost_thread t on t.id = e.thread_id \
             where t.object_type = 'T'",
        ),
        (
            LegacyKind::Collaborator,
            "select count(*) from ost_thread_collaborator c join ost_thread t \
             on t.id = c.thread_id where t.object_type = 'T'",
        ),
        (
            LegacyKind::Event,
            "select count(*) from ost_thread_event e join ost_thread t on t.id = e.thread_id \
             where t.object_type = 'T'",
        ),
        (LegacyKind::ApiKey, "select count(*) from ost_api_key"),
    ];
    for (kind, sql) in expected {
        let n = scalar(&mut src, sql).await;
        let row = report.kind(kind.as_str()).expect("report row");
        assert_eq!(row.read, n as u64, "{backend}: {} read", kind.as_str());
        assert!(
            row.skipped.is_empty(),
            "{backend}: {} skipped: {:?}",
            kind.as_str(),
            row.skipped
        );
        assert_eq!(
            mapped(store, kind).await,
            n as usize,
            "{backend}: {} mapped",
            kind.as_str()
        );
    }
    // The fixture README's figures.
    assert_eq!(report.kind("ticket").map(|k| k.read), Some(9_349));
    assert_eq!(report.kind("entry").map(|k| k.read), Some(9_354));
    assert_eq!(report.kind("user").map(|k| k.read), Some(416));

    // Duplicate users: no address row of their own, pointing at another user's.
    let duplicates = sqlx::query(
        "select cast(u.id as signed) id, cast(e.user_id as signed) owner from ost_user u \
         join ost_user_email e on e.id = u.default_email_id \
         where e.user_id <> u.id and not exists \
         (select 1 from ost_user_email x where x.user_id = u.id) order by u.id",
    )
    .fetch_all(&mut src)
    .await
    .expect("duplicate users");
    assert!(
        !duplicates.is_empty(),
        "the fixture has the duplicate-user quirk"
    );
    assert_eq!(report.duplicate_users.len(), duplicates.len(), "{backend}");
    for row in &duplicates {
        let (dup, owner): (i64, i64) = (row.get("id"), row.get("owner"));
        assert!(
            report
                .duplicate_users
                .iter()
                .any(|d| d.source_id == dup && d.same_as == owner),
            "{backend}: duplicate user {dup} of {owner} reported"
        );
        assert_eq!(
            target_of(store, LegacyKind::User, dup).await,
            target_of(store, LegacyKind::User, owner).await,
            "{backend}: duplicate {dup} maps onto {owner}'s customer"
        );
    }

    // The target's own rows (it was empty).
    let users = scalar(&mut src, "select count(*) from ost_user").await;
    let attachments = scalar(
        &mut src,
        "select count(*) from ost_attachment a join ost_thread_entry e on e.id = a.object_id \
         where a.type = 'H'",
    )
    .await;
    let rows = counts(store).await;
    assert_eq!(rows.tickets, 9_349, "{backend}");
    assert_eq!(rows.entries, 9_354, "{backend}");
    assert_eq!(rows.users, users - duplicates.len() as i64, "{backend}");
    assert_eq!(rows.attachments, attachments, "{backend}");
    assert_eq!(
        report.kind("attachment").map(|k| k.written),
        Some(attachments as u64)
    );

    let mut reader = store.reader().await.expect("reader");

    // Numbers and subjects: every 97th ticket, and the hand-made ones.
    let sample = sqlx::query(
        "select cast(t.ticket_id as signed) id, t.number, c.subject from ost_ticket t \
         join ost_ticket__cdata c on c.ticket_id = t.ticket_id \
         where t.ticket_id % 97 = 1 or t.ticket_id >= 9340 order by t.ticket_id",
    )
    .fetch_all(&mut src)
    .await
    .expect("ticket sample");
    assert!(sample.len() > 90);
    for row in &sample {
        let number: String = row.get("number");
        let subject: String = row.get("subject");
        let ticket = reader
            .ticket_by_number(&TicketNumber::parse(&number).expect("number"))
            .await
            .expect("read")
            .unwrap_or_else(|| panic!("{backend}: ticket {number} imported"));
        assert_eq!(
            ticket.subject.as_str(),
            subject.trim(),
            "{backend}: {number}"
        );
        assert_eq!(
            target_of(store, LegacyKind::Ticket, row.get("id")).await,
            Some(ticket.id.0)
        );
    }

    // The closed ticket with a thread of four, an attachment and a stored Message-ID.
    let number = TicketNumber::parse("541564").expect("number");
    let ticket = reader
        .ticket_by_number(&number)
        .await
        .expect("read")
        .expect("ticket 541564");
    assert_eq!(
        ticket.subject.as_str(),
        "Invoice question (with attachment)"
    );
    let status = reader
        .status(ticket.status_id)
        .await
        .expect("read")
        .expect("status");
    assert_eq!(status.name, "Closed");
    assert_eq!(status.state, StatusState::Closed);
    let closed = scalar(
        &mut src,
        "select unix_timestamp(closed) from ost_ticket where number = '541564'",
    )
    .await;
    assert_eq!(ticket.closed_at.map(|t| t.unix_timestamp()), Some(closed));
    let created = scalar(
        &mut src,
        "select unix_timestamp(created) from ost_ticket where number = '541564'",
    )
    .await;
    assert_eq!(ticket.created_at.unix_timestamp(), created);
    assert!(ticket.is_answered);
    let admin = reader
        .staff()
        .await
        .expect("staff")
        .into_iter()
        .find(|s| s.username == "ostadmin")
        .expect("ostadmin imported");
    assert_eq!(ticket.assignee_id, Some(admin.id));
    let entries = reader.entries(ticket.id).await.expect("entries");
    let kinds: Vec<EntryKind> = entries.iter().map(|e| e.kind).collect();
    assert_eq!(
        kinds,
        [
            EntryKind::Message,
            EntryKind::Message,
            EntryKind::Response,
            EntryKind::Note
        ],
        "{backend}: thread order"
    );
    assert_eq!(
        entries[0].mail.message_id.as_deref(),
        Some("<peer-sample-attach-0001@example.org>")
    );
    assert!(
        entries[0]
            .body
            .as_str()
            .contains("invoice 4711 looks wrong")
    );
    assert!(matches!(entries[0].author, Author::User(_)));
    assert_eq!(entries[2].author, Author::Staff(admin.id));
    assert_eq!(entries[2].display_name, "Ada Admin");
    assert_eq!(entries[3].title.as_deref(), Some("Billing check"));
    assert_eq!(entries[0].attachments.len(), 1);
    assert_eq!(entries[0].attachments[0].filename, "invoice-4711.csv");

    // Every attachment's bytes: the source's chunks, hashed, against what is stored.
    let files = sqlx::query(
        "select cast(a.object_id as signed) entry, cast(th.object_id as signed) ticket, \
         cast(f.id as signed) file, f.name from ost_attachment a \
         join ost_file f on f.id = a.file_id \
         join ost_thread_entry e on e.id = a.object_id \
         join ost_thread th on th.id = e.thread_id and th.object_type = 'T' \
         where a.type = 'H' order by a.id",
    )
    .fetch_all(&mut src)
    .await
    .expect("attachments");
    assert_eq!(files.len() as i64, attachments);
    for row in &files {
        let name: String = row.get("name");
        let mut content = Vec::new();
        for chunk in
            sqlx::query("select filedata from ost_file_chunk where file_id = ? order by chunk_id")
                .bind(row.get::<i64, _>("file"))
                .fetch_all(&mut src)
                .await
                .expect("chunks")
        {
            content.extend_from_slice(&chunk.get::<Vec<u8>, _>("filedata"));
        }
        let ticket = target_of(store, LegacyKind::Ticket, row.get("ticket"))
            .await
            .expect("ticket imported");
        let entry_id = target_of(store, LegacyKind::Entry, row.get("entry"))
            .await
            .expect("entry imported");
        let entry = reader
            .entries(helpline_core::ids::TicketId(ticket))
            .await
            .expect("entries")
            .into_iter()
            .find(|e| e.id.0 == entry_id)
            .expect("the entry on its ticket");
        let attachment = entry
            .attachments
            .iter()
            .find(|a| a.filename == name)
            .unwrap_or_else(|| panic!("{backend}: attachment {name} on its entry"));
        let (_, stored) = reader
            .attachment(attachment.id)
            .await
            .expect("read")
            .expect("attachment");
        assert_eq!(
            sha256_hex(&stored),
            sha256_hex(&content),
            "{backend}: {name}"
        );
        assert_eq!(attachment.sha256, sha256_hex(&content), "{backend}: {name}");
        assert_eq!(attachment.size, content.len() as i64);
    }

    // The high-priority sample ticket.
    let ticket = reader
        .ticket_by_number(&TicketNumber::parse("841923").expect("number"))
        .await
        .expect("read")
        .expect("ticket 841923");
    let priority = reader
        .priority(ticket.priority_id)
        .await
        .expect("read")
        .expect("priority");
    assert_eq!(priority.name, "High");

    // Staff: name, department, password hash kept.
    let passwd: String =
        sqlx::query_scalar("select passwd from ost_staff where username = 'ostadmin'")
            .fetch_one(&mut src)
            .await
            .expect("passwd");
    assert_eq!(admin.name, "Ada Admin");
    assert_eq!(admin.email.as_str(), "ada.admin@helpdesk.test");
    assert!(admin.active);
    assert_eq!(
        Some(admin.department_id.0),
        target_of(store, LegacyKind::Department, 1).await
    );
    assert_eq!(
        reader.staff_password_hash(admin.id).await.expect("hash"),
        Some(passwd)
    );

    // The API key keeps working: same secret, its address, its rights.
    let key: String = sqlx::query_scalar("select apikey from ost_api_key where id = 1")
        .fetch_one(&mut src)
        .await
        .expect("api key");
    let stored = reader
        .api_key_by_hash(&KeySecret::parse(&key).expect("key").hash())
        .await
        .expect("read")
        .expect("the osTicket key is in Helpline");
    assert!(stored.is_active());
    assert!(stored.has_scope(Scope::TicketsCreate));
    assert!(stored.has_scope(Scope::CronRun));
    assert!(!stored.has_scope(Scope::TicketsRead));
    assert!(stored.allows_ip("127.0.0.1".parse().expect("ip")));
    assert!(!stored.allows_ip("127.0.0.2".parse().expect("ip")));
    assert_eq!(
        reader
            .setting(OSTICKET_SECRET_SALT_SETTING)
            .await
            .expect("setting")
            .as_deref(),
        Some("kx9-test-secret-salt")
    );
    drop(reader);

    // A second run without --resume is refused; with it, nothing new is written.
    let before = counts(store).await;
    let again = osticket::import(&url, "ost_", &options(), store, &NoProgress).await;
    assert!(
        matches!(again, Err(ImportError::AlreadyImported(_))),
        "{backend}: {again:?}"
    );
    assert!(again.is_err_and(|e| e.to_string().contains("--resume")));
    let resumed = osticket::import(
        &url,
        "ost_",
        &Options {
            resume: true,
            ..options()
        },
        store,
        &NoProgress,
    )
    .await
    .expect("resume");
    for kind in &resumed.kinds {
        assert_eq!(
            kind.written + kind.matched,
            0,
            "{backend}: {} re-imported",
            kind.kind
        );
        assert!(kind.skipped.is_empty(), "{backend}: {:?}", kind.skipped);
    }
    assert_eq!(resumed.kind("ticket").map(|k| k.resumed), Some(9_349));
    assert_eq!(
        counts(store).await,
        before,
        "{backend}: the resumed run changed nothing"
    );

    // A reply to mail osTicket received (In-Reply-To: a stored Message-ID) threads onto the
    // imported ticket through the real mail intake.
    let thread = sqlx::query(
        "select m.mid, t.number, ue.address from ost_thread_entry_email m \
         join ost_thread_entry e on e.id = m.thread_entry_id \
         join ost_thread th on th.id = e.thread_id and th.object_type = 'T' \
         join ost_ticket t on t.ticket_id = th.object_id \
         join ost_user_email ue on ue.user_id = t.user_id \
         where t.status_id = 1 order by m.id limit 1",
    )
    .fetch_one(&mut src)
    .await
    .expect("a stored Message-ID");
    let (mid, number, address): (String, String, String) = (
        thread.get("mid"),
        thread.get("number"),
        thread.get("address"),
    );
    let raw = format!(
        "From: Customer <{address}>\r\nTo: Support <support@helpdesk.test>\r\n\
         Subject: Re: about my earlier mail\r\nMessage-ID: <reply-after-import@example.net>\r\n\
         In-Reply-To: {mid}\r\nReferences: {mid}\r\nDate: Thu, 03 Dec 2026 10:00:00 +0000\r\n\
         Content-Type: text/plain; charset=utf-8\r\n\r\nStill waiting for an answer.\r\n"
    );
    let intake = IntakeSettings::load(store, Vec::new())
        .await
        .expect("intake");
    let outcome = pipeline::receive(
        store,
        &DeskSettings::default(),
        &intake,
        NewInbound {
            source: "pipe".into(),
            mailbox: None,
            source_uid: None,
            raw: raw.into_bytes(),
        },
    )
    .await
    .expect("intake");
    assert_eq!(
        outcome.status,
        InboundStatus::Processed,
        "{backend}: {outcome:?}"
    );
    assert_eq!(
        outcome.ticket.as_ref().map(TicketNumber::as_str),
        Some(number.as_str()),
        "{backend}: threaded by In-Reply-To {mid}: {outcome:?}"
    );
    assert_eq!(
        counts(store).await.tickets,
        9_349,
        "{backend}: no new ticket"
    );
    src.close().await.expect("close");
}

/// Tables that make a database look like osTicket, without being a usable one.
async fn fake_osticket(conn: &mut MySqlConnection, prefix: &str, signature: &str) {
    for statement in [
        format!(
            "create table {prefix}config (id int, namespace varchar(64), `key` varchar(64), value text)"
        ),
        format!("insert into {prefix}config values (1, 'core', 'schema_signature', '{signature}')"),
        format!("create table {prefix}ticket (ticket_id int, number varchar(20))"),
        format!("create table {prefix}thread_entry (id int, body text)"),
        format!("create table {prefix}ticket__cdata (ticket_id int, subject text)"),
    ] {
        sqlx::query(AssertSqlSafe(statement))
            .execute(&mut *conn)
            .await
            .expect("fake osTicket table");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_sources_are_refused_before_anything_is_written() {
    let Some(server) = mysql_server() else { return };
    let (store, target) = sqlite_target().await;
    let empty = counts(&*store).await;

    // Not an osTicket database at all.
    let foreign = SourceDb::empty(&server).await;
    let mut conn = foreign.connect().await;
    conn.execute("create table customers (id int primary key, name text)")
        .await
        .expect("table");
    let error = osticket::import(&foreign.url(), "ost_", &options(), &*store, &NoProgress)
        .await
        .expect_err("not osTicket");
    assert!(
        matches!(error, ImportError::NotOsticket { .. }),
        "{error:?}"
    );
    assert!(
        error.to_string().contains("not an osTicket database"),
        "{error}"
    );

    // osTicket's tables under another prefix: the error names the prefix found.
    fake_osticket(&mut conn, "helpdesk_", "5fb92bef17f3b603659e024c01cc7a59").await;
    let error = osticket::import(&foreign.url(), "ost_", &options(), &*store, &NoProgress)
        .await
        .expect_err("wrong prefix");
    match &error {
        ImportError::WrongPrefix { prefix, found, .. } => {
            assert_eq!(prefix, "ost_");
            assert_eq!(found, &["helpdesk_".to_owned()]);
        }
        other => panic!("{other:?}"),
    }
    assert!(error.to_string().contains("'helpdesk_'"), "{error}");

    // Right prefix, but a release too old, or a schema lacking what the import reads.
    fake_osticket(&mut conn, "old_", "00c949a623b82848baaf3480b51307e3").await;
    let error = osticket::import(&foreign.url(), "old_", &options(), &*store, &NoProgress)
        .await
        .expect_err("too old");
    assert!(matches!(error, ImportError::Unsupported(_)), "{error:?}");
    assert!(error.to_string().contains("1.11/1.12"), "{error}");
    let error = osticket::import(
        &foreign.url(),
        "helpdesk_",
        &options(),
        &*store,
        &NoProgress,
    )
    .await
    .expect_err("columns missing");
    assert!(matches!(error, ImportError::Unsupported(_)), "{error:?}");
    assert!(
        error.to_string().contains("helpdesk_ticket.user_id"),
        "{error}"
    );
    conn.close().await.expect("close");
    foreign.drop_now().await;

    // The real fixture under a wrong prefix.
    let fixture = SourceDb::fixture(&server).await;
    let error = osticket::import(
        &fixture.url(),
        "osticket_",
        &options(),
        &*store,
        &NoProgress,
    )
    .await
    .expect_err("wrong prefix");
    assert!(
        matches!(&error, ImportError::WrongPrefix { found, .. } if found == &["ost_".to_owned()]),
        "{error:?}"
    );

    // Unreachable, and the password never shows.
    let error = osticket::import(
        "mysql://root:hunter2-secret@127.0.0.1:1/ost",
        "ost_",
        &options(),
        &*store,
        &NoProgress,
    )
    .await
    .expect_err("unreachable");
    assert!(matches!(error, ImportError::Connect { .. }), "{error:?}");
    assert!(!error.to_string().contains("hunter2"), "{error}");
    assert!(
        error.to_string().contains("root:****@127.0.0.1:1"),
        "{error}"
    );
    let error = osticket::import("postgres://x@y/z", "ost_", &options(), &*store, &NoProgress)
        .await
        .expect_err("not mysql");
    assert!(matches!(error, ImportError::BadUrl(_)), "{error:?}");
    let error = osticket::import(
        &fixture.url(),
        "ost_; drop",
        &options(),
        &*store,
        &NoProgress,
    )
    .await
    .expect_err("bad prefix");
    assert!(matches!(error, ImportError::BadPrefix(_)), "{error:?}");

    // Nothing was written: no map entries, no settings, the same rows.
    for kind in LegacyKind::ALL {
        assert_eq!(mapped(&*store, kind).await, 0, "{}", kind.as_str());
    }
    assert_eq!(counts(&*store).await, empty);
    assert_eq!(
        store
            .reader()
            .await
            .expect("reader")
            .setting(OSTICKET_SECRET_SALT_SETTING)
            .await
            .expect("setting"),
        None
    );
    target.remove(store).await;
    fixture.drop_now().await;
}

/// An import of an older state of the desk, continued with `resume` from the newer one (the
/// same ids, more tickets): only what is new is written, and everything then adds up. Also an
/// attachment kept on disk by osTicket's filesystem storage plugin, reported and skipped.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn resume_continues_with_what_is_new() {
    let Some(server) = mysql_server() else { return };
    let (store, target) = sqlite_target().await;
    let earlier = SourceDb::fixture(&server).await;
    let mut conn = earlier.connect().await;
    for statement in [
        "delete e from ost_thread_entry e join ost_thread th on th.id = e.thread_id \
         where th.object_type = 'T' and th.object_id > 9000",
        "delete v from ost_thread_event v join ost_thread th on th.id = v.thread_id \
         where th.object_type = 'T' and th.object_id > 9000",
        "delete from ost_thread where object_type = 'T' and object_id > 9000",
        "delete from ost_ticket where ticket_id > 9000",
    ] {
        conn.execute(statement).await.expect(statement);
    }
    conn.close().await.expect("close");
    let first = osticket::import(&earlier.url(), "ost_", &options(), &*store, &NoProgress)
        .await
        .expect("first import");
    assert_eq!(first.kind("ticket").map(|k| k.written), Some(9_000));
    earlier.drop_now().await;

    // The desk later: every ticket, and one file moved to the filesystem storage plugin.
    let later = SourceDb::fixture(&server).await;
    let mut src = later.connect().await;
    src.execute(
        "update ost_file f join ost_attachment a on a.file_id = f.id \
         set f.bk = 'F' where a.type = 'H' and a.object_id = 9348",
    )
    .await
    .expect("move a file to the filesystem");
    let refused = osticket::import(&later.url(), "ost_", &options(), &*store, &NoProgress).await;
    assert!(matches!(refused, Err(ImportError::AlreadyImported(_))));
    // Another desk (here: another help desk URL) is never resumed from.
    let resume = Options {
        resume: true,
        ..options()
    };
    let set_url = |url: &'static str| {
        format!(
            "update ost_config set value = '{url}' where namespace = 'core' and `key` = 'helpdesk_url'"
        )
    };
    src.execute(AssertSqlSafe(set_url("https://other-desk.example/")))
        .await
        .expect("another desk's URL");
    let before = counts(&*store).await;
    let other = osticket::import(&later.url(), "ost_", &resume, &*store, &NoProgress).await;
    assert!(
        matches!(other, Err(ImportError::OtherSource { .. })),
        "{other:?}"
    );
    assert_eq!(
        counts(&*store).await,
        before,
        "a refused resume writes nothing"
    );
    src.execute(AssertSqlSafe(set_url("http://127.0.0.1:8080/")))
        .await
        .expect("the desk's own URL back");
    // A ticket the first run imported was closed in osTicket since: the resume brings that over.
    src.execute(
        "update ost_ticket t join ost_ticket_status s on s.state = 'closed' and s.name = 'Closed' \
         set t.status_id = s.id, t.closed = t.created + interval 2 day, \
             t.updated = t.created + interval 2 day \
         where t.ticket_id = 10",
    )
    .await
    .expect("close ticket 10 in osTicket");
    let closed_number: String =
        sqlx::query_scalar("select number from ost_ticket where ticket_id = 10")
            .fetch_one(&mut src)
            .await
            .expect("ticket 10's number");
    let second = osticket::import(
        &later.url(),
        "ost_",
        &Options {
            resume: true,
            ..options()
        },
        &*store,
        &NoProgress,
    )
    .await
    .expect("resumed import");
    eprintln!("{second}");
    let tickets = second.kind("ticket").expect("tickets");
    assert_eq!((tickets.written, tickets.resumed), (349, 9_000));
    assert_eq!(tickets.refreshed, 1, "only ticket 10 changed in osTicket");
    let number = helpline_core::ticket::TicketNumber::parse(&closed_number).expect("number");
    let mut reader = store.reader().await.expect("reader");
    let refreshed = reader
        .ticket_by_number(&number)
        .await
        .expect("read")
        .expect("ticket 10 imported");
    let status = reader
        .status(refreshed.status_id)
        .await
        .expect("read")
        .expect("status");
    assert_eq!(status.name, "Closed");
    assert!(refreshed.closed_at.is_some(), "{refreshed:?}");
    drop(reader);
    let entries = second.kind("entry").expect("entries");
    assert_eq!(entries.read, 9_354);
    assert_eq!(entries.written + entries.resumed, 9_354);
    assert!(entries.written >= 349, "{entries:?}");
    let users = second.kind("user").expect("users");
    assert_eq!((users.written, users.matched, users.resumed), (0, 0, 416));

    let attachments = second.kind("attachment").expect("attachments");
    assert_eq!(attachments.written, 1, "{attachments:?}");
    assert_eq!(attachments.skipped.len(), 1, "{attachments:?}");
    let reason = &attachments.skipped[0].reason;
    assert!(
        reason.contains("filesystem storage plugin") && reason.contains("ticket 841923"),
        "{reason}"
    );
    assert!(second.to_string().contains("filesystem storage plugin"));

    // Everything adds up to the whole desk, and the entry with the file on disk is there.
    for (kind, n) in [
        (LegacyKind::Ticket, 9_349),
        (LegacyKind::Entry, 9_354),
        (LegacyKind::Event, 9_350),
        (LegacyKind::User, 416),
    ] {
        assert_eq!(mapped(&*store, kind).await, n, "{}", kind.as_str());
    }
    let rows = counts(&*store).await;
    assert_eq!(
        (rows.tickets, rows.entries, rows.attachments),
        (9_349, 9_354, 1)
    );
    let mut reader = store.reader().await.expect("reader");
    let ticket = reader
        .ticket_by_number(&TicketNumber::parse("841923").expect("number"))
        .await
        .expect("read")
        .expect("ticket 841923");
    let thread = reader.entries(ticket.id).await.expect("entries");
    assert_eq!(thread.len(), 3);
    assert!(thread[0].attachments.is_empty());
    drop(reader);
    src.close().await.expect("close");
    target.remove(store).await;
    later.drop_now().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn edited_entries_and_inactive_collaborators_into_sqlite() {
    let Some(server) = mysql_server() else { return };
    let source = SourceDb::fixture(&server).await;
    let (store, target) = sqlite_target().await;
    edited_entries_and_collaborators(&source, &*store, "SQLite").await;
    target.remove(store).await;
    source.drop_now().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn edited_entries_and_inactive_collaborators_into_postgres() {
    let Some(server) = mysql_server() else { return };
    let Some((store, target)) = postgres_target().await else {
        return;
    };
    let source = SourceDb::fixture(&server).await;
    edited_entries_and_collaborators(&source, &*store, "PostgreSQL").await;
    target.remove(store).await;
    source.drop_now().await;
}

/// Inserts an edit of `entry` the way osTicket's `updateEntry` does: a new entry with
/// `pid` = the one edited, the same `created`, `FLAG_EDITED` (0x2) and the new body; the entry
/// edited gets `FLAG_HIDDEN` (0x4). Returns the new entry's id.
async fn osticket_edit(conn: &mut MySqlConnection, entry: i64, body: &str) -> i64 {
    let id = scalar(conn, "select max(id) + 1 from ost_thread_entry").await;
    for statement in [
        format!(
            "create temporary table edit_copy select * from ost_thread_entry where id = {entry}"
        ),
        format!(
            "update edit_copy set id = {id}, pid = {entry}, \
             flags = (flags & ~(4 | 8)) | 2, body = '{body}', editor = 1, \
             editor_type = 'S', updated = now()"
        ),
        "insert into ost_thread_entry select * from edit_copy".to_owned(),
        "drop temporary table edit_copy".to_owned(),
        format!("update ost_thread_entry set flags = flags | 4 where id = {entry}"),
    ] {
        sqlx::query(AssertSqlSafe(statement.clone()))
            .execute(&mut *conn)
            .await
            .unwrap_or_else(|e| panic!("{statement}: {e}"));
    }
    id
}

/// Mail from `from` in reply to `in_reply_to`, through the real intake: the ticket it landed on.
async fn reply(store: &dyn Store, from: &str, in_reply_to: &str) -> Option<String> {
    let raw = format!(
        "From: Customer <{from}>\r\nTo: Support <support@helpdesk.test>\r\n\
         Subject: Re: that\r\nMessage-ID: <reply-{:x}@example.net>\r\n\
         In-Reply-To: {in_reply_to}\r\nReferences: {in_reply_to}\r\n\
         Date: Thu, 03 Dec 2026 10:00:00 +0000\r\n\
         Content-Type: text/plain; charset=utf-8\r\n\r\nAny news?\r\n",
        RandomState::new().hash_one(in_reply_to)
    );
    let intake = IntakeSettings::load(store, Vec::new())
        .await
        .expect("intake");
    let outcome = pipeline::receive(
        store,
        &DeskSettings::default(),
        &intake,
        NewInbound {
            source: "pipe".into(),
            mailbox: None,
            source_uid: None,
            raw: raw.into_bytes(),
        },
    )
    .await
    .expect("intake");
    assert_eq!(outcome.status, InboundStatus::Processed, "{outcome:?}");
    outcome.ticket.map(|t| t.as_str().to_owned())
}

/// Entries edited in osTicket (hidden earlier versions) and collaborators not approved by staff.
async fn edited_entries_and_collaborators(source: &SourceDb, store: &dyn Store, backend: &str) {
    let mut src = source.connect().await;
    // Ticket 1 (907193, jane.customer@example.com): its only entry, a mail, edited once.
    let original_mid = "<edited-original-0001@example.org>";
    src.execute(AssertSqlSafe(format!(
        "insert into ost_thread_entry_email (thread_entry_id, mid, headers) \
         values (1, '{original_mid}', 'Message-ID: {original_mid}')"
    )))
    .await
    .expect("the original's Message-ID");
    let edit = osticket_edit(&mut src, 1, "My printer is smoking. Please help.").await;
    // Ticket 3 (204663): edited, and the edit edited by another staff member (kept, hidden).
    let first_edit = osticket_edit(&mut src, 3, "First edit of the question.").await;
    let second_edit = osticket_edit(&mut src, first_edit, "How many queries per second?").await;
    // Ticket 2: an entry hidden with nothing replacing it.
    src.execute("update ost_thread_entry set flags = flags | 4 where id = 2")
        .await
        .expect("hide");
    // Ticket 1's collaborators: bob (active, Cc), qc (Cc'd, waiting for approval).
    src.execute(
        "insert into ost_thread_collaborator (flags, thread_id, user_id, role, created, updated) \
         values (3, 1, 2, 'M', now(), now()), (2, 1, 3, 'M', now(), now())",
    )
    .await
    .expect("collaborators");
    let inactive = scalar(
        &mut src,
        "select id from ost_thread_collaborator where user_id = 3",
    )
    .await;

    let report = osticket::import(&source.url(), "ost_", &options(), store, &NoProgress)
        .await
        .unwrap_or_else(|e| panic!("import into {backend}: {e}"));
    eprintln!("{report}");

    // The entries: every one read; four hidden earlier versions, three mapped onto their edits.
    let entries = report.kind("entry").expect("entry row");
    assert_eq!(entries.read, 9_357, "{backend}");
    assert_eq!(entries.written, 9_357 - 4, "{backend}");
    assert_eq!(entries.matched, 3, "{backend}");
    assert_eq!(entries.skipped.len(), 1, "{backend}: {:?}", entries.skipped);
    assert_eq!(entries.skipped[0].source_id, 2);
    assert!(
        entries.skipped[0]
            .reason
            .contains("no visible entry replaces it"),
        "{}",
        entries.skipped[0].reason
    );
    assert!(
        report
            .notes
            .iter()
            .any(|n| n.starts_with("4 earlier versions of edited entries were not imported")),
        "{backend}: {:?}",
        report.notes
    );
    assert_eq!(counts(store).await.entries, 9_354 - 1, "{backend}");

    let mut reader = store.reader().await.expect("reader");
    let ticket = reader
        .ticket_by_number(&TicketNumber::parse("907193").expect("number"))
        .await
        .expect("read")
        .expect("ticket 907193");
    let thread = reader.entries(ticket.id).await.expect("entries");
    assert_eq!(thread.len(), 1, "{backend}: the edited text once");
    assert!(thread[0].body.as_str().contains("smoking"), "{backend}");
    assert!(!thread[0].body.as_str().contains("on fire"), "{backend}");
    assert_eq!(thread[0].mail.message_id.as_deref(), Some(original_mid));
    assert_eq!(
        target_of(store, LegacyKind::Entry, 1).await,
        Some(thread[0].id.0),
        "{backend}: the original maps onto its edit"
    );
    assert_eq!(
        target_of(store, LegacyKind::Entry, edit).await,
        Some(thread[0].id.0)
    );
    let ticket3 = reader
        .ticket_by_number(&TicketNumber::parse("204663").expect("number"))
        .await
        .expect("read")
        .expect("ticket 204663");
    let thread3 = reader.entries(ticket3.id).await.expect("entries");
    assert_eq!(thread3.len(), 1, "{backend}");
    assert!(thread3[0].body.as_str().contains("per second"));
    for id in [3, first_edit, second_edit] {
        assert_eq!(
            target_of(store, LegacyKind::Entry, id).await,
            Some(thread3[0].id.0),
            "{backend}: entry {id}"
        );
    }
    assert_eq!(target_of(store, LegacyKind::Entry, 2).await, None);

    // Collaborators: only the approved one.
    let collaborators = reader
        .collaborators(ticket.id)
        .await
        .expect("collaborators");
    let bob = target_of(store, LegacyKind::User, 2).await;
    assert_eq!(
        collaborators
            .iter()
            .map(|c| Some(c.user_id.0))
            .collect::<Vec<_>>(),
        [bob],
        "{backend}"
    );
    let row = report.kind("collaborator").expect("collaborator row");
    assert_eq!((row.read, row.written), (2, 1), "{backend}");
    assert_eq!(row.skipped.len(), 1, "{backend}: {:?}", row.skipped);
    assert_eq!(row.skipped[0].source_id, inactive);
    assert_eq!(
        row.skipped[0].reason,
        "inactive in osTicket (not approved by staff)"
    );
    drop(reader);

    // Replies to the original mail, and to mail osTicket signed naming an earlier version,
    // thread onto the ticket.
    assert_eq!(
        reply(store, "jane.customer@example.com", original_mid)
            .await
            .as_deref(),
        Some("907193"),
        "{backend}: In-Reply-To the original's Message-ID"
    );
    let user3 = scalar(
        &mut src,
        "select user_id from ost_ticket where ticket_id = 3",
    )
    .await;
    let address3: String = sqlx::query_scalar(AssertSqlSafe(format!(
        "select address from ost_user_email where user_id = {user3} order by id limit 1"
    )))
    .fetch_one(&mut src)
    .await
    .expect("address");
    let thread_id = scalar(
        &mut src,
        "select thread_id from ost_thread_entry where id = 3",
    )
    .await;
    let signed = OsticketInstallation::new("kx9-test-secret-salt")
        .expect("salt")
        .encode_b(
            u32::try_from(user3).expect("id"),
            u32::try_from(first_edit).expect("id"),
            u32::try_from(thread_id).expect("id"),
            RecipientClass::Owner,
            "abc12",
            "support@helpdesk.test",
        );
    assert_eq!(
        reply(store, &address3, &signed).await.as_deref(),
        Some("204663"),
        "{backend}: a signed Message-ID naming an earlier version"
    );
    src.close().await.expect("close");
}

/// A customer's reply to osTicket's mail names osTicket's signed Message-ID: the import tells
/// whether `--secret-salt` verifies it (a wrong salt would silently stop such replies
/// threading).
#[tokio::test]
async fn the_secret_salt_is_checked_against_the_stored_mail_headers() {
    let Some(server) = mysql_server() else { return };
    let source = SourceDb::fixture(&server).await;
    let desk = OsticketInstallation::new("the-desk's-own-salt").expect("salt");
    let signed = desk.encode_b(
        7,
        2,
        2,
        RecipientClass::Owner,
        "k3Zq1",
        "support@helpdesk.test",
    );
    let mut conn = source.connect().await;
    conn.execute(AssertSqlSafe(format!(
        "update ost_thread_entry_email set headers = concat('In-Reply-To: <{signed}>\\r\\n', \
         headers) where thread_entry_id = 2"
    )))
    .await
    .expect("a reply to osTicket's mail");
    conn.close().await.expect("close");

    for (salt, expected) in [
        (
            Some("not-this-desk's-salt"),
            "the --secret-salt given verifies none of the 1 Message-IDs osTicket signed",
        ),
        (
            Some("the-desk's-own-salt"),
            "the --secret-salt given verifies 1 of the 1 Message-IDs osTicket signed",
        ),
        (
            None,
            "1 Message-IDs osTicket signed are named in the stored mail headers: run the \
             import again with --secret-salt",
        ),
    ] {
        let (store, target) = sqlite_target().await;
        let options = Options {
            secret_salt: salt.map(str::to_owned),
            ..Options::default()
        };
        let report = osticket::import(&source.url(), "ost_", &options, &*store, &NoProgress)
            .await
            .expect("import");
        assert!(
            report.notes.iter().any(|note| note.contains(expected)),
            "salt {salt:?}: {:#?}",
            report.notes
        );
        target.remove(store).await;
    }
    source.drop_now().await;
}
