//! osTicket's HTTP API, answered the way osTicket answers it.
//!
//! `POST /api/tickets.json`, `/api/tickets.xml` and `/api/tasks/cron`, also under
//! `/api/http.php/…`. The format comes from the URL suffix only (osTicket's clients send JSON as
//! `application/x-www-form-urlencoded`). Answers are plain text with `text/html; charset=UTF-8`,
//! status lines carry reason phrases, and anything else under `/api/` is `400 URL not supported`.
//! See `docs/osticket-compatibility.md` for every behaviour and every deliberate difference.

pub(crate) mod dataurl;
mod json;
pub mod payload;
mod xml;

use crate::client_ip::client_ip;
use crate::{AppState, CompatErrorStyle};
use axum::Router;
use axum::body::{Body, to_bytes};
use axum::extract::{ConnectInfo, Request, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{any, post};
use helpline_core::apikey::Scope;
use helpline_core::event::Actor;
use helpline_core::service::auth::authorize;
use helpline_core::service::idempotency::purge_expired_keys;
use helpline_core::service::tickets::open_ticket;
use helpline_core::{Error, FieldError, StoreError};
use std::net::{IpAddr, SocketAddr};

/// The compatible routes and the `/api/…` fallback.
pub(crate) fn routes() -> Router<AppState> {
    let mut router = Router::new();
    for prefix in ["/api", "/api/http.php"] {
        router = router
            .route(
                &format!("{prefix}/tickets.json"),
                post(create_json).fallback(url_not_supported),
            )
            .route(
                &format!("{prefix}/tickets.xml"),
                post(create_xml).fallback(url_not_supported),
            )
            .route(
                &format!("{prefix}/tickets.email"),
                post(create_email).fallback(url_not_supported),
            )
            .route(
                &format!("{prefix}/tasks/cron"),
                post(cron).fallback(url_not_supported),
            );
    }
    router
        .route("/api", any(url_not_supported))
        .route("/api/{*rest}", any(url_not_supported))
}

/// A plain-text answer the way osTicket's `Http::response` writes it.
pub(crate) fn text(status: StatusCode, body: impl Into<String>) -> Response {
    let mut response = (status, body.into()).into_response();
    response.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("text/html; charset=UTF-8"),
    );
    response
}

/// Any other path or method under `/api/`: osTicket's answer.
pub(crate) async fn url_not_supported() -> Response {
    text(StatusCode::BAD_REQUEST, "URL not supported")
}

#[derive(Clone, Copy)]
enum Format {
    Json,
    Xml,
}

async fn create_json(
    State(state): State<AppState>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    request: Request,
) -> Response {
    create(state, peer, request, Format::Json).await
}

async fn create_xml(
    State(state): State<AppState>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    request: Request,
) -> Response {
    create(state, peer, request, Format::Xml).await
}

/// Checks the key (before reading the body, as osTicket does: a bad key wins over a bad body),
/// reads and parses the body, opens the ticket, answers `201` with its number.
async fn create(state: AppState, peer: SocketAddr, request: Request, format: Format) -> Response {
    let ip = client_ip(peer.ip(), request.headers(), &state.api.trusted_proxies);
    let key = match check_key(&state, request.headers(), ip, Scope::TicketsCreate).await {
        Ok(key) => key,
        Err(response) => return response,
    };
    let body = match read_body(request.into_body(), state.api.max_body_bytes).await {
        Ok(body) => body,
        Err(response) => return response,
    };
    let parsed = match format {
        Format::Json => json::parse(&body),
        Format::Xml => xml::parse(&body),
    };
    let mut raw = match parsed {
        Ok(raw) => raw,
        Err(message) => return text(StatusCode::BAD_REQUEST, message),
    };
    // osTicket: an empty subject takes the help topic's name.
    if raw.subject.as_deref().is_none_or(|s| s.trim().is_empty()) {
        match topic_name(&state, raw.topic_id.as_deref()).await {
            Ok(Some(topic)) => raw.subject = Some(topic),
            Ok(None) => {}
            Err(error) => return store_failure(&error),
        }
    }
    let new_ticket = match payload::check(raw, ip, state.api.max_attachment_bytes) {
        Ok(ticket) => ticket,
        Err(errors) => return validation_failed(state.api.compat_errors, &errors),
    };
    match open_ticket(&*state.store, &state.desk, new_ticket, Actor::api_key(key)).await {
        Ok(opened) => text(StatusCode::CREATED, opened.ticket.number.to_string()),
        Err(Error::Validation(errors)) => {
            let errors: Vec<_> = errors.into_iter().map(compat_field_names).collect();
            validation_failed(state.api.compat_errors, &errors)
        }
        Err(error) => failure(&error),
    }
}

/// `POST /api/tickets.email`: a raw RFC 822 message, as `automail.php`/`.pl` pipe it. The
/// message goes through the mail intake pipeline (threaded, posted and stored together): `201` with the
/// number of the ticket it was attached to, new or existing; a repeated Message-ID answers the
/// same number. A message that was stored but not posted (a bounce about nothing of ours, or one
/// quarantined for an operator) answers `201` with an empty body: it is safe with us, and a
/// mail server must neither retry nor bounce it.
async fn create_email(
    State(state): State<AppState>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    request: Request,
) -> Response {
    let ip = client_ip(peer.ip(), request.headers(), &state.api.trusted_proxies);
    if let Err(response) = check_key(&state, request.headers(), ip, Scope::TicketsCreate).await {
        return response;
    }
    let body = match read_body(request.into_body(), state.api.max_body_bytes).await {
        Ok(body) => body,
        Err(response) => return response,
    };
    if body.iter().all(u8::is_ascii_whitespace) {
        return text(
            StatusCode::BAD_REQUEST,
            "Email parse failed: the body is empty",
        );
    }
    let message = helpline_core::inbound::NewInbound {
        source: "api".into(),
        mailbox: None,
        source_uid: None,
        raw: body.to_vec(),
    };
    match helpline_mail::pipeline::receive(&*state.store, &state.desk, &state.intake, message).await
    {
        Ok(outcome) => text(
            StatusCode::CREATED,
            outcome.ticket.map(|n| n.to_string()).unwrap_or_default(),
        ),
        Err(Error::Store(error)) => store_failure(&error),
        Err(error) => failure(&error),
    }
}

/// The name of the help topic `raw` names, if it is a valid, existing topic id (invalid ones
/// are reported by the checks that follow).
async fn topic_name(state: &AppState, raw: Option<&str>) -> Result<Option<String>, StoreError> {
    let Some(id) = raw.and_then(|r| r.trim().parse::<i64>().ok()) else {
        return Ok(None);
    };
    let topic = state
        .store
        .reader()
        .await?
        .topic(helpline_core::ids::TopicId(id))
        .await?;
    Ok(topic.map(|t| t.name))
}

/// `POST /api/tasks/cron`: runs one round of the periodic work (dropping idempotency keys past
/// their 24 hours, processing mail left pending, fetching every mailbox whose lease is free), as
/// osTicket's `rcron.php` expects.
async fn cron(
    State(state): State<AppState>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    headers: HeaderMap,
) -> Response {
    let ip = client_ip(peer.ip(), &headers, &state.api.trusted_proxies);
    if let Err(response) = check_key(&state, &headers, ip, Scope::CronRun).await {
        return response;
    }
    let round = async {
        let purged = purge_expired_keys(&*state.store).await?;
        let pending = helpline_mail::pipeline::process_pending(
            &*state.store,
            &state.desk,
            &state.intake,
            1000,
        )
        .await?;
        let connect = helpline_mail::sources::connector(state.intake.mail_tls.clone());
        let fetched = helpline_mail::fetch::fetch_all(
            &*state.store,
            &state.desk,
            &state.intake,
            "cron",
            &*connect,
        )
        .await?;
        let taken: usize = fetched
            .iter()
            .filter_map(|(_, result)| result.as_ref().ok())
            .map(|report| report.new)
            .sum();
        Ok::<_, Error>((purged, pending.len() + taken))
    };
    match round.await {
        Ok((purged, mail)) => {
            tracing::info!(
                purged,
                mail,
                "cron: expired idempotency keys dropped, pending mail processed"
            );
            text(StatusCode::OK, "Completed")
        }
        Err(Error::Store(error)) => store_failure(&error),
        Err(error) => failure(&error),
    }
}

/// The key checks in osTicket's order, answered with osTicket's three 401 texts.
async fn check_key(
    state: &AppState,
    headers: &HeaderMap,
    ip: IpAddr,
    scope: Scope,
) -> Result<helpline_core::ids::ApiKeyId, Response> {
    let presented = headers.get("x-api-key").and_then(|v| v.to_str().ok());
    match authorize(&*state.store, &state.keys, presented, ip, scope).await {
        Ok(Ok(key)) => Ok(key.id),
        Ok(Err(refusal)) => {
            tracing::info!(%ip, reason = %refusal, "API key refused");
            Err(text(StatusCode::UNAUTHORIZED, refusal.to_string()))
        }
        Err(error) => Err(store_failure(&error)),
    }
}

async fn read_body(body: Body, limit: usize) -> Result<axum::body::Bytes, Response> {
    to_bytes(body, limit).await.map_err(|error| {
        if is_length_limit(&error) {
            text(
                StatusCode::PAYLOAD_TOO_LARGE,
                format!("Request body is larger than the limit of {limit} bytes"),
            )
        } else {
            text(
                StatusCode::BAD_REQUEST,
                format!("Unable to read request body ({error})"),
            )
        }
    })
}

/// Whether reading a body failed because it exceeded the limit.
pub(crate) fn is_length_limit(error: &axum::Error) -> bool {
    let mut cause: Option<&(dyn std::error::Error + 'static)> = Some(error);
    while let Some(error) = cause {
        if error.is::<http_body_util::LengthLimitError>() {
            return true;
        }
        cause = error.source();
    }
    false
}

/// The core names fields for the v1 API; the compatible API speaks osTicket's names.
fn compat_field_names(error: FieldError) -> FieldError {
    let field = match error.field.as_str() {
        "topic_id" => "topicId".to_owned(),
        "priority_id" => "priority".to_owned(),
        other => other.to_owned(),
    };
    FieldError { field, ..error }
}

fn validation_failed(style: CompatErrorStyle, errors: &[FieldError]) -> Response {
    match style {
        CompatErrorStyle::V116 => {
            let lines: Vec<_> = errors.iter().map(ToString::to_string).collect();
            text(
                StatusCode::BAD_REQUEST,
                format!(
                    "Unable to create new ticket: validation errors:\n{}",
                    lines.join("\n")
                ),
            )
        }
        CompatErrorStyle::V117 => {
            let pairs: Vec<_> = errors
                .iter()
                .map(|e| format!("{}\n{}", e.field, e.message))
                .collect();
            text(
                StatusCode::INTERNAL_SERVER_ERROR,
                format!("Unable to create new ticket :{}", pairs.join("\n")),
            )
        }
    }
}

fn failure(error: &Error) -> Response {
    match error {
        Error::Store(store) => store_failure(store),
        Error::Forbidden(message) => {
            text(StatusCode::FORBIDDEN, format!("Ticket denied: {message}"))
        }
        other => {
            tracing::error!(error = %other, "ticket creation failed");
            text(
                StatusCode::INTERNAL_SERVER_ERROR,
                format!("Unable to create new ticket: {other}"),
            )
        }
    }
}

/// A database outage is `503` (automail's "service unavailable", retried by the MTA); other
/// database errors are `500` with no internals in the body.
fn store_failure(error: &StoreError) -> Response {
    tracing::error!(error = %error, source = ?std::error::Error::source(error), "store failure");
    match error {
        StoreError::Unavailable(_) => text(
            StatusCode::SERVICE_UNAVAILABLE,
            "Service temporarily unavailable, try again later",
        ),
        _ => text(
            StatusCode::INTERNAL_SERVER_ERROR,
            "Unable to create new ticket: unknown error",
        ),
    }
}
