//! Tickets: create, list and search, read, change, thread, attachments, collaborators.

use super::auth::authenticate;
use super::body::read_body;
use super::input::{
    self, AttachmentInput, StaffInput, StatusInput, double_option, finish, parse_json,
};
use super::problem::Problem;
use super::views::{Catalog, EntryView, TicketView, UserView, entry_view, ticket_view};
use super::{Written, idempotency_key, number, then, write_json};
use crate::AppState;
use axum::Json;
use axum::body::Body;
use axum::extract::{ConnectInfo, Path, RawQuery, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use base64::Engine;
use helpline_core::FieldError;
use helpline_core::apikey::Scope;
use helpline_core::catalog::StatusState;
use helpline_core::ids::{AttachmentId, DepartmentId, PriorityId, TicketId, TopicId, UserId};
use helpline_core::service::listing::{TicketFilter, list_tickets as find_tickets};
use helpline_core::service::tickets::open_ticket_work;
use helpline_core::service::updates::{
    CollaboratorRef, TicketChanges, add_collaborator, collaborators_of, remove_collaborator,
    update_ticket,
};
use helpline_core::ticket::{NewTicket, NotifyOptions, Source, Subject};
use helpline_core::user::{CustomerContact, check_name, check_text};
use serde::{Deserialize, Serialize};
use std::net::{IpAddr, SocketAddr};
use time::OffsetDateTime;
use time::format_description::well_known::Rfc3339;
use utoipa::{IntoParams, ToSchema};

/// `POST /api/v1/tickets`.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CreateTicketRequest {
    /// The customer's address (required); an existing customer is reused.
    pub email: Option<String>,
    /// The customer's name, for a new customer.
    pub name: Option<String>,
    /// Phone, for a new customer.
    pub phone: Option<String>,
    /// Subject (required).
    pub subject: Option<String>,
    /// The first message (required).
    pub message: Option<String>,
    /// `text` (default) or `html` (sanitised).
    pub format: Option<String>,
    /// Help topic id.
    pub topic_id: Option<i64>,
    /// Priority id.
    pub priority_id: Option<i64>,
    /// `api` (default), `email`, `web`, `phone` or `other`.
    pub source: Option<String>,
    /// The customer's address; default the caller's.
    pub ip: Option<String>,
    /// Files.
    #[serde(default)]
    pub attachments: Vec<AttachmentInput>,
    /// Send notifications (default true).
    pub notify: Option<bool>,
}

impl CreateTicketRequest {
    fn check(self, caller_ip: IpAddr, max_attachment_bytes: usize) -> Result<NewTicket, Problem> {
        let mut problems = Vec::new();
        let email = match self.email.as_deref() {
            Some(raw) => input::email("email", raw, &mut problems),
            None => {
                problems.push(FieldError::new("email", "is required"));
                None
            }
        };
        let subject = Subject::parse(self.subject.as_deref().unwrap_or_default())
            .map_err(|e| problems.push(FieldError::new("subject", e)))
            .ok();
        let message = input::message(
            self.message.as_deref(),
            self.format.as_deref(),
            &mut problems,
        );
        let source = match self.source.as_deref() {
            None => Source::Api,
            Some(raw) => Source::parse(raw).unwrap_or_else(|| {
                problems.push(FieldError::new(
                    "source",
                    "must be api, email, web, phone or other",
                ));
                Source::Api
            }),
        };
        let name = check_name(self.name.as_deref())
            .map_err(|e| problems.push(FieldError::new("name", e)))
            .unwrap_or_default();
        let phone = check_text(self.phone.as_deref(), 64)
            .map_err(|e| problems.push(FieldError::new("phone", e)))
            .unwrap_or_default();
        let ip = parse_ip(self.ip.as_deref(), caller_ip, &mut problems);
        let attachments = input::attachments(self.attachments, max_attachment_bytes, &mut problems);
        for (field, id) in [
            ("topic_id", self.topic_id),
            ("priority_id", self.priority_id),
        ] {
            if id.is_some_and(|id| id <= 0) {
                problems.push(FieldError::new(field, "must be a positive id"));
            }
        }
        let ticket = match (email, subject, message) {
            (Some(email), Some(subject), Some(message)) => Some(NewTicket {
                contact: CustomerContact {
                    email,
                    name,
                    phone,
                    notes: None,
                },
                subject,
                message,
                topic_id: self.topic_id.map(TopicId),
                priority_id: self.priority_id.map(PriorityId),
                source,
                ip: Some(ip),
                attachments,
                notify: NotifyOptions {
                    alert: self.notify.unwrap_or(true),
                    autorespond: self.notify.unwrap_or(true),
                },
                mail: Default::default(),
                flags: Default::default(),
            }),
            _ => None,
        };
        finish(problems, ticket)
    }
}

/// An optional IP field, defaulting to the caller's address.
pub(crate) fn parse_ip(
    raw: Option<&str>,
    default: IpAddr,
    problems: &mut Vec<FieldError>,
) -> IpAddr {
    match raw.map(str::trim).filter(|s| !s.is_empty()) {
        None => default,
        Some(text) => text.parse().unwrap_or_else(|_| {
            problems.push(FieldError::new(
                "ip",
                format!("'{text}' is not an IP address"),
            ));
            default
        }),
    }
}

/// Opens a ticket.
#[utoipa::path(post, path = "/api/v1/tickets", tag = "tickets",
    request_body = CreateTicketRequest,
    params(("Idempotency-Key" = Option<String>, Header, description = "Repeat-safe key (24 h)")),
    responses(
        (status = 201, description = "Created", body = TicketView),
        (status = 400, description = "Invalid input", body = super::problem::ProblemDocument, content_type = "application/problem+json"),
        (status = 401, description = "No valid key", body = super::problem::ProblemDocument, content_type = "application/problem+json"),
        (status = 403, description = "Key lacks tickets:create", body = super::problem::ProblemDocument, content_type = "application/problem+json"),
    ),
    security(("bearer" = [])))]
pub async fn create_ticket(
    State(state): State<AppState>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    headers: HeaderMap,
    body: Body,
) -> Result<Response, Problem> {
    let caller = authenticate(&state, peer, &headers, Scope::TicketsCreate).await?;
    let body = read_body(body, &state).await?;
    let request: CreateTicketRequest = parse_json(&body)?;
    let new = request.check(caller.ip, state.api.max_attachment_bytes)?;
    let key = idempotency_key(&headers, &caller, "POST", "/api/v1/tickets", &body)?;
    let work = then(
        open_ticket_work(&state.desk, new, caller.actor()),
        |tx, opened| Box::pin(async move { Ok(ticket_view(tx, &opened.ticket).await?) }),
    );
    write_json(&state, key, StatusCode::CREATED, work).await
}

/// `GET /api/v1/tickets` query.
#[derive(Debug, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct ListParams {
    /// Status id or name.
    pub status: Option<String>,
    /// `open` or `closed` (closed includes archived).
    pub state: Option<String>,
    /// Tickets of the customer with this address.
    pub customer_email: Option<String>,
    /// Department id.
    pub department: Option<i64>,
    /// Assignee: staff id or username.
    pub assignee: Option<String>,
    /// Help topic id.
    pub topic: Option<i64>,
    /// Changed at or after (RFC 3339).
    pub updated_since: Option<String>,
    /// Words that must all appear in the subject or an entry.
    pub q: Option<String>,
    /// Page size, 1 to 100 (default 25).
    pub limit: Option<u32>,
    /// `next_cursor` of the previous page.
    pub cursor: Option<String>,
}

/// A page of tickets.
#[derive(Debug, Serialize, ToSchema)]
pub struct TicketList {
    /// Newest first.
    pub tickets: Vec<TicketView>,
    /// Pass as `cursor` for the next page; absent on the last one.
    pub next_cursor: Option<String>,
}

fn encode_cursor(id: TicketId) -> String {
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(format!("t{}", id.0))
}

fn decode_cursor(raw: &str) -> Option<TicketId> {
    let bytes = base64::engine::general_purpose::URL_SAFE_NO_PAD
        .decode(raw)
        .ok()?;
    let text = String::from_utf8(bytes).ok()?;
    text.strip_prefix('t')?.parse().ok().map(TicketId)
}

/// Lists and searches tickets, newest first, with stable cursor paging.
#[utoipa::path(get, path = "/api/v1/tickets", tag = "tickets", params(ListParams),
    responses(
        (status = 200, description = "A page of tickets", body = TicketList),
        (status = 400, description = "Invalid filter", body = super::problem::ProblemDocument, content_type = "application/problem+json"),
    ),
    security(("bearer" = [])))]
pub async fn list_tickets(
    State(state): State<AppState>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    headers: HeaderMap,
    RawQuery(query): RawQuery,
) -> Result<Json<TicketList>, Problem> {
    authenticate(&state, peer, &headers, Scope::TicketsRead).await?;
    let params: ListParams = serde_urlencoded::from_str(query.as_deref().unwrap_or_default())
        .map_err(|e| Problem::field("query", e.to_string()))?;
    let mut problems = Vec::new();
    let mut reader = state.store.reader().await?;
    let status = match params.status.as_deref() {
        None => None,
        Some(raw) => {
            let statuses = reader.statuses().await?;
            let found = statuses.iter().find(|s| {
                s.id.0.to_string() == raw.trim() || s.name.eq_ignore_ascii_case(raw.trim())
            });
            if found.is_none() {
                problems.push(FieldError::new("status", format!("no status '{raw}'")));
            }
            found.map(|s| s.id)
        }
    };
    let assignee = match params.assignee.as_deref() {
        None => None,
        Some(raw) => {
            let staff = reader.staff().await?;
            let found = staff.iter().find(|s| {
                s.id.0.to_string() == raw.trim() || s.username.eq_ignore_ascii_case(raw.trim())
            });
            if found.is_none() {
                problems.push(FieldError::new(
                    "assignee",
                    format!("no staff member '{raw}'"),
                ));
            }
            found.map(|s| s.id)
        }
    };
    drop(reader);
    let state_filter = match params.state.as_deref() {
        None => None,
        Some("open") => Some(StatusState::Open),
        Some("closed") => Some(StatusState::Closed),
        Some(other) => {
            problems.push(FieldError::new(
                "state",
                format!("must be 'open' or 'closed', not '{other}'"),
            ));
            None
        }
    };
    let customer_email = params
        .customer_email
        .as_deref()
        .and_then(|raw| input::email("customer_email", raw, &mut problems));
    let updated_since = params.updated_since.as_deref().and_then(|raw| {
        OffsetDateTime::parse(raw, &Rfc3339)
            .map_err(|_| {
                problems.push(FieldError::new(
                    "updated_since",
                    "must be an RFC 3339 time, e.g. 2026-11-25T14:00:00Z",
                ))
            })
            .ok()
    });
    let before = params.cursor.as_deref().and_then(|raw| {
        let decoded = decode_cursor(raw);
        if decoded.is_none() {
            problems.push(FieldError::new(
                "cursor",
                "is not a cursor this API gave out",
            ));
        }
        decoded
    });
    let limit = params.limit.unwrap_or(25);
    if let Err(problem) = super::paging::limit(params.limit) {
        problems.extend(
            problem
                .errors
                .iter()
                .map(|e| FieldError::new(e.field.clone(), e.message.clone())),
        );
    }
    if !problems.is_empty() {
        return Err(Problem::invalid(problems));
    }
    let filter = TicketFilter {
        status,
        state: state_filter,
        customer_email,
        department: params.department.map(DepartmentId),
        assignee,
        topic: params.topic.map(TopicId),
        updated_since,
        text: params.q,
    };
    let page = find_tickets(&*state.store, filter, before, limit).await?;
    let mut reader = state.store.reader().await?;
    let mut catalog = Catalog::load(&mut *reader).await?;
    if let Some(customer) = page.customer {
        catalog.add_customer(customer);
    }
    catalog.load_customers(&mut *reader, &page.tickets).await?;
    let mut tickets = Vec::with_capacity(page.tickets.len());
    for ticket in &page.tickets {
        tickets.push(catalog.ticket(&mut *reader, ticket).await?);
    }
    Ok(Json(TicketList {
        tickets,
        next_cursor: page.next.map(encode_cursor),
    }))
}

/// The ticket `number` names, or a 404 problem.
async fn existing_ticket(
    reader: &mut dyn helpline_core::store::Reader,
    number: &helpline_core::ticket::TicketNumber,
) -> Result<helpline_core::ticket::Ticket, Problem> {
    reader
        .ticket_by_number(number)
        .await?
        .ok_or_else(|| Problem::not_found(format!("ticket {number}")))
}

/// Reads one ticket.
#[utoipa::path(get, path = "/api/v1/tickets/{number}", tag = "tickets",
    params(("number" = String, Path, description = "Ticket number")),
    responses(
        (status = 200, description = "The ticket", body = TicketView),
        (status = 404, description = "No such ticket", body = super::problem::ProblemDocument, content_type = "application/problem+json"),
    ),
    security(("bearer" = [])))]
pub async fn get_ticket(
    State(state): State<AppState>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    headers: HeaderMap,
    Path(raw): Path<String>,
) -> Result<Json<TicketView>, Problem> {
    authenticate(&state, peer, &headers, Scope::TicketsRead).await?;
    let number = number(&raw)?;
    let mut reader = state.store.reader().await?;
    let (ticket, customer) = reader
        .ticket_with_customer(&number)
        .await?
        .ok_or_else(|| Problem::not_found(format!("ticket {number}")))?;
    let mut catalog = Catalog::load(&mut *reader).await?;
    if let Some(customer) = customer {
        catalog.add_customer(customer);
    }
    Ok(Json(catalog.ticket(&mut *reader, &ticket).await?))
}

/// A ticket's thread.
#[derive(Debug, Serialize, ToSchema)]
pub struct EntryList {
    /// Oldest first.
    pub entries: Vec<EntryView>,
}

/// Reads a ticket's thread, oldest first: messages, responses and internal notes.
#[utoipa::path(get, path = "/api/v1/tickets/{number}/entries", tag = "tickets",
    params(("number" = String, Path, description = "Ticket number")),
    responses(
        (status = 200, description = "The thread", body = EntryList),
        (status = 404, description = "No such ticket", body = super::problem::ProblemDocument, content_type = "application/problem+json"),
    ),
    security(("bearer" = [])))]
pub async fn list_entries(
    State(state): State<AppState>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    headers: HeaderMap,
    Path(raw): Path<String>,
) -> Result<Json<EntryList>, Problem> {
    authenticate(&state, peer, &headers, Scope::TicketsRead).await?;
    let number = number(&raw)?;
    let mut reader = state.store.reader().await?;
    let ticket = existing_ticket(&mut *reader, &number).await?;
    let entries = reader.entries(ticket.id).await?;
    Ok(Json(EntryList {
        entries: entries
            .iter()
            .map(|e| entry_view(number.as_str(), e))
            .collect(),
    }))
}

/// Downloads an attachment with its stored content type.
#[utoipa::path(get, path = "/api/v1/tickets/{number}/attachments/{id}", tag = "tickets",
    params(("number" = String, Path, description = "Ticket number"), ("id" = i64, Path, description = "Attachment id")),
    responses(
        (status = 200, description = "The file, with its stored content type", content_type = "*/*"),
        (status = 404, description = "No such attachment on this ticket", body = super::problem::ProblemDocument, content_type = "application/problem+json"),
    ),
    security(("bearer" = [])))]
pub async fn download_attachment(
    State(state): State<AppState>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    headers: HeaderMap,
    Path((raw, raw_id)): Path<(String, String)>,
) -> Result<Response, Problem> {
    authenticate(&state, peer, &headers, Scope::TicketsRead).await?;
    let number = number(&raw)?;
    let id: i64 = raw_id
        .parse()
        .map_err(|_| Problem::not_found(format!("attachment {raw_id} of ticket {number}")))?;
    let mut reader = state.store.reader().await?;
    let ticket = existing_ticket(&mut *reader, &number).await?;
    let not_found = || Problem::not_found(format!("attachment {id} of ticket {number}"));
    let (attachment, content) = reader
        .attachment(AttachmentId(id))
        .await?
        .ok_or_else(not_found)?;
    // The attachment must belong to an entry of this very ticket.
    let entries = reader.entries(ticket.id).await?;
    if !entries.iter().any(|e| e.id == attachment.entry_id) {
        return Err(not_found());
    }
    let content_type = HeaderValue::from_str(&attachment.content_type)
        .unwrap_or_else(|_| HeaderValue::from_static("application/octet-stream"));
    let safe_name: String = attachment
        .filename
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || ".-_ ".contains(c) {
                c
            } else {
                '_'
            }
        })
        .collect();
    let disposition = HeaderValue::from_str(&format!("attachment; filename=\"{safe_name}\""))
        .unwrap_or_else(|_| HeaderValue::from_static("attachment"));
    let mut response = content.into_response();
    let headers = response.headers_mut();
    headers.insert(header::CONTENT_TYPE, content_type);
    headers.insert(header::CONTENT_DISPOSITION, disposition);
    headers.insert(
        header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    );
    Ok(response)
}

/// `PATCH /api/v1/tickets/{number}`: only the fields given change.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct PatchTicketRequest {
    /// Status id or name.
    pub status: Option<StatusInput>,
    /// Priority id.
    pub priority_id: Option<i64>,
    /// Department id.
    pub department_id: Option<i64>,
    /// Help topic id.
    pub topic_id: Option<i64>,
    /// Staff id, username or address; `null` unassigns.
    #[serde(default, deserialize_with = "double_option")]
    #[schema(value_type = Option<StaffInput>)]
    pub assignee: Option<Option<StaffInput>>,
    /// RFC 3339 time; `null` clears it.
    #[serde(default, deserialize_with = "double_option")]
    #[schema(value_type = Option<String>)]
    pub due_at: Option<Option<String>>,
}

/// Changes a ticket's status, priority, department, topic, assignee or due date; each change is
/// recorded as an event.
#[utoipa::path(patch, path = "/api/v1/tickets/{number}", tag = "tickets",
    params(("number" = String, Path, description = "Ticket number"),
        ("Idempotency-Key" = Option<String>, Header, description = "Repeat-safe key (24 h)")),
    request_body = PatchTicketRequest,
    responses(
        (status = 200, description = "The changed ticket", body = TicketView),
        (status = 400, description = "Invalid change", body = super::problem::ProblemDocument, content_type = "application/problem+json"),
        (status = 404, description = "No such ticket", body = super::problem::ProblemDocument, content_type = "application/problem+json"),
    ),
    security(("bearer" = [])))]
pub async fn patch_ticket(
    State(state): State<AppState>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    headers: HeaderMap,
    Path(raw): Path<String>,
    body: Body,
) -> Result<Response, Problem> {
    let caller = authenticate(&state, peer, &headers, Scope::TicketsUpdate).await?;
    let body = read_body(body, &state).await?;
    let number = number(&raw)?;
    let request: PatchTicketRequest = parse_json(&body)?;
    let mut problems = Vec::new();
    let assignee = request
        .assignee
        .map(|a| a.and_then(|s| s.to_ref("assignee", &mut problems)));
    let due_at = request.due_at.map(|due| {
        due.and_then(|raw| {
            OffsetDateTime::parse(&raw, &Rfc3339)
                .map_err(|_| {
                    problems.push(FieldError::new(
                        "due_at",
                        "must be an RFC 3339 time or null",
                    ))
                })
                .ok()
        })
    });
    let changes = TicketChanges {
        status: request.status.as_ref().map(StatusInput::to_ref),
        priority: request.priority_id.map(PriorityId),
        department: request.department_id.map(DepartmentId),
        topic: request.topic_id.map(TopicId),
        assignee,
        due_at,
    };
    let changes = finish(problems, Some(changes))?;
    let key = idempotency_key(
        &headers,
        &caller,
        "PATCH",
        &format!("/api/v1/tickets/{number}"),
        &body,
    )?;
    let work = then(
        update_ticket(number, changes, caller.actor()),
        |tx, ticket| Box::pin(async move { Ok(ticket_view(tx, &ticket).await?) }),
    );
    write_json(&state, key, StatusCode::OK, work).await
}

/// `POST /api/v1/tickets/{number}/collaborators`.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct AddCollaboratorRequest {
    /// An existing customer's id…
    pub user_id: Option<i64>,
    /// …or an address (the customer is created when new).
    pub email: Option<String>,
    /// Name for a new customer.
    pub name: Option<String>,
}

/// A collaborator.
#[derive(Debug, Serialize, ToSchema)]
pub struct CollaboratorView {
    /// The customer.
    pub user: UserView,
    /// Added (RFC 3339).
    pub added_at: Option<String>,
}

/// A ticket's collaborators.
#[derive(Debug, Serialize, ToSchema)]
pub struct CollaboratorList {
    /// In the order they were added.
    pub collaborators: Vec<CollaboratorView>,
}

/// Lists a ticket's collaborators.
#[utoipa::path(get, path = "/api/v1/tickets/{number}/collaborators", tag = "collaborators",
    params(("number" = String, Path, description = "Ticket number")),
    responses((status = 200, description = "Collaborators", body = CollaboratorList),
        (status = 404, description = "No such ticket", body = super::problem::ProblemDocument, content_type = "application/problem+json")),
    security(("bearer" = [])))]
pub async fn list_collaborators(
    State(state): State<AppState>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    headers: HeaderMap,
    Path(raw): Path<String>,
) -> Result<Json<CollaboratorList>, Problem> {
    authenticate(&state, peer, &headers, Scope::TicketsRead).await?;
    let number = number(&raw)?;
    let collaborators = collaborators_of(&*state.store, &number).await?;
    Ok(Json(CollaboratorList {
        collaborators: collaborators
            .iter()
            .map(|(c, u)| CollaboratorView {
                user: UserView::from(u),
                added_at: Some(super::views::rfc3339(c.created_at)),
            })
            .collect(),
    }))
}

/// Adds a collaborator: they may then post messages on the ticket.
#[utoipa::path(post, path = "/api/v1/tickets/{number}/collaborators", tag = "collaborators",
    params(("number" = String, Path, description = "Ticket number"),
        ("Idempotency-Key" = Option<String>, Header, description = "Repeat-safe key (24 h)")),
    request_body = AddCollaboratorRequest,
    responses(
        (status = 201, description = "Added", body = CollaboratorView),
        (status = 200, description = "Already a collaborator", body = CollaboratorView),
        (status = 409, description = "The owner cannot be a collaborator", body = super::problem::ProblemDocument, content_type = "application/problem+json"),
    ),
    security(("bearer" = [])))]
pub async fn post_collaborator(
    State(state): State<AppState>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    headers: HeaderMap,
    Path(raw): Path<String>,
    body: Body,
) -> Result<Response, Problem> {
    let caller = authenticate(&state, peer, &headers, Scope::TicketsUpdate).await?;
    let body = read_body(body, &state).await?;
    let number = number(&raw)?;
    let request: AddCollaboratorRequest = parse_json(&body)?;
    let mut problems = Vec::new();
    let name = check_name(request.name.as_deref())
        .map_err(|e| problems.push(FieldError::new("name", e)))
        .unwrap_or_default();
    let who = match (request.user_id, request.email.as_deref()) {
        (Some(id), None) => Some(CollaboratorRef::User(UserId(id))),
        (None, Some(raw)) => input::email("email", raw, &mut problems).map(|email| {
            CollaboratorRef::Contact(CustomerContact {
                email,
                name: name.clone(),
                phone: None,
                notes: None,
            })
        }),
        _ => {
            problems.push(FieldError::new("email", "give either user_id or email"));
            None
        }
    };
    let who = finish(problems, who)?;
    let key = idempotency_key(
        &headers,
        &caller,
        "POST",
        &format!("/api/v1/tickets/{number}/collaborators"),
        &body,
    )?;
    let work = then(
        add_collaborator(number, who, caller.actor()),
        |_, (user, added)| {
            Box::pin(async move {
                Ok(Written {
                    status: if added {
                        StatusCode::CREATED
                    } else {
                        StatusCode::OK
                    },
                    body: CollaboratorView {
                        user: UserView::from(&user),
                        added_at: None,
                    },
                })
            })
        },
    );
    super::write_written(&state, key, work).await
}

/// `DELETE /api/v1/tickets/{number}/collaborators`.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct RemoveCollaboratorRequest {
    /// The customer's id…
    pub user_id: Option<i64>,
    /// …or one of their addresses.
    pub email: Option<String>,
}

/// Removes a collaborator.
#[utoipa::path(delete, path = "/api/v1/tickets/{number}/collaborators", tag = "collaborators",
    params(("number" = String, Path, description = "Ticket number")),
    request_body = RemoveCollaboratorRequest,
    responses(
        (status = 204, description = "Removed"),
        (status = 404, description = "Not a collaborator", body = super::problem::ProblemDocument, content_type = "application/problem+json"),
    ),
    security(("bearer" = [])))]
pub async fn delete_collaborator(
    State(state): State<AppState>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    headers: HeaderMap,
    Path(raw): Path<String>,
    body: Body,
) -> Result<StatusCode, Problem> {
    let caller = authenticate(&state, peer, &headers, Scope::TicketsUpdate).await?;
    let body = read_body(body, &state).await?;
    let number = number(&raw)?;
    let request: RemoveCollaboratorRequest = parse_json(&body)?;
    let user_id = match (request.user_id, request.email.as_deref()) {
        (Some(id), None) => UserId(id),
        (None, Some(raw)) => {
            let mut problems = Vec::new();
            let email = finish(Vec::new(), input::email("email", raw, &mut problems))
                .map_err(|_| Problem::invalid(problems))?;
            let user = state.store.reader().await?.user_by_email(&email).await?;
            user.map(|u| u.id).ok_or_else(|| {
                Problem::not_found(format!("collaborator {email} on ticket {number}"))
            })?
        }
        _ => return Err(Problem::field("user_id", "give either user_id or email")),
    };
    state
        .store
        .write(remove_collaborator(number, user_id, caller.actor()))
        .await?;
    Ok(StatusCode::NO_CONTENT)
}
