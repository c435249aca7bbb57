//! Who may call what on `/api/v1`: the scope matrix, address binding, revoked keys, rate limits,
//! and the OpenAPI document covering every route.

use crate::on_both_stores;
use crate::support::{Backend, TestApp};
use crate::v1_tickets::create;
use helpline_core::apikey::Scope;
use helpline_core::event::Actor;
use helpline_core::service::keys::{list_api_keys, revoke_api_key};
use serde_json::{Value, json};
use std::time::Duration;

on_both_stores!(every_route_against_every_scope, rate_limit_answers_429);

/// Each route, a body that passes input checks, and the scope it needs.
fn routes(
    n: &str,
    attachment: i64,
    user: i64,
) -> Vec<(&'static str, String, Option<Value>, Scope)> {
    vec![
        (
            "POST",
            "/api/v1/tickets".into(),
            Some(json!({"email": "m@example.com", "subject": "s", "message": "m"})),
            Scope::TicketsCreate,
        ),
        ("GET", "/api/v1/tickets".into(), None, Scope::TicketsRead),
        (
            "GET",
            format!("/api/v1/tickets/{n}"),
            None,
            Scope::TicketsRead,
        ),
        (
            "PATCH",
            format!("/api/v1/tickets/{n}"),
            Some(json!({"priority_id": 3})),
            Scope::TicketsUpdate,
        ),
        (
            "GET",
            format!("/api/v1/tickets/{n}/entries"),
            None,
            Scope::TicketsRead,
        ),
        (
            "GET",
            format!("/api/v1/tickets/{n}/attachments/{attachment}"),
            None,
            Scope::TicketsRead,
        ),
        (
            "GET",
            format!("/api/v1/tickets/{n}/collaborators"),
            None,
            Scope::TicketsRead,
        ),
        (
            "POST",
            format!("/api/v1/tickets/{n}/collaborators"),
            Some(json!({"email": "cc@example.com"})),
            Scope::TicketsUpdate,
        ),
        (
            "DELETE",
            format!("/api/v1/tickets/{n}/collaborators"),
            Some(json!({"email": "cc@example.com"})),
            Scope::TicketsUpdate,
        ),
        (
            "POST",
            format!("/api/v1/tickets/{n}/messages"),
            Some(json!({"email": "owner@example.com", "message": "m"})),
            Scope::MessagesCreate,
        ),
        (
            "POST",
            format!("/api/v1/tickets/{n}/replies"),
            Some(json!({"staff": "nobody", "message": "m"})),
            Scope::RepliesCreate,
        ),
        (
            "POST",
            format!("/api/v1/tickets/{n}/notes"),
            Some(json!({"poster": "Bot", "message": "m"})),
            Scope::NotesCreate,
        ),
        (
            "GET",
            "/api/v1/departments".into(),
            None,
            Scope::TicketsRead,
        ),
        ("GET", "/api/v1/topics".into(), None, Scope::TicketsRead),
        ("GET", "/api/v1/statuses".into(), None, Scope::TicketsRead),
        ("GET", "/api/v1/priorities".into(), None, Scope::TicketsRead),
        ("GET", "/api/v1/staff".into(), None, Scope::TicketsRead),
        ("GET", "/api/v1/users".into(), None, Scope::UsersRead),
        (
            "POST",
            "/api/v1/users".into(),
            Some(json!({"email": "new-user@example.com"})),
            Scope::UsersWrite,
        ),
        (
            "GET",
            format!("/api/v1/users/{user}"),
            None,
            Scope::UsersRead,
        ),
        (
            "POST",
            "/api/v1/webhooks".into(),
            Some(json!({"url": "https://hooks.example.com/h", "events": ["ticket.created"]})),
            Scope::Admin,
        ),
        ("GET", "/api/v1/webhooks".into(), None, Scope::Admin),
        ("GET", "/api/v1/webhooks/1".into(), None, Scope::Admin),
        (
            "GET",
            "/api/v1/webhooks/1/deliveries".into(),
            None,
            Scope::Admin,
        ),
        (
            "POST",
            "/api/v1/webhooks/1/deliveries/1/redeliver".into(),
            None,
            Scope::Admin,
        ),
        ("DELETE", "/api/v1/webhooks/999".into(), None, Scope::Admin),
    ]
}

async fn every_route_against_every_scope(backend: Backend) {
    // No key cache: the end revokes a key in use and expects the refusal at once (the cache's
    // expiry is tested in compat_auth).
    let Some(app) = TestApp::spawn_with(backend, |api, _| {
        api.rate_limit_per_minute = 0;
        api.key_cache_ttl = Duration::ZERO;
    })
    .await
    else {
        return;
    };
    let admin = app.key_with(&[Scope::Admin]).await;
    let ticket = create(
        &app,
        &admin,
        json!({
            "email": "owner@example.com", "subject": "Matrix", "message": "m",
            "attachments": [{"filename": "a.txt", "content_type": "text/plain", "data": "aGk="}]
        }),
    )
    .await;
    let n = ticket["number"].as_str().expect("n").to_owned();
    let entries = app
        .v1("GET", &format!("/api/v1/tickets/{n}/entries"), &admin, None)
        .await;
    let attachment = entries.json["entries"][0]["attachments"][0]["id"]
        .as_i64()
        .expect("attachment");
    let user = ticket["customer"]["id"].as_i64().expect("user");

    let mut keys = Vec::new();
    for scope in Scope::ALL {
        keys.push((scope, app.key_with(&[scope]).await));
    }
    for (method, path, body, needed) in routes(&n, attachment, user) {
        for (scope, key) in &keys {
            let reply = app.v1(method, &path, key, body.clone()).await;
            let allowed = *scope == needed || *scope == Scope::Admin;
            if allowed {
                assert!(
                    reply.status != 401 && reply.status != 403,
                    "{method} {path} with {scope}: refused with {} {}",
                    reply.status,
                    reply.json
                );
            } else {
                assert_eq!(
                    reply.status, 403,
                    "{method} {path} with {scope}: {}",
                    reply.json
                );
                assert!(
                    reply.json["detail"]
                        .as_str()
                        .expect("d")
                        .contains(needed.as_str())
                );
            }
        }
        // No key, an unknown key, a key from another address, a revoked key: 401.
        let elsewhere = app.create_key(&[Scope::Admin], &["192.0.2.1"]).await;
        let revoked = app.key_with(&[Scope::Admin]).await;
        let revoked_id = list_api_keys(&*app.store)
            .await
            .expect("keys")
            .last()
            .expect("key")
            .id;
        revoke_api_key(&*app.store, revoked_id, Actor::system())
            .await
            .expect("revoke");
        for key in ["", "hl_unknown", elsewhere.as_str(), revoked.as_str()] {
            let reply = app.v1(method, &path, key, body.clone()).await;
            assert_eq!(reply.status, 401, "{method} {path} with {key:?}");
            assert_eq!(reply.raw.header("www-authenticate"), Some("Bearer"));
        }
    }
    // The osTicket patch's reply route takes part in the same scheme: messages:create or admin.
    let form = format!("clientUserMail=owner%40example.com&ticketNumber={n}&response=matrix");
    for (scope, key) in &keys {
        let reply = app
            .request(
                "POST",
                "/api/tickets/reply",
                &[("X-API-Key", key)],
                form.as_bytes(),
            )
            .await;
        if matches!(scope, Scope::MessagesCreate | Scope::Admin) {
            assert_eq!(
                reply.status,
                200,
                "patch route with {scope}: {}",
                reply.text()
            );
        } else {
            assert_eq!(
                reply.status,
                403,
                "patch route with {scope}: {}",
                reply.text()
            );
        }
    }
    let elsewhere = app.create_key(&[Scope::Admin], &["192.0.2.1"]).await;
    let reply = app
        .request(
            "POST",
            "/api/tickets/reply",
            &[("X-API-Key", &elsewhere)],
            form.as_bytes(),
        )
        .await;
    assert_eq!(reply.status, 401);
    // X-API-Key works as well as Bearer.
    let reply = app
        .v1_raw("GET", "/api/v1/statuses", &[("X-API-Key", &admin)], b"")
        .await;
    assert_eq!(reply.status, 200);
    let id = list_api_keys(&*app.store).await.expect("keys")[1].id;
    revoke_api_key(&*app.store, id, Actor::system())
        .await
        .expect("revoke");
    let revoked = app.v1("GET", "/api/v1/statuses", &admin, None).await;
    assert_eq!(revoked.status, 401);
    assert!(
        revoked.json["detail"]
            .as_str()
            .expect("d")
            .contains("revoked")
    );
    app.finish().await;
}

async fn rate_limit_answers_429(backend: Backend) {
    let Some(app) = TestApp::spawn_with(backend, |api, _| api.rate_limit_per_minute = 3).await
    else {
        return;
    };
    let key = app.key_with(&[Scope::TicketsRead]).await;
    for _ in 0..3 {
        assert_eq!(
            app.v1("GET", "/api/v1/statuses", &key, None).await.status,
            200
        );
    }
    let limited = app.v1("GET", "/api/v1/statuses", &key, None).await;
    assert_eq!(limited.status, 429);
    let retry: u64 = limited
        .raw
        .header("retry-after")
        .expect("Retry-After")
        .parse()
        .expect("seconds");
    assert!((1..=20).contains(&retry), "{retry}");
    assert!(
        limited.raw.header("ratelimit").is_some()
            && limited.raw.header("ratelimit-policy").is_some()
    );
    assert_eq!(limited.json["status"], 429);
    let other = app.key_with(&[Scope::TicketsRead]).await;
    assert_eq!(
        app.v1("GET", "/api/v1/statuses", &other, None).await.status,
        200,
        "limits are per key"
    );
    app.finish().await;
}

#[tokio::test]
async fn openapi_document_covers_every_route_and_only_real_ones() {
    let Some(app) =
        TestApp::spawn_with(Backend::Sqlite, |api, _| api.rate_limit_per_minute = 0).await
    else {
        return;
    };
    let served = app.request("GET", "/api/v1/openapi.json", &[], b"").await;
    assert_eq!(served.status, 200);
    let document: Value = serde_json::from_slice(&served.body).expect("JSON");
    assert_eq!(
        document,
        *crate::spec::SPEC,
        "the served document is the generated one"
    );
    assert!(
        document["openapi"]
            .as_str()
            .expect("version")
            .starts_with("3.1")
    );

    let admin = app.key_with(&[Scope::Admin]).await;
    let ticket = create(
        &app,
        &admin,
        json!({"email": "owner@example.com", "subject": "Spec", "message": "m"}),
    )
    .await;
    let n = ticket["number"].as_str().expect("n").to_owned();
    let documented: Vec<(String, String)> = document["paths"]
        .as_object()
        .expect("paths")
        .iter()
        .flat_map(|(path, item)| {
            item.as_object()
                .expect("item")
                .keys()
                .filter(|m| ["get", "post", "patch", "delete", "put"].contains(&m.as_str()))
                .map(move |m| (m.to_uppercase(), path.clone()))
        })
        .collect();
    for (method, path, _, _) in routes(&n, 1, 1) {
        let template = crate::spec::template_for(&path)
            .unwrap_or_else(|| panic!("{method} {path} is served but its path is not documented"));
        assert!(
            documented
                .iter()
                .any(|(m, p)| m == method && *p == template),
            "{method} {template} is served but not documented"
        );
    }
    // And every documented operation is really served.
    for (method, template) in &documented {
        let path = template.replace("{number}", &n).replace("{id}", "1");
        let reply = app
            .request(
                method,
                &path,
                &[("Authorization", &format!("Bearer {admin}"))],
                b"{}",
            )
            .await;
        let body: Value = serde_json::from_slice(&reply.body).unwrap_or(Value::Null);
        assert_ne!(
            body["type"], "urn:helpline:problem:no-route",
            "{method} {template} is documented but not served"
        );
        assert_ne!(
            reply.status, 405,
            "{method} {template} is documented but not served"
        );
    }
    // A method a path does not have is a 405 problem; a path that does not exist a 404 problem.
    for (method, path, status) in [
        ("PUT", "/api/v1/tickets".to_owned(), 405),
        ("DELETE", "/api/v1/statuses".to_owned(), 405),
        ("POST", format!("/api/v1/tickets/{n}/entries"), 405),
        ("GET", "/api/v1/tickets/x/y/z".to_owned(), 404),
        ("GET", "/api/v1/users/not-a-number".to_owned(), 404),
        ("GET", format!("/api/v1/tickets/{n}/attachments/abc"), 404),
    ] {
        let reply = app
            .request(
                method,
                &path,
                &[("Authorization", &format!("Bearer {admin}"))],
                b"",
            )
            .await;
        assert_eq!(reply.status, status, "{method} {path}: {}", reply.text());
        assert_eq!(
            reply.header("content-type"),
            Some("application/problem+json"),
            "{method} {path}"
        );
    }
    app.finish().await;
}
