//! `/api/v1` tickets: create, read, thread, attachments, list and search, paging, changes,
//! catalogues and customers, bad input. Every answer is checked against the OpenAPI document.

use crate::on_both_stores;
use crate::support::{Backend, TestApp};
use base64::Engine;
use helpline_core::apikey::Scope;
use helpline_core::service::keys::list_api_keys;
use helpline_core::ticket::TicketNumber;
use serde_json::{Value, json};
use std::collections::HashSet;

on_both_stores!(
    create_read_thread_and_download,
    list_filters_and_full_text_search,
    paging_neither_skips_nor_repeats_during_inserts,
    patch_changes_fields_and_records_events,
    bad_input_is_named_and_writes_nothing,
    catalogues_and_customers,
);

fn b64(bytes: &[u8]) -> String {
    base64::engine::general_purpose::STANDARD.encode(bytes)
}

pub async fn create(app: &TestApp, key: &str, body: Value) -> Value {
    let reply = app.v1("POST", "/api/v1/tickets", key, Some(body)).await;
    assert_eq!(reply.status, 201, "{}", reply.json);
    reply.json
}

async fn create_read_thread_and_download(backend: Backend) {
    let Some(app) = TestApp::spawn(backend).await else {
        return;
    };
    let key = app.key_with(&[Scope::Admin]).await;
    let key_id = list_api_keys(&*app.store)
        .await
        .expect("keys")
        .last()
        .expect("key")
        .id
        .0;
    let pdf = b"%PDF-1.4 fake but binary \x00\x01\x02\xff".to_vec();
    let ticket = create(
        &app,
        &key,
        json!({
            "email": "Dana@Example.com", "name": "Dana Customer", "subject": "Invoice is wrong",
            "message": "<p>See <b>attached</b><script>alert(1)</script></p>", "format": "html",
            "priority_id": 3, "topic_id": 1,
            "attachments": [{"filename": "invoice.pdf", "content_type": "application/pdf", "data": b64(&pdf)}]
        }),
    )
    .await;
    let number = ticket["number"].as_str().expect("number").to_owned();
    assert_eq!(ticket["subject"], "Invoice is wrong");
    assert_eq!(ticket["status"]["name"], "Open");
    assert_eq!(ticket["status"]["state"], "open");
    assert_eq!(ticket["priority"]["name"], "High");
    assert_eq!(ticket["topic"]["name"], "General Inquiry");
    assert_eq!(ticket["department"]["name"], "Support");
    assert_eq!(ticket["customer"]["email"], "Dana@Example.com");
    assert_eq!(ticket["customer"]["name"], "Dana Customer");
    assert_eq!(ticket["is_answered"], false);
    assert_eq!(ticket["ip"], "127.0.0.1");

    let read = app
        .v1("GET", &format!("/api/v1/tickets/{number}"), &key, None)
        .await;
    assert_eq!(read.status, 200);
    assert_eq!(read.json, ticket, "reading returns what creating returned");

    let entries = app
        .v1(
            "GET",
            &format!("/api/v1/tickets/{number}/entries"),
            &key,
            None,
        )
        .await;
    assert_eq!(entries.status, 200);
    let entry = &entries.json["entries"][0];
    assert_eq!(entry["kind"], "message");
    assert_eq!(entry["author"]["type"], "user");
    assert_eq!(entry["author"]["id"], ticket["customer"]["id"]);
    assert_eq!(entry["display_name"], "Dana Customer");
    assert_eq!(entry["format"], "html");
    assert_eq!(
        entry["api_key_id"], key_id,
        "the posting credential is shown apart from the author"
    );
    let body = entry["body"].as_str().expect("body");
    assert!(
        body.contains("<b>attached</b>") && !body.contains("script"),
        "{body}"
    );
    let attachment = &entry["attachments"][0];
    assert_eq!(attachment["filename"], "invoice.pdf");
    assert_eq!(attachment["size"], pdf.len());
    let url = attachment["url"].as_str().expect("url").to_owned();

    let bearer = format!("Bearer {key}");
    let download = app
        .request("GET", &url, &[("Authorization", &bearer)], b"")
        .await;
    assert_eq!(download.status, 200);
    assert_eq!(download.header("content-type"), Some("application/pdf"));
    assert_eq!(download.header("x-content-type-options"), Some("nosniff"));
    assert_eq!(download.body, pdf);

    // The same attachment id through another ticket's URL is not found.
    let other = create(
        &app,
        &key,
        json!({"email": "o@example.com", "subject": "Other", "message": "x"}),
    )
    .await;
    let other_number = other["number"].as_str().expect("number");
    let wrong = url.replace(&number, other_number);
    let reply = app.v1("GET", &wrong, &key, None).await;
    assert_eq!(reply.status, 404);
    assert_eq!(
        reply.raw.header("content-type"),
        Some("application/problem+json")
    );

    for path in [
        "/api/v1/tickets/000000",
        "/api/v1/tickets/000000/entries",
        "/api/v1/tickets/bad%20number",
    ] {
        let reply = app.v1("GET", path, &key, None).await;
        assert_eq!(reply.status, 404, "{path}");
        assert_eq!(reply.json["status"], 404);
        assert!(
            reply.json["detail"]
                .as_str()
                .expect("detail")
                .contains("not found")
        );
    }
    let reply = app.v1("GET", "/api/v1/nothing-here", &key, None).await;
    assert_eq!(reply.status, 404);
    app.finish().await;
}

async fn list_filters_and_full_text_search(backend: Backend) {
    let Some(app) = TestApp::spawn(backend).await else {
        return;
    };
    let key = app.key_with(&[Scope::Admin]).await;
    helpline_core::service::catalog::add_staff(
        &*app.store,
        helpline_core::catalog::NewStaff {
            username: "alice".into(),
            name: "Alice Agent".into(),
            email: helpline_core::email::EmailAddress::parse("alice@example.com").expect("email"),
            department_id: helpline_core::ids::DepartmentId(1),
        },
        helpline_core::event::Actor::system(),
    )
    .await
    .expect("staff");
    let printer = create(&app, &key, json!({"email": "ann@example.com", "subject": "Printer jams daily", "message": "paper everywhere"})).await;
    let invoice = create(&app, &key, json!({"email": "bob@example.com", "subject": "Invoice question", "message": "amount looks off"})).await;
    let login = create(&app, &key, json!({"email": "ann@example.com", "subject": "Cannot log in", "message": "password reset fails", "topic_id": 1})).await;
    let n = |t: &Value| t["number"].as_str().expect("number").to_owned();
    let reply = app
        .v1("POST", &format!("/api/v1/tickets/{}/replies", n(&invoice)), &key, Some(json!({"staff": "alice", "message": "we refunded the zebra fee", "status": "Resolved"})))
        .await;
    assert_eq!(reply.status, 201, "{}", reply.json);
    let patched = app
        .v1(
            "PATCH",
            &format!("/api/v1/tickets/{}", n(&login)),
            &key,
            Some(json!({"assignee": "alice"})),
        )
        .await;
    assert_eq!(patched.status, 200, "{}", patched.json);

    let numbers = |reply: &crate::support::Reply| -> Vec<String> {
        reply.json["tickets"]
            .as_array()
            .expect("tickets")
            .iter()
            .map(|t| t["number"].as_str().expect("n").to_owned())
            .collect()
    };
    let list = |query: &'static str| {
        let app = &app;
        let key = key.clone();
        async move {
            app.v1("GET", &format!("/api/v1/tickets{query}"), &key, None)
                .await
        }
    };
    let all = list("").await;
    assert_eq!(
        numbers(&all),
        vec![n(&login), n(&invoice), n(&printer)],
        "newest first"
    );
    assert!(all.json["next_cursor"].is_null());
    assert_eq!(
        numbers(&list("?customer_email=ANN@example.com").await),
        vec![n(&login), n(&printer)]
    );
    assert_eq!(
        numbers(&list("?customer_email=nobody@example.com").await),
        Vec::<String>::new()
    );
    assert_eq!(numbers(&list("?state=closed").await), vec![n(&invoice)]);
    assert_eq!(
        numbers(&list("?state=open").await),
        vec![n(&login), n(&printer)]
    );
    assert_eq!(numbers(&list("?status=Resolved").await), vec![n(&invoice)]);
    assert_eq!(
        numbers(&list("?status=1").await),
        vec![n(&login), n(&printer)]
    );
    assert_eq!(numbers(&list("?assignee=alice").await), vec![n(&login)]);
    assert_eq!(numbers(&list("?topic=1").await), vec![n(&login)]);
    assert_eq!(numbers(&list("?department=1").await).len(), 3);
    assert_eq!(numbers(&list("?department=2").await), Vec::<String>::new());
    assert_eq!(
        numbers(&list("?q=printer").await),
        vec![n(&printer)],
        "subject word"
    );
    assert_eq!(
        numbers(&list("?q=zebra").await),
        vec![n(&invoice)],
        "word of a later reply"
    );
    assert_eq!(
        numbers(&list("?q=password%20reset").await),
        vec![n(&login)],
        "all words"
    );
    assert_eq!(
        numbers(&list("?q=password%20zebra").await),
        Vec::<String>::new()
    );
    assert_eq!(
        numbers(&list("?q=%22%2A%20OR%20NEAR(").await),
        Vec::<String>::new(),
        "query syntax is inert"
    );
    assert_eq!(
        numbers(&list("?q=printer&state=closed").await),
        Vec::<String>::new()
    );
    let since = login["created_at"].as_str().expect("created").to_owned();
    let reply = app
        .v1(
            "GET",
            &format!(
                "/api/v1/tickets?updated_since={}",
                since.replace('+', "%2B")
            ),
            &key,
            None,
        )
        .await;
    assert!(numbers(&reply).contains(&n(&login)));

    for (query, field) in [
        ("?state=weird", "state"),
        ("?updated_since=yesterday", "updated_since"),
        ("?cursor=garbage!", "cursor"),
        ("?limit=0", "limit"),
        ("?limit=101", "limit"),
        ("?status=Nope", "status"),
        ("?assignee=nobody", "assignee"),
        ("?customer_email=not-mail", "customer_email"),
        ("?colour=blue", "query"),
    ] {
        let reply = list(query).await;
        assert_eq!(reply.status, 400, "{query}: {}", reply.json);
        let fields: Vec<_> = reply.json["errors"]
            .as_array()
            .expect("errors")
            .iter()
            .map(|e| e["field"].as_str().expect("f").to_owned())
            .collect();
        assert!(fields.contains(&field.to_owned()), "{query}: {fields:?}");
    }
    app.finish().await;
}

async fn paging_neither_skips_nor_repeats_during_inserts(backend: Backend) {
    let Some(app) = TestApp::spawn(backend).await else {
        return;
    };
    let key = app.key_with(&[Scope::Admin]).await;
    let mut before = HashSet::new();
    for i in 0..30 {
        let t = create(&app, &key, json!({"email": format!("p{i}@example.com"), "subject": format!("page {i}"), "message": "m"})).await;
        before.insert(t["number"].as_str().expect("n").to_owned());
    }
    // Page through while 20 more tickets are being created.
    // Several writers at once, so on PostgreSQL commits can land out of id order.
    let writer = async {
        futures::future::join_all((0..4).map(|w| {
            let (app, key) = (&app, key.clone());
            async move {
                for i in 0..5 {
                    let body = json!({"email": format!("late{w}-{i}@example.com"), "subject": "late", "message": "m"});
                    create(app, &key, body).await;
                }
            }
        }))
        .await;
    };
    let reader = async {
        let mut seen = Vec::new();
        let mut cursor: Option<String> = None;
        loop {
            let path = match &cursor {
                Some(c) => format!("/api/v1/tickets?limit=7&cursor={c}"),
                None => "/api/v1/tickets?limit=7".to_owned(),
            };
            let page = app.v1("GET", &path, &key, None).await;
            assert_eq!(page.status, 200, "{}", page.json);
            for t in page.json["tickets"].as_array().expect("tickets") {
                seen.push(t["number"].as_str().expect("n").to_owned());
            }
            match page.json["next_cursor"].as_str() {
                Some(next) => cursor = Some(next.to_owned()),
                None => break,
            }
            tokio::task::yield_now().await;
        }
        seen
    };
    let ((), seen) = tokio::join!(writer, reader);
    let unique: HashSet<_> = seen.iter().cloned().collect();
    assert_eq!(unique.len(), seen.len(), "no ticket appears twice");
    assert!(
        before.is_subset(&unique),
        "every ticket that existed when paging began is seen"
    );
    app.finish().await;
}

async fn patch_changes_fields_and_records_events(backend: Backend) {
    let Some(app) = TestApp::spawn(backend).await else {
        return;
    };
    let key = app.key_with(&[Scope::Admin]).await;
    helpline_core::service::catalog::add_department(
        &*app.store,
        "Billing",
        helpline_core::event::Actor::system(),
    )
    .await
    .expect("dept");
    helpline_core::service::catalog::add_staff(
        &*app.store,
        helpline_core::catalog::NewStaff {
            username: "bert".into(),
            name: "Bert Agent".into(),
            email: helpline_core::email::EmailAddress::parse("bert@example.com").expect("email"),
            department_id: helpline_core::ids::DepartmentId(2),
        },
        helpline_core::event::Actor::system(),
    )
    .await
    .expect("staff");
    let ticket = create(
        &app,
        &key,
        json!({"email": "c@example.com", "subject": "Change me", "message": "m"}),
    )
    .await;
    let number = ticket["number"].as_str().expect("n").to_owned();
    let path = format!("/api/v1/tickets/{number}");
    let reply = app
        .v1(
            "PATCH",
            &path,
            &key,
            Some(json!({
                "status": "Closed", "priority_id": 4, "department_id": 2, "topic_id": 1,
                "assignee": "bert@example.com", "due_at": "2030-01-02T03:04:05Z"
            })),
        )
        .await;
    assert_eq!(reply.status, 200, "{}", reply.json);
    let t = &reply.json;
    assert_eq!(t["status"]["name"], "Closed");
    assert_eq!(t["priority"]["name"], "Emergency");
    assert_eq!(t["department"]["name"], "Billing");
    assert_eq!(t["topic"]["id"], 1);
    assert_eq!(t["assignee"]["name"], "Bert Agent");
    assert_eq!(t["due_at"], "2030-01-02T03:04:05Z");
    assert!(t["closed_at"].is_string());

    let stored = app
        .store
        .reader()
        .await
        .expect("r")
        .ticket_by_number(&TicketNumber::parse(&number).expect("n"))
        .await
        .expect("t")
        .expect("exists");
    let events = app
        .store
        .reader()
        .await
        .expect("r")
        .ticket_events(stored.id)
        .await
        .expect("events");
    let kinds: Vec<_> = events.iter().map(|e| e.kind.as_str()).collect();
    assert_eq!(
        kinds.iter().filter(|k| **k == "edited").count(),
        5,
        "{kinds:?}"
    );
    assert!(
        kinds.contains(&"status_changed") && kinds.contains(&"closed"),
        "{kinds:?}"
    );
    assert!(events.iter().all(|e| e.actor.api_key_id.is_some()));

    // Clearing, and unknown references.
    let reply = app
        .v1(
            "PATCH",
            &path,
            &key,
            Some(json!({"assignee": null, "due_at": null})),
        )
        .await;
    assert_eq!(reply.status, 200);
    assert!(reply.json["assignee"].is_null() && reply.json["due_at"].is_null());
    let reply = app.v1("PATCH", &path, &key, Some(json!({"priority_id": 99, "department_id": 77, "assignee": "ghost", "status": "Nope"}))).await;
    assert_eq!(reply.status, 400);
    let fields: Vec<_> = reply.json["errors"]
        .as_array()
        .expect("errors")
        .iter()
        .map(|e| e["field"].as_str().expect("f"))
        .collect();
    assert_eq!(
        fields,
        vec!["status", "priority_id", "department_id", "assignee"]
    );
    let reply = app.v1("PATCH", &path, &key, Some(json!({}))).await;
    assert_eq!(reply.status, 400);
    let reply = app
        .v1("PATCH", &path, &key, Some(json!({"subject": "x"})))
        .await;
    assert_eq!(reply.status, 400);
    assert!(
        reply.json["detail"]
            .as_str()
            .expect("d")
            .contains("subject"),
        "{}",
        reply.json
    );
    let reply = app
        .v1(
            "PATCH",
            "/api/v1/tickets/999999",
            &key,
            Some(json!({"priority_id": 1})),
        )
        .await;
    assert_eq!(reply.status, 404);
    app.finish().await;
}

async fn bad_input_is_named_and_writes_nothing(backend: Backend) {
    let Some(app) = TestApp::spawn_with(backend, |api, _| api.max_attachment_bytes = 10).await
    else {
        return;
    };
    let key = app.key_with(&[Scope::Admin]).await;
    let bearer = format!("Bearer {key}");
    let raw = app
        .v1_raw(
            "POST",
            "/api/v1/tickets",
            &[("Authorization", &bearer)],
            b"{\"email\": ",
        )
        .await;
    assert_eq!(raw.status, 400);
    assert_eq!(
        raw.raw.header("content-type"),
        Some("application/problem+json")
    );
    for (body, field) in [
        (json!({}), "email"),
        (json!({"email": "x@example.com", "subject": "s"}), "message"),
        (
            json!({"email": "x@example.com", "subject": "s", "message": "   "}),
            "message",
        ),
        (
            json!({"email": "bad", "subject": "s", "message": "m"}),
            "email",
        ),
        (
            json!({"email": "x@example.com", "subject": "", "message": "m"}),
            "subject",
        ),
        (
            json!({"email": "x@example.com", "subject": "s", "message": "m", "format": "rtf"}),
            "format",
        ),
        (
            json!({"email": "x@example.com", "subject": "s", "message": "m", "emial": "typo"}),
            "body",
        ),
        (json!({"email": 5, "subject": "s", "message": "m"}), "email"),
        (
            json!({"email": "x@example.com", "subject": "s", "message": "m", "topic_id": 42}),
            "topic_id",
        ),
        (
            json!({"email": "x@example.com", "subject": "s", "message": "m", "attachments": [{"filename": "a.bin", "content_type": "application/octet-stream", "data": "!!!"}]}),
            "attachments[0].data",
        ),
        (
            json!({"email": "x@example.com", "subject": "s", "message": "m", "attachments": [{"filename": "big.bin", "content_type": "application/octet-stream", "data": b64(&[0u8; 11])}]}),
            "attachments[0]",
        ),
        (
            json!({"email": "x@example.com", "subject": "s", "message": "m", "attachments": [{"filename": "a.txt", "data": "eA=="}]}),
            "attachments[0]",
        ),
    ] {
        let reply = app
            .v1("POST", "/api/v1/tickets", &key, Some(body.clone()))
            .await;
        assert_eq!(reply.status, 400, "{body}: {}", reply.json);
        let fields: Vec<_> = reply.json["errors"]
            .as_array()
            .expect("errors")
            .iter()
            .map(|e| e["field"].as_str().expect("f").to_owned())
            .collect();
        assert!(
            fields.iter().any(|f| f == field
                || (field == "body"
                    && reply.json["detail"]
                        .as_str()
                        .unwrap_or_default()
                        .contains("emial"))),
            "{body}: expected {field}, got {}",
            reply.json
        );
    }
    assert!(crate::support::nothing_written(&*app.store).await);

    // Control characters: a NUL in a name is refused by name; in a subject it folds to a
    // space; in a message it is dropped. None reaches the database (PostgreSQL refuses NUL).
    let reply = app
        .v1("POST", "/api/v1/tickets", &key, Some(json!({"email": "nul@example.com", "name": "A\u{0}B", "subject": "s", "message": "m"})))
        .await;
    assert_eq!(reply.status, 400);
    assert_eq!(reply.json["errors"][0]["field"], "name");
    let t = create(&app, &key, json!({"email": "nul@example.com", "subject": "a\u{0}b", "message": "c\u{0}d", "phone": "1"})).await;
    assert_eq!(t["subject"], "a b");
    let entries = app
        .v1(
            "GET",
            &format!(
                "/api/v1/tickets/{}/entries",
                t["number"].as_str().expect("n")
            ),
            &key,
            None,
        )
        .await;
    assert_eq!(entries.json["entries"][0]["body"], "cd");

    let nasty = "x'); DROP TABLE ticket; -- <script>alert(1)</script>";
    let t = create(
        &app,
        &key,
        json!({"email": "n@example.com", "subject": nasty, "message": nasty}),
    )
    .await;
    assert_eq!(t["subject"], nasty);
    let entries = app
        .v1(
            "GET",
            &format!(
                "/api/v1/tickets/{}/entries",
                t["number"].as_str().expect("n")
            ),
            &key,
            None,
        )
        .await;
    assert_eq!(entries.json["entries"][0]["body"], nasty, "text stays text");
    app.finish().await;
}

async fn catalogues_and_customers(backend: Backend) {
    let Some(app) = TestApp::spawn(backend).await else {
        return;
    };
    let key = app.key_with(&[Scope::Admin]).await;
    let reply = app.v1("GET", "/api/v1/departments", &key, None).await;
    assert_eq!(reply.json["departments"][0]["name"], "Support");
    let reply = app.v1("GET", "/api/v1/topics", &key, None).await;
    assert_eq!(reply.json["topics"][0]["name"], "General Inquiry");
    let reply = app.v1("GET", "/api/v1/statuses", &key, None).await;
    assert_eq!(reply.json["statuses"].as_array().expect("s").len(), 4);
    let reply = app.v1("GET", "/api/v1/priorities", &key, None).await;
    assert_eq!(reply.json["priorities"][1]["name"], "Normal");
    let reply = app.v1("GET", "/api/v1/staff", &key, None).await;
    assert_eq!(reply.json["staff"], json!([]));

    let created = app
        .v1(
            "POST",
            "/api/v1/users",
            &key,
            Some(json!({"email": "Eve@Example.com", "name": "Eve", "phone": "555"})),
        )
        .await;
    assert_eq!(created.status, 201, "{}", created.json);
    assert_eq!(created.json["emails"], json!(["Eve@Example.com"]));
    let id = created.json["id"].as_i64().expect("id");
    let again = app
        .v1(
            "POST",
            "/api/v1/users",
            &key,
            Some(json!({"email": "eve@example.com"})),
        )
        .await;
    assert_eq!(again.status, 409);
    let read = app
        .v1("GET", &format!("/api/v1/users/{id}"), &key, None)
        .await;
    assert_eq!(read.json, created.json);
    assert_eq!(
        app.v1("GET", "/api/v1/users/999999", &key, None)
            .await
            .status,
        404
    );
    let bad = app
        .v1(
            "POST",
            "/api/v1/users",
            &key,
            Some(json!({"name": "No Mail"})),
        )
        .await;
    assert_eq!(bad.status, 400);
    for i in 0..4 {
        app.v1(
            "POST",
            "/api/v1/users",
            &key,
            Some(json!({"email": format!("u{i}@example.com")})),
        )
        .await;
    }
    let first = app.v1("GET", "/api/v1/users?limit=3", &key, None).await;
    let cursor = first.json["next_cursor"]
        .as_str()
        .expect("cursor")
        .to_owned();
    let second = app
        .v1(
            "GET",
            &format!("/api/v1/users?limit=3&cursor={cursor}"),
            &key,
            None,
        )
        .await;
    assert_eq!(
        first.json["users"].as_array().expect("u").len()
            + second.json["users"].as_array().expect("u").len(),
        5
    );
    assert!(second.json["next_cursor"].is_null());
    app.finish().await;
}
