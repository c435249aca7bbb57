//! The request body, read up to the configured limit; too large is a `413` problem.

use super::problem::Problem;
use crate::AppState;
use axum::body::{Bytes, to_bytes};
use axum::extract::{FromRequest, Request};
use axum::http::StatusCode;

/// The whole request body, at most `max_body_bytes` long.
pub struct RawBody(pub Bytes);

impl FromRequest<AppState> for RawBody {
    type Rejection = Problem;

    async fn from_request(request: Request, state: &AppState) -> Result<Self, Self::Rejection> {
        let limit = state.api.max_body_bytes;
        to_bytes(request.into_body(), limit)
            .await
            .map(RawBody)
            .map_err(|error| {
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
}
