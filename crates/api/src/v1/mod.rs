//! The versioned JSON API under `/api/v1`: tickets, the client reply API, staff replies, notes,
//! updates, collaborators, catalogues, customers and webhooks. Authenticated by API key
//! (`Authorization: Bearer KEY` or `X-API-Key: KEY`) with a scope per route; errors are RFC 9457
//! problem details; every POST and PATCH honours `Idempotency-Key`. The OpenAPI 3.1 document is
//! generated from these handlers and served at `/api/v1/openapi.json`.

pub(crate) mod auth;
mod body;
pub(crate) use body::read_body;
mod catalog;
pub(crate) mod inbound;
pub(crate) mod input;
mod paging;
mod posts;
pub mod problem;
pub(crate) mod tickets;
pub(crate) mod views;
pub mod webhooks;

use crate::AppState;
use auth::Caller;
use axum::Json;
use axum::Router;
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use helpline_core::service::Work;
use helpline_core::service::idempotency::{
    IdempotencyKey, Idempotent, StoredResponse, run_idempotent,
};
use helpline_core::store::{TxFuture, Writer};
use helpline_core::ticket::TicketNumber;
use problem::Problem;
use serde::Serialize;
use std::sync::Arc;
use utoipa::openapi::security::{Http, HttpAuthScheme, SecurityScheme};
use utoipa::{Modify, OpenApi};
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

#[derive(OpenApi)]
#[openapi(
    info(
        title = "Helpline API",
        description = "The versioned JSON API of Helpline, a self-hosted help desk. \
            Authenticate with `Authorization: Bearer KEY` (or `X-API-Key: KEY`). Errors are \
            RFC 9457 problem details. Every POST and PATCH honours an `Idempotency-Key` header.",
        license(name = "AGPL-3.0-or-later")
    ),
    modifiers(&BearerAuth),
    components(schemas(problem::ProblemDocument, problem::FieldProblem)),
    tags(
        (name = "tickets", description = "Tickets and their threads"),
        (name = "posting", description = "Customer messages (client replies), staff replies, internal notes"),
        (name = "collaborators", description = "Customers taking part in a ticket"),
        (name = "catalogues", description = "Departments, topics, statuses, priorities, staff"),
        (name = "users", description = "Customers"),
        (name = "mail", description = "Raw mail into the intake pipeline"),
        (name = "webhooks", description = "Webhook endpoints and their deliveries"),
    )
)]
struct ApiDoc;

struct BearerAuth;

impl Modify for BearerAuth {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        let components = openapi.components.get_or_insert_with(Default::default);
        components.add_security_scheme(
            "bearer",
            SecurityScheme::Http(Http::new(HttpAuthScheme::Bearer)),
        );
    }
}

/// Every operation can fail the same ways (bad input, no key, wrong scope, rate limit, outage):
/// document those answers once, for every operation that does not describe them itself.
fn add_common_problems(openapi: &mut utoipa::openapi::OpenApi) {
    use utoipa::openapi::{ContentBuilder, Ref, ResponseBuilder};
    let common = [
        ("400", "Invalid input; `errors` names each bad field"),
        ("401", "No valid API key for this address"),
        ("403", "The key lacks the scope this operation needs"),
        ("404", "Not found"),
        (
            "413",
            "The request body is larger than the configured limit",
        ),
        ("405", "The path does not support this method"),
        ("422", "Idempotency-Key reused for a different request"),
        ("429", "Rate limit exceeded; see Retry-After"),
        ("500", "Internal error (logged)"),
        ("503", "Database unavailable; see Retry-After"),
    ];
    for item in openapi.paths.paths.values_mut() {
        let operations = [
            item.get.as_mut(),
            item.post.as_mut(),
            item.patch.as_mut(),
            item.delete.as_mut(),
            item.put.as_mut(),
        ];
        for operation in operations.into_iter().flatten() {
            for (code, description) in common {
                if !operation.responses.responses.contains_key(code) {
                    let response = ResponseBuilder::new()
                        .description(description)
                        .content(
                            "application/problem+json",
                            ContentBuilder::new()
                                .schema(Some(Ref::from_schema_name("Problem")))
                                .build(),
                        )
                        .build();
                    operation
                        .responses
                        .responses
                        .insert(code.to_owned(), response.into());
                }
            }
        }
    }
}

/// The v1 routes, and the OpenAPI document describing exactly them.
pub(crate) fn routes() -> (Router<AppState>, utoipa::openapi::OpenApi) {
    let (router, openapi) = OpenApiRouter::with_openapi(ApiDoc::openapi())
        .routes(routes!(tickets::create_ticket, tickets::list_tickets))
        .routes(routes!(tickets::get_ticket, tickets::patch_ticket))
        .routes(routes!(tickets::list_entries))
        .routes(routes!(tickets::download_attachment))
        .routes(routes!(
            tickets::list_collaborators,
            tickets::post_collaborator,
            tickets::delete_collaborator
        ))
        .routes(routes!(posts::post_message))
        .routes(routes!(posts::post_reply))
        .routes(routes!(posts::post_note))
        .routes(routes!(catalog::departments))
        .routes(routes!(catalog::topics))
        .routes(routes!(catalog::statuses))
        .routes(routes!(catalog::priorities))
        .routes(routes!(catalog::staff))
        .routes(routes!(catalog::list_users, catalog::post_user))
        .routes(routes!(catalog::get_user))
        .routes(routes!(inbound::post_email))
        .routes(routes!(inbound::list_inbound))
        .routes(routes!(inbound::get_inbound))
        .routes(routes!(inbound::retry_inbound))
        .routes(routes!(webhooks::create_webhook, webhooks::list_webhooks))
        .routes(routes!(webhooks::get_webhook, webhooks::delete_webhook))
        .routes(routes!(webhooks::list_deliveries))
        .routes(routes!(webhooks::redeliver))
        .split_for_parts();
    let mut openapi = openapi;
    add_common_problems(&mut openapi);
    let document = Arc::new(openapi.clone());
    let router = router
        .route(
            "/api/v1/openapi.json",
            get(move || {
                let document = Arc::clone(&document);
                async move { Json((*document).clone()) }
            }),
        )
        .route("/api/v1", axum::routing::any(no_route))
        .route("/api/v1/{*rest}", axum::routing::any(no_route))
        .method_not_allowed_fallback(wrong_method);
    (router, openapi)
}

/// A known path asked with a method it does not have.
async fn wrong_method() -> Problem {
    Problem::new(
        StatusCode::METHOD_NOT_ALLOWED,
        "method-not-allowed",
        "this endpoint does not support this method; see /api/v1/openapi.json",
    )
}

/// Unknown paths under `/api/v1`.
async fn no_route() -> Problem {
    Problem::new(
        StatusCode::NOT_FOUND,
        "no-route",
        "no such endpoint; see /api/v1/openapi.json",
    )
}

/// A ticket number from a URL path.
pub(crate) fn number(raw: &str) -> Result<TicketNumber, Problem> {
    TicketNumber::parse(raw).map_err(|_| Problem::not_found(format!("ticket {raw}")))
}

/// The `Idempotency-Key` of a request, tied to the caller's key and this exact request.
pub(crate) fn idempotency_key(
    headers: &HeaderMap,
    caller: &Caller,
    method: &str,
    path: &str,
    body: &[u8],
) -> Result<Option<IdempotencyKey>, Problem> {
    let Some(value) = headers.get("idempotency-key") else {
        return Ok(None);
    };
    let raw = value
        .to_str()
        .map_err(|_| Problem::field("Idempotency-Key", "must be printable ASCII"))?;
    Ok(Some(IdempotencyKey::new(
        caller.key.id,
        raw,
        method,
        path,
        body,
    )?))
}

/// Runs `work`, then `next` on its result, in the same transaction.
pub(crate) fn then<T, U, F>(work: Work<T>, next: F) -> Work<U>
where
    T: Send + 'static,
    U: Send + 'static,
    F: for<'t> FnOnce(&'t mut dyn Writer, T) -> TxFuture<'t, U> + Send + 'static,
{
    Box::new(move |tx| {
        Box::pin(async move {
            let value = work(&mut *tx).await?;
            next(tx, value).await
        })
    })
}

/// A written resource and the status to answer with.
pub(crate) struct Written<V> {
    pub(crate) status: StatusCode,
    pub(crate) body: V,
}

/// Runs a write (idempotently when a key is given) and answers `status` with its JSON.
pub(crate) async fn write_json<V: Serialize + Send + 'static>(
    state: &AppState,
    key: Option<IdempotencyKey>,
    status: StatusCode,
    work: Work<V>,
) -> Result<Response, Problem> {
    let work = then(work, move |_, body| {
        Box::pin(async move { Ok(Written { status, body }) })
    });
    write_written(state, key, work).await
}

/// Like [`write_json`], with the status chosen by the work.
pub(crate) async fn write_written<V: Serialize + Send + 'static>(
    state: &AppState,
    key: Option<IdempotencyKey>,
    work: Work<Written<V>>,
) -> Result<Response, Problem> {
    // Serialised inside the transaction, so the stored answer and the one sent are the same
    // bytes, and a failure to serialise rolls the write back instead of storing an empty answer.
    let work = then(work, |_, written| {
        Box::pin(async move {
            let body = serde_json::to_string(&written.body).map_err(|e| {
                helpline_core::Error::Store(helpline_core::StoreError::Corrupt(format!(
                    "answer could not be serialised: {e}"
                )))
            })?;
            Ok(StoredResponse {
                status: written.status.as_u16(),
                body,
            })
        })
    });
    let stored = match run_idempotent(&*state.store, key, StoredResponse::clone, work).await? {
        Idempotent::Fresh(stored) | Idempotent::Replayed(stored) => stored,
    };
    let status = StatusCode::from_u16(stored.status).unwrap_or(StatusCode::OK);
    let mut response = (status, stored.body).into_response();
    response.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/json"),
    );
    Ok(response)
}
