//! `POST /api/v1/inbound/email`: a raw RFC 822 message into the mail intake pipeline.

use super::auth::authenticate;
use super::body::read_body;
use super::problem::Problem;
use crate::AppState;
use axum::Json;
use axum::body::Body;
use axum::extract::{ConnectInfo, State};
use axum::http::{HeaderMap, StatusCode};
use helpline_core::apikey::Scope;
use helpline_core::inbound::{InboundStatus, NewInbound};
use helpline_mail::pipeline::receive;
use serde::Serialize;
use std::net::SocketAddr;
use utoipa::ToSchema;

/// How an inbound message was handled.
#[derive(Debug, Serialize, ToSchema)]
pub struct InboundView {
    /// The stored record (the raw message is kept whatever happened).
    pub inbound_id: i64,
    /// `processed`, `duplicate`, `ignored` or `quarantined`.
    pub status: String,
    /// `normal`, `auto_reply`, `bulk` or `bounce`.
    pub class: Option<String>,
    /// Why it landed where it did (the rule that matched), or the error that quarantined it.
    pub rule: String,
    /// The ticket it went to.
    pub ticket: Option<String>,
    /// The entry it became.
    pub entry_id: Option<i64>,
}

/// Takes one raw message (the request body, `message/rfc822`): stored first, then classified,
/// threaded, stripped and posted. `201` when it became a ticket or an entry, `200` when its
/// Message-ID was posted before, `202` when it was kept but not posted (ignored or quarantined).
#[utoipa::path(post, path = "/api/v1/inbound/email", tag = "mail",
    request_body(content = String, content_type = "message/rfc822", description = "The raw message"),
    responses(
        (status = 201, description = "Posted", body = InboundView),
        (status = 200, description = "Already posted (same Message-ID)", body = InboundView),
        (status = 202, description = "Stored, not posted", body = InboundView),
    ),
    security(("bearer" = [])))]
pub async fn post_email(
    State(state): State<AppState>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    headers: HeaderMap,
    body: Body,
) -> Result<(StatusCode, Json<InboundView>), Problem> {
    authenticate(&state, peer, &headers, Scope::TicketsCreate).await?;
    let body = read_body(body, &state).await?;
    if body.iter().all(u8::is_ascii_whitespace) {
        return Err(Problem::field("body", "a raw RFC 822 message is required"));
    }
    let message = NewInbound {
        source: "api".into(),
        mailbox: None,
        source_uid: None,
        raw: body.to_vec(),
    };
    let outcome = receive(&*state.store, &state.desk, &state.intake, message).await?;
    let status = match outcome.status {
        InboundStatus::Processed => StatusCode::CREATED,
        InboundStatus::Duplicate => StatusCode::OK,
        _ => StatusCode::ACCEPTED,
    };
    Ok((
        status,
        Json(InboundView {
            inbound_id: outcome.inbound_id.0,
            status: outcome.status.as_str().to_owned(),
            class: outcome.class,
            rule: outcome.rule,
            ticket: outcome.ticket.map(|n| n.to_string()),
            entry_id: outcome.entry_id.map(|e| e.0),
        }),
    ))
}
