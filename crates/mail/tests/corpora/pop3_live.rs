//! The POP3 client against a real server (Dovecot, as `scripts/test` starts it).
//!
//! Needs `HELPLINE_TEST_POP3` and `HELPLINE_TEST_SMTP` (`host:port`), `HELPLINE_TEST_MAIL_USERS`
//! (comma-separated; this test takes the **last** user, other live tests should take others)
//! and `HELPLINE_TEST_MAIL_PASSWORD`. Without them the test is skipped, except under `CI=true`
//! where it fails. Two messages are sent by SMTP (raw, from the test), fetched with the client,
//! compared byte for byte, one is deleted, and a second session sees only the other.
//!
//! Each run marks its messages with a unique token in the subject and only looks at those, so
//! leftovers of an earlier run against the same servers do not disturb it.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use helpline_mail::pop3::Pop3;
use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};
use tokio::net::TcpStream;

const TIMEOUT: Duration = Duration::from_secs(10);
const MAX_BYTES: usize = 1024 * 1024;

struct LiveServers {
    pop3: String,
    smtp: String,
    user: String,
    password: String,
}

/// The servers from the environment; `None` (after saying so) when they are not configured.
fn live_servers() -> Option<LiveServers> {
    let var = |name: &str| std::env::var(name).ok().filter(|v| !v.trim().is_empty());
    let (Some(pop3), Some(smtp)) = (var("HELPLINE_TEST_POP3"), var("HELPLINE_TEST_SMTP")) else {
        let ci = matches!(std::env::var("CI").as_deref(), Ok("true" | "1"));
        assert!(
            !ci,
            "HELPLINE_TEST_POP3 and HELPLINE_TEST_SMTP must be set on CI (scripts/test starts \
             Dovecot and aiosmtpd and sets them)"
        );
        eprintln!(
            "SKIPPED pop3_live: HELPLINE_TEST_POP3/HELPLINE_TEST_SMTP are not set \
             (scripts/test sets them)"
        );
        return None;
    };
    let user = var("HELPLINE_TEST_MAIL_USERS")
        .and_then(|users| {
            users
                .split(',')
                .map(str::trim)
                .rfind(|u| !u.is_empty())
                .map(str::to_owned)
        })
        .unwrap_or_else(|| "alice".to_owned());
    let password = var("HELPLINE_TEST_MAIL_PASSWORD").unwrap_or_else(|| "secret".to_owned());
    Some(LiveServers {
        pop3,
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

/// Sends `message` (CRLF line ends) to `rcpt` over plain SMTP, dot-stuffing it.
async fn smtp_send(addr: &str, from: &str, rcpt: &str, message: &[u8]) {
    let stream = TcpStream::connect(addr)
        .await
        .unwrap_or_else(|e| panic!("cannot connect to SMTP server {addr}: {e}"));
    let mut smtp = BufReader::new(stream);
    smtp_reply(&mut smtp, "220", "connecting").await;
    for (command, expect) in [
        ("EHLO helpline.test".to_owned(), "250"),
        (format!("MAIL FROM:<{from}>"), "250"),
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

/// Logs in and returns every message in the mailbox whose bytes contain `token`, as
/// (number, unique id, bytes).
async fn messages_with(
    servers: &LiveServers,
    token: &str,
) -> (Pop3<TcpStream>, Vec<(u32, String, Vec<u8>)>) {
    let mut pop = Pop3::connect(&servers.pop3, TIMEOUT)
        .await
        .expect("connect to POP3");
    pop.login(&servers.user, &servers.password)
        .await
        .expect("POP3 login");
    let mut found = Vec::new();
    for (number, uid) in pop.uidl().await.expect("UIDL") {
        let bytes = pop.retr(number, MAX_BYTES).await.expect("RETR");
        if contains(&bytes, token.as_bytes()) {
            found.push((number, uid, bytes));
        }
    }
    (pop, found)
}

fn contains(haystack: &[u8], needle: &[u8]) -> bool {
    haystack.windows(needle.len()).any(|w| w == needle)
}

#[tokio::test]
async fn pop3_client_against_dovecot() {
    let Some(servers) = live_servers() else {
        return;
    };
    let nanos = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_nanos())
        .unwrap_or_default();
    let token = format!("pop3-live-{}-{nanos}", std::process::id());
    let rcpt = format!("{}@example.test", servers.user);

    // Lines that must survive dot-stuffing both ways: a lone ".", a "..", a leading dot.
    let first = format!(
        "From: Customer <customer@example.org>\r\nTo: {rcpt}\r\nSubject: first {token}\r\n\
         Message-ID: <first.{token}@example.org>\r\n\r\nHello,\r\n.\r\n..\r\n.leading dot\r\n\
         bye\r\n"
    );
    let second = format!(
        "From: Customer <customer@example.org>\r\nTo: {rcpt}\r\nSubject: second {token}\r\n\
         Message-ID: <second.{token}@example.org>\r\n\r\nSecond message.\r\n"
    );
    smtp_send(
        &servers.smtp,
        "customer@example.org",
        &rcpt,
        first.as_bytes(),
    )
    .await;
    smtp_send(
        &servers.smtp,
        "customer@example.org",
        &rcpt,
        second.as_bytes(),
    )
    .await;

    // The SMTP server of scripts/test delivers before it answers; a real MTA may take a moment.
    let deadline = tokio::time::Instant::now() + Duration::from_secs(15);
    let (mut pop, found) = loop {
        let (pop, found) = messages_with(&servers, &token).await;
        if found.len() >= 2 || tokio::time::Instant::now() > deadline {
            break (pop, found);
        }
        pop.quit().await.expect("QUIT");
        tokio::time::sleep(Duration::from_millis(200)).await;
    };
    assert_eq!(
        found.len(),
        2,
        "both messages in {}'s mailbox",
        servers.user
    );

    // The server may put trace headers (Return-Path, Received, X-Peer) in front; the message
    // itself must come back byte for byte.
    let fetched_first = found
        .iter()
        .find(|(_, _, bytes)| contains(bytes, format!("Subject: first {token}").as_bytes()))
        .expect("first message");
    let fetched_second = found
        .iter()
        .find(|(_, _, bytes)| contains(bytes, format!("Subject: second {token}").as_bytes()))
        .expect("second message");
    assert!(
        fetched_first.2.ends_with(first.as_bytes()),
        "first message changed on the way:\n{}",
        String::from_utf8_lossy(&fetched_first.2)
    );
    assert!(
        fetched_second.2.ends_with(second.as_bytes()),
        "second message changed on the way:\n{}",
        String::from_utf8_lossy(&fetched_second.2)
    );
    assert_ne!(fetched_first.1, fetched_second.1, "unique ids differ");
    assert_eq!(
        pop.uidl_one(fetched_first.0).await.expect("UIDL n"),
        fetched_first.1
    );
    let (count, size) = pop.stat().await.expect("STAT");
    assert!(count >= 2 && size > 0, "STAT {count} {size}");

    // A size cap below the message refuses it and leaves the session usable.
    assert!(matches!(
        pop.retr(fetched_first.0, 16).await,
        Err(helpline_mail::pop3::Pop3Error::TooLarge { .. })
    ));

    // Deletion takes effect at QUIT.
    pop.dele(fetched_first.0).await.expect("DELE");
    pop.quit().await.expect("QUIT");

    let (pop, left) = messages_with(&servers, &token).await;
    assert_eq!(left.len(), 1, "one message left after DELE and QUIT");
    assert_eq!(
        left[0].1, fetched_second.1,
        "the second message is the one left"
    );
    assert!(left[0].2.ends_with(second.as_bytes()));
    drop(pop); // no QUIT: nothing marked, nothing changes

    // A wrong password is an authentication refusal, not a protocol or IO error.
    let mut pop = Pop3::connect(&servers.pop3, TIMEOUT)
        .await
        .expect("connect to POP3");
    match pop.login(&servers.user, "not-the-password").await {
        Err(helpline_mail::pop3::Pop3Error::AuthRefused(text)) => {
            eprintln!("pop3_live: wrong password refused with {text:?}")
        }
        other => panic!("expected AuthRefused, got {other:?}"),
    }

    // Leave the mailbox as we found it.
    let (mut pop, left) = messages_with(&servers, &token).await;
    for (number, _, _) in &left {
        pop.dele(*number).await.expect("DELE");
    }
    pop.quit().await.expect("QUIT");
    eprintln!(
        "pop3_live: 2 messages sent to {} over SMTP, fetched and compared, 1 deleted",
        servers.user
    );
}
