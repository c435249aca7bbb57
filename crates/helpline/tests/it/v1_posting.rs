//! The client reply API and the other posts: who may post, reopening, staff replies, notes,
//! concurrency, idempotency keys, and the osTicket patch's field names.

use crate::on_both_stores;
use crate::support::{Backend, TestApp};
use crate::v1_tickets::create;
use helpline_core::apikey::Scope;
use helpline_core::catalog::NewStaff;
use helpline_core::email::EmailAddress;
use helpline_core::event::Actor;
use helpline_core::ids::DepartmentId;
use helpline_core::ticket::{Ticket, TicketNumber};
use serde_json::{Value, json};
use std::collections::HashSet;

on_both_stores!(
    owner_and_collaborators_may_post_strangers_may_not,
    replies_close_messages_reopen_and_closed_for_good_is_409,
    staff_replies_and_notes,
    five_hundred_concurrent_client_replies,
    idempotency_keys_replay_and_refuse_reuse,
    osticket_patch_field_names,
);

async fn add_agent(app: &TestApp) {
    helpline_core::service::catalog::add_staff(
        &*app.store,
        NewStaff {
            username: "alice".into(),
            name: "Alice Agent".into(),
            email: EmailAddress::parse("alice@example.com").expect("email"),
            department_id: DepartmentId(1),
        },
        Actor::system(),
    )
    .await
    .expect("staff");
}

async fn stored(app: &TestApp, number: &str) -> Ticket {
    app.store
        .reader()
        .await
        .expect("reader")
        .ticket_by_number(&TicketNumber::parse(number).expect("n"))
        .await
        .expect("lookup")
        .expect("exists")
}

async fn entry_count(app: &TestApp, number: &str) -> usize {
    let ticket = stored(app, number).await;
    app.store
        .reader()
        .await
        .expect("r")
        .entries(ticket.id)
        .await
        .expect("entries")
        .len()
}

fn number(ticket: &Value) -> String {
    ticket["number"].as_str().expect("number").to_owned()
}

async fn owner_and_collaborators_may_post_strangers_may_not(backend: Backend) {
    let Some(app) = TestApp::spawn(backend).await else {
        return;
    };
    let key = app.key_with(&[Scope::Admin]).await;
    let ticket = create(
        &app,
        &key,
        json!({"email": "owner@example.com", "subject": "Help", "message": "first"}),
    )
    .await;
    let n = number(&ticket);
    let messages = format!("/api/v1/tickets/{n}/messages");

    let reply = app
        .v1(
            "POST",
            &messages,
            &key,
            Some(json!({"email": "OWNER@example.com", "message": "more details"})),
        )
        .await;
    assert_eq!(reply.status, 201, "{}", reply.json);
    assert_eq!(reply.json["kind"], "message");
    assert_eq!(reply.json["author"]["id"], ticket["customer"]["id"]);
    let after = stored(&app, &n).await;
    assert!(!after.is_answered);
    assert!(after.last_message_at > Some(after.created_at));

    // A stranger (known customer or not) is refused and nothing is stored.
    create(
        &app,
        &key,
        json!({"email": "stranger@example.com", "subject": "Mine", "message": "x"}),
    )
    .await;
    for poster in [
        json!({"email": "stranger@example.com"}),
        json!({"email": "nobody@example.com"}),
        json!({"user_id": 424242}),
    ] {
        let mut body = poster.clone();
        body["message"] = json!("let me in");
        let reply = app.v1("POST", &messages, &key, Some(body)).await;
        assert_eq!(reply.status, 403, "{poster}: {}", reply.json);
        assert!(
            reply.json["detail"].as_str().expect("d").contains("owner"),
            "{}",
            reply.json
        );
    }
    assert_eq!(entry_count(&app, &n).await, 2);

    // Once a collaborator, they may post; once removed, not any more.
    let added = app
        .v1(
            "POST",
            &format!("/api/v1/tickets/{n}/collaborators"),
            &key,
            Some(json!({"email": "stranger@example.com"})),
        )
        .await;
    assert_eq!(added.status, 201, "{}", added.json);
    let again = app
        .v1(
            "POST",
            &format!("/api/v1/tickets/{n}/collaborators"),
            &key,
            Some(json!({"email": "stranger@example.com"})),
        )
        .await;
    assert_eq!(again.status, 200);
    let owner = app
        .v1(
            "POST",
            &format!("/api/v1/tickets/{n}/collaborators"),
            &key,
            Some(json!({"email": "owner@example.com"})),
        )
        .await;
    assert_eq!(owner.status, 409);
    let listed = app
        .v1(
            "GET",
            &format!("/api/v1/tickets/{n}/collaborators"),
            &key,
            None,
        )
        .await;
    assert_eq!(
        listed.json["collaborators"][0]["user"]["emails"][0],
        "stranger@example.com"
    );
    let reply = app
        .v1(
            "POST",
            &messages,
            &key,
            Some(json!({"email": "stranger@example.com", "message": "as a collaborator"})),
        )
        .await;
    assert_eq!(reply.status, 201, "{}", reply.json);
    let removed = app
        .v1(
            "DELETE",
            &format!("/api/v1/tickets/{n}/collaborators"),
            &key,
            Some(json!({"email": "stranger@example.com"})),
        )
        .await;
    assert_eq!(removed.status, 204);
    let removed = app
        .v1(
            "DELETE",
            &format!("/api/v1/tickets/{n}/collaborators"),
            &key,
            Some(json!({"email": "stranger@example.com"})),
        )
        .await;
    assert_eq!(removed.status, 404);
    let reply = app
        .v1(
            "POST",
            &messages,
            &key,
            Some(json!({"email": "stranger@example.com", "message": "again"})),
        )
        .await;
    assert_eq!(reply.status, 403);
    assert_eq!(entry_count(&app, &n).await, 3);

    let reply = app
        .v1(
            "POST",
            "/api/v1/tickets/999999/messages",
            &key,
            Some(json!({"email": "owner@example.com", "message": "x"})),
        )
        .await;
    assert_eq!(reply.status, 404);
    app.finish().await;
}

async fn replies_close_messages_reopen_and_closed_for_good_is_409(backend: Backend) {
    let Some(app) = TestApp::spawn(backend).await else {
        return;
    };
    add_agent(&app).await;
    let key = app.key_with(&[Scope::Admin]).await;
    let ticket = create(
        &app,
        &key,
        json!({"email": "r@example.com", "subject": "Reopen me", "message": "first"}),
    )
    .await;
    let n = number(&ticket);
    let reply = app
        .v1(
            "POST",
            &format!("/api/v1/tickets/{n}/replies"),
            &key,
            Some(json!({"staff": "alice", "message": "fixed", "status": "Resolved"})),
        )
        .await;
    assert_eq!(reply.status, 201, "{}", reply.json);
    let closed = stored(&app, &n).await;
    assert!(closed.is_answered && closed.closed_at.is_some() && closed.last_response_at.is_some());

    let message = app
        .v1(
            "POST",
            &format!("/api/v1/tickets/{n}/messages"),
            &key,
            Some(json!({"email": "r@example.com", "message": "not fixed"})),
        )
        .await;
    assert_eq!(message.status, 201, "{}", message.json);
    let reopened = app
        .v1("GET", &format!("/api/v1/tickets/{n}"), &key, None)
        .await;
    assert_eq!(reopened.json["status"]["name"], "Open");
    assert!(reopened.json["closed_at"].is_null() && reopened.json["reopened_at"].is_string());
    assert_eq!(reopened.json["is_answered"], false);
    let events = app
        .store
        .reader()
        .await
        .expect("r")
        .ticket_events(closed.id)
        .await
        .expect("e");
    let kinds: Vec<_> = events.iter().map(|e| e.kind.as_str()).collect();
    assert!(
        kinds.contains(&"closed") && kinds.contains(&"reopened"),
        "{kinds:?}"
    );

    // Archived does not allow reopening: the message is refused and not stored.
    let archived = app
        .v1(
            "PATCH",
            &format!("/api/v1/tickets/{n}"),
            &key,
            Some(json!({"status": "Archived"})),
        )
        .await;
    assert_eq!(archived.status, 200);
    let before = entry_count(&app, &n).await;
    let refused = app
        .v1(
            "POST",
            &format!("/api/v1/tickets/{n}/messages"),
            &key,
            Some(json!({"email": "r@example.com", "message": "hello?"})),
        )
        .await;
    assert_eq!(refused.status, 409, "{}", refused.json);
    assert!(
        refused.json["detail"]
            .as_str()
            .expect("d")
            .contains("cannot be reopened"),
        "{}",
        refused.json
    );
    assert_eq!(entry_count(&app, &n).await, before);
    app.finish().await;
}

async fn staff_replies_and_notes(backend: Backend) {
    let Some(app) = TestApp::spawn(backend).await else {
        return;
    };
    add_agent(&app).await;
    let key = app.key_with(&[Scope::Admin]).await;
    let ticket = create(
        &app,
        &key,
        json!({"email": "s@example.com", "subject": "Staff", "message": "first"}),
    )
    .await;
    let n = number(&ticket);
    for staff in [json!("alice"), json!("Alice@Example.com"), json!(1)] {
        let reply = app
            .v1(
                "POST",
                &format!("/api/v1/tickets/{n}/replies"),
                &key,
                Some(json!({"staff": staff, "message": "<i>answer</i>", "format": "html"})),
            )
            .await;
        assert_eq!(reply.status, 201, "{staff}: {}", reply.json);
        assert_eq!(reply.json["kind"], "response");
        assert_eq!(reply.json["author"], json!({"type": "staff", "id": 1}));
        assert_eq!(reply.json["display_name"], "Alice Agent");
    }
    let unknown = app
        .v1(
            "POST",
            &format!("/api/v1/tickets/{n}/replies"),
            &key,
            Some(json!({"staff": "mallory", "message": "x"})),
        )
        .await;
    assert_eq!(unknown.status, 400);
    assert_eq!(unknown.json["errors"][0]["field"], "staff");
    let bad_status = app
        .v1(
            "POST",
            &format!("/api/v1/tickets/{n}/replies"),
            &key,
            Some(json!({"staff": "alice", "message": "x", "status": "Gone"})),
        )
        .await;
    assert_eq!(bad_status.status, 400);
    assert_eq!(bad_status.json["errors"][0]["field"], "status");
    assert_eq!(
        entry_count(&app, &n).await,
        4,
        "a refused reply stores nothing"
    );

    let note = app
        .v1(
            "POST",
            &format!("/api/v1/tickets/{n}/notes"),
            &key,
            Some(json!({"poster": "Monitoring", "title": "Disk alert", "message": "disk 91%"})),
        )
        .await;
    assert_eq!(note.status, 201, "{}", note.json);
    assert_eq!(note.json["kind"], "note");
    assert_eq!(note.json["author"]["type"], "system");
    assert_eq!(note.json["display_name"], "Monitoring");
    assert_eq!(note.json["title"], "Disk alert");
    let note = app
        .v1(
            "POST",
            &format!("/api/v1/tickets/{n}/notes"),
            &key,
            Some(json!({"staff": "alice", "message": "internal"})),
        )
        .await;
    assert_eq!(note.json["author"], json!({"type": "staff", "id": 1}));
    let empty = app
        .v1(
            "POST",
            &format!("/api/v1/tickets/{n}/notes"),
            &key,
            Some(json!({"poster": "x", "message": ""})),
        )
        .await;
    assert_eq!(empty.status, 400);
    let neither = app
        .v1(
            "POST",
            &format!("/api/v1/tickets/{n}/notes"),
            &key,
            Some(json!({"message": "who?"})),
        )
        .await;
    assert_eq!(neither.status, 400);
    let t = stored(&app, &n).await;
    assert!(t.is_answered);
    app.finish().await;
}

async fn five_hundred_concurrent_client_replies(backend: Backend) {
    let Some(app) = TestApp::spawn_with(backend, |api, _| api.rate_limit_per_minute = 0).await
    else {
        return;
    };
    let key = app.key_with(&[Scope::Admin]).await;
    let ticket = create(
        &app,
        &key,
        json!({"email": "busy@example.com", "subject": "Busy", "message": "first"}),
    )
    .await;
    let n = number(&ticket);
    let path = format!("/api/v1/tickets/{n}/messages");
    let replies = futures::future::join_all((0..500).map(|i| {
        let (app, key, path) = (&app, key.clone(), path.clone());
        async move {
            let body =
                json!({"email": "busy@example.com", "message": format!("reply {i}")}).to_string();
            let bearer = format!("Bearer {key}");
            app.request(
                "POST",
                &path,
                &[("Authorization", &bearer)],
                body.as_bytes(),
            )
            .await
        }
    }))
    .await;
    assert!(
        replies.iter().all(|r| r.status == 201),
        "every reply is accepted"
    );
    let t = stored(&app, &n).await;
    let entries = app
        .store
        .reader()
        .await
        .expect("r")
        .entries(t.id)
        .await
        .expect("entries");
    assert_eq!(entries.len(), 501);
    let bodies: HashSet<_> = entries[1..]
        .iter()
        .map(|e| e.body.as_str().to_owned())
        .collect();
    assert_eq!(bodies.len(), 500, "each reply stored once");
    for pair in entries.windows(2) {
        assert!(
            pair[0].id < pair[1].id && pair[0].created_at <= pair[1].created_at,
            "a consistent order"
        );
    }
    assert_eq!(
        t.last_message_at,
        Some(entries[500].created_at),
        "the counter matches the last entry"
    );
    assert!(!t.is_answered);
    let events = app
        .store
        .reader()
        .await
        .expect("r")
        .ticket_events(t.id)
        .await
        .expect("events");
    assert_eq!(
        events.iter().filter(|e| e.kind == "message_posted").count(),
        500
    );
    app.finish().await;
}

async fn idempotency_keys_replay_and_refuse_reuse(backend: Backend) {
    let Some(app) = TestApp::spawn_with(backend, |api, _| api.rate_limit_per_minute = 0).await
    else {
        return;
    };
    let key = app.key_with(&[Scope::Admin]).await;
    let ticket = create(
        &app,
        &key,
        json!({"email": "i@example.com", "subject": "Once", "message": "first"}),
    )
    .await;
    let n = number(&ticket);
    let path = format!("/api/v1/tickets/{n}/messages");
    let bearer = format!("Bearer {key}");
    let body = json!({"email": "i@example.com", "message": "exactly once"}).to_string();
    let headers = [
        ("Authorization", bearer.as_str()),
        ("Idempotency-Key", "msg-1"),
    ];
    let answers = futures::future::join_all(
        (0..100).map(|_| app.v1_raw("POST", &path, &headers, body.as_bytes())),
    )
    .await;
    let first = &answers[0];
    assert_eq!(first.status, 201, "{}", first.json);
    for answer in &answers {
        assert_eq!(answer.status, 201);
        assert_eq!(
            answer.raw.body, first.raw.body,
            "every repeat replays the first body"
        );
    }
    assert_eq!(entry_count(&app, &n).await, 2, "exactly one entry");

    let other = json!({"email": "i@example.com", "message": "something else"}).to_string();
    let reused = app
        .v1_raw(
            "POST",
            &path,
            &[("Authorization", &bearer), ("Idempotency-Key", "msg-1")],
            other.as_bytes(),
        )
        .await;
    assert_eq!(reused.status, 422, "{}", reused.json);
    assert_eq!(entry_count(&app, &n).await, 2);

    // Keys are per API key: another client's "msg-1" is its own.
    let other_key = app.key_with(&[Scope::MessagesCreate]).await;
    let other_bearer = format!("Bearer {other_key}");
    let theirs = app
        .v1_raw(
            "POST",
            &path,
            &[
                ("Authorization", &other_bearer),
                ("Idempotency-Key", "msg-1"),
            ],
            body.as_bytes(),
        )
        .await;
    assert_eq!(theirs.status, 201);
    assert_ne!(theirs.raw.body, first.raw.body);
    assert_eq!(entry_count(&app, &n).await, 3);

    // Ticket creation and PATCH honour keys too; a failed request does not use up its key.
    let create_body =
        json!({"email": "i2@example.com", "subject": "One ticket", "message": "m"}).to_string();
    let a = app
        .v1_raw(
            "POST",
            "/api/v1/tickets",
            &[("Authorization", &bearer), ("Idempotency-Key", "t-1")],
            create_body.as_bytes(),
        )
        .await;
    let b = app
        .v1_raw(
            "POST",
            "/api/v1/tickets",
            &[("Authorization", &bearer), ("Idempotency-Key", "t-1")],
            create_body.as_bytes(),
        )
        .await;
    assert_eq!((a.status, b.status), (201, 201));
    assert_eq!(a.json["number"], b.json["number"]);
    let patch = json!({"priority_id": 99}).to_string();
    let failed = app
        .v1_raw(
            "PATCH",
            &format!("/api/v1/tickets/{n}"),
            &[("Authorization", &bearer), ("Idempotency-Key", "p-1")],
            patch.as_bytes(),
        )
        .await;
    assert_eq!(failed.status, 400);
    let fixed = json!({"priority_id": 1}).to_string();
    let ok = app
        .v1_raw(
            "PATCH",
            &format!("/api/v1/tickets/{n}"),
            &[("Authorization", &bearer), ("Idempotency-Key", "p-1")],
            fixed.as_bytes(),
        )
        .await;
    assert_eq!(ok.status, 200, "{}", ok.json);
    let long = "k".repeat(300);
    let bad = app
        .v1_raw(
            "POST",
            &path,
            &[("Authorization", &bearer), ("Idempotency-Key", &long)],
            body.as_bytes(),
        )
        .await;
    assert_eq!(bad.status, 400);
    assert_eq!(bad.json["errors"][0]["field"], "Idempotency-Key");
    app.finish().await;
}

async fn osticket_patch_field_names(backend: Backend) {
    let Some(app) = TestApp::spawn(backend).await else {
        return;
    };
    let admin = app.key_with(&[Scope::Admin]).await;
    let ticket = create(
        &app,
        &admin,
        json!({"email": "patch@example.com", "subject": "Patch", "message": "first"}),
    )
    .await;
    let n = number(&ticket);
    let key = app.key_with(&[Scope::MessagesCreate]).await;
    let form = format!(
        "clientUserMail=patch%40example.com&ticketNumber={n}&response=Thanks%2C+it+works&ip_address=192.0.2.9"
    );
    let reply = app
        .request(
            "POST",
            "/api/tickets/reply",
            &[
                ("X-API-Key", &key),
                ("Content-Type", "application/x-www-form-urlencoded"),
            ],
            form.as_bytes(),
        )
        .await;
    assert_eq!(reply.status, 200, "{}", reply.text());
    let answer: Value = serde_json::from_slice(&reply.body).expect("json");
    assert_eq!(answer["status"], "success");
    assert!(answer["message"].is_string());
    let json_body =
        json!({"clientUserMail": "patch@example.com", "ticketNumber": n, "response": "via JSON"})
            .to_string();
    let reply = app
        .request(
            "POST",
            "/api/http.php/tickets/reply",
            &[("X-API-Key", &key), ("Content-Type", "application/json")],
            json_body.as_bytes(),
        )
        .await;
    assert_eq!(reply.status, 200, "{}", reply.text());
    let t = stored(&app, &n).await;
    let entries = app
        .store
        .reader()
        .await
        .expect("r")
        .entries(t.id)
        .await
        .expect("entries");
    assert_eq!(entries[1].body.as_str(), "Thanks, it works");
    assert_eq!(entries[1].ip, Some("192.0.2.9".parse().expect("ip")));

    let failures: [(String, u16, &str); 5] = [
        (
            format!("clientUserMail=evil%40example.com&ticketNumber={n}&response=hi"),
            403,
            "owner",
        ),
        (
            "clientUserMail=patch%40example.com&ticketNumber=999999&response=hi".to_owned(),
            404,
            "not found",
        ),
        (
            "ticketNumber=1".to_owned(),
            400,
            "clientUserMail is required",
        ),
        (
            format!(
                "clientUserMail=patch%40example.com&ticketNumber={n}&response=%27%3B+DROP+TABLE+ticket%3B--&ip_address=nope"
            ),
            400,
            "ip_address",
        ),
        (
            format!("clientUserMail=patch%40example.com&ticketNumber={n}"),
            400,
            "response",
        ),
    ];
    for (form, status, words) in failures {
        let reply = app
            .request(
                "POST",
                "/api/tickets/reply",
                &[("X-API-Key", &key)],
                form.as_bytes(),
            )
            .await;
        assert_eq!(reply.status, status, "{form}: {}", reply.text());
        let answer: Value = serde_json::from_slice(&reply.body).expect("json");
        assert_eq!(answer["status"], "failed");
        let errors = answer["errors"].to_string();
        assert!(errors.contains(words), "{form}: {errors}");
    }
    let reply = app
        .request("POST", "/api/tickets/reply", &[("X-API-Key", "wrong")], b"")
        .await;
    assert_eq!(reply.status, 401);
    let creator = app.key_with(&[Scope::TicketsCreate]).await;
    let reply = app
        .request(
            "POST",
            "/api/tickets/reply",
            &[("X-API-Key", &creator)],
            b"",
        )
        .await;
    assert_eq!(
        reply.status, 403,
        "a key without messages:create is refused"
    );
    assert_eq!(entry_count(&app, &n).await, 3);

    // An Idempotency-Key makes a retried reply land once.
    let form = format!("clientUserMail=patch%40example.com&ticketNumber={n}&response=once");
    let headers = [("X-API-Key", key.as_str()), ("Idempotency-Key", "reply-1")];
    let first = app
        .request("POST", "/api/tickets/reply", &headers, form.as_bytes())
        .await;
    let second = app
        .request("POST", "/api/tickets/reply", &headers, form.as_bytes())
        .await;
    assert_eq!((first.status, second.status), (200, 200));
    assert_eq!(first.body, second.body);
    assert_eq!(entry_count(&app, &n).await, 4);
    let other_method = app
        .request("GET", "/api/tickets/reply", &[("X-API-Key", &key)], b"")
        .await;
    assert_eq!(other_method.status, 400);
    assert_eq!(other_method.text(), "URL not supported");
    app.finish().await;
}
