//! `POST /api/tickets/reply`: the field names of the widely shared osTicket "client reply" patch
//! (`clientUserMail`, `ticketNumber`, `response`, `ip_address`; form-encoded or JSON), so
//! integrations written against it can move over — with the checks the patch never made: the
//! poster must be the ticket's owner or a collaborator, and nothing is written by string-built SQL.
//! Answers in the patch's JSON shape: `{"status":"success","message":…}` or
//! `{"status":"failed","errors":[…]}`.

use crate::AppState;
use crate::client_ip::client_ip;
use axum::Json;
use axum::Router;
use axum::extract::{ConnectInfo, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::routing::post;
use helpline_core::apikey::Scope;
use helpline_core::body::{BodyFormat, MessageBody};
use helpline_core::email::EmailAddress;
use helpline_core::event::Actor;
use helpline_core::service::auth::authorize;
use helpline_core::service::posting::{CustomerMessage, CustomerRef, post_customer_message};
use helpline_core::ticket::{Source, TicketNumber};
use helpline_core::{Error, StoreError};
use serde::Deserialize;
use serde_json::{Value, json};
use std::net::SocketAddr;

pub(crate) fn routes() -> Router<AppState> {
    Router::new()
        .route("/api/tickets/reply", post(reply))
        .route("/api/http.php/tickets/reply", post(reply))
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

type Answer = (StatusCode, Json<Value>);

fn failed(status: StatusCode, errors: Vec<String>) -> Answer {
    (status, Json(json!({"status": "failed", "errors": errors})))
}

async fn reply(
    State(state): State<AppState>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    headers: HeaderMap,
    body: Result<crate::v1::RawBody, crate::v1::problem::Problem>,
) -> Answer {
    let body = match body {
        Ok(crate::v1::RawBody(body)) => body,
        Err(problem) => {
            let status = StatusCode::from_u16(problem.status).unwrap_or(StatusCode::BAD_REQUEST);
            return failed(status, vec![problem.detail.clone()]);
        }
    };
    let ip = client_ip(peer.ip(), &headers, &state.api.trusted_proxies);
    let presented = headers.get("x-api-key").and_then(|v| v.to_str().ok());
    let key = match authorize(&*state.store, presented, ip, Scope::MessagesCreate).await {
        Ok(Ok(key)) => key,
        Ok(Err(refusal)) => return failed(StatusCode::UNAUTHORIZED, vec![refusal.to_string()]),
        Err(error) => return store_failure(&error),
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
    let (Some(email), Some(number), Some(body)) = (email, number, message) else {
        return failed(StatusCode::BAD_REQUEST, errors);
    };
    if !errors.is_empty() {
        return failed(StatusCode::BAD_REQUEST, errors);
    }
    let work = post_customer_message(
        number.clone(),
        CustomerMessage {
            poster: CustomerRef::Email(email),
            body,
            attachments: Vec::new(),
            ip: Some(poster_ip),
            source: Source::Api,
        },
        Actor::api_key(key.id),
    );
    match state.store.write(work).await {
        Ok(posted) => (
            StatusCode::OK,
            Json(json!({
                "status": "success",
                "message": "Reply posted successfully",
                "ticketNumber": number,
                "entryId": posted.entry.id,
            })),
        ),
        Err(Error::NotFound { what }) => {
            failed(StatusCode::NOT_FOUND, vec![format!("{what} not found")])
        }
        Err(Error::Forbidden(message)) => failed(StatusCode::FORBIDDEN, vec![message]),
        Err(Error::Conflict(message)) => failed(StatusCode::CONFLICT, vec![message]),
        Err(Error::Validation(fields)) => failed(
            StatusCode::BAD_REQUEST,
            fields.iter().map(ToString::to_string).collect(),
        ),
        Err(Error::KeyReuse(message)) => failed(StatusCode::UNPROCESSABLE_ENTITY, vec![message]),
        Err(Error::Store(error)) => store_failure(&error),
    }
}

fn store_failure(error: &StoreError) -> Answer {
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
