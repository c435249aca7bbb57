//! The IMAP client against a real server (Dovecot, as `scripts/test` starts it).
//!
//! Needs `HELPLINE_TEST_IMAP` and `HELPLINE_TEST_SMTP` (`host:port`), `HELPLINE_TEST_MAIL_USERS`
//! (comma-separated) and `HELPLINE_TEST_MAIL_PASSWORD`. Without them the test is skipped, except
//! under `CI=true` where it fails. It takes the **second-to-last** user: the POP3 test takes the
//! last, and two clients emptying one mailbox would disturb each other.
//!
//! Messages are delivered by SMTP (raw, from the test) and then read, flagged, moved, deleted
//! and waited for with IDLE through [`ImapMailbox`]. Each run marks its messages with a unique
//! token and moves to a folder named after it, so leftovers of an earlier run against the same
//! servers do not disturb it (and the folder is new every time, so its creation is tested).

use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use helpline_mail::imap::{IdleOutcome, ImapError, ImapMailbox};
use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};
use tokio::net::TcpStream;

const TIMEOUT: Duration = Duration::from_secs(10);
const MAX_BYTES: usize = 1024 * 1024;

struct LiveServers {
    imap: String,
    smtp: String,
    user: String,
    password: String,
}

/// The servers from the environment; `None` (after saying so) when they are not configured.
fn live_servers() -> Option<LiveServers> {
    let var = |name: &str| std::env::var(name).ok().filter(|v| !v.trim().is_empty());
    let (Some(imap), Some(smtp)) = (var("HELPLINE_TEST_IMAP"), var("HELPLINE_TEST_SMTP")) else {
        let ci = matches!(std::env::var("CI").as_deref(), Ok("true" | "1"));
        assert!(
            !ci,
            "HELPLINE_TEST_IMAP and HELPLINE_TEST_SMTP must be set on CI (scripts/test starts \
             Dovecot and an SMTP server and sets them)"
        );
        eprintln!(
            "SKIPPED imap_live: HELPLINE_TEST_IMAP/HELPLINE_TEST_SMTP are not set \
             (scripts/test sets them)"
        );
        return None;
    };
    let users: Vec<String> = var("HELPLINE_TEST_MAIL_USERS")
        .map(|users| {
            users
                .split(',')
                .map(str::trim)
                .filter(|u| !u.is_empty())
                .map(str::to_owned)
                .collect()
        })
        .unwrap_or_default();
    // The second-to-last user; with a single user there is no choice but to share it.
    let user = match users.as_slice() {
        [] => "alice".to_owned(),
        [only] => only.clone(),
        [.., ours, _pop3s] => ours.clone(),
    };
    let password = var("HELPLINE_TEST_MAIL_PASSWORD").unwrap_or_else(|| "secret".to_owned());
    Some(LiveServers {
        imap,
        smtp,
        user,
        password,
    })
}

/// Reads one SMTP reply (all its `xyz-` continuation lines) and checks its code.
async fn smtp_reply(reader: &mut BufReader<TcpStream>, expect: &str, after: &str) {
    let mut reply = String::new();
    loop {
        let mut line = String::new();
        let read = tokio::time::timeout(TIMEOUT, reader.read_line(&mut line))
            .await
            .unwrap_or_else(|_| panic!("SMTP server silent after {after}"))
            .unwrap_or_else(|e| panic!("SMTP read after {after}: {e}"));
        assert!(read > 0, "SMTP server closed the connection after {after}");
        reply.push_str(&line);
        if line.as_bytes().get(3) != Some(&b'-') {
            break;
        }
    }
    assert!(
        reply.starts_with(expect),
        "SMTP answered {reply:?} to {after}, expected {expect}"
    );
}

/// Sends `message` (CRLF line ends) to `rcpt` over plain SMTP, dot-stuffing it. The server has
/// put it in the recipient's Maildir when this returns (its `250` comes after the write).
async fn smtp_send(addr: &str, rcpt: &str, message: &[u8]) {
    let stream = TcpStream::connect(addr)
        .await
        .unwrap_or_else(|e| panic!("cannot connect to SMTP server {addr}: {e}"));
    let mut smtp = BufReader::new(stream);
    smtp_reply(&mut smtp, "220", "connecting").await;
    for (command, expect) in [
        ("EHLO helpline.test".to_owned(), "250"),
        ("MAIL FROM:<customer@example.test>".to_owned(), "250"),
        (format!("RCPT TO:<{rcpt}>"), "250"),
        ("DATA".to_owned(), "354"),
    ] {
        smtp.get_mut()
            .write_all(format!("{command}\r\n").as_bytes())
            .await
            .expect("SMTP write");
        smtp_reply(&mut smtp, expect, &command).await;
    }
    let mut data = Vec::with_capacity(message.len() + 16);
    for line in message.split_inclusive(|&b| b == b'\n') {
        if line.starts_with(b".") {
            data.push(b'.');
        }
        data.extend_from_slice(line);
    }
    if !data.ends_with(b"\r\n") {
        data.extend_from_slice(b"\r\n");
    }
    data.extend_from_slice(b".\r\n");
    smtp.get_mut().write_all(&data).await.expect("SMTP write");
    smtp_reply(&mut smtp, "250", "the message").await;
    smtp.get_mut()
        .write_all(b"QUIT\r\n")
        .await
        .expect("SMTP write");
    smtp_reply(&mut smtp, "221", "QUIT").await;
}

/// A small message whose subject carries `token` and `label`, with a line that needs
/// dot-stuffing and a non-ASCII (quoted-printable) line.
fn message(user: &str, token: &str, label: &str) -> Vec<u8> {
    format!(
        "From: Customer <customer@example.test>\r\n\
         To: <{user}@helpline.test>\r\n\
         Subject: imap live {token} {label}\r\n\
         Message-ID: <{label}.{token}@example.test>\r\n\
         Date: Wed, 25 Nov 2026 12:00:00 +0000\r\n\
         MIME-Version: 1.0\r\n\
         Content-Type: text/plain; charset=utf-8\r\n\
         Content-Transfer-Encoding: quoted-printable\r\n\
         \r\n\
         Hello, this is the {label} message.\r\n\
         .a line that starts with a dot\r\n\
         Gr=C3=BC=C3=9Fe\r\n"
    )
    .into_bytes()
}

/// Header block and body, split at the first empty line, with line ends made LF (the SMTP
/// server may store LF and Dovecot serves CRLF) and trailing line ends dropped.
fn split(raw: &[u8]) -> (String, String) {
    let text = String::from_utf8_lossy(raw).replace("\r\n", "\n");
    let (head, body) = text.split_once("\n\n").unwrap_or((&text, ""));
    (head.to_owned(), body.trim_end_matches('\n').to_owned())
}

/// The fetched message must be the sent one: the same body and every header line sent (the
/// SMTP server may add its own, such as `X-Peer:`).
fn assert_same_message(fetched: &[u8], sent: &[u8]) {
    let (fetched_head, fetched_body) = split(fetched);
    let (sent_head, sent_body) = split(sent);
    assert_eq!(fetched_body, sent_body, "body changed on the way");
    for line in sent_head.lines() {
        assert!(
            fetched_head.lines().any(|l| l == line),
            "header line {line:?} missing from the fetched message:\n{fetched_head}"
        );
    }
}

fn contains(haystack: &[u8], needle: &[u8]) -> bool {
    haystack.windows(needle.len()).any(|w| w == needle)
}

/// The unseen UIDs whose message has `needle` in it (fetching never sets `\Seen`).
async fn unseen_with(inbox: &mut ImapMailbox, needle: &str) -> Vec<u32> {
    let mut found = Vec::new();
    for uid in inbox.unseen_uids().await.expect("UID SEARCH") {
        let bytes = inbox.fetch(uid, MAX_BYTES).await.expect("UID FETCH");
        if contains(&bytes, needle.as_bytes()) {
            found.push(uid);
        }
    }
    found
}

#[tokio::test]
async fn imap_client_against_dovecot() {
    let Some(servers) = live_servers() else {
        return;
    };
    let started = Instant::now();
    let nanos = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_nanos());
    let token = format!("t{nanos:x}p{}", std::process::id());
    let rcpt = format!("{}@helpline.test", servers.user);

    // A refused login takes Dovecot a couple of seconds to answer (its auth_failure_delay),
    // so it runs alongside everything else.
    let refused = tokio::spawn({
        let (imap, user) = (servers.imap.clone(), servers.user.clone());
        async move {
            // Dovecot may raise its delay for repeated failures up to 15 s: never a timeout.
            ImapMailbox::connect(&imap, &user, "wrong password", "INBOX", TIMEOUT * 2).await
        }
    });

    let mut inbox = ImapMailbox::connect(
        &servers.imap,
        &servers.user,
        &servers.password,
        "INBOX",
        TIMEOUT,
    )
    .await
    .expect("log in and select INBOX");
    assert!(inbox.uid_validity() > 0, "UIDVALIDITY is never 0");
    assert!(inbox.supports_idle(), "Dovecot offers IDLE");

    // The mailbox is this test's own: what an earlier, interrupted run left is cleared away.
    for uid in inbox.unseen_uids().await.expect("UID SEARCH") {
        inbox.delete(uid).await.expect("delete a leftover");
    }

    // A folder that does not exist is told apart from other failures.
    let archive = format!("Archivé {token}");
    match ImapMailbox::connect(
        &servers.imap,
        &servers.user,
        &servers.password,
        &archive,
        TIMEOUT,
    )
    .await
    {
        Err(ImapError::MailboxMissing { folder, .. }) => assert_eq!(folder, archive),
        other => panic!("selecting a missing folder: expected MailboxMissing, got {other:?}"),
    }

    // Delivered by SMTP, listed as unseen, fetched intact (same body, every header line sent).
    let first = message(&servers.user, &token, "first");
    let second = message(&servers.user, &token, "second");
    smtp_send(&servers.smtp, &rcpt, &first).await;
    smtp_send(&servers.smtp, &rcpt, &second).await;
    let ours = unseen_with(&mut inbox, &token).await;
    assert_eq!(ours.len(), 2, "both messages are unseen: {ours:?}");
    let (mut uid_first, mut uid_second) = (ours[0], ours[1]);
    let bytes_a = inbox.fetch(uid_first, MAX_BYTES).await.expect("fetch");
    if contains(&bytes_a, b"second message") {
        std::mem::swap(&mut uid_first, &mut uid_second);
    }
    assert_same_message(
        &inbox.fetch(uid_first, MAX_BYTES).await.expect("fetch"),
        &first,
    );
    assert_same_message(
        &inbox.fetch(uid_second, MAX_BYTES).await.expect("fetch"),
        &second,
    );

    // Fetching (several times by now) did not set \Seen.
    let unseen = inbox.unseen_uids().await.expect("UID SEARCH");
    assert!(unseen.contains(&uid_first) && unseen.contains(&uid_second));

    // Over the limit: refused without downloading it, and still unseen.
    match inbox.fetch(uid_first, 100).await {
        Err(ImapError::TooLarge { uid, size, limit }) => {
            assert_eq!((uid, limit), (uid_first, 100));
            assert!(
                size.is_some_and(|s| s > 100),
                "RFC822.SIZE reported: {size:?}"
            );
        }
        other => panic!("fetch over the limit: expected TooLarge, got {other:?}"),
    }

    // mark_seen takes it off the unseen list, and only it.
    inbox.mark_seen(uid_first).await.expect("mark seen");
    let unseen = inbox.unseen_uids().await.expect("UID SEARCH");
    assert!(!unseen.contains(&uid_first), "seen message still unseen");
    assert!(unseen.contains(&uid_second));

    // move_to creates the folder (non-ASCII: modified UTF-7 on the wire) and moves it there.
    inbox.move_to(uid_first, &archive).await.expect("move");
    assert!(matches!(
        inbox.fetch(uid_first, MAX_BYTES).await,
        Err(ImapError::MessageMissing { .. })
    ));
    let mut archived = ImapMailbox::connect(
        &servers.imap,
        &servers.user,
        &servers.password,
        &archive,
        TIMEOUT,
    )
    .await
    .expect("the archive folder now exists");
    // It was seen before the move and stays so; look at every message of the new folder.
    let moved = archived.unseen_uids().await.expect("UID SEARCH");
    assert!(moved.is_empty(), "the moved message keeps its \\Seen flag");
    let bytes = archived.fetch(1, MAX_BYTES).await.expect("fetch moved");
    assert_same_message(&bytes, &first);
    // Moving it back onto INBOX from INBOX is refused before anything is sent.
    assert!(matches!(
        inbox.move_to(uid_second, "inbox").await,
        Err(ImapError::InvalidFolderName { .. })
    ));
    archived.logout().await.expect("logout");

    // delete removes it for good.
    inbox.delete(uid_second).await.expect("delete");
    assert!(matches!(
        inbox.fetch(uid_second, MAX_BYTES).await,
        Err(ImapError::MessageMissing { .. })
    ));
    assert!(unseen_with(&mut inbox, &token).await.is_empty());

    // IDLE with nothing arriving ends after the wait.
    let wait = Duration::from_millis(600);
    let before = Instant::now();
    assert_eq!(inbox.idle(wait).await.expect("idle"), IdleOutcome::Timeout);
    let waited = before.elapsed();
    assert!(
        waited >= wait && waited < wait + Duration::from_secs(1),
        "idle timed out after {waited:?}"
    );

    // IDLE wakes up for a delivery made while it waits.
    let third = message(&servers.user, &token, "third");
    let delivery = tokio::spawn({
        let (smtp, rcpt, third) = (servers.smtp.clone(), rcpt.clone(), third.clone());
        async move {
            tokio::time::sleep(Duration::from_millis(300)).await;
            smtp_send(&smtp, &rcpt, &third).await;
            Instant::now()
        }
    });
    assert_eq!(
        inbox.idle(Duration::from_secs(8)).await.expect("idle"),
        IdleOutcome::NewMail
    );
    let woke = Instant::now();
    let delivered = delivery.await.expect("delivery task");
    let delay = woke.saturating_duration_since(delivered);
    assert!(
        delay < Duration::from_secs(2),
        "IDLE reported the delivery after {delay:?}"
    );
    // The session is usable after IDLE, and the new message is there.
    let new = unseen_with(&mut inbox, &token).await;
    assert_eq!(new.len(), 1, "the third message: {new:?}");
    assert_same_message(
        &inbox.fetch(new[0], MAX_BYTES).await.expect("fetch"),
        &third,
    );
    inbox.delete(new[0]).await.expect("delete");

    match refused.await.expect("login task") {
        Err(ImapError::AuthRefused { text }) => assert!(!text.is_empty()),
        other => panic!("wrong password: expected AuthRefused, got {other:?}"),
    }
    inbox.logout().await.expect("logout");
    eprintln!(
        "imap_live: {} as {}: fetch/seen/move/delete/IDLE checked in {:?} (IDLE woke {:?} \
         after the delivery)",
        servers.imap,
        servers.user,
        started.elapsed(),
        delay
    );
}
