//! Webhook endpoints and their deliveries (scope `admin`): register, list, read and remove
//! endpoints; list an endpoint's deliveries and send one again.
//!
//! A delivery is an outbox job of kind [`JobKind::Webhook`] whose payload is the exact body sent;
//! its `webhook-id` header is [`message_id`] of the job, so a redelivery carries the same ID and
//! the same body, and receivers that drop duplicates by ID stay correct.

use super::auth::authenticate;
use super::body::read_body;
use super::input::{finish, parse_json};
use super::problem::Problem;
use super::views::rfc3339;
use super::{idempotency_key, write_json};
use crate::AppState;
use axum::Json;
use axum::body::Body;
use axum::extract::{ConnectInfo, Path, RawQuery, State};
use axum::http::{HeaderMap, StatusCode, Uri};
use axum::response::Response;
use helpline_core::apikey::Scope;
use helpline_core::ids::{JobId, WebhookId};
use helpline_core::outbox::{EventType, Job, JobKind, JobQuery, JobState, NewWebhook, Webhook};
use helpline_core::service::Work;
use helpline_core::{Error, FieldError};
use helpline_outbox::webhook::WebhookSecret;
use helpline_outbox::worker::message_id;
use serde::{Deserialize, Serialize};
use std::net::SocketAddr;
use utoipa::{IntoParams, ToSchema};

/// The longest description accepted, in characters.
const MAX_DESCRIPTION_CHARS: usize = 200;
/// The longest URL accepted, in bytes.
const MAX_URL_BYTES: usize = 2048;
/// The prefix of delivery cursors.
const DELIVERY_CURSOR: char = 'd';

/// `POST /api/v1/webhooks`.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CreateWebhookRequest {
    /// Where deliveries are POSTed: an absolute `http://` or `https://` URL with a host and
    /// without credentials (required).
    pub url: Option<String>,
    /// The events to receive (at least one): `ticket.created`, `ticket.updated`,
    /// `message.created`, `reply.created`, `note.created`, `status.changed`. Repeats count once.
    pub events: Option<Vec<String>>,
    /// A note for operators: one line, at most 200 characters.
    pub description: Option<String>,
}

impl CreateWebhookRequest {
    /// Checks every field; each problem names its field. `secret` becomes the endpoint's.
    fn check(self, secret: String) -> Result<NewWebhook, Problem> {
        let mut problems = Vec::new();
        let url = match self.url.as_deref() {
            Some(raw) => check_url(raw)
                .map_err(|e| problems.push(FieldError::new("url", e.to_string())))
                .ok(),
            None => {
                problems.push(FieldError::new("url", "is required"));
                None
            }
        };
        let events = match self.events {
            Some(names) => check_events(&names, &mut problems),
            None => {
                problems.push(FieldError::new("events", "is required"));
                None
            }
        };
        let description = check_description(self.description.as_deref())
            .map_err(|e| problems.push(FieldError::new("description", e)))
            .unwrap_or_default();
        let webhook = match (url, events) {
            (Some(url), Some(events)) => Some(NewWebhook {
                url,
                events,
                secret,
                description,
            }),
            _ => None,
        };
        finish(problems, webhook)
    }
}

/// Why a webhook URL is refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum WebhookUrlError {
    /// Nothing given.
    #[error("is empty")]
    Empty,
    /// Longer than [`MAX_URL_BYTES`].
    #[error("is longer than {MAX_URL_BYTES} characters")]
    TooLong,
    /// Not a URL at all.
    #[error("is not a URL ({0})")]
    Unparsable(String),
    /// Relative, or of another scheme.
    #[error("must be an absolute http:// or https:// URL")]
    NotHttp,
    /// No host.
    #[error("has no host")]
    NoHost,
    /// A user name or password in the URL.
    #[error("must not contain credentials (user:password@)")]
    Credentials,
    /// A port that is not a number from 0 to 65535.
    #[error("has an invalid port '{0}'")]
    BadPort(String),
}

/// Checks a webhook URL by the rules deliveries are made by: absolute `http`/`https`, a host,
/// no credentials, a valid port. Returns it trimmed.
pub fn check_url(raw: &str) -> Result<String, WebhookUrlError> {
    let url = raw.trim();
    if url.is_empty() {
        return Err(WebhookUrlError::Empty);
    }
    if url.len() > MAX_URL_BYTES {
        return Err(WebhookUrlError::TooLong);
    }
    let uri: Uri = url
        .parse()
        .map_err(|e: axum::http::uri::InvalidUri| WebhookUrlError::Unparsable(e.to_string()))?;
    let is_http = uri.scheme_str().is_some_and(|scheme| {
        scheme.eq_ignore_ascii_case("http") || scheme.eq_ignore_ascii_case("https")
    });
    if !is_http {
        return Err(WebhookUrlError::NotHttp);
    }
    let authority = uri.authority().ok_or(WebhookUrlError::NoHost)?;
    if authority.as_str().contains('@') {
        return Err(WebhookUrlError::Credentials);
    }
    let host = authority
        .host()
        .trim_start_matches('[')
        .trim_end_matches(']');
    if host.is_empty() {
        return Err(WebhookUrlError::NoHost);
    }
    let explicit_port = authority
        .as_str()
        .strip_prefix(authority.host())
        .and_then(|rest| rest.strip_prefix(':'))
        .filter(|port| !port.is_empty());
    if let Some(port) = explicit_port
        && port.parse::<u16>().is_err()
    {
        return Err(WebhookUrlError::BadPort(port.to_owned()));
    }
    Ok(url.to_owned())
}

/// Checks event names (`events[i]` names a bad one); repeats are dropped, first one kept.
fn check_events(names: &[String], problems: &mut Vec<FieldError>) -> Option<Vec<EventType>> {
    if names.is_empty() {
        problems.push(FieldError::new("events", "must name at least one event"));
        return None;
    }
    let mut events = Vec::with_capacity(names.len());
    let mut all_known = true;
    for (index, name) in names.iter().enumerate() {
        match EventType::parse(name) {
            Some(event) if !events.contains(&event) => events.push(event),
            Some(_) => {}
            None => {
                all_known = false;
                let known: Vec<&str> = EventType::ALL.iter().map(|e| e.as_str()).collect();
                problems.push(FieldError::new(
                    format!("events[{index}]"),
                    format!("'{name}' is not an event; use one of {}", known.join(", ")),
                ));
            }
        }
    }
    all_known.then_some(events)
}

/// Checks a description: one line, at most [`MAX_DESCRIPTION_CHARS`]. `Ok(None)` when blank.
fn check_description(raw: Option<&str>) -> Result<Option<String>, String> {
    let Some(text) = raw.map(str::trim).filter(|t| !t.is_empty()) else {
        return Ok(None);
    };
    if text.chars().count() > MAX_DESCRIPTION_CHARS {
        return Err(format!("is longer than {MAX_DESCRIPTION_CHARS} characters"));
    }
    if text.chars().any(char::is_control) {
        return Err("must be one line without control characters".into());
    }
    Ok(Some(text.to_owned()))
}

/// A webhook endpoint (its secret is shown only when it is created).
#[derive(Debug, Serialize, ToSchema)]
pub struct WebhookView {
    /// Id.
    pub id: i64,
    /// Where deliveries are POSTed.
    pub url: String,
    /// The events it receives.
    pub events: Vec<String>,
    /// The operators' note.
    pub description: Option<String>,
    /// Registered (RFC 3339).
    pub created_at: String,
}

impl From<&Webhook> for WebhookView {
    fn from(webhook: &Webhook) -> Self {
        Self {
            id: webhook.id.0,
            url: webhook.url.clone(),
            events: webhook
                .events
                .iter()
                .map(|e| e.as_str().to_owned())
                .collect(),
            description: webhook.description.clone(),
            created_at: rfc3339(webhook.created_at),
        }
    }
}

/// A webhook endpoint just created, with its signing secret — shown this once only.
#[derive(Debug, Serialize, ToSchema)]
pub struct CreatedWebhookView {
    /// Id.
    pub id: i64,
    /// Where deliveries are POSTed.
    pub url: String,
    /// The events it receives.
    pub events: Vec<String>,
    /// The operators' note.
    pub description: Option<String>,
    /// Registered (RFC 3339).
    pub created_at: String,
    /// The signing secret (`whsec_…`): keep it now, it is never shown again.
    pub secret: String,
}

impl From<&Webhook> for CreatedWebhookView {
    fn from(webhook: &Webhook) -> Self {
        let view = WebhookView::from(webhook);
        Self {
            id: view.id,
            url: view.url,
            events: view.events,
            description: view.description,
            created_at: view.created_at,
            secret: webhook.secret.clone(),
        }
    }
}

/// Every webhook endpoint.
#[derive(Debug, Serialize, ToSchema)]
pub struct WebhookList {
    /// By id.
    pub webhooks: Vec<WebhookView>,
}

/// One delivery of one event to one endpoint.
#[derive(Debug, Serialize, ToSchema)]
pub struct DeliveryView {
    /// Id.
    pub id: i64,
    /// The endpoint.
    pub webhook_id: i64,
    /// The `webhook-id` header it is sent with (`msg_…`), the same on every attempt.
    pub message_id: String,
    /// The event's id (`evt_…`), from the body.
    pub event_id: Option<String>,
    /// The event's type, e.g. `ticket.created`, from the body.
    pub event_type: Option<String>,
    /// `pending`, `done` or `dead`.
    pub state: String,
    /// Attempts started so far.
    pub attempts: u32,
    /// When it is (or was) due next (RFC 3339).
    pub next_attempt_at: String,
    /// What the last attempt said: the receiver's answer, or the error.
    pub last_result: Option<String>,
    /// Added (RFC 3339).
    pub created_at: String,
    /// Done or given up (RFC 3339).
    pub finished_at: Option<String>,
}

impl From<&Job> for DeliveryView {
    fn from(job: &Job) -> Self {
        let payload: Option<serde_json::Value> = serde_json::from_str(&job.payload).ok();
        let text_field = |name: &str| {
            payload
                .as_ref()
                .and_then(|body| body.get(name))
                .and_then(serde_json::Value::as_str)
                .map(str::to_owned)
        };
        Self {
            id: job.id.0,
            webhook_id: job.webhook_id.map_or(0, |id| id.0),
            message_id: message_id(job.id),
            event_id: text_field("id"),
            event_type: text_field("type"),
            state: job.state.as_str().to_owned(),
            attempts: job.attempts,
            next_attempt_at: rfc3339(job.next_attempt_at),
            last_result: job.last_result.clone(),
            created_at: rfc3339(job.created_at),
            finished_at: job.finished_at.map(rfc3339),
        }
    }
}

/// `GET /api/v1/webhooks/{id}/deliveries` query.
#[derive(Debug, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct DeliveryListParams {
    /// Only deliveries in this state: `pending`, `done` or `dead`.
    pub state: Option<String>,
    /// Page size, 1 to 100 (default 25).
    pub limit: Option<u32>,
    /// `next_cursor` of the previous page.
    pub cursor: Option<String>,
}

/// A page of deliveries.
#[derive(Debug, Serialize, ToSchema)]
pub struct DeliveryList {
    /// Newest first.
    pub deliveries: Vec<DeliveryView>,
    /// Pass as `cursor` for the next page; absent on the last one.
    pub next_cursor: Option<String>,
}

/// An endpoint id from a URL path; anything else is not found.
fn webhook_id(raw: &str) -> Result<WebhookId, Problem> {
    raw.parse()
        .map(WebhookId)
        .map_err(|_| Problem::not_found(format!("webhook {raw}")))
}

/// A delivery id from a URL path; anything else is not found.
fn delivery_id(raw: &str) -> Result<JobId, Problem> {
    raw.parse()
        .map(JobId)
        .map_err(|_| Problem::not_found(format!("delivery {raw}")))
}

/// Registers a webhook endpoint and makes its signing secret, which this answer shows once.
#[utoipa::path(post, path = "/api/v1/webhooks", tag = "webhooks",
    request_body = CreateWebhookRequest,
    params(("Idempotency-Key" = Option<String>, Header, description = "Repeat-safe key (24 h)")),
    responses(
        (status = 201, description = "Created; the only answer with the secret", body = CreatedWebhookView),
        (status = 400, description = "Invalid input", body = super::problem::ProblemDocument, content_type = "application/problem+json"),
    ),
    security(("bearer" = [])))]
pub async fn create_webhook(
    State(state): State<AppState>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    headers: HeaderMap,
    body: Body,
) -> Result<Response, Problem> {
    let caller = authenticate(&state, peer, &headers, Scope::Admin).await?;
    let body = read_body(body, &state).await?;
    let request: CreateWebhookRequest = parse_json(&body)?;
    let new = request.check(WebhookSecret::generate().to_text())?;
    let key = idempotency_key(&headers, &caller, "POST", "/api/v1/webhooks", &body)?;
    let work: Work<CreatedWebhookView> = Box::new(move |tx| {
        Box::pin(async move {
            let webhook = tx.insert_webhook(&new, helpline_core::now()).await?;
            Ok(CreatedWebhookView::from(&webhook))
        })
    });
    write_json(&state, key, StatusCode::CREATED, work).await
}

/// Lists every webhook endpoint (without secrets).
#[utoipa::path(get, path = "/api/v1/webhooks", tag = "webhooks",
    responses((status = 200, description = "Every endpoint, by id", body = WebhookList)),
    security(("bearer" = [])))]
pub async fn list_webhooks(
    State(state): State<AppState>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    headers: HeaderMap,
) -> Result<Json<WebhookList>, Problem> {
    authenticate(&state, peer, &headers, Scope::Admin).await?;
    let webhooks = state.store.reader().await?.webhooks().await?;
    Ok(Json(WebhookList {
        webhooks: webhooks.iter().map(WebhookView::from).collect(),
    }))
}

/// Reads one webhook endpoint (without its secret).
#[utoipa::path(get, path = "/api/v1/webhooks/{id}", tag = "webhooks",
    params(("id" = i64, Path, description = "Webhook endpoint id")),
    responses(
        (status = 200, description = "The endpoint", body = WebhookView),
        (status = 404, description = "No such endpoint", body = super::problem::ProblemDocument, content_type = "application/problem+json"),
    ),
    security(("bearer" = [])))]
pub async fn get_webhook(
    State(state): State<AppState>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    headers: HeaderMap,
    Path(raw_id): Path<String>,
) -> Result<Json<WebhookView>, Problem> {
    authenticate(&state, peer, &headers, Scope::Admin).await?;
    let id = webhook_id(&raw_id)?;
    let webhook = state
        .store
        .reader()
        .await?
        .webhook(id)
        .await?
        .ok_or_else(|| Problem::not_found(format!("webhook {id}")))?;
    Ok(Json(WebhookView::from(&webhook)))
}

/// Removes a webhook endpoint and its deliveries.
#[utoipa::path(delete, path = "/api/v1/webhooks/{id}", tag = "webhooks",
    params(("id" = i64, Path, description = "Webhook endpoint id")),
    responses(
        (status = 204, description = "Removed"),
        (status = 404, description = "No such endpoint", body = super::problem::ProblemDocument, content_type = "application/problem+json"),
    ),
    security(("bearer" = [])))]
pub async fn delete_webhook(
    State(state): State<AppState>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    headers: HeaderMap,
    Path(raw_id): Path<String>,
) -> Result<StatusCode, Problem> {
    authenticate(&state, peer, &headers, Scope::Admin).await?;
    let id = webhook_id(&raw_id)?;
    let removed = state
        .store
        .write(move |tx| Box::pin(async move { Ok(tx.delete_webhook(id).await?) }))
        .await?;
    if removed {
        Ok(StatusCode::NO_CONTENT)
    } else {
        Err(Problem::not_found(format!("webhook {id}")))
    }
}

/// Lists an endpoint's deliveries, newest first, optionally in one state.
#[utoipa::path(get, path = "/api/v1/webhooks/{id}/deliveries", tag = "webhooks",
    params(("id" = i64, Path, description = "Webhook endpoint id"), DeliveryListParams),
    responses(
        (status = 200, description = "A page of deliveries", body = DeliveryList),
        (status = 400, description = "Invalid query", body = super::problem::ProblemDocument, content_type = "application/problem+json"),
        (status = 404, description = "No such endpoint", body = super::problem::ProblemDocument, content_type = "application/problem+json"),
    ),
    security(("bearer" = [])))]
pub async fn list_deliveries(
    State(state): State<AppState>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    headers: HeaderMap,
    Path(raw_id): Path<String>,
    RawQuery(query): RawQuery,
) -> Result<Json<DeliveryList>, Problem> {
    authenticate(&state, peer, &headers, Scope::Admin).await?;
    let id = webhook_id(&raw_id)?;
    let params: DeliveryListParams =
        serde_urlencoded::from_str(query.as_deref().unwrap_or_default())
            .map_err(|e| Problem::field("query", e.to_string()))?;
    let job_state = params
        .state
        .as_deref()
        .map(|raw| {
            JobState::from_stored(raw.trim()).ok_or_else(|| {
                Problem::field(
                    "state",
                    format!("must be pending, done or dead, not '{raw}'"),
                )
            })
        })
        .transpose()?;
    let limit = super::paging::limit(params.limit)?;
    let before = super::paging::after(params.cursor.as_deref(), DELIVERY_CURSOR)?.map(JobId);
    let mut reader = state.store.reader().await?;
    if reader.webhook(id).await?.is_none() {
        return Err(Problem::not_found(format!("webhook {id}")));
    }
    let jobs = reader
        .jobs(&JobQuery {
            state: job_state,
            kind: Some(JobKind::Webhook),
            webhook_id: Some(id),
            before,
            limit: limit + 1,
        })
        .await?;
    let (jobs, next_cursor) = super::paging::page(jobs, limit, DELIVERY_CURSOR, |job| job.id.0);
    Ok(Json(DeliveryList {
        deliveries: jobs.iter().map(DeliveryView::from).collect(),
        next_cursor,
    }))
}

/// Sends a finished (done or dead) delivery again: the same body with the same `webhook-id`,
/// due now, its attempts reset.
#[utoipa::path(post, path = "/api/v1/webhooks/{id}/deliveries/{delivery_id}/redeliver", tag = "webhooks",
    params(
        ("id" = i64, Path, description = "Webhook endpoint id"),
        ("delivery_id" = i64, Path, description = "Delivery id"),
        ("Idempotency-Key" = Option<String>, Header, description = "Repeat-safe key (24 h)"),
    ),
    responses(
        (status = 202, description = "Queued again; the delivery", body = DeliveryView),
        (status = 404, description = "No such endpoint, or not one of its deliveries", body = super::problem::ProblemDocument, content_type = "application/problem+json"),
        (status = 409, description = "The delivery is still pending", body = super::problem::ProblemDocument, content_type = "application/problem+json"),
    ),
    security(("bearer" = [])))]
pub async fn redeliver(
    State(state): State<AppState>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    headers: HeaderMap,
    Path((raw_webhook, raw_delivery)): Path<(String, String)>,
) -> Result<Response, Problem> {
    let caller = authenticate(&state, peer, &headers, Scope::Admin).await?;
    let webhook = webhook_id(&raw_webhook)?;
    let delivery = delivery_id(&raw_delivery)?;
    let key = idempotency_key(
        &headers,
        &caller,
        "POST",
        &format!("/api/v1/webhooks/{webhook}/deliveries/{delivery}/redeliver"),
        b"",
    )?;
    let work: Work<DeliveryView> = Box::new(move |tx| {
        Box::pin(async move {
            if tx.webhook(webhook).await?.is_none() {
                return Err(Error::not_found(format!("webhook {webhook}")));
            }
            let not_ours = || Error::not_found(format!("delivery {delivery} of webhook {webhook}"));
            let job = tx
                .job(delivery)
                .await?
                .filter(|job| job.kind == JobKind::Webhook && job.webhook_id == Some(webhook))
                .ok_or_else(not_ours)?;
            let still_pending = || {
                Error::Conflict(format!(
                    "delivery {delivery} is still pending; only a done or dead one can be sent again"
                ))
            };
            if job.state == JobState::Pending {
                return Err(still_pending());
            }
            if !tx.requeue_job(delivery, helpline_core::now()).await? {
                return Err(still_pending());
            }
            let job = tx.job(delivery).await?.ok_or_else(not_ours)?;
            Ok(DeliveryView::from(&job))
        })
    });
    write_json(&state, key, StatusCode::ACCEPTED, work).await
}
