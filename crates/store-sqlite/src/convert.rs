//! Conversions between SQLite values and domain types.

use helpline_core::StoreError;
use std::net::IpAddr;
use time::OffsetDateTime;

/// Maps a driver error to the store's error kinds.
pub(crate) fn db(error: rusqlite::Error) -> StoreError {
    use rusqlite::ffi;
    match &error {
        rusqlite::Error::SqliteFailure(failure, message)
            if matches!(
                failure.extended_code,
                ffi::SQLITE_CONSTRAINT_UNIQUE
                    | ffi::SQLITE_CONSTRAINT_PRIMARYKEY
                    | ffi::SQLITE_CONSTRAINT_FOREIGNKEY
            ) =>
        {
            StoreError::Constraint {
                constraint: message.clone().unwrap_or_else(|| failure.to_string()),
                source: Box::new(error),
            }
        }
        rusqlite::Error::SqliteFailure(failure, _)
            if matches!(
                failure.code,
                rusqlite::ErrorCode::DatabaseBusy
                    | rusqlite::ErrorCode::DatabaseLocked
                    | rusqlite::ErrorCode::CannotOpen
                    | rusqlite::ErrorCode::SystemIoFailure
            ) =>
        {
            StoreError::Unavailable(Box::new(error))
        }
        _ => StoreError::Other(Box::new(error)),
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
