//! Mail intake through `POST /api/tickets.email`, `POST /api/v1/inbound/email` and
//! `helpline pipe`: new tickets, threading by headers and by subject tag (never for strangers),
//! duplicates, bounces, auto-replies, staff replies, Cc collaborators, quarantine.

use crate::on_both_stores;
use crate::support::{Backend, TestApp};
use helpline_core::apikey::Scope;
use helpline_core::inbound::InboundStatus;
use helpline_core::ticket::{Ticket, TicketNumber};

on_both_stores!(
    mail_opens_a_ticket_and_replies_thread_by_headers,
    subject_tags_thread_only_for_participants,
    duplicates_bounces_auto_replies_and_quarantine,
    staff_replies_become_notes_and_cc_become_collaborators,
    v1_inbound_endpoint_reports_outcomes,
    quarantine_is_listed_and_retried_and_pending_mail_is_finished,
    inline_images_are_stored_and_linked,
    copies_processed_at_once_post_once_and_odd_mail_still_lands,
);

fn message(from: &str, subject: &str, message_id: &str, extra: &str, body: &str) -> Vec<u8> {
    format!(
        "From: {from}\r\nTo: Support <support@helpline.test>\r\nSubject: {subject}\r\n\
         Message-ID: {message_id}\r\nDate: Wed, 25 Nov 2026 10:00:00 +0000\r\n{extra}\
         Content-Type: text/plain; charset=utf-8\r\n\r\n{body}\r\n"
    )
    .into_bytes()
}

async fn post_mail(app: &TestApp, raw: &[u8]) -> String {
    let response = app.post("/api/tickets.email", raw).await;
    assert_eq!(
        response.status_line,
        "HTTP/1.1 201 Created",
        "{}",
        response.text()
    );
    response.text()
}

async fn ticket(app: &TestApp, number: &str) -> Ticket {
    app.store
        .reader()
        .await
        .expect("reader")
        .ticket_by_number(&TicketNumber::parse(number).expect("number"))
        .await
        .expect("lookup")
        .expect("ticket exists")
}

async fn entries(app: &TestApp, number: &str) -> Vec<helpline_core::thread::ThreadEntry> {
    let t = ticket(app, number).await;
    app.store
        .reader()
        .await
        .expect("r")
        .entries(t.id)
        .await
        .expect("entries")
}

async fn mail_opens_a_ticket_and_replies_thread_by_headers(backend: Backend) {
    let Some(app) = TestApp::spawn(backend).await else {
        return;
    };
    let first = message(
        "Ann Customer <ann@example.com>",
        "Printer on fire",
        "<first@mail.example.com>",
        "",
        "The printer is smoking.",
    );
    let number = post_mail(&app, &first).await;
    assert_eq!(number.len(), 6);
    let t = ticket(&app, &number).await;
    assert_eq!(t.subject.as_str(), "Printer on fire");
    assert_eq!(t.source, helpline_core::ticket::Source::Email);
    let thread = entries(&app, &number).await;
    assert_eq!(thread[0].body.as_str().trim(), "The printer is smoking.");
    assert_eq!(
        thread[0].mail.message_id.as_deref(),
        Some("<first@mail.example.com>")
    );
    let owner = app
        .store
        .reader()
        .await
        .expect("r")
        .user(t.user_id)
        .await
        .expect("u")
        .expect("user");
    assert_eq!(owner.name, "Ann Customer");

    // A reply that quotes the first mail threads by In-Reply-To, quote stripped.
    let reply = message(
        "Ann Customer <ann@example.com>",
        "Re: Printer on fire",
        "<second@mail.example.com>",
        "In-Reply-To: <first@mail.example.com>\r\nReferences: <first@mail.example.com>\r\n",
        "Now it is out.\r\n\r\nOn Wed, 25 Nov 2026 at 10:00, Ann Customer <ann@example.com> wrote:\r\n> The printer is smoking.",
    );
    assert_eq!(post_mail(&app, &reply).await, number);
    let thread = entries(&app, &number).await;
    assert_eq!(thread.len(), 2);
    assert_eq!(thread[1].body.as_str().trim(), "Now it is out.");
    assert!(!thread[1].flags.unknown_sender);

    // Someone else replying to the same thread is posted, flagged, and reopens nothing.
    let stranger = message(
        "Mallory <mallory@evil.example>",
        "Re: Printer on fire",
        "<third@evil.example>",
        "In-Reply-To: <second@mail.example.com>\r\n",
        "Click my link.",
    );
    assert_eq!(post_mail(&app, &stranger).await, number);
    let thread = entries(&app, &number).await;
    assert!(
        thread[2].flags.unknown_sender,
        "a non-participant is flagged"
    );
    assert!(thread[2].display_name.contains("mallory@evil.example"));
    let collaborators = app
        .store
        .reader()
        .await
        .expect("r")
        .collaborators(t.id)
        .await
        .expect("c");
    assert!(
        collaborators.is_empty(),
        "a stranger never becomes a collaborator"
    );
    app.finish().await;
}

async fn subject_tags_thread_only_for_participants(backend: Backend) {
    let Some(app) = TestApp::spawn(backend).await else {
        return;
    };
    let number = post_mail(
        &app,
        &message("owner@example.com", "Help", "<a1@example.com>", "", "first"),
    )
    .await;
    // The owner writes a fresh mail quoting the tag: it threads.
    let tagged = format!("Re: Help [#{number}]");
    let same = post_mail(
        &app,
        &message("OWNER@example.com", &tagged, "<a2@example.com>", "", "more"),
    )
    .await;
    assert_eq!(same, number);
    // A stranger with the same tag gets a ticket of their own: no post on someone else's ticket.
    let spoof = post_mail(
        &app,
        &message(
            "mallory@evil.example",
            &tagged,
            "<a3@evil.example>",
            "",
            "let me in",
        ),
    )
    .await;
    assert_ne!(spoof, number);
    assert_eq!(entries(&app, &number).await.len(), 2);
    let records = app
        .store
        .reader()
        .await
        .expect("r")
        .inbound_list(InboundStatus::Processed, None, 10)
        .await
        .expect("inbound");
    let spoof_rule = records
        .last()
        .and_then(|r| r.rule.clone())
        .unwrap_or_default();
    assert!(spoof_rule.contains("not a participant"), "{spoof_rule}");
    app.finish().await;
}

async fn duplicates_bounces_auto_replies_and_quarantine(backend: Backend) {
    let Some(app) = TestApp::spawn(backend).await else {
        return;
    };
    let first = message(
        "ann@example.com",
        "Order 17",
        "<order17@example.com>",
        "",
        "Where is my order?",
    );
    let number = post_mail(&app, &first).await;
    // The same message again (an MTA retry): the same number, nothing new stored.
    assert_eq!(post_mail(&app, &first).await, number);
    assert_eq!(entries(&app, &number).await.len(), 1);

    // A delivery failure about that message becomes a flagged note on its ticket.
    let bounce = String::from(
        "From: Mail Delivery System <MAILER-DAEMON@mx.example.com>\r\nTo: support@helpline.test\r\n\
         Subject: Undelivered Mail Returned to Sender\r\nMessage-ID: <bounce1@mx.example.com>\r\n\
         Auto-Submitted: auto-replied\r\nMIME-Version: 1.0\r\n\
         Content-Type: multipart/report; report-type=delivery-status; boundary=\"b\"\r\n\r\n\
         --b\r\nContent-Type: text/plain\r\n\r\nThe mail could not be delivered.\r\n\
         --b\r\nContent-Type: message/delivery-status\r\n\r\nReporting-MTA: dns; mx.example.com\r\n\r\n\
         Final-Recipient: rfc822; gone@example.com\r\nAction: failed\r\nStatus: 5.1.1\r\n\r\n\
         --b\r\nContent-Type: text/rfc822-headers\r\n\r\nFrom: support@helpline.test\r\n\
         To: gone@example.com\r\nSubject: Re: Order 17\r\nMessage-ID: <reply@helpline.test>\r\n\
         In-Reply-To: <order17@example.com>\r\n\r\n--b--\r\n",
    );
    assert_eq!(post_mail(&app, bounce.as_bytes()).await, number);
    let thread = entries(&app, &number).await;
    assert_eq!(thread.len(), 2);
    assert_eq!(thread[1].kind, helpline_core::thread::EntryKind::Note);
    assert!(thread[1].flags.bounce);

    // A bounce about nothing of ours is kept but posts nothing and opens no ticket.
    let orphan = bounce
        .replace("<order17@example.com>", "<unknown@elsewhere>")
        .replace("<bounce1@", "<bounce2@");
    let before = app
        .store
        .reader()
        .await
        .expect("r")
        .row_counts()
        .await
        .expect("c")
        .tickets;
    let response = app.post("/api/tickets.email", orphan.as_bytes()).await;
    assert_eq!(response.status, 201);
    assert_eq!(response.text(), "", "stored, but no ticket to name");
    assert_eq!(
        app.store
            .reader()
            .await
            .expect("r")
            .row_counts()
            .await
            .expect("c")
            .tickets,
        before
    );

    // An auto-reply on a resolved ticket is posted but does not reopen it.
    let admin = app.key_with(&[Scope::Admin]).await;
    let closed = app
        .v1(
            "PATCH",
            &format!("/api/v1/tickets/{number}"),
            &admin,
            Some(serde_json::json!({"status": "Resolved"})),
        )
        .await;
    assert_eq!(closed.status, 200);
    let vacation = message(
        "ann@example.com",
        "Automatic reply: Order 17",
        "<ooo@example.com>",
        "In-Reply-To: <order17@example.com>\r\nAuto-Submitted: auto-replied\r\n",
        "I am out of the office.",
    );
    assert_eq!(post_mail(&app, &vacation).await, number);
    let t = ticket(&app, &number).await;
    assert!(t.closed_at.is_some(), "an auto-reply reopens nothing");
    assert!(
        entries(&app, &number)
            .await
            .last()
            .expect("entry")
            .flags
            .automatic
    );

    // Garbage is kept in quarantine with its reason, and the client is told it is safe.
    let response = app
        .post("/api/tickets.email", b"this is not a mail message at all")
        .await;
    assert_eq!(response.status, 201);
    let quarantined = app
        .store
        .reader()
        .await
        .expect("r")
        .inbound_list(InboundStatus::Quarantined, None, 10)
        .await
        .expect("list");
    assert_eq!(quarantined.len(), 1);
    let reason = quarantined[0].rule.clone().unwrap_or_default();
    assert!(
        reason.contains("no sender") || reason.contains("cannot be parsed"),
        "the quarantine names its reason: {reason}"
    );
    let (_, raw) = app
        .store
        .reader()
        .await
        .expect("r")
        .inbound(quarantined[0].id)
        .await
        .expect("i")
        .expect("kept");
    assert_eq!(
        raw, b"this is not a mail message at all",
        "the raw bytes are never lost"
    );
    app.finish().await;
}

async fn staff_replies_become_notes_and_cc_become_collaborators(backend: Backend) {
    let Some(app) = TestApp::spawn(backend).await else {
        return;
    };
    helpline_core::service::catalog::add_staff(
        &*app.store,
        helpline_core::catalog::NewStaff {
            username: "alice".into(),
            name: "Alice Agent".into(),
            email: helpline_core::email::EmailAddress::parse("alice@example.com").expect("e"),
            department_id: helpline_core::ids::DepartmentId(1),
        },
        helpline_core::event::Actor::system(),
    )
    .await
    .expect("staff");
    let number = post_mail(
        &app,
        &message(
            "owner@example.com",
            "Team access",
            "<t1@example.com>",
            "Cc: Boss <boss@example.com>, support@helpline.test\r\n",
            "Please add my boss.",
        ),
    )
    .await;
    // Cc on the first mail does not add anyone yet (only replies from participants do).
    let reply = message(
        "owner@example.com",
        "Re: Team access",
        "<t2@example.com>",
        "In-Reply-To: <t1@example.com>\r\nCc: Boss <boss@example.com>, support@helpline.test\r\n",
        "Adding my boss.",
    );
    assert_eq!(post_mail(&app, &reply).await, number);
    let t = ticket(&app, &number).await;
    let collaborators = app
        .store
        .reader()
        .await
        .expect("r")
        .collaborators(t.id)
        .await
        .expect("c");
    assert_eq!(collaborators.len(), 1, "the boss, never our own address");
    let boss = app
        .store
        .reader()
        .await
        .expect("r")
        .user(collaborators[0].user_id)
        .await
        .expect("u")
        .expect("user");
    assert_eq!(boss.emails[0].as_str(), "boss@example.com");

    let staff = message(
        "Alice Agent <alice@example.com>",
        "Re: Team access",
        "<t3@example.com>",
        "In-Reply-To: <t2@example.com>\r\n",
        "Internal: checking with IT.",
    );
    assert_eq!(post_mail(&app, &staff).await, number);
    let thread = entries(&app, &number).await;
    assert_eq!(
        thread.last().expect("entry").kind,
        helpline_core::thread::EntryKind::Note
    );
    app.finish().await;
}

async fn v1_inbound_endpoint_reports_outcomes(backend: Backend) {
    let Some(app) = TestApp::spawn(backend).await else {
        return;
    };
    let key = app.key_with(&[Scope::TicketsCreate]).await;
    let bearer = format!("Bearer {key}");
    let raw = message("v1@example.com", "Via v1", "<v1@example.com>", "", "hello");
    let headers = [
        ("Authorization", bearer.as_str()),
        ("Content-Type", "message/rfc822"),
    ];
    let created = app
        .v1_raw("POST", "/api/v1/inbound/email", &headers, &raw)
        .await;
    assert_eq!(created.status, 201, "{}", created.json);
    assert_eq!(created.json["status"], "processed");
    assert_eq!(created.json["class"], "normal");
    assert!(created.json["ticket"].is_string());
    let again = app
        .v1_raw("POST", "/api/v1/inbound/email", &headers, &raw)
        .await;
    assert_eq!(again.status, 200);
    assert_eq!(again.json["status"], "duplicate");
    assert_eq!(again.json["ticket"], created.json["ticket"]);
    let junk = app
        .v1_raw("POST", "/api/v1/inbound/email", &headers, b"garbage")
        .await;
    assert_eq!(junk.status, 202);
    assert_eq!(junk.json["status"], "quarantined");
    let empty = app
        .v1_raw("POST", "/api/v1/inbound/email", &headers, b"  ")
        .await;
    assert_eq!(empty.status, 400);
    app.finish().await;
}

async fn quarantine_is_listed_and_retried_and_pending_mail_is_finished(backend: Backend) {
    let Some(app) = TestApp::spawn(backend).await else {
        return;
    };
    let admin = app.key_with(&[Scope::Admin]).await;
    app.post(
        "/api/tickets.email",
        b"From: nobody\r\n\r\nno usable sender",
    )
    .await;
    let listed = app.v1("GET", "/api/v1/inbound", &admin, None).await;
    assert_eq!(listed.status, 200, "{}", listed.json);
    let messages = listed.json["messages"].as_array().expect("messages");
    assert_eq!(messages.len(), 1);
    assert_eq!(messages[0]["status"], "quarantined");
    let id = messages[0]["id"].as_i64().expect("id");
    let one = app
        .v1("GET", &format!("/api/v1/inbound/{id}"), &admin, None)
        .await;
    assert_eq!(one.json["attempts"], 1);
    let retried = app
        .v1("POST", &format!("/api/v1/inbound/{id}/retry"), &admin, None)
        .await;
    assert_eq!(retried.status, 200, "{}", retried.json);
    assert_eq!(retried.json["status"], "quarantined", "still no sender");
    let one = app
        .v1("GET", &format!("/api/v1/inbound/{id}"), &admin, None)
        .await;
    assert_eq!(one.json["attempts"], 2, "the retry is counted");
    let processed = app
        .v1("GET", "/api/v1/inbound?status=processed", &admin, None)
        .await;
    assert_eq!(processed.json["messages"], serde_json::json!([]));
    assert_eq!(
        app.v1("POST", "/api/v1/inbound/999/retry", &admin, None)
            .await
            .status,
        404
    );
    assert_eq!(
        app.v1("GET", "/api/v1/inbound?status=lost", &admin, None)
            .await
            .status,
        400
    );

    // A message stored before a crash, never processed: the next cron round finishes it.
    let raw = message(
        "late@example.com",
        "Stored before a crash",
        "<crash@example.com>",
        "",
        "hello",
    );
    let id = helpline_mail::pipeline::store_raw(
        &*app.store,
        helpline_core::inbound::NewInbound {
            source: "pipe".into(),
            mailbox: None,
            source_uid: None,
            raw,
        },
    )
    .await
    .expect("stored");
    let cron = app.post("/api/tasks/cron", b"").await;
    assert_eq!(cron.text(), "Completed");
    let (record, _) = app
        .store
        .reader()
        .await
        .expect("r")
        .inbound(id)
        .await
        .expect("i")
        .expect("exists");
    assert_eq!(record.status, InboundStatus::Processed);
    assert!(record.ticket_id.is_some());
    app.finish().await;
}

/// The directory of the mail-parser crate's own test messages, found through `cargo metadata`
/// (the crate's source is wherever cargo unpacked it).
fn mail_parser_fixtures() -> std::path::PathBuf {
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
    let output = std::process::Command::new(cargo)
        .args(["metadata", "--format-version", "1", "--locked"])
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .output()
        .expect("cargo metadata runs");
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    let metadata: serde_json::Value =
        serde_json::from_slice(&output.stdout).expect("metadata JSON");
    let manifest = metadata["packages"]
        .as_array()
        .expect("packages")
        .iter()
        .find(|p| p["name"] == "mail-parser")
        .and_then(|p| p["manifest_path"].as_str())
        .expect("mail-parser is a dependency")
        .to_owned();
    let dir = std::path::Path::new(&manifest)
        .parent()
        .expect("crate directory")
        .join("resources/eml");
    assert!(
        dir.is_dir(),
        "mail-parser's fixtures are missing at {}",
        dir.display()
    );
    dir
}

/// Every message mail-parser tests itself with goes through the whole pipeline — stored,
/// parsed, classified, threaded, stripped, posted or quarantined — without a panic, and each
/// ends in a final state.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn mail_parser_fixtures_pass_through_the_pipeline() {
    let Some(app) = TestApp::spawn(Backend::Sqlite).await else {
        return;
    };
    // The messages sit in sub-folders (rfc, legacy, malformed, thirdparty).
    let mut files = Vec::new();
    let mut folders = vec![mail_parser_fixtures()];
    while let Some(folder) = folders.pop() {
        for entry in std::fs::read_dir(&folder)
            .expect("fixtures")
            .filter_map(Result::ok)
        {
            let path = entry.path();
            if path.is_dir() {
                folders.push(path);
            } else if path.extension().is_some_and(|x| x == "eml") {
                files.push(path);
            }
        }
    }
    files.sort();
    assert!(
        files.len() >= 100,
        "expected the crate's ~107 messages, found {}",
        files.len()
    );
    let (mut posted, mut other) = (0, 0);
    for file in &files {
        let raw = std::fs::read(file).expect("read fixture");
        let outcome = helpline_mail::pipeline::receive(
            &*app.store,
            &helpline_core::service::DeskSettings::default(),
            &app.intake,
            helpline_core::inbound::NewInbound {
                source: "api".into(),
                mailbox: None,
                source_uid: None,
                raw,
            },
        )
        .await
        .unwrap_or_else(|e| panic!("{}: {e}", file.display()));
        assert_ne!(outcome.status, InboundStatus::Pending, "{}", file.display());
        if outcome.status == InboundStatus::Processed {
            posted += 1
        } else {
            other += 1
        }
    }
    println!(
        "mail-parser fixtures: {} messages, {posted} posted, {other} duplicate/ignored/quarantined",
        files.len()
    );
    let counts = app
        .store
        .reader()
        .await
        .expect("r")
        .row_counts()
        .await
        .expect("counts");
    assert_eq!(
        counts.inbound as usize,
        files.len(),
        "every message was stored"
    );
    app.finish().await;
}

async fn inline_images_are_stored_and_linked(backend: Backend) {
    let Some(app) = TestApp::spawn(backend).await else {
        return;
    };
    let raw = "From: pic@example.com\r\nTo: support@helpline.test\r\nSubject: Screenshot\r\n\
        Message-ID: <pic@example.com>\r\nMIME-Version: 1.0\r\n\
        Content-Type: multipart/related; boundary=\"r\"\r\n\r\n\
        --r\r\nContent-Type: text/html; charset=utf-8\r\n\r\n\
        <p>See <img src=\"cid:shot1@example.com\" alt=\"shot\"></p>\r\n\
        --r\r\nContent-Type: image/png\r\nContent-ID: <shot1@example.com>\r\n\
        Content-Disposition: inline; filename=\"shot.png\"\r\nContent-Transfer-Encoding: base64\r\n\r\n\
        iVBORw0KGgo=\r\n--r--\r\n";
    let number = post_mail(&app, raw.as_bytes()).await;
    let admin = app.key_with(&[Scope::Admin]).await;
    let entries = app
        .v1(
            "GET",
            &format!("/api/v1/tickets/{number}/entries"),
            &admin,
            None,
        )
        .await;
    let entry = &entries.json["entries"][0];
    let attachment = &entry["attachments"][0];
    assert_eq!(attachment["filename"], "shot.png");
    let url = attachment["url"].as_str().expect("url");
    let body = entry["body"].as_str().expect("body");
    assert!(
        body.contains(&format!("src=\"{url}\"")),
        "the image points at its download: {body}"
    );
    assert!(!body.contains("cid:"), "{body}");
    let bearer = format!("Bearer {admin}");
    let image = app
        .request("GET", url, &[("Authorization", &bearer)], b"")
        .await;
    assert_eq!(image.body, b"\x89PNG\r\n\x1a\n");
    app.finish().await;
}

async fn copies_processed_at_once_post_once_and_odd_mail_still_lands(backend: Backend) {
    let Some(app) = TestApp::spawn(backend).await else {
        return;
    };
    // The same mail delivered twice at the same moment (two of our addresses, two pipes).
    let raw = message(
        "twice@example.com",
        "Twice",
        "<twice@example.com>",
        "",
        "Only once, please.",
    );
    let (a, b) = tokio::join!(
        app.post("/api/tickets.email", &raw),
        app.post("/api/tickets.email", &raw)
    );
    assert_eq!(a.status, 201);
    assert_eq!(b.status, 201);
    let counts = app
        .store
        .reader()
        .await
        .expect("r")
        .row_counts()
        .await
        .expect("counts");
    assert_eq!(
        (counts.tickets, counts.entries, counts.inbound),
        (1, 1, 2),
        "one post, both copies kept"
    );
    let number = ticket(&app, &a.text().max(b.text()))
        .await
        .number
        .to_string();

    // A reply with no text at all (a photo sent alone) still lands.
    let photo = String::from(
        "From: twice@example.com\r\nTo: support@helpline.test\r\nSubject: Re: Twice\r\n\
         Message-ID: <photo@example.com>\r\nIn-Reply-To: <twice@example.com>\r\nMIME-Version: 1.0\r\n\
         Content-Type: multipart/mixed; boundary=\"m\"\r\n\r\n--m\r\nContent-Type: image/png\r\n\
         Content-Disposition: attachment; filename=\"photo.png\"\r\nContent-Transfer-Encoding: base64\r\n\r\n\
         iVBORw0KGgo=\r\n--m--\r\n",
    );
    assert_eq!(post_mail(&app, photo.as_bytes()).await, number);
    let thread = entries(&app, &number).await;
    assert_eq!(thread.len(), 2);
    assert_eq!(thread[1].attachments.len(), 1);

    // Bounce-shaped mail from a person is not passed off as a mail-system note.
    let fake_bounce = message(
        "Mallory <mallory@evil.example>",
        "Re: Twice",
        "<fakebounce@evil.example>",
        "In-Reply-To: <twice@example.com>\r\nX-Failed-Recipients: someone@example.com\r\n",
        "Trust me, I am a bounce.",
    );
    assert_eq!(post_mail(&app, &fake_bounce).await, number);
    let last = entries(&app, &number).await.pop().expect("entry");
    assert_eq!(last.kind, helpline_core::thread::EntryKind::Message);
    assert!(
        last.flags.unknown_sender,
        "posted as a message from an unknown sender"
    );
    app.finish().await;
}
