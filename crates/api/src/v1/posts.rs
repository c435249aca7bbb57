//! Posting on a ticket: the client reply (customer message), staff replies, internal notes.

use super::auth::authenticate;
use super::body::read_body;
use super::input::{self, AttachmentInput, StaffInput, StatusInput, finish, parse_json};
use super::problem::Problem;
use super::tickets::parse_ip;
use super::views::{EntryView, entry_view};
use super::{idempotency_key, number, then, write_json};
use crate::AppState;
use axum::body::Body;
use axum::extract::{ConnectInfo, Path, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::Response;
use helpline_core::FieldError;
use helpline_core::apikey::Scope;
use helpline_core::ids::UserId;
use helpline_core::service::posting::{
    CustomerMessage, CustomerRef, InternalNote, NoteAuthor, StaffReply, post_customer_message,
    post_internal_note, post_staff_reply,
};
use helpline_core::ticket::{Source, Subject};
use helpline_core::user::check_name;
use serde::Deserialize;
use std::net::SocketAddr;
use utoipa::ToSchema;

/// `POST /api/v1/tickets/{number}/messages`: a customer's reply.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct MessageRequest {
    /// The poster's address (the owner's or a collaborator's)…
    pub email: Option<String>,
    /// …or their customer id.
    pub user_id: Option<i64>,
    /// The message (required).
    pub message: Option<String>,
    /// `text` (default) or `html` (sanitised).
    pub format: Option<String>,
    /// Files.
    #[serde(default)]
    pub attachments: Vec<AttachmentInput>,
    /// The customer's address; default the caller's.
    pub ip: Option<String>,
    /// `false`: send no notification mail for this post (default `true`).
    pub notify: Option<bool>,
}

/// Posts a customer's message on their ticket (the client reply API). Only the owner or a
/// collaborator may post; a closed ticket is reopened when its status allows.
#[utoipa::path(post, path = "/api/v1/tickets/{number}/messages", tag = "posting",
    params(("number" = String, Path, description = "Ticket number"),
        ("Idempotency-Key" = Option<String>, Header, description = "Repeat-safe key (24 h)")),
    request_body = MessageRequest,
    responses(
        (status = 201, description = "Posted", body = EntryView),
        (status = 400, description = "Invalid input", body = super::problem::ProblemDocument, content_type = "application/problem+json"),
        (status = 403, description = "Poster is neither owner nor collaborator", body = super::problem::ProblemDocument, content_type = "application/problem+json"),
        (status = 404, description = "No such ticket", body = super::problem::ProblemDocument, content_type = "application/problem+json"),
        (status = 409, description = "Closed and not reopenable", body = super::problem::ProblemDocument, content_type = "application/problem+json"),
    ),
    security(("bearer" = [])))]
pub async fn post_message(
    State(state): State<AppState>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    headers: HeaderMap,
    Path(raw): Path<String>,
    body: Body,
) -> Result<Response, Problem> {
    let caller = authenticate(&state, peer, &headers, Scope::MessagesCreate).await?;
    let body = read_body(body, &state).await?;
    let number = number(&raw)?;
    let request: MessageRequest = parse_json(&body)?;
    let mut problems = Vec::new();
    let poster = match (request.email.as_deref(), request.user_id) {
        (Some(raw), None) => input::email("email", raw, &mut problems).map(CustomerRef::Email),
        (None, Some(id)) => Some(CustomerRef::Id(UserId(id))),
        _ => {
            problems.push(FieldError::new("email", "give either email or user_id"));
            None
        }
    };
    let body_text = input::message(
        request.message.as_deref(),
        request.format.as_deref(),
        &mut problems,
    );
    let ip = parse_ip(request.ip.as_deref(), caller.ip, &mut problems);
    let attachments = input::attachments(
        request.attachments,
        state.api.max_attachment_bytes,
        &mut problems,
    );
    let message = match (poster, body_text) {
        (Some(poster), Some(body)) => Some(CustomerMessage {
            poster,
            body,
            attachments,
            ip: Some(ip),
            source: Source::Api,
            mail: Default::default(),
            may_reopen: true,
            flags: Default::default(),
            notify: request.notify.unwrap_or(true),
        }),
        _ => None,
    };
    let message = finish(problems, message)?;
    let key = idempotency_key(
        &headers,
        &caller,
        "POST",
        &format!("/api/v1/tickets/{number}/messages"),
        &body,
    )?;
    let shown = number.to_string();
    let work = then(
        post_customer_message(&state.desk, number, message, caller.actor()),
        move |_, posted| Box::pin(async move { Ok(entry_view(&shown, &posted.entry)) }),
    );
    write_json(&state, key, StatusCode::CREATED, work).await
}

/// `POST /api/v1/tickets/{number}/replies`.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ReplyRequest {
    /// The staff member replying: id, username or address (required).
    pub staff: Option<StaffInput>,
    /// The reply (required).
    pub message: Option<String>,
    /// `text` (default) or `html` (sanitised).
    pub format: Option<String>,
    /// Files.
    #[serde(default)]
    pub attachments: Vec<AttachmentInput>,
    /// A status (id or name) to set in the same step, e.g. `Resolved`.
    pub status: Option<StatusInput>,
    /// `false`: do not mail the reply to the customer and collaborators (default `true`).
    pub notify: Option<bool>,
}

/// Posts a staff reply: sets the last-response time and the answered flag, optionally changes
/// the status in the same transaction.
#[utoipa::path(post, path = "/api/v1/tickets/{number}/replies", tag = "posting",
    params(("number" = String, Path, description = "Ticket number"),
        ("Idempotency-Key" = Option<String>, Header, description = "Repeat-safe key (24 h)")),
    request_body = ReplyRequest,
    responses(
        (status = 201, description = "Posted", body = EntryView),
        (status = 400, description = "Invalid input or unknown staff", body = super::problem::ProblemDocument, content_type = "application/problem+json"),
        (status = 404, description = "No such ticket", body = super::problem::ProblemDocument, content_type = "application/problem+json"),
    ),
    security(("bearer" = [])))]
pub async fn post_reply(
    State(state): State<AppState>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    headers: HeaderMap,
    Path(raw): Path<String>,
    body: Body,
) -> Result<Response, Problem> {
    let caller = authenticate(&state, peer, &headers, Scope::RepliesCreate).await?;
    let body = read_body(body, &state).await?;
    let number = number(&raw)?;
    let request: ReplyRequest = parse_json(&body)?;
    let mut problems = Vec::new();
    let staff = match &request.staff {
        Some(staff) => staff.to_ref("staff", &mut problems),
        None => {
            problems.push(FieldError::new("staff", "is required"));
            None
        }
    };
    let text = input::message(
        request.message.as_deref(),
        request.format.as_deref(),
        &mut problems,
    );
    let attachments = input::attachments(
        request.attachments,
        state.api.max_attachment_bytes,
        &mut problems,
    );
    let reply = match (staff, text) {
        (Some(staff), Some(body)) => Some(StaffReply {
            staff,
            body,
            attachments,
            status: request.status.as_ref().map(StatusInput::to_ref),
            notify: request.notify.unwrap_or(true),
        }),
        _ => None,
    };
    let reply = finish(problems, reply)?;
    let key = idempotency_key(
        &headers,
        &caller,
        "POST",
        &format!("/api/v1/tickets/{number}/replies"),
        &body,
    )?;
    let shown = number.to_string();
    let work = then(
        post_staff_reply(&state.desk, number, reply, caller.actor()),
        move |_, posted| Box::pin(async move { Ok(entry_view(&shown, &posted.entry)) }),
    );
    write_json(&state, key, StatusCode::CREATED, work).await
}

/// `POST /api/v1/tickets/{number}/notes`.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct NoteRequest {
    /// The staff member writing it: id, username or address…
    pub staff: Option<StaffInput>,
    /// …or a free-form author name (an integration, "Monitoring").
    pub poster: Option<String>,
    /// Title.
    pub title: Option<String>,
    /// The note (required).
    pub message: Option<String>,
    /// `text` (default) or `html` (sanitised).
    pub format: Option<String>,
    /// `false`: send no internal-note alert (default `true`; the alert itself is off unless
    /// switched on).
    pub notify: Option<bool>,
}

/// Posts an internal note, never visible to customers.
#[utoipa::path(post, path = "/api/v1/tickets/{number}/notes", tag = "posting",
    params(("number" = String, Path, description = "Ticket number"),
        ("Idempotency-Key" = Option<String>, Header, description = "Repeat-safe key (24 h)")),
    request_body = NoteRequest,
    responses(
        (status = 201, description = "Posted", body = EntryView),
        (status = 400, description = "Invalid input or unknown staff", body = super::problem::ProblemDocument, content_type = "application/problem+json"),
        (status = 404, description = "No such ticket", body = super::problem::ProblemDocument, content_type = "application/problem+json"),
    ),
    security(("bearer" = [])))]
pub async fn post_note(
    State(state): State<AppState>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    headers: HeaderMap,
    Path(raw): Path<String>,
    body: Body,
) -> Result<Response, Problem> {
    let caller = authenticate(&state, peer, &headers, Scope::NotesCreate).await?;
    let body = read_body(body, &state).await?;
    let number = number(&raw)?;
    let request: NoteRequest = parse_json(&body)?;
    let mut problems = Vec::new();
    let author = match (&request.staff, request.poster.as_deref().map(str::trim)) {
        (Some(staff), None) => staff.to_ref("staff", &mut problems).map(NoteAuthor::Staff),
        (None, Some(name)) => match check_name(Some(name)) {
            Ok(Some(name)) => Some(NoteAuthor::Named(name)),
            Ok(None) => {
                problems.push(FieldError::new("poster", "is empty"));
                None
            }
            Err(e) => {
                problems.push(FieldError::new("poster", e));
                None
            }
        },
        _ => {
            problems.push(FieldError::new("staff", "give either staff or poster"));
            None
        }
    };
    let text = input::message(
        request.message.as_deref(),
        request.format.as_deref(),
        &mut problems,
    );
    let title = match request.title.as_deref().map(Subject::parse) {
        None => None,
        Some(Ok(title)) => Some(title.as_str().to_owned()),
        Some(Err(e))
            if request
                .title
                .as_deref()
                .is_some_and(|t| !t.trim().is_empty()) =>
        {
            problems.push(FieldError::new("title", e));
            None
        }
        Some(Err(_)) => None,
    };
    let note = match (author, text) {
        (Some(author), Some(body)) => Some(InternalNote {
            author,
            title,
            body,
            mail: Default::default(),
            flags: Default::default(),
            notify: request.notify.unwrap_or(true),
        }),
        _ => None,
    };
    let note = finish(problems, note)?;
    let key = idempotency_key(
        &headers,
        &caller,
        "POST",
        &format!("/api/v1/tickets/{number}/notes"),
        &body,
    )?;
    let shown = number.to_string();
    let work = then(
        post_internal_note(&state.desk, number, note, caller.actor()),
        move |_, posted| Box::pin(async move { Ok(entry_view(&shown, &posted.entry)) }),
    );
    write_json(&state, key, StatusCode::CREATED, work).await
}
