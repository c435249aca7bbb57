//! Helpline's HTTP API.
//!
//! * [`compat`]: osTicket's API, route for route, so its client scripts work unchanged.
//! * `/healthz` and `/readyz` for process supervisors and load balancers.
//!
//! Handlers parse raw input into checked core types and call the core services; they hold no
//! business rules of their own.

pub mod client_ip;
pub mod compat;
mod health;
mod legacy_reply;
pub mod ratelimit;
pub mod v1;

use axum::Router;
use helpline_core::apikey::IpRule;
use helpline_core::service::DeskSettings;
use helpline_core::service::auth::KeyCache;
use helpline_core::store::Store;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;
use tokio::net::TcpListener;
use tower_http::trace::TraceLayer;

/// How validation errors on the osTicket-compatible routes are answered.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, serde::Deserialize, serde::Serialize)]
pub enum CompatErrorStyle {
    /// osTicket ≤ 1.16: `400 Bad Request`, so mail-piping clients bounce bad mail instead of
    /// retrying it forever (the default).
    #[default]
    #[serde(rename = "1.16")]
    V116,
    /// osTicket ≥ 1.17: `500 Internal Server Error` with `Unable to create new ticket :…`.
    #[serde(rename = "1.17")]
    V117,
}

/// Settings of the HTTP layer.
#[derive(Debug, Clone)]
pub struct ApiSettings {
    /// Peers whose `X-Forwarded-For` header is believed.
    pub trusted_proxies: Vec<IpRule>,
    /// Largest request body accepted, in bytes.
    pub max_body_bytes: usize,
    /// Largest single attachment accepted, in bytes (after decoding).
    pub max_attachment_bytes: usize,
    /// Validation error form on the compatible routes.
    pub compat_errors: CompatErrorStyle,
    /// Requests per minute and API key on `/api/v1` (0: unlimited).
    pub rate_limit_per_minute: u32,
    /// How long a key read from the database is trusted without reading it again: a revoked
    /// key keeps working here for at most this long (zero: every request reads its key).
    pub key_cache_ttl: Duration,
}

impl Default for ApiSettings {
    fn default() -> Self {
        Self {
            trusted_proxies: Vec::new(),
            max_body_bytes: 32 * 1024 * 1024,
            max_attachment_bytes: 16 * 1024 * 1024,
            compat_errors: CompatErrorStyle::V116,
            rate_limit_per_minute: 6000,
            key_cache_ttl: Duration::from_secs(2),
        }
    }
}

/// Everything a handler needs; cheap to clone.
#[derive(Clone)]
pub struct AppState {
    /// The database.
    pub store: Arc<dyn Store>,
    /// Desk-wide rules.
    pub desk: Arc<DeskSettings>,
    /// HTTP settings.
    pub api: Arc<ApiSettings>,
    /// Per-key request budget of `/api/v1`.
    pub rate_limiter: Arc<ratelimit::RateLimiter>,
    /// API keys read recently, shared by both APIs.
    pub keys: Arc<KeyCache>,
    /// Mail intake settings (the secret that signs our Message-IDs, our own addresses, which
    /// servers TLS mailboxes trust — also for the cron route's fetch round).
    pub intake: Arc<helpline_mail::pipeline::IntakeSettings>,
}

impl AppState {
    /// State for a store and settings.
    pub fn new(
        store: Arc<dyn Store>,
        desk: DeskSettings,
        api: ApiSettings,
        intake: helpline_mail::pipeline::IntakeSettings,
    ) -> Self {
        Self {
            store,
            desk: Arc::new(desk),
            rate_limiter: Arc::new(ratelimit::RateLimiter::new(api.rate_limit_per_minute)),
            keys: Arc::new(KeyCache::new(api.key_cache_ttl)),
            api: Arc::new(api),
            intake: Arc::new(intake),
        }
    }
}

/// The whole application as one router.
pub fn router(state: AppState) -> Router {
    let (v1, _) = v1::routes();
    Router::new()
        .merge(health::routes())
        .merge(v1)
        .merge(legacy_reply::routes())
        .merge(compat::routes())
        .layer(TraceLayer::new_for_http())
        .with_state(state)
}

/// Opens a listening socket with a deep accept queue: a burst of new connections (hundreds of
/// integrations retrying at once) then waits in the kernel instead of overflowing it.
pub fn bind(address: SocketAddr) -> std::io::Result<TcpListener> {
    let socket = if address.is_ipv4() {
        tokio::net::TcpSocket::new_v4()?
    } else {
        tokio::net::TcpSocket::new_v6()?
    };
    socket.set_reuseaddr(true)?;
    socket.bind(address)?;
    socket.listen(4096)
}

pub use v1::inbound::InboundRecordView;

/// RFC 3339 text of a time, as the API writes times.
pub fn rfc3339(at: time::OffsetDateTime) -> String {
    v1::views::rfc3339(at)
}

/// The OpenAPI document of `/api/v1`.
pub fn openapi() -> utoipa::openapi::OpenApi {
    v1::routes().1
}

/// Serves the API on `listener` until `shutdown` resolves; requests in flight then finish.
pub async fn serve(
    listener: TcpListener,
    state: AppState,
    shutdown: impl std::future::Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    axum::serve(
        listener,
        router(state).into_make_service_with_connect_info::<SocketAddr>(),
    )
    .with_graceful_shutdown(shutdown)
    .await
}
