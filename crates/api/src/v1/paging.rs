//! Id-keyed paging shared by the list endpoints: a checked page size, and an opaque cursor that
//! is the last id of the previous page behind a one-letter kind prefix.

use super::problem::Problem;

/// The page size asked for (default 25), checked to be 1 to 100.
pub fn limit(requested: Option<u32>) -> Result<u32, Problem> {
    let limit = requested.unwrap_or(25);
    if (1..=100).contains(&limit) {
        Ok(limit)
    } else {
        Err(Problem::field("limit", "must be between 1 and 100"))
    }
}

/// The id a cursor of kind `prefix` carries.
pub fn after(cursor: Option<&str>, prefix: char) -> Result<Option<i64>, Problem> {
    cursor
        .map(|raw| {
            raw.strip_prefix(prefix)
                .and_then(|n| n.parse().ok())
                .ok_or_else(|| Problem::field("cursor", "is not a cursor this API gave out"))
        })
        .transpose()
}

/// Cuts `rows` (fetched with `limit + 1`) to the page and makes the next cursor from the last
/// row's id when more rows exist.
pub fn page<T>(
    mut rows: Vec<T>,
    limit: u32,
    prefix: char,
    id: impl Fn(&T) -> i64,
) -> (Vec<T>, Option<String>) {
    if rows.len() > limit as usize {
        rows.truncate(limit as usize);
        let next = rows.last().map(|row| format!("{prefix}{}", id(row)));
        (rows, next)
    } else {
        (rows, None)
    }
}
