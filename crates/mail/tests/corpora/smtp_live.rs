//! The outbound SMTP transport against a real server (aiosmtpd, as `scripts/test` starts it),
//! with the delivered message read back over IMAP (Dovecot).
//!
//! Needs `HELPLINE_TEST_SMTP` and `HELPLINE_TEST_IMAP` (`host:port`), `HELPLINE_TEST_MAIL_USERS`
//! (comma-separated) and `HELPLINE_TEST_MAIL_PASSWORD`. Without them the test is skipped, except
//! under `CI=true` where it fails. It uses the mailbox `mbox16` (the last user when that one is
//! not listed), looks only at the messages carrying its run's token and deletes what it read.
//!
//! A staff reply is rendered from the builtin templates, composed (non-ASCII subject, HTML,
//! an attachment, threading and loop headers), sent with [`MailTransport`] and must arrive
//! intact: every header line sent, the same body. A recipient the server does not know is a
//! permanent failure.

use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use helpline_mail::imap::{ImapError, ImapMailbox};
use helpline_mail::outbound::{
    Address, AutoSubmitted, MailTransport, Notice, NoticeContext, OutgoingAttachment, OutgoingMail,
    SendError, Templates, render,
};
use helpline_mail::strip::REPLY_MARKER;
use helpline_mail::tls::TlsSettings;
use mail_parser::{MessageParser, MimeHeaders};

const TIMEOUT: Duration = Duration::from_secs(10);
const MAX_BYTES: usize = 1024 * 1024;
const USER: &str = "mbox16";

struct LiveServers {
    smtp: String,
    imap: String,
    user: String,
    password: String,
}

/// The servers from the environment; `None` (after saying so) when they are not configured.
fn live_servers() -> Option<LiveServers> {
    let var = |name: &str| std::env::var(name).ok().filter(|v| !v.trim().is_empty());
    let (Some(smtp), Some(imap)) = (var("HELPLINE_TEST_SMTP"), var("HELPLINE_TEST_IMAP")) else {
        let ci = matches!(std::env::var("CI").as_deref(), Ok("true" | "1"));
        assert!(
            !ci,
            "HELPLINE_TEST_SMTP and HELPLINE_TEST_IMAP must be set on CI (scripts/test starts \
             aiosmtpd and Dovecot and sets them)"
        );
        eprintln!(
            "SKIPPED smtp_live: HELPLINE_TEST_SMTP/HELPLINE_TEST_IMAP are not set \
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
    let user = if users.iter().any(|u| u == USER) {
        USER.to_owned()
    } else {
        users.last().cloned().unwrap_or_else(|| USER.to_owned())
    };
    let password = var("HELPLINE_TEST_MAIL_PASSWORD").unwrap_or_else(|| "secret".to_owned());
    Some(LiveServers {
        smtp,
        imap,
        user,
        password,
    })
}

/// A staff reply to `user`, marked with `token`.
fn staff_reply(user: &str, token: &str) -> OutgoingMail {
    let mut context = NoticeContext::sample();
    context.ticket.subject = format!("smtp live {token} Grüße aus Köln");
    context.customer.email = format!("{user}@example.test");
    context.recipient = context.customer.clone();
    let notice = Templates::builtin()
        .render(Notice::StaffReply, &context)
        .expect("renders");
    OutgoingMail {
        from: Address::named("Example Support", "support@desk.example"),
        reply_to: Some(Address::bare("reply@desk.example")),
        to: vec![Address::named(
            "Jürgen Kunde",
            format!("{user}@example.test"),
        )],
        subject: notice.subject,
        text: notice.text,
        html: Some(notice.html),
        message_id: format!("<hl.1.2.{token}@desk.example>"),
        in_reply_to: Some(format!("<customer.{token}@example.test>")),
        references: vec![
            format!("<first.{token}@example.test>"),
            format!("<customer.{token}@example.test>"),
        ],
        auto_submitted: Some(AutoSubmitted::AutoReplied),
        extra_headers: vec![(
            "X-Helpline-Loop".to_owned(),
            format!("desk.example {token}"),
        )],
        attachments: vec![OutgoingAttachment {
            filename: "log.bin".to_owned(),
            content_type: "application/octet-stream".to_owned(),
            bytes: (0..=255u8).cycle().take(5000).collect(),
        }],
    }
}

/// Header block and body, split at the first empty line, with line ends made LF (the SMTP
/// server stores LF and Dovecot serves CRLF) and trailing line ends dropped.
fn split(raw: &[u8]) -> (String, String) {
    let text = String::from_utf8_lossy(raw).replace("\r\n", "\n");
    let (head, body) = text.split_once("\n\n").unwrap_or((&text, ""));
    (head.to_owned(), body.trim_end_matches('\n').to_owned())
}

fn contains(haystack: &[u8], needle: &[u8]) -> bool {
    haystack.windows(needle.len()).any(|w| w == needle)
}

/// The unseen messages carrying `token`, as (UID, bytes). A message that goes away while it
/// is looked at (another test's, in a shared mailbox) is passed over.
async fn unseen_with(inbox: &mut ImapMailbox, token: &str) -> Vec<(u32, Vec<u8>)> {
    let mut found = Vec::new();
    for uid in inbox.unseen_uids().await.expect("UID SEARCH") {
        match inbox.fetch(uid, MAX_BYTES).await {
            Ok(bytes) if contains(&bytes, token.as_bytes()) => found.push((uid, bytes)),
            Ok(_) | Err(ImapError::MessageMissing { .. } | ImapError::TooLarge { .. }) => {}
            Err(error) => panic!("UID FETCH {uid}: {error}"),
        }
    }
    found
}

#[tokio::test]
async fn smtp_transport_delivers_to_a_real_server() {
    let Some(servers) = live_servers() else {
        return;
    };
    let started = Instant::now();
    let nanos = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_nanos());
    let token = format!("smtplive{nanos:x}p{}", std::process::id());
    let transport = MailTransport::from_url(
        &format!("smtp://{}?helo=helpline.test", servers.smtp),
        &TlsSettings::public_roots(),
    )
    .expect("transport URL");

    let mail = staff_reply(&servers.user, &token);
    let raw = render(&mail).expect("composes");
    let rcpt = format!("{}@example.test", servers.user);
    transport
        .send("bounces@desk.example", std::slice::from_ref(&rcpt), &raw)
        .await
        .unwrap_or_else(|error| panic!("sending to {rcpt} via {}: {error}", transport.describe()));

    // An unknown local part is refused at RCPT time: permanent, and nothing is delivered.
    let unknown = format!("nosuchbox{token}@example.test");
    match transport
        .send("bounces@desk.example", std::slice::from_ref(&unknown), &raw)
        .await
    {
        Err(SendError::Permanent(text)) => assert!(text.contains("550"), "{text}"),
        other => panic!("sending to {unknown}: expected Permanent, got {other:?}"),
    }
    // The transport is usable after the refusal (a new session replaces the aborted one).
    let mut second = staff_reply(&servers.user, &token);
    second.message_id = format!("<hl.1.3.{token}@desk.example>");
    let second_raw = render(&second).expect("composes");
    transport
        .send("", std::slice::from_ref(&rcpt), &second_raw)
        .await
        .expect("second send, null return path");

    let mut inbox = ImapMailbox::connect(
        &servers.imap,
        &servers.user,
        &servers.password,
        "INBOX",
        TIMEOUT,
    )
    .await
    .expect("log in and select INBOX");
    // The server delivers before it answers; a real MTA may take a moment.
    let deadline = Instant::now() + Duration::from_secs(15);
    let found = loop {
        let found = unseen_with(&mut inbox, &token).await;
        if found.len() >= 2 || Instant::now() > deadline {
            break found;
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    };
    assert_eq!(found.len(), 2, "both messages arrived in {}", servers.user);

    for (uid, fetched) in &found {
        let first = contains(fetched, mail.message_id.as_bytes());
        let sent = if first { &raw } else { &second_raw };
        // Intact: the same body, every header line sent (the servers add their own).
        let (fetched_head, fetched_body) = split(fetched);
        let (sent_head, sent_body) = split(sent);
        assert_eq!(fetched_body, sent_body, "body changed on the way");
        for line in sent_head.lines() {
            assert!(
                fetched_head.lines().any(|l| l == line),
                "header line {line:?} missing from the fetched message:\n{fetched_head}"
            );
        }

        let message = MessageParser::default().parse(fetched).expect("parses");
        assert_eq!(message.subject(), Some(mail.subject.as_str()));
        assert!(mail.subject.contains("Grüße aus Köln"));
        let from = message.from().and_then(|a| a.first()).expect("From");
        assert_eq!(from.address(), Some("support@desk.example"));
        let to = message.to().and_then(|a| a.first()).expect("To");
        assert_eq!(to.name(), Some("Jürgen Kunde"));
        assert_eq!(to.address(), Some(rcpt.as_str()));
        let message_id = if first {
            &mail.message_id
        } else {
            &second.message_id
        };
        assert_eq!(
            message.message_id().map(|id| format!("<{id}>")).as_deref(),
            Some(message_id.as_str())
        );
        assert_eq!(
            message.in_reply_to().as_text(),
            Some(format!("customer.{token}@example.test").as_str())
        );
        let header = |name: &'static str| message.header(name).and_then(|v| v.as_text());
        assert_eq!(header("Auto-Submitted"), Some("auto-replied"));
        assert_eq!(header("X-Auto-Response-Suppress"), Some("All"));
        let loop_header = format!("desk.example {token}");
        assert_eq!(header("X-Helpline-Loop"), Some(loop_header.as_str()));
        let text = message.body_text(0).expect("text part");
        assert!(text.starts_with(REPLY_MARKER), "{text}");
        let html = message.body_html(0).expect("HTML part");
        assert!(html.contains(REPLY_MARKER), "{html}");
        let attachment = message.attachment(0).expect("attachment");
        assert_eq!(attachment.attachment_name(), Some("log.bin"));
        assert_eq!(attachment.contents(), mail.attachments[0].bytes.as_slice());

        inbox.delete(*uid).await.expect("delete what was read");
    }
    assert!(unseen_with(&mut inbox, &token).await.is_empty());
    inbox.logout().await.expect("logout");
    eprintln!(
        "smtp_live: {} to {rcpt}: delivered, read back over IMAP and refused for an unknown \
         recipient in {:?}",
        transport.describe(),
        started.elapsed()
    );
}
