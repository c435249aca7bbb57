//! Reading the request body — after the caller is authenticated, so nobody without a key can
//! make the server buffer a large body — up to the configured limit; too large is a `413`.

use super::problem::Problem;
use crate::AppState;
use axum::body::{Body, Bytes, to_bytes};
use axum::http::StatusCode;

/// Reads the whole body, at most `max_body_bytes`.
pub async fn read_body(body: Body, state: &AppState) -> Result<Bytes, Problem> {
    let limit = state.api.max_body_bytes;
    to_bytes(body, limit).await.map_err(|error| {
        if crate::compat::is_length_limit(&error) {
            Problem::new(
                StatusCode::PAYLOAD_TOO_LARGE,
                "too-large",
                format!("the request body is larger than the limit of {limit} bytes"),
            )
        } else {
            Problem::field("body", format!("could not be read: {error}"))
        }
    })
}
