//! Conversions between PostgreSQL values and domain types.
//!
//! Times need none: `timestamptz` maps straight to [`time::OffsetDateTime`] (sqlx's `time`
//! feature), at the microsecond precision [`helpline_core::now`] already truncates to.

use helpline_core::StoreError;
use std::net::IpAddr;

/// SQLSTATE classes and codes that mean the server cannot serve us right now, rather than that
/// the statement was wrong: connection exceptions (class 08), too many connections, and the
/// server shutting down or still starting (57P01–57P03).
fn unavailable_code(code: &str) -> bool {
    code.starts_with("08") || matches!(code, "53300" | "57P01" | "57P02" | "57P03")
}

/// Maps a driver error to the store's error kinds.
pub(crate) fn db(error: sqlx::Error) -> StoreError {
    match error {
        sqlx::Error::Database(db_error)
            if matches!(
                db_error.kind(),
                sqlx::error::ErrorKind::UniqueViolation
                    | sqlx::error::ErrorKind::ForeignKeyViolation
            ) =>
        {
            // PostgreSQL names the violated constraint or index; the message is the fallback.
            let constraint = db_error
                .constraint()
                .map_or_else(|| db_error.message().to_owned(), ToOwned::to_owned);
            StoreError::Constraint {
                constraint,
                source: db_error.into(),
            }
        }
        sqlx::Error::Database(db_error)
            if db_error.code().is_some_and(|code| unavailable_code(&code)) =>
        {
            StoreError::Unavailable(Box::new(sqlx::Error::Database(db_error)))
        }
        sqlx::Error::PoolTimedOut | sqlx::Error::PoolClosed | sqlx::Error::Io(_) => {
            StoreError::Unavailable(Box::new(error))
        }
        other => StoreError::Other(Box::new(other)),
    }
}

/// A stored address back.
pub(crate) fn ip(text: Option<String>) -> Result<Option<IpAddr>, StoreError> {
    text.map(|t| {
        t.parse()
            .map_err(|_| StoreError::Corrupt(format!("bad IP address '{t}'")))
    })
    .transpose()
}

/// A stored name back into one of the domain's enums.
pub(crate) fn parsed<T>(
    what: &str,
    text: &str,
    parse: impl FnOnce(&str) -> Option<T>,
) -> Result<T, StoreError> {
    parse(text).ok_or_else(|| StoreError::Corrupt(format!("unknown {what} '{text}'")))
}
