//! `POST /api/tickets/reply`: the field names of the widely shared osTicket "client reply" patch
//! (`clientUserMail`, `ticketNumber`, `response`, `ip_address`; form-encoded or JSON), so
//! integrations written against it can move over — with the checks the patch never made: the
//! poster must be the ticket's owner or a collaborator, and nothing is written by string-built SQL.
//! Answers in the patch's JSON shape: `{"status":"success","message":…}` or
//! `{"status":"failed","errors":[…]}`.

use crate::AppState;
use crate::v1::auth::authenticate;
use crate::v1::problem::Problem;
use axum::Json;
use axum::Router;
use axum::body::Body;
use axum::extract::{ConnectInfo, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use helpline_core::apikey::Scope;
use helpline_core::body::{BodyFormat, MessageBody};
use helpline_core::email::EmailAddress;
use helpline_core::event::Actor;
use helpline_core::service::idempotency::{
    IdempotencyKey, Idempotent, StoredResponse, run_idempotent,
};
use helpline_core::service::posting::Posted;
use helpline_core::service::posting::{CustomerMessage, CustomerRef, post_customer_message};
use helpline_core::ticket::{Source, TicketNumber};
use helpline_core::{Error, StoreError};
use serde::Deserialize;
use serde_json::json;
use std::net::SocketAddr;

pub(crate) fn routes() -> Router<AppState> {
    Router::new()
        .route(
            "/api/tickets/reply",
            post(reply).fallback(crate::compat::url_not_supported),
        )
        .route(
            "/api/http.php/tickets/reply",
            post(reply).fallback(crate::compat::url_not_supported),
        )
}

/// The patch's fields.
#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "camelCase")]
struct PatchReply {
    client_user_mail: Option<String>,
    ticket_number: Option<String>,
    response: Option<String>,
    #[serde(rename = "ip_address")]
    ip_address: Option<String>,
}

fn failed(status: StatusCode, errors: Vec<String>) -> Response {
    (status, Json(json!({"status": "failed", "errors": errors}))).into_response()
}

async fn reply(
    State(state): State<AppState>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    headers: HeaderMap,
    body: Body,
) -> Response {
    // The same key checks as /api/v1 (401 unknown, 403 missing scope, 429 past the rate limit),
    // answered in the patch's shape; the body is read only once the caller is known.
    let (key, ip) = match authenticate(&state, peer, &headers, Scope::MessagesCreate).await {
        Ok(caller) => (caller.key, caller.ip),
        Err(problem) => return from_problem(&problem),
    };
    let body = match crate::v1::read_body(body, &state).await {
        Ok(body) => body,
        Err(problem) => return from_problem(&problem),
    };
    let is_json = headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.contains("json"))
        || body.first() == Some(&b'{');
    let parsed: Result<PatchReply, String> = if is_json {
        serde_json::from_slice(&body).map_err(|e| format!("malformed JSON: {e}"))
    } else {
        serde_urlencoded::from_bytes(&body).map_err(|e| format!("malformed form data: {e}"))
    };
    let request = match parsed {
        Ok(request) => request,
        Err(error) => return failed(StatusCode::BAD_REQUEST, vec![error]),
    };

    let mut errors = Vec::new();
    let email = match request.client_user_mail.as_deref().map(str::trim) {
        None | Some("") => {
            errors.push("clientUserMail is required".to_owned());
            None
        }
        Some(raw) => EmailAddress::parse(raw)
            .map_err(|e| errors.push(format!("clientUserMail {e}")))
            .ok(),
    };
    let number = match request.ticket_number.as_deref().map(str::trim) {
        None | Some("") => {
            errors.push("ticketNumber is required".to_owned());
            None
        }
        Some(raw) => TicketNumber::parse(raw)
            .map_err(|e| errors.push(format!("ticketNumber: {e}")))
            .ok(),
    };
    let message = MessageBody::parse(
        request.response.as_deref().unwrap_or_default(),
        BodyFormat::Text,
    )
    .map_err(|e| errors.push(format!("response {e}")))
    .ok();
    let poster_ip = match request
        .ip_address
        .as_deref()
        .map(str::trim)
        .filter(|s| !s.is_empty())
    {
        None => ip,
        Some(raw) => raw.parse().unwrap_or_else(|_| {
            errors.push(format!("ip_address: '{raw}' is not an IP address"));
            ip
        }),
    };
    let (Some(email), Some(number), Some(message)) = (email, number, message) else {
        return failed(StatusCode::BAD_REQUEST, errors);
    };
    if !errors.is_empty() {
        return failed(StatusCode::BAD_REQUEST, errors);
    }
    let work = post_customer_message(
        &state.desk,
        number.clone(),
        CustomerMessage {
            poster: CustomerRef::Email(email),
            body: message,
            attachments: Vec::new(),
            ip: Some(poster_ip),
            source: Source::Api,
            mail: Default::default(),
            may_reopen: true,
            flags: Default::default(),
            notify: true,
        },
        Actor::api_key(key.id),
    );
    let idempotency = match headers.get("idempotency-key").map(|v| v.to_str()) {
        None => None,
        Some(Ok(raw)) => {
            match IdempotencyKey::new(key.id, raw, "POST", "/api/tickets/reply", &body) {
                Ok(key) => Some(key),
                Err(error) => return answer_error(error),
            }
        }
        Some(Err(_)) => {
            return failed(
                StatusCode::BAD_REQUEST,
                vec!["Idempotency-Key must be printable ASCII".to_owned()],
            );
        }
    };
    let shown = number.to_string();
    let render = move |posted: &Posted| StoredResponse {
        status: 200,
        body: json!({
            "status": "success",
            "message": "Reply posted successfully",
            "ticketNumber": shown,
            "entryId": posted.entry.id,
        })
        .to_string(),
    };
    let render_fresh = render.clone();
    match run_idempotent(&*state.store, idempotency, render, work).await {
        Ok(Idempotent::Fresh(posted)) => stored(render_fresh(&posted)),
        Ok(Idempotent::Replayed(answer)) => stored(answer),
        Err(error) => answer_error(error),
    }
}

fn stored(answer: StoredResponse) -> Response {
    let status = StatusCode::from_u16(answer.status).unwrap_or(StatusCode::OK);
    let mut response = (status, answer.body).into_response();
    response.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/json"),
    );
    response
}

fn answer_error(error: Error) -> Response {
    match error {
        Error::NotFound { what } => {
            failed(StatusCode::NOT_FOUND, vec![format!("{what} not found")])
        }
        Error::Forbidden(message) => failed(StatusCode::FORBIDDEN, vec![message]),
        Error::Conflict(message) => failed(StatusCode::CONFLICT, vec![message]),
        Error::Validation(fields) => failed(
            StatusCode::BAD_REQUEST,
            fields.iter().map(ToString::to_string).collect(),
        ),
        Error::KeyReuse(message) => failed(StatusCode::UNPROCESSABLE_ENTITY, vec![message]),
        Error::Store(error) => store_failure(&error),
    }
}

/// A v1 problem (auth, rate limit, body size) in the patch's shape, headers kept.
fn from_problem(problem: &Problem) -> Response {
    let status = StatusCode::from_u16(problem.status).unwrap_or(StatusCode::BAD_REQUEST);
    let mut response = failed(status, vec![problem.detail.clone()]);
    for (name, value) in &problem.headers {
        response.headers_mut().insert(name.clone(), value.clone());
    }
    response
}

fn store_failure(error: &StoreError) -> Response {
    tracing::error!(%error, "store failure");
    let status = match error {
        StoreError::Unavailable(_) => StatusCode::SERVICE_UNAVAILABLE,
        _ => StatusCode::INTERNAL_SERVER_ERROR,
    };
    failed(
        status,
        vec!["the reply could not be stored; try again later".to_owned()],
    )
}
