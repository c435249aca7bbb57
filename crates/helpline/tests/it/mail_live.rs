//! Mail intake end to end against real servers on loopback (Dovecot IMAP and POP3, an SMTP
//! server delivering into Dovecot's mailboxes), as `scripts/test` starts them: mail delivered by
//! SMTP becomes tickets through `helpline mail fetch` and through `helpline serve` with IMAP
//! IDLE; fetched messages are archived, flagged or deleted as the mailbox says.

use crate::cli::helpline;
use crate::on_both_stores;
use crate::support::{Backend, TestDatabase};
use helpline_mail::imap::ImapMailbox;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};
use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};

on_both_stores!(
    mail_fetch_takes_imap_and_pop3_mail_and_archives_or_deletes_it,
    serve_takes_imap_mail_in_within_seconds_by_idle,
    sigkill_during_import_loses_and_doubles_nothing,
    mail_fetch_over_tls_trusts_the_configured_ca_only,
);

/// Test mailbox users by store, so the SQLite and PostgreSQL runs of a test, which run at the
/// same time, never share a mailbox.
fn user_index(backend: Backend, index: usize) -> usize {
    match backend {
        Backend::Sqlite => index,
        Backend::Postgres => index + 8,
    }
}

/// The servers, or `None` to skip (never on CI).
struct Servers {
    imap: String,
    pop3: String,
    smtp: String,
    users: Vec<String>,
    password: String,
}

fn servers() -> Option<Servers> {
    let get = |name: &str| std::env::var(name).ok().filter(|v| !v.is_empty());
    match (
        get("HELPLINE_TEST_IMAP"),
        get("HELPLINE_TEST_POP3"),
        get("HELPLINE_TEST_SMTP"),
        get("HELPLINE_TEST_MAIL_USERS"),
    ) {
        (Some(imap), Some(pop3), Some(smtp), Some(users)) => Some(Servers {
            imap,
            pop3,
            smtp,
            users: users.split(',').map(str::to_owned).collect(),
            password: get("HELPLINE_TEST_MAIL_PASSWORD").unwrap_or_else(|| "secret".into()),
        }),
        _ => {
            let ci = std::env::var("CI").is_ok_and(|v| v == "true" || v == "1");
            assert!(
                !ci,
                "the mail servers must run on CI (scripts/test starts them)"
            );
            eprintln!("skipping a live mail test: HELPLINE_TEST_IMAP and friends are not set");
            None
        }
    }
}

/// Delivers one message over SMTP to `user`.
pub(crate) async fn deliver(smtp: &str, user: &str, raw: &str) {
    let stream = tokio::net::TcpStream::connect(smtp)
        .await
        .expect("SMTP connect");
    let (read, mut write) = stream.into_split();
    let mut lines = BufReader::new(read).lines();
    let mut expect = async |code: &str| {
        loop {
            let line = lines
                .next_line()
                .await
                .expect("SMTP read")
                .expect("SMTP line");
            assert!(line.starts_with(code), "SMTP expected {code}, got {line}");
            if line.as_bytes().get(3) != Some(&b'-') {
                break;
            }
        }
    };
    expect("220").await;
    for (command, code) in [
        ("EHLO test.local".to_owned(), "250"),
        ("MAIL FROM:<sender@example.com>".to_owned(), "250"),
        (format!("RCPT TO:<{user}@helpline.test>"), "250"),
        ("DATA".to_owned(), "354"),
    ] {
        write
            .write_all(format!("{command}\r\n").as_bytes())
            .await
            .expect("SMTP write");
        expect(code).await;
    }
    let mut body = String::new();
    for line in raw.split("\r\n") {
        if line.starts_with('.') {
            body.push('.');
        }
        body.push_str(line);
        body.push_str("\r\n");
    }
    write
        .write_all(format!("{body}.\r\n").as_bytes())
        .await
        .expect("SMTP data");
    expect("250").await;
    write.write_all(b"QUIT\r\n").await.expect("SMTP quit");
}

fn mail(from: &str, subject: &str, id: &str) -> String {
    format!(
        "From: {from}\r\nTo: support@helpline.test\r\nSubject: {subject}\r\nMessage-ID: <{id}>\r\n\r\nHello from {from}.\r\n"
    )
}

async fn tickets_in(url: &str) -> i64 {
    let store = crate::support::open_store(url).await;
    let counts = store
        .reader()
        .await
        .expect("r")
        .row_counts()
        .await
        .expect("counts");
    counts.tickets
}

fn unique(tag: &str) -> String {
    format!(
        "{tag}-{}-{}",
        std::process::id(),
        Instant::now().elapsed().as_nanos()
    )
}

async fn mail_fetch_takes_imap_and_pop3_mail_and_archives_or_deletes_it(backend: Backend) {
    let Some(servers) = servers() else { return };
    let (imap_user, pop3_user) = (
        &servers.users[user_index(backend, 0)],
        &servers.users[user_index(backend, 1)],
    );
    let dir = tempfile::tempdir().expect("dir");
    let Some((url, database)) = TestDatabase::create(backend).await else {
        return;
    };
    let run = |args: &[&str]| {
        let mut all = args.to_vec();
        all.extend(["--database", url.as_str()]);
        helpline(&all, &[], dir.path())
    };
    // Start from empty mailboxes: whatever earlier runs left is taken away first.
    let imap_url = format!(
        "imap://{imap_user}:{}@{}/INBOX",
        servers.password, servers.imap
    );
    let pop3_url = format!("pop3://{pop3_user}:{}@{}", servers.password, servers.pop3);
    assert!(
        run(&["mailbox", "add", &imap_url, "--archive", "HelplineDone"])
            .status
            .success()
    );
    assert!(run(&["mailbox", "add", &pop3_url]).status.success());
    let drained = run(&["mail", "fetch"]);
    assert!(
        drained.status.success(),
        "{}",
        String::from_utf8_lossy(&drained.stderr)
    );
    let before = tickets_in(&url).await;

    let tag = unique("fetch");
    deliver(
        &servers.smtp,
        imap_user,
        &mail(
            "ann@example.com",
            "By IMAP",
            &format!("{tag}-1@example.com"),
        ),
    )
    .await;
    deliver(
        &servers.smtp,
        imap_user,
        &mail(
            "bob@example.com",
            "By IMAP too",
            &format!("{tag}-2@example.com"),
        ),
    )
    .await;
    deliver(
        &servers.smtp,
        pop3_user,
        &mail("cy@example.com", "By POP3", &format!("{tag}-3@example.com")),
    )
    .await;
    let fetched = run(&["mail", "fetch"]);
    let out = String::from_utf8_lossy(&fetched.stdout).into_owned();
    assert!(
        fetched.status.success(),
        "{out}{}",
        String::from_utf8_lossy(&fetched.stderr)
    );
    assert!(out.contains("INBOX: 2 new"), "{out}");
    assert!(out.contains(":110") || out.contains("1 new"), "{out}");
    assert_eq!(
        tickets_in(&url).await - before,
        3,
        "three messages, three tickets"
    );

    // IMAP: moved to the archive folder; POP3: deleted. A second round finds nothing new.
    let (host_port, password) = (servers.imap.as_str(), servers.password.as_str());
    let mut inbox = ImapMailbox::connect(
        host_port,
        imap_user,
        password,
        "INBOX",
        Duration::from_secs(10),
    )
    .await
    .expect("imap");
    assert!(
        inbox.unseen_uids().await.expect("uids").is_empty(),
        "nothing left unseen in INBOX"
    );
    inbox.logout().await.expect("logout");
    let archive = ImapMailbox::connect(
        host_port,
        imap_user,
        password,
        "HelplineDone",
        Duration::from_secs(10),
    )
    .await
    .expect("archive");
    let _ = archive.logout().await;
    let again = run(&["mail", "fetch"]);
    let out = String::from_utf8_lossy(&again.stdout).into_owned();
    assert!(out.contains("INBOX: 0 new"), "{out}");
    assert_eq!(tickets_in(&url).await - before, 3, "nothing taken in twice");
    let listed = String::from_utf8_lossy(&run(&["mailbox", "list"]).stdout).into_owned();
    assert!(!listed.contains(&format!(":{password}@")), "{listed}");
    // A message someone reads in a mail client before Helpline gets to it is still taken in.
    let (host_port, password) = (servers.imap.as_str(), servers.password.as_str());
    deliver(
        &servers.smtp,
        imap_user,
        &mail(
            "eve@example.com",
            "Read before fetch",
            &format!("{tag}-read@example.com"),
        ),
    )
    .await;
    let mut client = ImapMailbox::connect(
        host_port,
        imap_user,
        password,
        "INBOX",
        Duration::from_secs(10),
    )
    .await
    .expect("imap");
    for uid in client.unseen_uids().await.expect("uids") {
        client.mark_seen(uid).await.expect("seen");
    }
    let _ = client.logout().await;
    let read = run(&["mail", "fetch"]);
    let out = String::from_utf8_lossy(&read.stdout).into_owned();
    assert!(
        out.contains("INBOX: 1 new"),
        "a read message is taken in too: {out}"
    );
    assert_eq!(tickets_in(&url).await - before, 4);
    database.remove().await;
}

async fn serve_takes_imap_mail_in_within_seconds_by_idle(backend: Backend) {
    let Some(servers) = servers() else { return };
    let user = &servers.users[user_index(backend, 2)];
    let dir = tempfile::tempdir().expect("dir");
    let Some((url, database)) = TestDatabase::create(backend).await else {
        return;
    };
    let imap_url = format!("imap://{user}:{}@{}/INBOX", servers.password, servers.imap);
    let added = helpline(
        &[
            "mailbox",
            "add",
            &imap_url,
            "--delete",
            "--interval",
            "300",
            "--database",
            &url,
        ],
        &[],
        dir.path(),
    );
    assert!(
        added.status.success(),
        "{}",
        String::from_utf8_lossy(&added.stderr)
    );
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .expect("port")
        .port();
    let mut child = Command::new(env!("CARGO_BIN_EXE_helpline"))
        .args([
            "serve",
            "--database",
            &url,
            "--listen",
            &format!("127.0.0.1:{port}"),
        ])
        .current_dir(dir.path())
        .env("HELPLINE_LOG", "warn")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("serve");
    // Let the first round drain the mailbox and the IDLE session start.
    tokio::time::sleep(Duration::from_millis(1500)).await;
    let before = tickets_in(&url).await;
    let tag = unique("idle");
    let sent = Instant::now();
    deliver(
        &servers.smtp,
        user,
        &mail(
            "dee@example.com",
            "Arrives by IDLE",
            &format!("{tag}@example.com"),
        ),
    )
    .await;
    let mut arrived = None;
    while sent.elapsed() < Duration::from_secs(10) {
        if tickets_in(&url).await > before {
            arrived = Some(sent.elapsed());
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    // A reply to it, delivered the same way, threads onto the same ticket.
    let reply = format!(
        "From: dee@example.com\r\nTo: support@helpline.test\r\nSubject: Re: Arrives by IDLE\r\n\
         Message-ID: <{tag}-reply@example.com>\r\nIn-Reply-To: <{tag}@example.com>\r\n\r\nAnd a reply.\r\n"
    );
    let replied = Instant::now();
    deliver(&servers.smtp, user, &reply).await;
    let mut threaded = false;
    while replied.elapsed() < Duration::from_secs(10) {
        let store = crate::support::open_store(&url).await;
        let counts = store
            .reader()
            .await
            .expect("r")
            .row_counts()
            .await
            .expect("counts");
        if counts.entries > counts.tickets {
            threaded = counts.tickets == before + 1;
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let _ = Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status();
    let _ = child.wait();
    assert!(
        threaded,
        "the reply became an entry of the same ticket, not a new ticket"
    );
    let arrived = arrived.expect("the message became a ticket");
    println!("IMAP IDLE: delivered to ticket in {arrived:?}");
    assert!(
        arrived < Duration::from_secs(2),
        "took {arrived:?}, the poll interval is 300 s: IDLE was not used"
    );
    database.remove().await;
}

/// The server is killed with SIGKILL at many points while it takes in a mailbox of 300
/// messages, and restarted each time: in the end every message is exactly one ticket, none is
/// lost, none doubled, and the mailbox is emptied.
async fn sigkill_during_import_loses_and_doubles_nothing(backend: Backend) {
    let Some(servers) = servers() else { return };
    let user = &servers.users[user_index(backend, 3)];
    let dir = tempfile::tempdir().expect("dir");
    let Some((url, database)) = TestDatabase::create(backend).await else {
        return;
    };
    let imap_url = format!("imap://{user}:{}@{}/INBOX", servers.password, servers.imap);
    let added = helpline(
        &[
            "mailbox",
            "add",
            &imap_url,
            "--archive",
            "KillDone",
            "--interval",
            "5",
            "--database",
            &url,
        ],
        &[],
        dir.path(),
    );
    assert!(
        added.status.success(),
        "{}",
        String::from_utf8_lossy(&added.stderr)
    );
    // Whatever earlier runs left behind is taken in first, so only this run's mail counts.
    assert!(
        helpline(&["mail", "fetch", "--database", &url], &[], dir.path())
            .status
            .success()
    );
    let before = tickets_in(&url).await;

    let tag = unique("kill");
    for i in 0..300 {
        let from = format!("k{}@example.com", i % 13);
        deliver(
            &servers.smtp,
            user,
            &mail(
                &from,
                &format!("Kill test {i}"),
                &format!("{tag}-{i}@example.com"),
            ),
        )
        .await;
    }
    let mut kills = 0;
    let mut progress = Vec::new();
    for delay_ms in [120u64, 350, 90, 600, 240, 800, 170, 450, 60, 700] {
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .and_then(|l| l.local_addr())
            .expect("port")
            .port();
        let mut child = Command::new(env!("CARGO_BIN_EXE_helpline"))
            .args([
                "serve",
                "--database",
                &url,
                "--listen",
                &format!("127.0.0.1:{port}"),
            ])
            .current_dir(dir.path())
            .env("HELPLINE_LOG", "warn")
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("serve");
        tokio::time::sleep(Duration::from_millis(delay_ms)).await;
        let _ = Command::new("kill")
            .args(["-KILL", &child.id().to_string()])
            .status();
        let _ = child.wait();
        kills += 1;
        let done = tickets_in(&url).await - before;
        progress.push(done);
        if done == 300 {
            break;
        }
    }
    // A last, uninterrupted round finishes what the killed ones left.
    let finish = helpline(&["mail", "fetch", "--database", &url], &[], dir.path());
    assert!(
        finish.status.success(),
        "{}",
        String::from_utf8_lossy(&finish.stdout)
    );

    let store = crate::support::open_store(&url).await;
    let mut reader = store.reader().await.expect("reader");
    let counts = reader.row_counts().await.expect("counts");
    assert_eq!(
        counts.tickets - before,
        300,
        "each of the 300 messages is exactly one ticket"
    );
    let quarantined = reader
        .inbound_list(helpline_core::inbound::InboundStatus::Quarantined, None, 10)
        .await
        .expect("quarantine");
    assert!(quarantined.is_empty(), "{quarantined:?}");
    let pending = reader
        .inbound_list(helpline_core::inbound::InboundStatus::Pending, None, 10)
        .await
        .expect("pending");
    assert!(pending.is_empty(), "nothing left half-done: {pending:?}");
    // Each message was stored once: its Message-ID appears on exactly one entry.
    for i in 0..300 {
        let id = format!("<{tag}-{i}@example.com>");
        let found = reader
            .entry_by_message_id(std::slice::from_ref(&id))
            .await
            .expect("lookup");
        assert!(found.is_some(), "message {i} was lost");
    }
    drop(reader);
    let mut inbox = ImapMailbox::connect(
        &servers.imap,
        user,
        &servers.password,
        "INBOX",
        Duration::from_secs(10),
    )
    .await
    .expect("imap");
    assert!(
        inbox.unseen_uids().await.expect("uids").is_empty(),
        "the mailbox was emptied"
    );
    let _ = inbox.logout().await;
    assert!(
        progress.iter().any(|done| (1..300).contains(done)),
        "no kill landed in the middle of the import: {progress:?}"
    );
    println!(
        "SIGKILL test: 300 messages, {kills} kills (tickets after each: {progress:?}), every message exactly one ticket"
    );
    database.remove().await;
}

/// `imaps://` and `pop3s://` mailboxes: the servers' certificate (for 127.0.0.1, signed by the
/// throwaway CA of scripts/test) is verified — trusted with `HELPLINE_MAIL_TLS_CA_FILE` naming
/// that CA, refused without it, and nothing is taken in then.
async fn mail_fetch_over_tls_trusts_the_configured_ca_only(backend: Backend) {
    let Some(servers) = servers() else { return };
    let get = |name: &str| std::env::var(name).ok().filter(|v| !v.is_empty());
    let (Some(imaps), Some(pop3s), Some(ca)) = (
        get("HELPLINE_TEST_IMAPS"),
        get("HELPLINE_TEST_POP3S"),
        get("HELPLINE_TEST_MAIL_CA"),
    ) else {
        let ci = std::env::var("CI").is_ok_and(|v| v == "true" || v == "1");
        assert!(
            !ci,
            "the TLS mail servers must run on CI (scripts/test starts them)"
        );
        eprintln!("skipping the TLS mail test: HELPLINE_TEST_IMAPS and friends are not set");
        return;
    };
    let (imap_user, pop3_user) = match backend {
        Backend::Sqlite => ("mbox05", "mbox06"),
        Backend::Postgres => ("mbox13", "mbox14"),
    };
    assert!(
        [imap_user, pop3_user]
            .iter()
            .all(|user| servers.users.iter().any(|u| u == user)),
        "the test servers have the users {imap_user} and {pop3_user}: {:?}",
        servers.users
    );
    let dir = tempfile::tempdir().expect("dir");
    let Some((url, database)) = TestDatabase::create(backend).await else {
        return;
    };
    let trusted = [("HELPLINE_MAIL_TLS_CA_FILE", ca.as_str())];
    let run = |args: &[&str], env: &[(&str, &str)]| {
        let mut all = args.to_vec();
        all.extend(["--database", url.as_str()]);
        helpline(&all, env, dir.path())
    };
    let text = |output: &std::process::Output| {
        format!(
            "{}{}",
            String::from_utf8_lossy(&output.stdout),
            String::from_utf8_lossy(&output.stderr)
        )
    };
    let imaps_url = format!("imaps://{imap_user}:{}@{imaps}/INBOX", servers.password);
    let pop3s_url = format!("pop3s://{pop3_user}:{}@{pop3s}", servers.password);
    for mailbox in [&imaps_url, &pop3s_url] {
        let added = run(&["mailbox", "add", mailbox, "--delete"], &[]);
        assert!(added.status.success(), "{}", text(&added));
    }
    // Whatever earlier runs left is taken in first, so only this run's mail counts.
    let drained = run(&["mail", "fetch"], &trusted);
    assert!(drained.status.success(), "{}", text(&drained));
    let before = tickets_in(&url).await;

    let tag = unique("tls");
    deliver(
        &servers.smtp,
        imap_user,
        &mail(
            "ivy@example.com",
            "By IMAPS",
            &format!("{tag}-1@example.com"),
        ),
    )
    .await;
    deliver(
        &servers.smtp,
        pop3_user,
        &mail(
            "pat@example.com",
            "By POP3S",
            &format!("{tag}-2@example.com"),
        ),
    )
    .await;

    // Without the CA file the certificate is not trusted: both mailboxes fail, nothing is taken.
    let refused = run(&["mail", "fetch"], &[]);
    let out = text(&refused);
    assert!(!refused.status.success(), "{out}");
    let failures: Vec<&str> = out.lines().filter(|l| l.contains(": failed:")).collect();
    assert_eq!(failures.len(), 2, "{out}");
    for line in failures {
        assert!(
            line.contains("certificate") && line.contains("TLS"),
            "{line}"
        );
    }
    assert_eq!(tickets_in(&url).await, before, "nothing taken in: {out}");

    let fetched = run(&["mail", "fetch"], &trusted);
    let out = text(&fetched);
    assert!(fetched.status.success(), "{out}");
    assert!(
        out.contains("imaps://") && out.contains("pop3s://"),
        "{out}"
    );
    assert_eq!(out.matches(": 1 new").count(), 2, "{out}");
    assert_eq!(
        tickets_in(&url).await - before,
        2,
        "one ticket by IMAPS, one by POP3S"
    );
    let again = run(&["mail", "fetch"], &trusted);
    let out = text(&again);
    assert!(again.status.success(), "{out}");
    assert_eq!(out.matches(": 0 new").count(), 2, "{out}");
    assert_eq!(tickets_in(&url).await - before, 2, "nothing taken in twice");
    database.remove().await;
}
