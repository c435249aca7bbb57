//! Conversions between SQLite values and domain types.

use helpline_core::StoreError;
use std::net::IpAddr;
use time::OffsetDateTime;

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
            StoreError::Constraint {
                constraint: db_error.message().to_owned(),
                source: db_error.into(),
            }
        }
        sqlx::Error::PoolTimedOut | sqlx::Error::PoolClosed | sqlx::Error::Io(_) => {
            StoreError::Unavailable(Box::new(error))
        }
        other => StoreError::Other(Box::new(other)),
    }
}

/// A time as stored: microseconds since the epoch.
pub(crate) fn micros(at: OffsetDateTime) -> i64 {
    i64::try_from(at.unix_timestamp_nanos() / 1_000).unwrap_or(i64::MAX)
}

/// A stored time back.
pub(crate) fn time(micros: i64) -> Result<OffsetDateTime, StoreError> {
    OffsetDateTime::from_unix_timestamp_nanos(i128::from(micros) * 1_000)
        .map_err(|e| StoreError::Corrupt(format!("timestamp {micros}: {e}")))
}

/// An optional stored time back.
pub(crate) fn opt_time(micros: Option<i64>) -> Result<Option<OffsetDateTime>, StoreError> {
    micros.map(time).transpose()
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
