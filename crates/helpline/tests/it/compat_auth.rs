//! osTicket's key checks, in its order, with its three 401 texts; address binding; proxies.

use crate::on_both_stores;
use crate::support::{Backend, TestApp, nothing_written};
use helpline_core::apikey::Scope;
use helpline_core::event::Actor;
use helpline_core::service::keys::{list_api_keys, revoke_api_key};
use std::time::Duration;

on_both_stores!(
    missing_unknown_and_wrong_address_keys_get_valid_key_required,
    revoked_key_gets_not_active,
    a_key_in_use_is_read_once_per_cache_period,
    a_key_revoked_in_use_is_refused_once_its_cached_copy_expires,
    without_a_key_cache_a_key_revoked_in_use_is_refused_at_once,
    key_without_scope_gets_not_authorized,
    bad_key_wins_over_bad_body,
    cidr_bound_keys_accept_their_block,
    forwarded_for_only_from_trusted_proxies,
    cron_needs_its_scope,
);

const BODY: &[u8] = br#"{"email":"auth@example.com","subject":"s","message":"m"}"#;

async fn missing_unknown_and_wrong_address_keys_get_valid_key_required(backend: Backend) {
    let Some(app) = TestApp::spawn(backend).await else {
        return;
    };
    let elsewhere = app
        .create_key(&[Scope::TicketsCreate], &["192.0.2.1"])
        .await;
    let cases: [&[(&str, &str)]; 4] = [
        &[],
        &[("X-API-Key", "")],
        &[("X-API-Key", "BA00B76BAA30F62E1940B46CC1C3C73C")],
        &[("X-API-Key", &elsewhere)],
    ];
    for headers in cases {
        let response = app
            .request("POST", "/api/tickets.json", headers, BODY)
            .await;
        assert_eq!(
            response.status_line, "HTTP/1.1 401 Unauthorized",
            "{headers:?}"
        );
        assert_eq!(response.text(), "Valid API key required");
    }
    // A Bearer token is not osTicket's header and does not count on these routes.
    let key = app.key.clone();
    let bearer = format!("Bearer {key}");
    let response = app
        .request(
            "POST",
            "/api/tickets.json",
            &[("Authorization", &bearer)],
            BODY,
        )
        .await;
    assert_eq!(response.status, 401);
    assert!(nothing_written(&*app.store).await);
    app.finish().await;
}

async fn revoked_key_gets_not_active(backend: Backend) {
    let Some(app) = TestApp::spawn(backend).await else {
        return;
    };
    let id = list_api_keys(&*app.store).await.expect("keys")[0].id;
    revoke_api_key(&*app.store, id, Actor::system())
        .await
        .expect("revoked");
    let response = app.post("/api/tickets.json", BODY).await;
    assert_eq!(response.status, 401);
    assert_eq!(
        response.text(),
        "API key not found/active or source IP not authorized"
    );
    assert!(nothing_written(&*app.store).await);
    app.finish().await;
}

/// An app whose key cache keeps keys for `ttl`, after one request with its key and that key's
/// revocation straight in the database (as the CLI or another node revokes).
async fn used_then_revoked(backend: Backend, ttl: Duration) -> Option<TestApp> {
    let app = TestApp::spawn_with(backend, |api, _| api.key_cache_ttl = ttl).await?;
    assert_eq!(app.post("/api/tickets.json", BODY).await.status, 201);
    let id = list_api_keys(&*app.store).await.expect("keys")[0].id;
    revoke_api_key(&*app.store, id, Actor::system())
        .await
        .expect("revoked");
    Some(app)
}

/// Within `key_cache_ttl` a key is not read again: a revocation made meanwhile (the CLI, another
/// node) is not seen yet — the documented delay, and the proof that the copy is used.
async fn a_key_in_use_is_read_once_per_cache_period(backend: Backend) {
    let Some(app) = used_then_revoked(backend, Duration::from_secs(60)).await else {
        return;
    };
    assert_eq!(app.post("/api/tickets.json", BODY).await.status, 201);
    app.finish().await;
}

/// A key the server has read stays trusted for `key_cache_ttl`, then is read again: a
/// revocation made elsewhere (the CLI, another node) takes effect within that time.
async fn a_key_revoked_in_use_is_refused_once_its_cached_copy_expires(backend: Backend) {
    let ttl = Duration::from_millis(500);
    let Some(app) = used_then_revoked(backend, ttl).await else {
        return;
    };
    tokio::time::sleep(ttl + Duration::from_millis(100)).await;
    let response = app.post("/api/tickets.json", BODY).await;
    assert_eq!(response.status, 401);
    assert_eq!(
        response.text(),
        "API key not found/active or source IP not authorized"
    );
    app.finish().await;
}

async fn without_a_key_cache_a_key_revoked_in_use_is_refused_at_once(backend: Backend) {
    let Some(app) = used_then_revoked(backend, Duration::ZERO).await else {
        return;
    };
    let response = app.post("/api/tickets.json", BODY).await;
    assert_eq!(response.status, 401);
    app.finish().await;
}

async fn key_without_scope_gets_not_authorized(backend: Backend) {
    let Some(app) = TestApp::spawn(backend).await else {
        return;
    };
    let reader_only = app
        .create_key(&[Scope::TicketsRead, Scope::CronRun], &["127.0.0.1"])
        .await;
    let response = app
        .request(
            "POST",
            "/api/tickets.json",
            &[("X-API-Key", &reader_only)],
            BODY,
        )
        .await;
    assert_eq!(response.status, 401);
    assert_eq!(response.text(), "API key not authorized");
    // `admin` covers every scope.
    let admin = app.create_key(&[Scope::Admin], &["127.0.0.1"]).await;
    let response = app
        .request("POST", "/api/tickets.xml", &[("X-API-Key", &admin)], b"<ticket><email>a@example.com</email><subject>s</subject><message>m</message></ticket>")
        .await;
    assert_eq!(response.status, 201, "{}", response.text());
    app.finish().await;
}

async fn bad_key_wins_over_bad_body(backend: Backend) {
    let Some(app) = TestApp::spawn(backend).await else {
        return;
    };
    let response = app
        .request(
            "POST",
            "/api/tickets.json",
            &[("X-API-Key", "wrong")],
            b"{not json",
        )
        .await;
    assert_eq!(response.status, 401);
    assert_eq!(response.text(), "Valid API key required");
    app.finish().await;
}

async fn cidr_bound_keys_accept_their_block(backend: Backend) {
    let Some(app) = TestApp::spawn(backend).await else {
        return;
    };
    let block = app
        .create_key(&[Scope::TicketsCreate], &["192.0.2.0/24", "127.0.0.0/8"])
        .await;
    let response = app
        .request("POST", "/api/tickets.json", &[("X-API-Key", &block)], BODY)
        .await;
    assert_eq!(response.status, 201, "{}", response.text());
    app.finish().await;
}

async fn forwarded_for_only_from_trusted_proxies(backend: Backend) {
    // Untrusted peer: the header is ignored, so a key bound to the forwarded address fails.
    let Some(app) = TestApp::spawn(backend).await else {
        return;
    };
    let remote = app
        .create_key(&[Scope::TicketsCreate], &["198.51.100.7"])
        .await;
    let response = app
        .request(
            "POST",
            "/api/tickets.json",
            &[("X-API-Key", &remote), ("X-Forwarded-For", "198.51.100.7")],
            BODY,
        )
        .await;
    assert_eq!(response.status, 401);
    assert_eq!(response.text(), "Valid API key required");
    app.finish().await;

    // Trusted peer: the nearest untrusted hop is the client, for the key and for the ticket.
    let Some(app) = TestApp::spawn_with(backend, |api, _| {
        api.trusted_proxies = vec![
            "127.0.0.1".parse().expect("rule"),
            "10.0.0.0/8".parse().expect("rule"),
        ];
    })
    .await
    else {
        return;
    };
    let remote = app
        .create_key(&[Scope::TicketsCreate], &["198.51.100.7"])
        .await;
    let response = app
        .request(
            "POST",
            "/api/tickets.json",
            &[
                ("X-API-Key", &remote),
                ("X-Forwarded-For", "203.0.113.1, 198.51.100.7, 10.1.1.1"),
            ],
            BODY,
        )
        .await;
    assert_eq!(response.status, 201, "{}", response.text());
    let ticket = app
        .store
        .reader()
        .await
        .expect("reader")
        .ticket_by_number(&helpline_core::ticket::TicketNumber::parse(&response.text()).expect("n"))
        .await
        .expect("lookup")
        .expect("stored");
    assert_eq!(ticket.ip, Some("198.51.100.7".parse().expect("ip")));
    app.finish().await;
}

async fn cron_needs_its_scope(backend: Backend) {
    let Some(app) = TestApp::spawn(backend).await else {
        return;
    };
    let response = app.post("/api/tasks/cron", b"").await;
    assert_eq!(response.status_line, "HTTP/1.1 200 OK");
    assert_eq!(response.text(), "Completed");
    let response = app.post("/api/http.php/tasks/cron", b"").await;
    assert_eq!(response.text(), "Completed");
    let creator = app
        .create_key(&[Scope::TicketsCreate], &["127.0.0.1"])
        .await;
    let response = app
        .request("POST", "/api/tasks/cron", &[("X-API-Key", &creator)], b"")
        .await;
    assert_eq!(response.status, 401);
    assert_eq!(response.text(), "API key not authorized");
    app.finish().await;
}
