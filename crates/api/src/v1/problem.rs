//! Errors of the v1 API as RFC 9457 problem details, mapped from the core's errors in one place.

use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use helpline_core::{Error, FieldError, StoreError};
use serde::Serialize;
use utoipa::ToSchema;

/// One field's problem.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct FieldProblem {
    /// The field, as named in the request (`email`, `attachments[0].data`, `Idempotency-Key`).
    pub field: String,
    /// What is wrong with it.
    pub message: String,
}

/// An RFC 9457 problem document (`application/problem+json`).
#[derive(Debug, Clone, Serialize, ToSchema)]
#[schema(as = Problem)]
pub struct ProblemDocument {
    /// A URI naming the kind of problem.
    #[serde(rename = "type")]
    pub kind: String,
    /// Short summary of the kind.
    pub title: String,
    /// The HTTP status.
    pub status: u16,
    /// What went wrong this time.
    pub detail: String,
    /// Each bad field, when the request had some.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub errors: Vec<FieldProblem>,
    /// Extra headers (not serialised), e.g. `Retry-After`.
    #[serde(skip)]
    #[schema(ignore)]
    pub headers: Vec<(header::HeaderName, HeaderValue)>,
}

/// An error answer of the v1 API: a boxed [`ProblemDocument`] (errors travel through many
/// `Result`s; a pointer keeps them small).
#[derive(Debug, Clone)]
pub struct Problem(Box<ProblemDocument>);

impl std::ops::Deref for Problem {
    type Target = ProblemDocument;

    fn deref(&self) -> &ProblemDocument {
        &self.0
    }
}

impl Problem {
    /// A problem of kind `slug` with `status` and `detail`.
    pub fn new(status: StatusCode, slug: &str, detail: impl Into<String>) -> Self {
        Self(Box::new(ProblemDocument {
            kind: format!("urn:helpline:problem:{slug}"),
            title: status.canonical_reason().unwrap_or("Error").to_owned(),
            status: status.as_u16(),
            detail: detail.into(),
            errors: Vec::new(),
            headers: Vec::new(),
        }))
    }

    /// 400 with one problem per field.
    pub fn invalid(fields: Vec<FieldError>) -> Self {
        let detail = match fields.as_slice() {
            [one] => format!("{}: {}", one.field, one.message),
            many => format!("{} fields are invalid", many.len()),
        };
        let mut problem = Self::new(StatusCode::BAD_REQUEST, "validation", detail);
        problem.0.errors = fields
            .into_iter()
            .map(|f| FieldProblem {
                field: f.field,
                message: f.message,
            })
            .collect();
        problem
    }

    /// 400 about one field.
    pub fn field(field: impl Into<String>, message: impl Into<String>) -> Self {
        Self::invalid(vec![FieldError::new(field, message)])
    }

    /// 404.
    pub fn not_found(what: impl std::fmt::Display) -> Self {
        Self::new(
            StatusCode::NOT_FOUND,
            "not-found",
            format!("{what} not found"),
        )
    }

    /// Adds a header.
    pub fn with_header(mut self, name: header::HeaderName, value: HeaderValue) -> Self {
        self.0.headers.push((name, value));
        self
    }

    fn status_code(&self) -> StatusCode {
        StatusCode::from_u16(self.status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR)
    }
}

impl From<Error> for Problem {
    fn from(error: Error) -> Self {
        match error {
            Error::Validation(fields) => Self::invalid(fields),
            Error::NotFound { what } => Self::not_found(what),
            Error::Forbidden(detail) => Self::new(StatusCode::FORBIDDEN, "forbidden", detail),
            Error::Conflict(detail) => Self::new(StatusCode::CONFLICT, "conflict", detail),
            Error::KeyReuse(detail) => Self::new(
                StatusCode::UNPROCESSABLE_ENTITY,
                "idempotency-key-reused",
                detail,
            ),
            Error::Store(store) => store.into(),
        }
    }
}

impl From<StoreError> for Problem {
    fn from(error: StoreError) -> Self {
        // The cause goes to the log, never to the client.
        tracing::error!(%error, source = ?std::error::Error::source(&error), "store failure");
        match error {
            StoreError::Unavailable(_) => Self::new(
                StatusCode::SERVICE_UNAVAILABLE,
                "unavailable",
                "the database is unavailable; try again shortly",
            )
            .with_header(header::RETRY_AFTER, HeaderValue::from_static("5")),
            _ => Self::new(
                StatusCode::INTERNAL_SERVER_ERROR,
                "internal",
                "an internal error occurred; it has been logged",
            ),
        }
    }
}

impl IntoResponse for Problem {
    fn into_response(self) -> Response {
        let status = self.status_code();
        let body = serde_json::to_vec(&*self.0).unwrap_or_default();
        let mut response = (status, body).into_response();
        let headers = response.headers_mut();
        headers.insert(
            header::CONTENT_TYPE,
            HeaderValue::from_static("application/problem+json"),
        );
        for (name, value) in self.0.headers {
            headers.insert(name, value);
        }
        response
    }
}
