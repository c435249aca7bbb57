//! Liveness and readiness probes.

use crate::AppState;
use axum::Router;
use axum::extract::State;
use axum::http::StatusCode;
use axum::routing::get;

pub(crate) fn routes() -> Router<AppState> {
    Router::new()
        .route("/healthz", get(healthz))
        .route("/readyz", get(readyz))
}

/// The process is up and serving.
async fn healthz() -> &'static str {
    "ok\n"
}

/// The database answers; 503 otherwise, so a load balancer takes the node out.
async fn readyz(State(state): State<AppState>) -> (StatusCode, String) {
    match state.store.ping().await {
        Ok(()) => (
            StatusCode::OK,
            format!("ready ({})\n", state.store.backend()),
        ),
        Err(error) => {
            tracing::warn!(%error, "readiness check failed");
            (
                StatusCode::SERVICE_UNAVAILABLE,
                "database unavailable\n".to_owned(),
            )
        }
    }
}
