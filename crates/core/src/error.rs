//! The error types of the domain and of the stores.

use std::fmt;

/// One problem with one input field, named so a client can point at it.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct FieldError {
    /// The field as the client named it (`email`, `attachments[0]`, …).
    pub field: String,
    /// What is wrong with it, in words a user can act on.
    pub message: String,
}

impl FieldError {
    /// A problem with `field`.
    pub fn new(field: impl Into<String>, message: impl Into<String>) -> Self {
        Self {
            field: field.into(),
            message: message.into(),
        }
    }
}

impl fmt::Display for FieldError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.field, self.message)
    }
}

/// Every way a service call can fail. The HTTP layer maps each variant to a status in one place.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The input was understood but is not acceptable; each field says why.
    #[error("validation failed: {}", join_fields(.0))]
    Validation(Vec<FieldError>),
    /// Something the request names does not exist.
    #[error("{what} not found")]
    NotFound {
        /// What was looked for, e.g. `ticket 123456`.
        what: String,
    },
    /// The caller is known but may not do this.
    #[error("forbidden: {0}")]
    Forbidden(String),
    /// The request conflicts with the current state (e.g. a ticket that cannot be reopened).
    #[error("conflict: {0}")]
    Conflict(String),
    /// An idempotency key was reused for a different request.
    #[error("{0}")]
    KeyReuse(String),
    /// The database failed.
    #[error(transparent)]
    Store(#[from] StoreError),
}

impl Error {
    /// A validation error about one field.
    pub fn invalid(field: impl Into<String>, message: impl Into<String>) -> Self {
        Self::Validation(vec![FieldError::new(field, message)])
    }

    /// A not-found error.
    pub fn not_found(what: impl Into<String>) -> Self {
        Self::NotFound { what: what.into() }
    }
}

fn join_fields(fields: &[FieldError]) -> String {
    fields
        .iter()
        .map(ToString::to_string)
        .collect::<Vec<_>>()
        .join("; ")
}

/// A failure inside a store. The source error is kept for the log; callers only branch on the kind.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// The database cannot be reached (connection refused, pool timed out, file unopenable).
    #[error("database unavailable: {0}")]
    Unavailable(#[source] BoxError),
    /// A uniqueness or foreign-key rule of the schema refused the write.
    #[error("constraint {constraint} violated")]
    Constraint {
        /// The constraint's name, or the column list SQLite reports.
        constraint: String,
        /// The driver's error.
        #[source]
        source: BoxError,
    },
    /// A stored value could not be read back into a domain type (a bug or a hand-edited row).
    #[error("corrupt row: {0}")]
    Corrupt(String),
    /// Migrations could not be applied.
    #[error("migration failed: {0}")]
    Migration(#[source] BoxError),
    /// Any other database error.
    #[error("database error: {0}")]
    Other(#[source] BoxError),
}

/// The boxed error the store variants carry.
pub type BoxError = Box<dyn std::error::Error + Send + Sync + 'static>;
