//! `/api/v1/webhooks`: registering, listing, reading and removing endpoints, bad input, the
//! `admin` scope, and the delivery log with redelivery. Every answer is checked against the
//! OpenAPI document.

use crate::on_both_stores;
use crate::support::{Backend, TestApp};
use helpline_core::apikey::Scope;
use helpline_core::ids::{JobId, WebhookId};
use helpline_core::outbox::{JobKind, JobQuery, JobResult, NewJob};
use helpline_outbox::webhook::WebhookSecret;
use serde_json::{Value, json};

on_both_stores!(
    create_list_get_and_delete,
    bad_input_is_named_and_creates_nothing,
    only_admin_keys_may_manage_webhooks,
    deliveries_are_listed_filtered_paged_and_redelivered,
);

async fn create_hook(app: &TestApp, key: &str, body: Value) -> Value {
    let reply = app.v1("POST", "/api/v1/webhooks", key, Some(body)).await;
    assert_eq!(reply.status, 201, "{}", reply.json);
    reply.json
}

fn id_of(view: &Value) -> i64 {
    view["id"].as_i64().expect("id")
}

async fn create_list_get_and_delete(backend: Backend) {
    let Some(app) = TestApp::spawn(backend).await else {
        return;
    };
    let key = app.key_with(&[Scope::Admin]).await;
    let created = create_hook(
        &app,
        &key,
        json!({
            "url": " https://hooks.example.com/helpline?tenant=4 ",
            "events": ["ticket.created", "status.changed", "ticket.created"],
            "description": "CRM sync"
        }),
    )
    .await;
    assert_eq!(
        created["url"],
        "https://hooks.example.com/helpline?tenant=4"
    );
    assert_eq!(
        created["events"],
        json!(["ticket.created", "status.changed"]),
        "repeats collapse, order kept"
    );
    assert_eq!(created["description"], "CRM sync");
    assert!(created["created_at"].is_string());
    let secret = created["secret"].as_str().expect("secret");
    assert!(secret.starts_with("whsec_"), "{secret}");
    WebhookSecret::parse(secret).expect("the secret parses");
    let id = id_of(&created);

    let bare = create_hook(
        &app,
        &key,
        json!({"url": "http://[::1]:9000", "events": ["note.created"]}),
    )
    .await;
    assert!(bare["description"].is_null());
    assert_ne!(
        bare["secret"], created["secret"],
        "each endpoint has its own"
    );

    let mut shown = created.clone();
    shown.as_object_mut().expect("object").remove("secret");
    let read = app
        .v1("GET", &format!("/api/v1/webhooks/{id}"), &key, None)
        .await;
    assert_eq!(read.status, 200);
    assert_eq!(read.json, shown, "reading shows everything but the secret");
    let list = app.v1("GET", "/api/v1/webhooks", &key, None).await;
    assert_eq!(list.status, 200);
    let hooks = list.json["webhooks"].as_array().expect("webhooks");
    assert_eq!(hooks.len(), 2);
    assert_eq!(hooks[0], shown);
    assert!(hooks.iter().all(|hook| hook.get("secret").is_none()));

    // A repeated create with the same Idempotency-Key answers the first answer, secret included.
    let bearer = format!("Bearer {key}");
    let body = json!({"url": "https://once.example.com/", "events": ["reply.created"]}).to_string();
    let headers = [
        ("Authorization", bearer.as_str()),
        ("Content-Type", "application/json"),
        ("Idempotency-Key", "hook-once"),
    ];
    let first = app
        .v1_raw("POST", "/api/v1/webhooks", &headers, body.as_bytes())
        .await;
    assert_eq!(first.status, 201, "{}", first.json);
    let again = app
        .v1_raw("POST", "/api/v1/webhooks", &headers, body.as_bytes())
        .await;
    assert_eq!(again.status, 201);
    assert_eq!(again.json, first.json);
    let list = app.v1("GET", "/api/v1/webhooks", &key, None).await;
    assert_eq!(list.json["webhooks"].as_array().expect("webhooks").len(), 3);

    let path = format!("/api/v1/webhooks/{id}");
    assert_eq!(app.v1("DELETE", &path, &key, None).await.status, 204);
    for (method, path) in [
        ("GET", path.clone()),
        ("DELETE", path.clone()),
        ("GET", format!("{path}/deliveries")),
        ("GET", "/api/v1/webhooks/not-a-number".to_owned()),
    ] {
        let reply = app.v1(method, &path, &key, None).await;
        assert_eq!(reply.status, 404, "{method} {path}");
        assert_eq!(reply.json["type"], "urn:helpline:problem:not-found");
    }
    let list = app.v1("GET", "/api/v1/webhooks", &key, None).await;
    let ids: Vec<i64> = list.json["webhooks"]
        .as_array()
        .expect("webhooks")
        .iter()
        .map(id_of)
        .collect();
    assert_eq!(ids.len(), 2);
    assert!(!ids.contains(&id));
    app.finish().await;
}

async fn bad_input_is_named_and_creates_nothing(backend: Backend) {
    let Some(app) = TestApp::spawn(backend).await else {
        return;
    };
    let key = app.key_with(&[Scope::Admin]).await;
    let events = json!(["ticket.created"]);
    let long = "x".repeat(201);
    let cases: Vec<(Value, &[&str])> = vec![
        (json!({"events": events}), &["url"]),
        (json!({"url": "", "events": events}), &["url"]),
        (
            json!({"url": "hooks.example.com/in", "events": events}),
            &["url"],
        ),
        (json!({"url": "/in", "events": events}), &["url"]),
        (
            json!({"url": "ftp://example.com/", "events": events}),
            &["url"],
        ),
        (json!({"url": "http://", "events": events}), &["url"]),
        (
            json!({"url": "https://user:pw@example.com/", "events": events}),
            &["url"],
        ),
        (
            json!({"url": "http://exa mple.com/", "events": events}),
            &["url"],
        ),
        (
            json!({"url": "http://example.com:99999/", "events": events}),
            &["url"],
        ),
        (json!({"url": "https://example.com/"}), &["events"]),
        (
            json!({"url": "https://example.com/", "events": []}),
            &["events"],
        ),
        (
            json!({"url": "https://example.com/", "events": ["ticket.created", "ticket.deleted"]}),
            &["events[1]"],
        ),
        (
            json!({"url": "https://example.com/", "events": events, "description": long}),
            &["description"],
        ),
        (
            json!({"url": "https://example.com/", "events": events, "description": "two\nlines"}),
            &["description"],
        ),
        (
            json!({"url": "https://example.com/", "events": events, "secret": "whsec_mine"}),
            &["secret"],
        ),
        (
            json!({"url": "https://example.com/", "events": "ticket.created"}),
            &["events"],
        ),
        (
            json!({"url": "mailto:a@example.com", "events": ["nope"], "description": "\u{7}"}),
            &["url", "events[0]", "description"],
        ),
    ];
    for (body, fields) in cases {
        let reply = app
            .v1("POST", "/api/v1/webhooks", &key, Some(body.clone()))
            .await;
        assert_eq!(reply.status, 400, "{body}: {}", reply.json);
        assert_eq!(reply.json["type"], "urn:helpline:problem:validation");
        let named: Vec<&str> = reply.json["errors"]
            .as_array()
            .expect("errors")
            .iter()
            .map(|e| e["field"].as_str().expect("field"))
            .collect();
        assert_eq!(named, fields, "{body}");
    }
    let reply = app.v1("POST", "/api/v1/webhooks", &key, None).await;
    assert_eq!(reply.status, 400);
    assert_eq!(reply.json["errors"][0]["field"], "body");

    let list = app.v1("GET", "/api/v1/webhooks", &key, None).await;
    assert_eq!(list.json["webhooks"], json!([]), "nothing was created");
    app.finish().await;
}

async fn only_admin_keys_may_manage_webhooks(backend: Backend) {
    let Some(app) = TestApp::spawn(backend).await else {
        return;
    };
    let admin = app.key_with(&[Scope::Admin]).await;
    let id = id_of(
        &create_hook(
            &app,
            &admin,
            json!({"url": "https://example.com/", "events": ["ticket.created"]}),
        )
        .await,
    );
    let everything_but_admin: Vec<Scope> = Scope::ALL
        .into_iter()
        .filter(|scope| *scope != Scope::Admin)
        .collect();
    let other = app.key_with(&everything_but_admin).await;
    let body = json!({"url": "https://example.com/", "events": ["ticket.created"]});
    let routes = [
        ("POST", "/api/v1/webhooks".to_owned(), Some(body)),
        ("GET", "/api/v1/webhooks".to_owned(), None),
        ("GET", format!("/api/v1/webhooks/{id}"), None),
        ("GET", format!("/api/v1/webhooks/{id}/deliveries"), None),
        (
            "POST",
            format!("/api/v1/webhooks/{id}/deliveries/1/redeliver"),
            None,
        ),
        ("DELETE", format!("/api/v1/webhooks/{id}"), None),
    ];
    for (method, path, body) in &routes {
        let reply = app.v1(method, path, &other, body.clone()).await;
        assert_eq!(reply.status, 403, "{method} {path}: {}", reply.json);
        assert_eq!(reply.json["type"], "urn:helpline:problem:missing-scope");
        let anonymous = app
            .v1_raw(method, path, &[("Content-Type", "application/json")], b"{}")
            .await;
        assert_eq!(anonymous.status, 401, "{method} {path}");
    }
    let read = app
        .v1("GET", &format!("/api/v1/webhooks/{id}"), &admin, None)
        .await;
    assert_eq!(read.status, 200, "the refused DELETE removed nothing");
    let list = app.v1("GET", "/api/v1/webhooks", &admin, None).await;
    assert_eq!(
        list.json["webhooks"].as_array().expect("webhooks").len(),
        1,
        "the refused POST created nothing"
    );
    app.finish().await;
}

/// Adds a delivery of event `event_id` to `webhook`, as the outbox worker would.
async fn insert_delivery(app: &TestApp, webhook: i64, event_id: &str) -> (JobId, String) {
    let payload = json!({
        "id": event_id,
        "type": "ticket.created",
        "timestamp": "2026-11-25T14:00:00Z",
        "data": {"ticket": {"number": "123456"}}
    })
    .to_string();
    let job = NewJob {
        kind: JobKind::Webhook,
        payload: payload.clone(),
        topic: None,
        webhook_id: Some(WebhookId(webhook)),
        run_at: helpline_core::now(),
    };
    let id = app
        .store
        .write(move |tx| {
            Box::pin(async move { Ok(tx.insert_job(&job, helpline_core::now()).await?) })
        })
        .await
        .expect("delivery inserted");
    (id, payload)
}

/// Claims the two oldest webhook deliveries and ends them: the first done, the second dead.
async fn finish_two_oldest(app: &TestApp) -> (JobId, JobId) {
    app.store
        .write(|tx| {
            Box::pin(async move {
                let now = helpline_core::now() + time::Duration::seconds(1);
                let claimed = tx
                    .claim_jobs(
                        &[JobKind::Webhook],
                        "test-worker",
                        now,
                        now + time::Duration::minutes(1),
                        2,
                    )
                    .await?;
                assert_eq!(claimed.len(), 2, "two deliveries claimed");
                let (done, dead) = (&claimed[0], &claimed[1]);
                let finished_done = tx
                    .finish_job(
                        done.id,
                        done.attempts,
                        &JobResult::Done(Some("204 No Content".into())),
                        now,
                    )
                    .await?;
                let finished_dead = tx
                    .finish_job(
                        dead.id,
                        dead.attempts,
                        &JobResult::Dead("410 Gone".into()),
                        now,
                    )
                    .await?;
                assert!(finished_done && finished_dead);
                Ok((done.id, dead.id))
            })
        })
        .await
        .expect("deliveries finished")
}

async fn deliveries_are_listed_filtered_paged_and_redelivered(backend: Backend) {
    let Some(app) = TestApp::spawn(backend).await else {
        return;
    };
    let key = app.key_with(&[Scope::Admin]).await;
    let hook = |url: &str| json!({"url": url, "events": ["ticket.created"]});
    let ours = id_of(&create_hook(&app, &key, hook("https://ours.example.com/")).await);
    let theirs = id_of(&create_hook(&app, &key, hook("https://theirs.example.com/")).await);
    let deliveries = format!("/api/v1/webhooks/{ours}/deliveries");

    // Opening a ticket writes only its announcement: no delivery until a worker expands it.
    let ticket = app
        .v1(
            "POST",
            "/api/v1/tickets",
            &app.key,
            Some(json!({"email": "ann@example.com", "subject": "Hello", "message": "Hi"})),
        )
        .await;
    assert_eq!(ticket.status, 201, "{}", ticket.json);
    let empty = app.v1("GET", &deliveries, &key, None).await;
    assert_eq!(empty.status, 200);
    assert_eq!(empty.json["deliveries"], json!([]));
    assert!(empty.json["next_cursor"].is_null());

    let (first, first_payload) = insert_delivery(&app, ours, "evt_1").await;
    let (second, _) = insert_delivery(&app, ours, "evt_2").await;
    let (third, _) = insert_delivery(&app, ours, "evt_3").await;
    let (foreign, _) = insert_delivery(&app, theirs, "evt_1").await;
    let (done, dead) = finish_two_oldest(&app).await;
    assert_eq!((done, dead), (first, second));

    let ids = |reply: &crate::support::Reply| -> Vec<i64> {
        reply.json["deliveries"]
            .as_array()
            .expect("deliveries")
            .iter()
            .map(id_of)
            .collect()
    };
    let all = app.v1("GET", &deliveries, &key, None).await;
    assert_eq!(all.status, 200, "{}", all.json);
    assert_eq!(ids(&all), vec![third.0, second.0, first.0], "newest first");
    let view = |id: JobId| {
        all.json["deliveries"]
            .as_array()
            .expect("deliveries")
            .iter()
            .find(|d| d["id"] == id.0)
            .cloned()
            .expect("listed")
    };
    let delivered = view(first);
    assert_eq!(delivered["webhook_id"], ours);
    assert_eq!(delivered["message_id"], format!("msg_{}", first.0));
    assert_eq!(delivered["event_id"], "evt_1");
    assert_eq!(delivered["event_type"], "ticket.created");
    assert_eq!(delivered["state"], "done");
    assert_eq!(delivered["attempts"], 1);
    assert_eq!(delivered["last_result"], "204 No Content");
    assert!(delivered["finished_at"].is_string());
    assert!(delivered["next_attempt_at"].is_string());
    assert!(delivered["created_at"].is_string());
    let parked = view(second);
    assert_eq!(parked["state"], "dead");
    assert_eq!(parked["last_result"], "410 Gone");
    let waiting = view(third);
    assert_eq!(waiting["state"], "pending");
    assert_eq!(waiting["attempts"], 0);
    assert!(waiting["finished_at"].is_null());
    assert!(waiting["last_result"].is_null());

    for (state, expected) in [("done", first), ("dead", second), ("pending", third)] {
        let reply = app
            .v1("GET", &format!("{deliveries}?state={state}"), &key, None)
            .await;
        assert_eq!(reply.status, 200);
        assert_eq!(ids(&reply), vec![expected.0], "{state}");
    }
    for query in [
        "state=running",
        "limit=0",
        "limit=101",
        "cursor=zzz",
        "page=2",
    ] {
        let reply = app
            .v1("GET", &format!("{deliveries}?{query}"), &key, None)
            .await;
        assert_eq!(reply.status, 400, "{query}: {}", reply.json);
        let field = reply.json["errors"][0]["field"].as_str().expect("field");
        let named = query.split('=').next().expect("name");
        assert!(field == named || field == "query", "{query}: {field}");
    }

    let page = app
        .v1("GET", &format!("{deliveries}?limit=2"), &key, None)
        .await;
    assert_eq!(ids(&page), vec![third.0, second.0]);
    let cursor = page.json["next_cursor"]
        .as_str()
        .expect("cursor")
        .to_owned();
    let rest = app
        .v1(
            "GET",
            &format!("{deliveries}?limit=2&cursor={cursor}"),
            &key,
            None,
        )
        .await;
    assert_eq!(ids(&rest), vec![first.0]);
    assert!(rest.json["next_cursor"].is_null());

    // Redelivery: a finished delivery is pending again, due now, with its attempts reset; the
    // same body goes out under the same webhook-id.
    let redeliver = |id: JobId| format!("{deliveries}/{}/redeliver", id.0);
    let again = app.v1("POST", &redeliver(first), &key, None).await;
    assert_eq!(again.status, 202, "{}", again.json);
    assert_eq!(again.json["id"], first.0);
    assert_eq!(again.json["state"], "pending");
    assert_eq!(again.json["attempts"], 0);
    assert_eq!(again.json["message_id"], delivered["message_id"]);
    assert_eq!(again.json["event_id"], "evt_1");
    assert!(again.json["finished_at"].is_null());
    let stored = app
        .store
        .reader()
        .await
        .expect("reader")
        .job(first)
        .await
        .expect("job")
        .expect("still there");
    assert_eq!(stored.payload, first_payload, "the same body is sent again");
    let revived = app.v1("POST", &redeliver(second), &key, None).await;
    assert_eq!(revived.status, 202, "{}", revived.json);
    assert_eq!(revived.json["state"], "pending");
    let pending = app
        .v1("GET", &format!("{deliveries}?state=pending"), &key, None)
        .await;
    assert_eq!(ids(&pending), vec![third.0, second.0, first.0]);

    for id in [first, third] {
        let reply = app.v1("POST", &redeliver(id), &key, None).await;
        assert_eq!(reply.status, 409, "{}", reply.json);
        assert_eq!(reply.json["type"], "urn:helpline:problem:conflict");
    }
    for path in [
        redeliver(foreign),
        redeliver(JobId(foreign.0 + 100)),
        format!("{deliveries}/abc/redeliver"),
        format!(
            "/api/v1/webhooks/{}/deliveries/{}/redeliver",
            theirs + 100,
            foreign.0
        ),
    ] {
        let reply = app.v1("POST", &path, &key, None).await;
        assert_eq!(reply.status, 404, "{path}: {}", reply.json);
        assert_eq!(reply.json["type"], "urn:helpline:problem:not-found");
    }
    let missing = app
        .v1(
            "GET",
            &format!("/api/v1/webhooks/{}/deliveries", theirs + 100),
            &key,
            None,
        )
        .await;
    assert_eq!(missing.status, 404);

    // Removing an endpoint removes its deliveries, and only its own.
    let removed = app
        .v1("DELETE", &format!("/api/v1/webhooks/{ours}"), &key, None)
        .await;
    assert_eq!(removed.status, 204);
    let mut reader = app.store.reader().await.expect("reader");
    let left = |webhook: i64| JobQuery {
        kind: Some(JobKind::Webhook),
        webhook_id: Some(WebhookId(webhook)),
        limit: 10,
        ..JobQuery::default()
    };
    assert!(reader.jobs(&left(ours)).await.expect("jobs").is_empty());
    assert_eq!(reader.jobs(&left(theirs)).await.expect("jobs").len(), 1);
    drop(reader);
    app.finish().await;
}
