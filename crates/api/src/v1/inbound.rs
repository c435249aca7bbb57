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

/// Takes one raw message (the request body, `message/rfc822`): classified, threaded, stripped
/// and posted, and stored in the same transaction (stored on its own first when that
/// transaction is refused; a `503` when the database is unavailable, and nothing kept). `201` when it became a ticket or an entry, `200` when its
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

/// A stored inbound message (without its bytes).
#[derive(Debug, Serialize, ToSchema)]
pub struct InboundRecordView {
    /// Id.
    pub id: i64,
    /// `api`, `pipe`, `imap`, `pop3`.
    pub source: String,
    /// Mailbox it came from.
    pub mailbox: Option<String>,
    /// Size in bytes.
    pub size: i64,
    /// `pending`, `processed`, `duplicate`, `ignored` or `quarantined`.
    pub status: String,
    /// Class.
    pub class: Option<String>,
    /// Why it landed where it did, or the error that quarantined it.
    pub rule: Option<String>,
    /// Message-ID.
    pub message_id: Option<String>,
    /// Processing attempts.
    pub attempts: i64,
    /// Stored (RFC 3339).
    pub received_at: String,
    /// Last processed (RFC 3339).
    pub processed_at: Option<String>,
}

impl From<&helpline_core::inbound::InboundRecord> for InboundRecordView {
    fn from(r: &helpline_core::inbound::InboundRecord) -> Self {
        Self {
            id: r.id.0,
            source: r.source.clone(),
            mailbox: r.mailbox.clone(),
            size: r.size,
            status: r.status.as_str().to_owned(),
            class: r.class.clone(),
            rule: r.rule.clone(),
            message_id: r.message_id.clone(),
            attempts: r.attempts,
            received_at: super::views::rfc3339(r.received_at),
            processed_at: r.processed_at.map(super::views::rfc3339),
        }
    }
}

/// `GET /api/v1/inbound` query.
#[derive(Debug, serde::Deserialize, utoipa::IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct InboundListParams {
    /// `quarantined` (default), `pending`, `processed`, `duplicate` or `ignored`.
    pub status: Option<String>,
    /// Page size, 1 to 100 (default 25).
    pub limit: Option<u32>,
    /// `next_cursor` of the previous page.
    pub cursor: Option<String>,
}

/// A page of inbound messages.
#[derive(Debug, Serialize, ToSchema)]
pub struct InboundList {
    /// Oldest first.
    pub messages: Vec<InboundRecordView>,
    /// Pass as `cursor` for the next page; absent on the last one.
    pub next_cursor: Option<String>,
}

/// Lists inbound messages by status — by default the quarantine (scope `admin`).
#[utoipa::path(get, path = "/api/v1/inbound", tag = "mail", params(InboundListParams),
    responses((status = 200, description = "A page of messages", body = InboundList)),
    security(("bearer" = [])))]
pub async fn list_inbound(
    State(state): State<AppState>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    headers: HeaderMap,
    axum::extract::RawQuery(query): axum::extract::RawQuery,
) -> Result<Json<InboundList>, Problem> {
    authenticate(&state, peer, &headers, Scope::Admin).await?;
    let params: InboundListParams =
        serde_urlencoded::from_str(query.as_deref().unwrap_or_default())
            .map_err(|e| Problem::field("query", e.to_string()))?;
    let status = match params.status.as_deref() {
        None => InboundStatus::Quarantined,
        Some(raw) => InboundStatus::parse(raw)
            .ok_or_else(|| Problem::field("status", format!("no status '{raw}'")))?,
    };
    let limit = super::paging::limit(params.limit)?;
    let after =
        super::paging::after(params.cursor.as_deref(), 'm')?.map(helpline_core::inbound::InboundId);
    let records = state
        .store
        .reader()
        .await?
        .inbound_list(status, after, limit + 1)
        .await?;
    let (records, next_cursor) = super::paging::page(records, limit, 'm', |r| r.id.0);
    Ok(Json(InboundList {
        messages: records.iter().map(InboundRecordView::from).collect(),
        next_cursor,
    }))
}

/// One inbound message's record (scope `admin`).
#[utoipa::path(get, path = "/api/v1/inbound/{id}", tag = "mail",
    params(("id" = i64, Path, description = "Inbound message id")),
    responses((status = 200, description = "The record", body = InboundRecordView)),
    security(("bearer" = [])))]
pub async fn get_inbound(
    State(state): State<AppState>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    headers: HeaderMap,
    axum::extract::Path(raw_id): axum::extract::Path<String>,
) -> Result<Json<InboundRecordView>, Problem> {
    authenticate(&state, peer, &headers, Scope::Admin).await?;
    let not_found = || Problem::not_found(format!("inbound message {raw_id}"));
    let id: i64 = raw_id.parse().map_err(|_| not_found())?;
    let (record, _) = state
        .store
        .reader()
        .await?
        .inbound(helpline_core::inbound::InboundId(id))
        .await?
        .ok_or_else(not_found)?;
    Ok(Json(InboundRecordView::from(&record)))
}

/// Processes a quarantined message again (scope `admin`).
#[utoipa::path(post, path = "/api/v1/inbound/{id}/retry", tag = "mail",
    params(("id" = i64, Path, description = "Inbound message id")),
    responses(
        (status = 200, description = "Processed again; the outcome", body = InboundView),
        (status = 404, description = "Not a quarantined message", body = super::problem::ProblemDocument, content_type = "application/problem+json"),
    ),
    security(("bearer" = [])))]
pub async fn retry_inbound(
    State(state): State<AppState>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    headers: HeaderMap,
    axum::extract::Path(raw_id): axum::extract::Path<String>,
) -> Result<Json<InboundView>, Problem> {
    authenticate(&state, peer, &headers, Scope::Admin).await?;
    let id: i64 = raw_id
        .parse()
        .map_err(|_| Problem::not_found(format!("inbound message {raw_id}")))?;
    let outcome = helpline_mail::pipeline::retry(
        &*state.store,
        &state.desk,
        &state.intake,
        helpline_core::inbound::InboundId(id),
    )
    .await?;
    Ok(Json(InboundView {
        inbound_id: outcome.inbound_id.0,
        status: outcome.status.as_str().to_owned(),
        class: outcome.class,
        rule: outcome.rule,
        ticket: outcome.ticket.map(|n| n.to_string()),
        entry_id: outcome.entry_id.map(|e| e.0),
    }))
}
