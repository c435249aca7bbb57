//! Outbound end to end against real peers on loopback, with the real `helpline serve`: notices
//! go out through the test SMTP server and are read back from Dovecot over IMAP; the whole mail
//! loop (customer mail in, autoresponse out, the customer's quoted reply in, an autoresponder's
//! answer in); signed webhooks to a receiver started here, through a SIGKILL of the server.

use crate::on_both_stores;
use crate::support::{Backend, RawResponse, TestDatabase, open_store, raw_request};
use helpline_core::apikey::{KeySecret, NewApiKey, Scope};
use helpline_core::event::Actor;
use helpline_core::outbox::{JobKind, JobQuery, JobState};
use helpline_core::service::keys::create_api_key;
use helpline_mail::imap::ImapMailbox;
use mail_parser::{MessageParser, MimeHeaders};
use std::collections::{BTreeMap, BTreeSet};
use std::net::SocketAddr;
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

on_both_stores!(
    outbox_run_works_the_queue_and_exits,
    every_change_reaches_webhooks_as_its_event_in_order,
    two_nodes_on_one_database_deliver_each_event_once,
    autoresponses_are_limited_per_recipient_and_test_send_works,
    notices_reach_a_real_smtp_server_with_threading_and_loop_headers,
    the_mail_loop_autoresponse_quoted_reply_and_an_autoresponder,
    signed_webhooks_survive_a_sigkill_and_dead_deliveries_are_retried,
);

/// Mailbox users of these tests, by store: mbox17..mbox26 for SQLite, mbox27..mbox36 for
/// PostgreSQL (the intake tests use the first sixteen), so parallel runs never share one.
fn user(backend: Backend, index: usize) -> String {
    assert!(index < 10);
    let base = match backend {
        Backend::Sqlite => 17,
        Backend::Postgres => 27,
    };
    format!("mbox{}", base + index)
}

struct Servers {
    imap: String,
    smtp: String,
    password: String,
}

fn servers() -> Option<Servers> {
    let get = |name: &str| std::env::var(name).ok().filter(|v| !v.is_empty());
    match (get("HELPLINE_TEST_IMAP"), get("HELPLINE_TEST_SMTP")) {
        (Some(imap), Some(smtp)) => Some(Servers {
            imap,
            smtp,
            password: get("HELPLINE_TEST_MAIL_PASSWORD").unwrap_or_else(|| "secret".into()),
        }),
        _ => {
            let ci = std::env::var("CI").is_ok_and(|v| v == "true" || v == "1");
            assert!(
                !ci,
                "the mail servers must run on CI (scripts/test starts them)"
            );
            eprintln!("skipping a live outbound test: HELPLINE_TEST_IMAP/SMTP are not set");
            None
        }
    }
}

/// A `helpline serve` process on a database, restartable.
struct Desk {
    dir: tempfile::TempDir,
    url: String,
    address: SocketAddr,
    child: Option<Child>,
}

impl Desk {
    fn new(url: &str, config: &str) -> Self {
        let dir = tempfile::tempdir().expect("dir");
        std::fs::write(dir.path().join("helpline.toml"), config).expect("config");
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .and_then(|l| l.local_addr())
            .expect("port")
            .port();
        Self {
            dir,
            url: url.to_owned(),
            address: SocketAddr::from(([127, 0, 0, 1], port)),
            child: None,
        }
    }

    /// Adds an active staff member of the Support department.
    fn add_staff(&self, username: &str, email: &str) {
        let added = self.cli(&[
            "staff",
            "add",
            "--username",
            username,
            "--name",
            &format!("Agent {username}"),
            "--email",
            email,
            "--department",
            "Support",
        ]);
        assert!(
            added.status.success(),
            "{}",
            String::from_utf8_lossy(&added.stderr)
        );
    }

    fn cli(&self, args: &[&str]) -> std::process::Output {
        let mut full = vec!["--config", "helpline.toml"];
        full.extend_from_slice(args);
        full.extend_from_slice(&["--database", &self.url]);
        crate::cli::helpline(&full, &[], self.dir.path())
    }

    async fn start(&mut self) {
        let mut command = Command::new(env!("CARGO_BIN_EXE_helpline"));
        for (name, _) in std::env::vars() {
            if name.starts_with("HELPLINE_") {
                command.env_remove(name);
            }
        }
        let child = command
            .args([
                "--config",
                "helpline.toml",
                "serve",
                "--database",
                &self.url,
                "--listen",
                &self.address.to_string(),
            ])
            .current_dir(self.dir.path())
            .env("HELPLINE_LOG", "warn")
            .stdout(Stdio::null())
            .stderr(Stdio::inherit())
            .spawn()
            .expect("serve");
        self.child = Some(child);
        let started = Instant::now();
        while started.elapsed() < Duration::from_secs(20) {
            if let Some(child) = self.child.as_mut()
                && let Ok(Some(status)) = child.try_wait()
            {
                panic!("helpline serve exited: {status}");
            }
            if tokio::net::TcpStream::connect(self.address).await.is_ok() {
                return;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        panic!("helpline serve did not answer");
    }

    fn sigkill(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    fn stop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = Command::new("kill")
                .args(["-TERM", &child.id().to_string()])
                .status();
            let _ = child.wait();
        }
    }

    async fn v1(
        &self,
        method: &str,
        path: &str,
        key: &str,
        body: serde_json::Value,
    ) -> RawResponse {
        let bearer = format!("Bearer {key}");
        raw_request(
            self.address,
            method,
            path,
            &[
                ("Authorization", &bearer),
                ("Content-Type", "application/json"),
            ],
            body.to_string().as_bytes(),
        )
        .await
    }
}

impl Drop for Desk {
    fn drop(&mut self) {
        self.sigkill();
    }
}

async fn admin_key(url: &str) -> String {
    let store = open_store(url).await;
    let secret = KeySecret::generate();
    create_api_key(
        &*store,
        NewApiKey {
            secret: secret.clone(),
            ip_rules: vec!["127.0.0.1".parse().expect("rule")],
            scopes: vec![Scope::Admin],
            note: None,
        },
        Actor::system(),
    )
    .await
    .expect("key");
    secret.expose().to_owned()
}

async fn mailbox(servers: &Servers, user: &str) -> ImapMailbox {
    ImapMailbox::connect(
        &servers.imap,
        user,
        &servers.password,
        "INBOX",
        Duration::from_secs(10),
    )
    .await
    .expect("imap login")
}

/// Empties a test user's INBOX (mail left by an earlier local run).
async fn empty(servers: &Servers, user: &str) {
    let mut inbox = mailbox(servers, user).await;
    for uid in inbox.uids_from(1).await.expect("uids") {
        inbox.delete(uid).await.expect("delete");
    }
    let _ = inbox.logout().await;
}

/// Every message in a user's INBOX.
async fn messages(servers: &Servers, user: &str) -> Vec<Vec<u8>> {
    let mut inbox = mailbox(servers, user).await;
    let mut all = Vec::new();
    for uid in inbox.uids_from(1).await.expect("uids") {
        all.push(inbox.fetch(uid, 10 << 20).await.expect("fetch"));
    }
    let _ = inbox.logout().await;
    all
}

/// Waits until a user's INBOX holds `count` messages; returns them.
async fn wait_for_mail(servers: &Servers, user: &str, count: usize) -> Vec<Vec<u8>> {
    let started = Instant::now();
    loop {
        let all = messages(servers, user).await;
        if all.len() >= count || started.elapsed() > Duration::from_secs(20) {
            assert_eq!(all.len(), count, "mail for {user} within 20 s");
            return all;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

fn header(raw: &[u8], name: &str) -> Option<String> {
    let message = MessageParser::default().parse(raw)?;
    message
        .header_raw(name)
        .map(|value| value.split_whitespace().collect::<Vec<_>>().join(" "))
}

fn subject(raw: &[u8]) -> String {
    MessageParser::default()
        .parse(raw)
        .and_then(|m| m.subject().map(str::to_owned))
        .unwrap_or_default()
}

fn text_part(raw: &[u8]) -> String {
    MessageParser::default()
        .parse(raw)
        .and_then(|m| m.body_text(0).map(|t| t.into_owned()))
        .unwrap_or_default()
}

/// Waits until no outbox job is pending (every announcement expanded, every mail sent).
async fn outbox_settled(url: &str) {
    let store = open_store(url).await;
    let started = Instant::now();
    loop {
        let pending = store
            .reader()
            .await
            .expect("reader")
            .jobs(&JobQuery {
                state: Some(JobState::Pending),
                limit: 1,
                ..JobQuery::default()
            })
            .await
            .expect("jobs");
        if pending.is_empty() {
            return;
        }
        assert!(
            started.elapsed() < Duration::from_secs(20),
            "the outbox settles"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

fn config(smtp: &str, desk: &str, extra: &str) -> String {
    format!(
        "smtp_url = \"smtp://{smtp}\"\nmail_from = \"{desk}@helpline.test\"\n\
         desk_name = \"Acme Support\"\nsystem_addresses = [\"{desk}@helpline.test\"]\n\
         outbox_retry_seconds = 0.2\n{extra}"
    )
}

/// A new ticket answers the customer (auto-replied) and alerts the department's staff
/// (auto-generated); a staff reply goes to the customer and the collaborator with its file, as
/// a reply in the same thread; `notify: false` sends nothing; a note alerts nobody by default.
async fn notices_reach_a_real_smtp_server_with_threading_and_loop_headers(backend: Backend) {
    let Some(servers) = servers() else { return };
    let (desk_user, customer, cc, agent) = (
        user(backend, 0),
        user(backend, 1),
        user(backend, 2),
        user(backend, 3),
    );
    for who in [&desk_user, &customer, &cc, &agent] {
        empty(&servers, who).await;
    }
    let Some((url, database)) = TestDatabase::create(backend).await else {
        return;
    };
    let mut desk = Desk::new(&url, &config(&servers.smtp, &desk_user, ""));
    desk.add_staff("agent", &format!("{agent}@helpline.test"));
    let key = admin_key(&url).await;
    desk.start().await;

    let created = desk
        .v1(
            "POST",
            "/api/v1/tickets",
            &key,
            serde_json::json!({
                "email": format!("{customer}@helpline.test"), "name": "Carl Customer",
                "subject": "Printer on fire", "message": "It is <b>on fire</b>.",
            }),
        )
        .await;
    assert_eq!(created.status, 201, "{}", created.text());
    let ticket: serde_json::Value = serde_json::from_slice(&created.body).expect("json");
    let number = ticket["number"].as_str().expect("number").to_owned();
    let collaborator = desk
        .v1(
            "POST",
            &format!("/api/v1/tickets/{number}/collaborators"),
            &key,
            serde_json::json!({"email": format!("{cc}@helpline.test"), "name": "Cece"}),
        )
        .await;
    assert!(collaborator.status < 300, "{}", collaborator.text());

    let autoresponse = wait_for_mail(&servers, &customer, 1).await.remove(0);
    assert_eq!(
        subject(&autoresponse),
        format!("Support Ticket Opened [#{number}]")
    );
    assert_eq!(
        header(&autoresponse, "Auto-Submitted").as_deref(),
        Some("auto-replied")
    );
    assert_eq!(
        header(&autoresponse, "X-Auto-Response-Suppress").as_deref(),
        Some("All")
    );
    let from = header(&autoresponse, "From").unwrap_or_default();
    assert!(
        from.contains(&format!("{desk_user}@helpline.test")) && from.contains("Acme Support"),
        "{from}"
    );
    assert!(
        header(&autoresponse, "Reply-To")
            .unwrap_or_default()
            .contains(&format!("{desk_user}@helpline.test"))
    );
    let autoresponse_id = header(&autoresponse, "Message-ID").expect("Message-ID");
    assert!(
        autoresponse_id.starts_with("<hl."),
        "a signed id of ours: {autoresponse_id}"
    );
    assert!(
        text_part(&autoresponse)
            .trim_start()
            .starts_with(helpline_mail::strip::REPLY_MARKER),
        "the reply marker tops the text part"
    );
    let thread_root = header(&autoresponse, "References").expect("References");

    let alert = wait_for_mail(&servers, &agent, 1).await.remove(0);
    assert_eq!(subject(&alert), format!("New Ticket Alert [#{number}]"));
    assert_eq!(
        header(&alert, "Auto-Submitted").as_deref(),
        Some("auto-generated")
    );
    assert!(
        text_part(&alert).contains("on fire"),
        "{}",
        text_part(&alert)
    );

    // A quiet reply first, then a mailed one with a file.
    let quiet = desk
        .v1(
            "POST",
            &format!("/api/v1/tickets/{number}/replies"),
            &key,
            serde_json::json!({"staff": "agent", "message": "Internal test reply", "notify": false}),
        )
        .await;
    assert_eq!(quiet.status, 201, "{}", quiet.text());
    let reply = desk
        .v1(
            "POST",
            &format!("/api/v1/tickets/{number}/replies"),
            &key,
            serde_json::json!({
                "staff": "agent", "message": "We sent a fire extinguisher.",
                "attachments": [{"filename": "receipt.txt", "content_type": "text/plain", "data": "cmVjZWlwdCAjNDI="}],
            }),
        )
        .await;
    assert_eq!(reply.status, 201, "{}", reply.text());
    let note = desk
        .v1(
            "POST",
            &format!("/api/v1/tickets/{number}/notes"),
            &key,
            serde_json::json!({"staff": "agent", "message": "Customer seems upset."}),
        )
        .await;
    assert_eq!(note.status, 201, "{}", note.text());
    outbox_settled(&url).await;

    let to_customer = wait_for_mail(&servers, &customer, 2).await;
    let to_cc = wait_for_mail(&servers, &cc, 1).await;
    for staff_reply in [&to_customer[1], &to_cc[0]] {
        assert_eq!(
            subject(staff_reply),
            format!("Re: Printer on fire [#{number}]")
        );
        assert_eq!(
            header(staff_reply, "Auto-Submitted"),
            None,
            "a person wrote it"
        );
        assert_eq!(
            header(staff_reply, "X-Auto-Response-Suppress").as_deref(),
            Some("All")
        );
        assert_eq!(
            header(staff_reply, "References").as_deref(),
            Some(thread_root.as_str())
        );
        assert!(header(staff_reply, "In-Reply-To").is_some());
        let text = text_part(staff_reply);
        assert!(text.contains("We sent a fire extinguisher."), "{text}");
        assert!(!text.contains("Internal test reply"));
        let parsed = MessageParser::default()
            .parse(staff_reply.as_slice())
            .expect("parse");
        let files: Vec<_> = parsed
            .attachments()
            .map(|a| {
                (
                    a.attachment_name().unwrap_or_default().to_owned(),
                    a.contents().to_vec(),
                )
            })
            .collect();
        assert_eq!(
            files,
            vec![("receipt.txt".to_owned(), b"receipt #42".to_vec())]
        );
    }
    assert_ne!(
        header(&to_customer[1], "Message-ID"),
        header(&to_cc[0], "Message-ID"),
        "one Message-ID per recipient"
    );
    // Only the new-ticket alert reached staff: no note alert (off by default), no alert for
    // their own reply.
    assert_eq!(messages(&servers, &agent).await.len(), 1);
    assert!(
        messages(&servers, &desk_user).await.is_empty(),
        "nothing to our own address"
    );
    desk.stop();
    database.remove().await;
}

/// Customer mail comes in through IMAP; the autoresponse goes out; the customer answers it,
/// quoting it: the answer lands on the same ticket, quote stripped, with no second
/// autoresponse. An autoresponder answering our autoresponse gets nothing back.
async fn the_mail_loop_autoresponse_quoted_reply_and_an_autoresponder(backend: Backend) {
    let Some(servers) = servers() else { return };
    let (desk_user, customer, robot, agent) = (
        user(backend, 4),
        user(backend, 5),
        user(backend, 6),
        user(backend, 9),
    );
    for who in [&desk_user, &customer, &robot, &agent] {
        empty(&servers, who).await;
    }
    let Some((url, database)) = TestDatabase::create(backend).await else {
        return;
    };
    let mut desk = Desk::new(&url, &config(&servers.smtp, &desk_user, ""));
    let mailbox_url = format!(
        "imap://{desk_user}:{}@{}/INBOX",
        servers.password, servers.imap
    );
    let added = desk.cli(&[
        "mailbox",
        "add",
        &mailbox_url,
        "--delete",
        "--interval",
        "300",
    ]);
    assert!(
        added.status.success(),
        "{}",
        String::from_utf8_lossy(&added.stderr)
    );
    desk.add_staff("agent", &format!("{agent}@helpline.test"));
    desk.start().await;
    // Let the first fetch round finish and the IDLE session start (as mail_live does).
    tokio::time::sleep(Duration::from_millis(1500)).await;

    let tag = format!("{}-{}", std::process::id(), backend_name(backend));
    crate::mail_live::deliver(
        &servers.smtp,
        &desk_user,
        &format!(
            "From: Carl <{customer}@helpline.test>\r\nTo: {desk_user}@helpline.test\r\n\
             Subject: Broken login\r\nMessage-ID: <first-{tag}@customer.test>\r\n\r\n\
             I cannot log in since this morning.\r\n"
        ),
    )
    .await;
    let autoresponse = wait_for_mail(&servers, &customer, 1).await.remove(0);
    let our_id = header(&autoresponse, "Message-ID").expect("Message-ID");
    assert_eq!(
        header(&autoresponse, "In-Reply-To").as_deref(),
        Some(format!("<first-{tag}@customer.test>").as_str()),
        "the autoresponse answers the customer's mail"
    );
    let ticket_subject = subject(&autoresponse);

    // The customer answers, quoting the autoresponse below their text.
    let quoted: String = text_part(&autoresponse)
        .lines()
        .map(|line| format!("> {line}\r\n"))
        .collect();
    crate::mail_live::deliver(
        &servers.smtp,
        &desk_user,
        &format!(
            "From: Carl <{customer}@helpline.test>\r\nTo: {desk_user}@helpline.test\r\n\
             Subject: Re: {ticket_subject}\r\nMessage-ID: <second-{tag}@customer.test>\r\n\
             In-Reply-To: {our_id}\r\nReferences: <first-{tag}@customer.test> {our_id}\r\n\r\n\
             The error says: account locked.\r\n\r\n\
             On Thu, Dec 3, 2026 at 9:22 AM Acme Support <{desk_user}@helpline.test> wrote:\r\n{quoted}"
        ),
    )
    .await;
    // An autoresponder answers our autoresponse too.
    crate::mail_live::deliver(
        &servers.smtp,
        &desk_user,
        &format!(
            "From: Out Of Office <{robot}@helpline.test>\r\nTo: {desk_user}@helpline.test\r\n\
             Subject: Automatic reply: {ticket_subject}\r\nMessage-ID: <oof-{tag}@robot.test>\r\n\
             Auto-Submitted: auto-replied\r\nIn-Reply-To: {our_id}\r\n\r\nI am away until Monday.\r\n"
        ),
    )
    .await;

    let store = open_store(&url).await;
    let started = Instant::now();
    let entries = loop {
        let counts = store
            .reader()
            .await
            .expect("r")
            .row_counts()
            .await
            .expect("counts");
        if counts.entries >= 3 || started.elapsed() > Duration::from_secs(20) {
            assert_eq!(
                counts.tickets, 1,
                "both answers threaded onto the one ticket"
            );
            assert_eq!(
                counts.entries, 3,
                "the message, the reply and the auto-reply"
            );
            let ticket = store
                .reader()
                .await
                .expect("r")
                .tickets(&helpline_core::store::TicketQuery {
                    limit: 5,
                    ..Default::default()
                })
                .await
                .expect("tickets")
                .remove(0);
            break store
                .reader()
                .await
                .expect("r")
                .entries(ticket.id)
                .await
                .expect("entries");
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    let reply = entries
        .iter()
        .find(|e| e.mail.message_id.as_deref() == Some(&format!("<second-{tag}@customer.test>")))
        .expect("the customer's answer");
    assert_eq!(
        reply.body.as_str().trim(),
        "The error says: account locked."
    );
    let oof = entries
        .iter()
        .find(|e| e.mail.message_id.as_deref() == Some(&format!("<oof-{tag}@robot.test>")))
        .expect("the auto-reply is kept on the ticket");
    assert!(oof.flags.automatic);
    outbox_settled(&url).await;
    let mails = store
        .reader()
        .await
        .expect("r")
        .jobs(&JobQuery {
            kind: Some(JobKind::Mail),
            limit: 50,
            ..JobQuery::default()
        })
        .await
        .expect("jobs");
    assert_eq!(
        mails.len(),
        3,
        "the autoresponse, the new-ticket alert and the new-message alert for the customer's \
         answer — nothing for the auto-reply: {mails:?}"
    );
    let alerts = wait_for_mail(&servers, &agent, 2).await;
    let mut subjects: Vec<String> = alerts.iter().map(|m| subject(m)).collect();
    subjects.sort();
    assert!(subjects[0].starts_with("New Message Alert"), "{subjects:?}");
    assert!(subjects[1].starts_with("New Ticket Alert"), "{subjects:?}");
    assert!(
        text_part(
            alerts
                .iter()
                .find(|m| subject(m).starts_with("New Message"))
                .expect("alert")
        )
        .contains("account locked"),
        "the alert shows the customer's new text"
    );
    assert_eq!(
        messages(&servers, &customer).await.len(),
        1,
        "no second autoresponse"
    );
    assert!(
        messages(&servers, &robot).await.is_empty(),
        "nothing back to the autoresponder"
    );
    desk.stop();
    database.remove().await;
}

fn backend_name(backend: Backend) -> &'static str {
    match backend {
        Backend::Sqlite => "sqlite",
        Backend::Postgres => "postgres",
    }
}

/// What the receiver saw: per delivery, the webhook-id and the event's own id and type.
#[derive(Default)]
struct Received {
    deliveries: Vec<(String, String, String)>,
    bad_signatures: usize,
    /// Answer 500 to this many requests first.
    fail_first: usize,
}

/// A webhook receiver on loopback that verifies every signature with `secret` (set later).
async fn receiver(
    state: Arc<Mutex<Received>>,
    secret: Arc<Mutex<Option<helpline_outbox::webhook::WebhookSecret>>>,
    delay: Duration,
) -> SocketAddr {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let address = listener.local_addr().expect("address");
    tokio::spawn(async move {
        loop {
            let Ok((mut stream, _)) = listener.accept().await else {
                return;
            };
            let state = Arc::clone(&state);
            let secret = Arc::clone(&secret);
            tokio::spawn(async move {
                let mut raw = Vec::new();
                let mut buffer = [0u8; 8192];
                let (head, body) = loop {
                    let Ok(read) = stream.read(&mut buffer).await else {
                        return;
                    };
                    if read == 0 {
                        return;
                    }
                    raw.extend_from_slice(&buffer[..read]);
                    if let Some(at) = raw.windows(4).position(|w| w == b"\r\n\r\n") {
                        let head = String::from_utf8_lossy(&raw[..at]).into_owned();
                        let length: usize = head
                            .lines()
                            .find_map(|l| {
                                let (name, value) = l.split_once(':')?;
                                name.eq_ignore_ascii_case("content-length")
                                    .then(|| value.trim().parse().ok())?
                            })
                            .unwrap_or(0);
                        while raw.len() < at + 4 + length {
                            let Ok(read) = stream.read(&mut buffer).await else {
                                return;
                            };
                            if read == 0 {
                                return;
                            }
                            raw.extend_from_slice(&buffer[..read]);
                        }
                        break (head, raw[at + 4..at + 4 + length].to_vec());
                    }
                };
                let get = |name: &str| {
                    head.lines()
                        .find_map(|l| {
                            let (n, v) = l.split_once(':')?;
                            n.trim()
                                .eq_ignore_ascii_case(name)
                                .then(|| v.trim().to_owned())
                        })
                        .unwrap_or_default()
                };
                let (id, timestamp, signature) = (
                    get("webhook-id"),
                    get("webhook-timestamp"),
                    get("webhook-signature"),
                );
                tokio::time::sleep(delay).await;
                let verified = secret.lock().expect("lock").as_ref().is_some_and(|secret| {
                    helpline_outbox::webhook::verify(
                        secret,
                        &id,
                        &timestamp,
                        &signature,
                        &body,
                        time::OffsetDateTime::now_utc().unix_timestamp(),
                        300,
                    )
                    .is_ok()
                });
                let status = {
                    let mut state = state.lock().expect("lock");
                    if !verified {
                        state.bad_signatures += 1;
                        "401 Unauthorized"
                    } else if state.fail_first > 0 {
                        state.fail_first -= 1;
                        "500 Internal Server Error"
                    } else {
                        let event: serde_json::Value =
                            serde_json::from_slice(&body).unwrap_or_default();
                        state.deliveries.push((
                            id,
                            event["id"].as_str().unwrap_or_default().to_owned(),
                            event["type"].as_str().unwrap_or_default().to_owned(),
                        ));
                        "200 OK"
                    }
                };
                let answer =
                    format!("HTTP/1.1 {status}\r\nContent-Length: 0\r\nConnection: close\r\n\r\n");
                let _ = stream.write_all(answer.as_bytes()).await;
            });
        }
    });
    address
}

/// Every event reaches a receiver that checks each signature, through a SIGKILL of the server
/// in the middle of delivering: after the restart every event has arrived at least once, and a
/// repeated delivery carries the same webhook-id. Deliveries that keep failing are parked as
/// dead and `helpline outbox retry --all-dead` sends them again.
async fn signed_webhooks_survive_a_sigkill_and_dead_deliveries_are_retried(backend: Backend) {
    let Some((url, database)) = TestDatabase::create(backend).await else {
        return;
    };
    let state = Arc::new(Mutex::new(Received::default()));
    let secret = Arc::new(Mutex::new(None));
    let address = receiver(
        Arc::clone(&state),
        Arc::clone(&secret),
        Duration::from_millis(15),
    )
    .await;
    let mut desk = Desk::new(
        &url,
        "outbox_retry_seconds = 0.2\noutbox_max_attempts = 3\n",
    );
    let added = desk.cli(&[
        "webhook",
        "add",
        &format!("http://{address}/hooks"),
        "--event",
        "ticket.created",
        "--event",
        "reply.created",
        "--json",
    ]);
    assert!(
        added.status.success(),
        "{}",
        String::from_utf8_lossy(&added.stderr)
    );
    let answer: serde_json::Value = serde_json::from_slice(&added.stdout).expect("json");
    let text = answer["secret"].as_str().expect("secret");
    *secret.lock().expect("lock") =
        Some(helpline_outbox::webhook::WebhookSecret::parse(text).expect("whsec_ secret"));
    desk.add_staff("hooker", "hook.agent@example.com");
    let key = admin_key(&url).await;
    desk.start().await;

    const TICKETS: usize = 40;
    let mut numbers = Vec::new();
    for i in 0..TICKETS {
        let created = desk
            .v1(
                "POST",
                "/api/v1/tickets",
                &key,
                serde_json::json!({"email": format!("hook{i}@example.com"), "subject": format!("Hook {i}"), "message": "Hello"}),
            )
            .await;
        assert_eq!(created.status, 201, "{}", created.text());
        let ticket: serde_json::Value = serde_json::from_slice(&created.body).expect("json");
        numbers.push(ticket["number"].as_str().expect("number").to_owned());
    }
    // Kill the server while it is delivering.
    let started = Instant::now();
    while state.lock().expect("lock").deliveries.len() < 5
        && started.elapsed() < Duration::from_secs(20)
    {
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    desk.sigkill();
    let at_kill = state.lock().expect("lock").deliveries.len();
    assert!(
        at_kill < TICKETS,
        "killed mid-way ({at_kill} of {TICKETS} delivered)"
    );
    desk.start().await;

    let wait_for = |want: usize| {
        let state = Arc::clone(&state);
        async move {
            let started = Instant::now();
            loop {
                let distinct: BTreeSet<String> = state
                    .lock()
                    .expect("lock")
                    .deliveries
                    .iter()
                    .map(|d| d.1.clone())
                    .collect();
                if distinct.len() >= want || started.elapsed() > Duration::from_secs(30) {
                    return distinct.len();
                }
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
        }
    };
    assert_eq!(
        wait_for(TICKETS).await,
        TICKETS,
        "every event delivered after the restart"
    );
    {
        let state = state.lock().expect("lock");
        assert_eq!(state.bad_signatures, 0, "every signature verified");
        let mut ids: BTreeMap<&str, BTreeSet<&str>> = BTreeMap::new();
        for (webhook_id, event_id, kind) in &state.deliveries {
            assert_eq!(kind, "ticket.created");
            ids.entry(event_id).or_default().insert(webhook_id);
        }
        for (event, webhook_ids) in &ids {
            assert_eq!(
                webhook_ids.len(),
                1,
                "duplicates of {event} carry one webhook-id"
            );
        }
        println!(
            "webhooks: {} deliveries for {TICKETS} events ({at_kill} before the SIGKILL)",
            state.deliveries.len()
        );
    }

    // A receiver failing more often than outbox_max_attempts allows: the delivery is parked.
    state.lock().expect("lock").fail_first = 3;
    let reply = desk
        .v1(
            "POST",
            &format!("/api/v1/tickets/{}/replies", numbers[0]),
            &key,
            serde_json::json!({"staff": "hooker", "message": "Parked?"}),
        )
        .await;
    assert_eq!(reply.status, 201, "{}", reply.text());
    let store = open_store(&url).await;
    let started = Instant::now();
    loop {
        let dead = store
            .reader()
            .await
            .expect("r")
            .jobs(&JobQuery {
                state: Some(JobState::Dead),
                limit: 10,
                ..JobQuery::default()
            })
            .await
            .expect("jobs");
        if let Some(job) = dead.first() {
            assert_eq!(job.attempts, 3);
            assert!(
                job.last_result
                    .as_deref()
                    .unwrap_or_default()
                    .contains("HTTP 500"),
                "{job:?}"
            );
            break;
        }
        assert!(
            started.elapsed() < Duration::from_secs(20),
            "the delivery is parked as dead"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let listed = desk.cli(&["outbox", "list"]);
    assert!(String::from_utf8_lossy(&listed.stdout).contains("HTTP 500"));
    let retried = desk.cli(&["outbox", "retry", "--all-dead"]);
    assert!(
        retried.status.success(),
        "{}",
        String::from_utf8_lossy(&retried.stderr)
    );
    assert!(String::from_utf8_lossy(&retried.stdout).starts_with("1 of 1"));
    let started = Instant::now();
    while !state
        .lock()
        .expect("lock")
        .deliveries
        .iter()
        .any(|d| d.2 == "reply.created")
    {
        assert!(
            started.elapsed() < Duration::from_secs(20),
            "the retried delivery arrives"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    desk.stop();
    database.remove().await;
}

/// Every kind of change becomes its event, in the order the changes happened, with the ticket,
/// the entry and the details (the outbox worker run in-process, no mail server needed).
async fn every_change_reaches_webhooks_as_its_event_in_order(backend: Backend) {
    let Some(app) = crate::support::TestApp::spawn(backend).await else {
        return;
    };
    let state = Arc::new(Mutex::new(Received::default()));
    let secret = helpline_outbox::webhook::WebhookSecret::generate();
    let address = receiver(
        Arc::clone(&state),
        Arc::new(Mutex::new(Some(secret.clone()))),
        Duration::ZERO,
    )
    .await;
    let new = helpline_core::outbox::NewWebhook {
        url: format!("http://{address}/all"),
        events: helpline_core::outbox::EventType::ALL.to_vec(),
        secret: secret.to_text(),
        description: None,
    };
    app.store
        .write(move |tx| {
            Box::pin(async move { Ok(tx.insert_webhook(&new, helpline_core::now()).await?) })
        })
        .await
        .expect("webhook");
    let staff = helpline_core::catalog::NewStaff {
        username: "alice".into(),
        name: "Alice Agent".into(),
        email: helpline_core::email::EmailAddress::parse("alice@desk.example").expect("email"),
        department_id: helpline_core::ids::DepartmentId(1),
    };
    app.store
        .write(move |tx| {
            Box::pin(async move { Ok(tx.insert_staff(&staff, helpline_core::now()).await?) })
        })
        .await
        .expect("staff");
    let key = app.key_with(&[Scope::Admin]).await;
    let created = app
        .v1(
            "POST",
            "/api/v1/tickets",
            &key,
            Some(serde_json::json!({
                "email": "ann@example.com", "subject": "Every event", "message": "First words",
            })),
        )
        .await;
    assert_eq!(created.status, 201);
    let number = created.json["number"].as_str().expect("number").to_owned();
    let path = |tail: &str| format!("/api/v1/tickets/{number}{tail}");
    for (method, tail, body) in [
        ("PATCH", "", serde_json::json!({"priority_id": 3})),
        (
            "POST",
            "/replies",
            serde_json::json!({"staff": "alice", "message": "Fixed", "status": "Resolved"}),
        ),
        (
            "POST",
            "/notes",
            serde_json::json!({"staff": "alice", "message": "Watch it"}),
        ),
        (
            "POST",
            "/messages",
            serde_json::json!({"email": "ann@example.com", "message": "Broken again"}),
        ),
        (
            "POST",
            "/collaborators",
            serde_json::json!({"email": "cc@example.com"}),
        ),
    ] {
        let reply = app.v1(method, &path(tail), &key, Some(body)).await;
        assert!(
            reply.status < 300,
            "{method} {tail}: {} {}",
            reply.status,
            reply.json
        );
    }
    let intake = helpline_mail::pipeline::IntakeSettings::load(&*app.store, Vec::new())
        .await
        .expect("intake");
    let outbox = helpline_outbox::Outbox::new(
        Arc::clone(&app.store),
        helpline_outbox::OutboxSettings::default(),
        helpline_outbox::MailSetup {
            notices: helpline_core::notices::NoticeSettings::default(),
            transport: None,
            templates: Arc::new(helpline_mail::outbound::Templates::builtin()),
            secret: intake.secret,
            desk_name: "Desk".into(),
        },
        helpline_outbox::webhook::WebhookClient::new(
            Duration::from_secs(5),
            helpline_mail::tls::TlsSettings::public_roots().client_config(),
        ),
    );
    let mut rounds = 0;
    loop {
        let report = outbox.run_round().await.expect("round");
        rounds += 1;
        if report.claimed == 0 || rounds > 20 {
            break;
        }
    }
    {
        let received = state.lock().expect("lock");
        assert_eq!(received.bad_signatures, 0);
        let ids: BTreeSet<&str> = received.deliveries.iter().map(|d| d.1.as_str()).collect();
        assert_eq!(ids.len(), 8, "every event delivered, each with its own id");
    }
    let log = app
        .store
        .reader()
        .await
        .expect("r")
        .jobs(&JobQuery {
            kind: Some(JobKind::Webhook),
            limit: 50,
            ..JobQuery::default()
        })
        .await
        .expect("jobs");
    assert!(log.iter().all(|job| job.state == JobState::Done), "{log:?}");
    // Deliveries go out concurrently; the order of the changes is the order of the log.
    let kinds: Vec<String> = log
        .iter()
        .rev()
        .map(|job| {
            let body: serde_json::Value = serde_json::from_str(&job.payload).expect("payload");
            body["type"].as_str().unwrap_or_default().to_owned()
        })
        .collect();
    assert_eq!(
        kinds,
        vec![
            "ticket.created",
            "ticket.updated",
            "status.changed",
            "reply.created",
            "note.created",
            "status.changed",
            "message.created",
            "ticket.updated",
        ],
        "one event per change, in order (a status change made with a reply, or by a reopening \
         message, is announced first)"
    );
    let body: serde_json::Value =
        serde_json::from_str(&log.last().expect("first delivery").payload).expect("payload");
    assert_eq!(body["type"], "ticket.created");
    assert_eq!(body["data"]["ticket"]["number"], number.as_str());
    assert_eq!(
        body["data"]["ticket"]["customer"]["email"],
        "ann@example.com"
    );
    assert_eq!(body["data"]["entry"]["body"], "First words");
    let updated: serde_json::Value =
        serde_json::from_str(&log[log.len() - 2].payload).expect("payload");
    // Each event shows the ticket as its change left it, though all were dispatched later.
    let states: Vec<(String, String, String)> = log
        .iter()
        .rev()
        .map(|job| {
            let body: serde_json::Value = serde_json::from_str(&job.payload).expect("payload");
            let ticket = &body["data"]["ticket"];
            (
                body["type"].as_str().unwrap_or_default().to_owned(),
                ticket["status"].as_str().unwrap_or_default().to_owned(),
                ticket["priority"].as_str().unwrap_or_default().to_owned(),
            )
        })
        .collect();
    let expected: Vec<(String, String, String)> = [
        ("ticket.created", "Open", "Normal"),
        ("ticket.updated", "Open", "High"),
        ("status.changed", "Resolved", "High"),
        ("reply.created", "Resolved", "High"),
        ("note.created", "Resolved", "High"),
        ("status.changed", "Open", "High"),
        ("message.created", "Open", "High"),
        ("ticket.updated", "Open", "High"),
    ]
    .iter()
    .map(|(a, b, c)| ((*a).to_owned(), (*b).to_owned(), (*c).to_owned()))
    .collect();
    assert_eq!(states, expected);
    assert_eq!(
        updated["data"]["details"]["changes"]["priority_id"],
        serde_json::json!([2, 3])
    );
    app.finish().await;
}

/// At most `autoresponse_limit` autoresponses go to one address in the window; the tickets
/// themselves are all opened. `helpline mail test-send` delivers through the configured server.
async fn autoresponses_are_limited_per_recipient_and_test_send_works(backend: Backend) {
    let Some(servers) = servers() else { return };
    let (desk_user, customer) = (user(backend, 7), user(backend, 8));
    for who in [&desk_user, &customer] {
        empty(&servers, who).await;
    }
    let Some((url, database)) = TestDatabase::create(backend).await else {
        return;
    };
    let mut desk = Desk::new(
        &url,
        &config(
            &servers.smtp,
            &desk_user,
            "[notifications]\nautoresponse_limit = 2\n",
        ),
    );
    let sent = desk.cli(&["mail", "test-send", &format!("{customer}@helpline.test")]);
    assert!(
        sent.status.success(),
        "{}",
        String::from_utf8_lossy(&sent.stderr)
    );
    let test = wait_for_mail(&servers, &customer, 1).await.remove(0);
    assert_eq!(subject(&test), "Helpline test message");
    empty(&servers, &customer).await;

    let key = admin_key(&url).await;
    desk.start().await;
    for i in 0..3 {
        let created = desk
            .v1(
                "POST",
                "/api/v1/tickets",
                &key,
                serde_json::json!({"email": format!("{customer}@helpline.test"), "subject": format!("Flood {i}"), "message": "m"}),
            )
            .await;
        assert_eq!(created.status, 201, "{}", created.text());
    }
    outbox_settled(&url).await;
    let received = wait_for_mail(&servers, &customer, 2).await;
    assert!(
        received
            .iter()
            .all(|m| subject(m).starts_with("Support Ticket Opened"))
    );
    let store = open_store(&url).await;
    let counts = store
        .reader()
        .await
        .expect("r")
        .row_counts()
        .await
        .expect("counts");
    assert_eq!(counts.tickets, 3, "every ticket is opened");
    let dispatched = store
        .reader()
        .await
        .expect("r")
        .jobs(&JobQuery {
            kind: Some(JobKind::Dispatch),
            limit: 10,
            ..JobQuery::default()
        })
        .await
        .expect("jobs");
    assert!(
        dispatched.iter().any(|j| j
            .last_result
            .as_deref()
            .unwrap_or_default()
            .contains("1 autoresponse(s) over the limit")),
        "{dispatched:?}"
    );
    desk.stop();
    database.remove().await;
}

/// Two `helpline serve` nodes on one database and one host, both running the outbox: every
/// event is delivered exactly once (no crash, so no repeat), whichever node took the request —
/// the second node's start does not take over the first one's claims.
async fn two_nodes_on_one_database_deliver_each_event_once(backend: Backend) {
    let Some((url, database)) = TestDatabase::create(backend).await else {
        return;
    };
    let state = Arc::new(Mutex::new(Received::default()));
    let secret = Arc::new(Mutex::new(None));
    let address = receiver(
        Arc::clone(&state),
        Arc::clone(&secret),
        Duration::from_millis(2),
    )
    .await;
    let mut first = Desk::new(&url, "");
    let mut second = Desk::new(&url, "");
    let added = first.cli(&[
        "webhook",
        "add",
        &format!("http://{address}/hooks"),
        "--event",
        "ticket.created",
        "--json",
    ]);
    assert!(
        added.status.success(),
        "{}",
        String::from_utf8_lossy(&added.stderr)
    );
    let answer: serde_json::Value = serde_json::from_slice(&added.stdout).expect("json");
    *secret.lock().expect("lock") = Some(
        helpline_outbox::webhook::WebhookSecret::parse(answer["secret"].as_str().expect("secret"))
            .expect("secret"),
    );
    let key = admin_key(&url).await;
    first.start().await;
    second.start().await;
    const TICKETS: usize = 30;
    for i in 0..TICKETS {
        let node = if i % 2 == 0 { &first } else { &second };
        let created = node
            .v1(
                "POST",
                "/api/v1/tickets",
                &key,
                serde_json::json!({"email": format!("two{i}@example.com"), "subject": "Two nodes", "message": "m"}),
            )
            .await;
        assert_eq!(created.status, 201, "{}", created.text());
    }
    let started = Instant::now();
    while state.lock().expect("lock").deliveries.len() < TICKETS {
        assert!(
            started.elapsed() < Duration::from_secs(20),
            "every event delivered"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    outbox_settled(&url).await;
    // Anything sent twice would have arrived by now.
    tokio::time::sleep(Duration::from_millis(500)).await;
    {
        let received = state.lock().expect("lock");
        let events: BTreeSet<&str> = received.deliveries.iter().map(|d| d.1.as_str()).collect();
        assert_eq!(events.len(), TICKETS);
        assert_eq!(
            received.deliveries.len(),
            TICKETS,
            "no event delivered twice"
        );
        assert_eq!(received.bad_signatures, 0);
    }
    first.stop();
    second.stop();
    database.remove().await;
}

/// `helpline outbox run` (for set-ups without `serve`) expands and delivers what is due, then
/// exits; `outbox list` shows the jobs it finished.
async fn outbox_run_works_the_queue_and_exits(backend: Backend) {
    let Some((url, database)) = TestDatabase::create(backend).await else {
        return;
    };
    let state = Arc::new(Mutex::new(Received::default()));
    let secret = Arc::new(Mutex::new(None));
    let address = receiver(Arc::clone(&state), Arc::clone(&secret), Duration::ZERO).await;
    let desk = Arc::new(Desk::new(&url, ""));
    let added = desk.cli(&[
        "webhook",
        "add",
        &format!("http://{address}/run"),
        "--event",
        "ticket.created",
        "--json",
    ]);
    let answer: serde_json::Value = serde_json::from_slice(&added.stdout).expect("json");
    *secret.lock().expect("lock") = Some(
        helpline_outbox::webhook::WebhookSecret::parse(answer["secret"].as_str().expect("secret"))
            .expect("secret"),
    );
    let store = open_store(&url).await;
    helpline_core::service::tickets::open_ticket(
        &*store,
        &helpline_core::service::DeskSettings::default(),
        helpline_core::ticket::NewTicket {
            contact: helpline_core::user::CustomerContact {
                email: helpline_core::email::EmailAddress::parse("run@example.com").expect("email"),
                name: None,
                phone: None,
                notes: None,
            },
            subject: helpline_core::ticket::Subject::parse("Queued").expect("subject"),
            message: helpline_core::body::MessageBody::parse(
                "Deliver me",
                helpline_core::body::BodyFormat::Text,
            )
            .expect("body"),
            topic_id: None,
            priority_id: None,
            source: helpline_core::ticket::Source::Api,
            ip: None,
            attachments: Vec::new(),
            notify: Default::default(),
            mail: Default::default(),
            flags: Default::default(),
        },
        Actor::system(),
    )
    .await
    .expect("ticket");
    let runner = Arc::clone(&desk);
    let ran = tokio::task::spawn_blocking(move || runner.cli(&["outbox", "run"]))
        .await
        .expect("outbox run");
    let out = String::from_utf8_lossy(&ran.stdout).into_owned();
    assert!(
        ran.status.success(),
        "{}",
        String::from_utf8_lossy(&ran.stderr)
    );
    assert!(
        out.contains("1 change(s) dispatched") && out.contains("1 webhook delivery(ies)"),
        "{out}"
    );
    assert_eq!(state.lock().expect("lock").deliveries.len(), 1);
    let lister = Arc::clone(&desk);
    let listed = tokio::task::spawn_blocking(move || {
        lister.cli(&["outbox", "list", "--state", "done", "--json"])
    })
    .await
    .expect("outbox list");
    let jobs: serde_json::Value = serde_json::from_slice(&listed.stdout).expect("json");
    let kinds: Vec<&str> = jobs
        .as_array()
        .expect("list")
        .iter()
        .map(|j| j["kind"].as_str().unwrap_or_default())
        .collect();
    assert_eq!(kinds, vec!["webhook", "dispatch"]);
    database.remove().await;
}
