//! The HTTP client that delivers webhooks: one `POST` per connection, HTTP/1.1 over TCP or TLS.
//!
//! Built on hyper's low-level connection API rather than a full client: a delivery never reuses a
//! connection (receivers are many and each is called rarely), never follows a redirect and never
//! goes through a proxy, so a pool and its policies would only be more to reason about.

use std::error::Error as _;
use std::fmt;
use std::sync::Arc;
use std::time::{Duration, Instant};

use http_body_util::{BodyExt, Full};
use hyper::body::{Bytes, Incoming};
use hyper::header::{self, HeaderValue};
use hyper::http::uri::{Authority, Scheme};
use hyper::{Method, Request, Response, Uri};
use hyper_util::rt::TokioIo;
use tokio::io::{AsyncRead, AsyncWrite};
use tokio::net::TcpStream;
use tokio_rustls::TlsConnector;
use tokio_rustls::rustls::pki_types::ServerName;
use tokio_rustls::rustls::{self, ClientConfig};

use super::sign::{WebhookSecret, sign};

/// `User-Agent` of every delivery, so receivers and their firewalls can tell what calls them.
const USER_AGENT: &str = concat!("Helpline-Webhooks/", env!("CARGO_PKG_VERSION"));
/// How much of a response body is read at most; the rest is left unread (and the connection
/// closed), so a receiver answering with an endless body costs nothing.
const MAX_BODY_READ: usize = 64 * 1024;
/// How much of the response body is kept for the delivery log.
const EXCERPT_BYTES: usize = 1024;

/// One delivery attempt.
#[derive(Debug, Clone, Copy)]
pub struct WebhookRequest<'a> {
    /// The endpoint, an `http://` or `https://` URL.
    pub url: &'a str,
    /// The message's ID (`webhook-id`): the same on every attempt, so receivers can drop
    /// duplicates. Must be a valid header value without `.`.
    pub msg_id: &'a str,
    /// This attempt's time, Unix seconds (`webhook-timestamp`).
    pub timestamp: i64,
    /// The JSON body, sent and signed exactly as given.
    pub body: &'a [u8],
    /// The endpoint's signing secret.
    pub secret: &'a WebhookSecret,
}

/// The receiver's answer, whatever its status.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DeliveryResponse {
    /// The HTTP status code; see [`is_success`].
    pub status: u16,
    /// The first KiB of the response body, as lossy UTF-8 (a character cut at the end is
    /// dropped), for the delivery log.
    pub body_excerpt: String,
    /// From the start of the connection to the end of reading the response.
    pub duration_ms: u64,
}

/// Why a delivery got no HTTP answer at all.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DeliveryError {
    /// The URL cannot be delivered to: not a URL, not `http`/`https`, no host, or credentials
    /// in it. Retrying does not help; the endpoint must be corrected.
    #[error("invalid webhook URL: {0}")]
    InvalidUrl(String),
    /// The host name did not resolve, or the TCP connection was refused or failed.
    #[error("cannot connect: {0}")]
    Connect(String),
    /// The whole exchange — connecting, TLS, sending, the answer and its body — did not finish
    /// within the client's timeout.
    #[error("no complete answer within the timeout")]
    Timeout,
    /// The TLS handshake failed (typically: the certificate is not trusted or not for this host).
    #[error("TLS handshake failed: {0}")]
    Tls(String),
    /// The connection broke or the receiver's answer was not valid HTTP/1.
    #[error("HTTP exchange failed: {0}")]
    Protocol(String),
}

/// Whether a status means "delivered": any 2xx, as Standard Webhooks says. Everything else,
/// redirects included, is a failed attempt.
pub fn is_success(status: u16) -> bool {
    (200..=299).contains(&status)
}

/// Delivers webhooks. Cheap to clone (the TLS configuration is shared).
#[derive(Clone)]
pub struct WebhookClient {
    timeout: Duration,
    tls: TlsConnector,
}

impl fmt::Debug for WebhookClient {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("WebhookClient")
            .field("timeout", &self.timeout)
            .finish_non_exhaustive()
    }
}

impl WebhookClient {
    /// A client whose every delivery, from connecting to the end of the answer, takes at most
    /// `timeout` (Standard Webhooks suggests 15 to 30 seconds), trusting the servers `tls` trusts.
    ///
    /// The configuration's ALPN list is replaced by `http/1.1` (only HTTP/1.1 is spoken here, so
    /// a server must not be offered HTTP/2); everything else is used as given.
    pub fn new(timeout: Duration, tls: Arc<ClientConfig>) -> Self {
        let mut config = ClientConfig::clone(&tls);
        config.alpn_protocols = vec![b"http/1.1".to_vec()];
        Self {
            timeout,
            tls: TlsConnector::from(Arc::new(config)),
        }
    }

    /// POSTs the body with `Content-Type: application/json`, `User-Agent:
    /// Helpline-Webhooks/<version>` and the headers `webhook-id`, `webhook-timestamp` and
    /// `webhook-signature`. Does not follow redirects. Returns the response for any status (the
    /// caller decides: 2xx = delivered, see [`is_success`]); an error means there was no
    /// complete answer.
    pub async fn deliver(
        &self,
        request: &WebhookRequest<'_>,
    ) -> Result<DeliveryResponse, DeliveryError> {
        let target = Target::parse(request.url)?;
        let http_request = build_request(&target, request)?;
        let started = Instant::now();
        let (status, body_excerpt) =
            match tokio::time::timeout(self.timeout, self.exchange(&target, http_request)).await {
                Ok(result) => result?,
                Err(_elapsed) => return Err(DeliveryError::Timeout),
            };
        Ok(DeliveryResponse {
            status,
            body_excerpt,
            duration_ms: u64::try_from(started.elapsed().as_millis()).unwrap_or(u64::MAX),
        })
    }

    /// Connects, sends, and reads the answer: the part the timeout bounds.
    async fn exchange(
        &self,
        target: &Target,
        request: Request<Full<Bytes>>,
    ) -> Result<(u16, String), DeliveryError> {
        let tcp = TcpStream::connect((target.host.as_str(), target.port))
            .await
            .map_err(|error| {
                DeliveryError::Connect(format!("{}:{}: {error}", target.host, target.port))
            })?;
        // The request goes out in one write and we wait for its answer: do not let Nagle delay it.
        tcp.set_nodelay(true).ok();
        if !target.tls {
            return send_over(tcp, request).await;
        }
        let name = ServerName::try_from(target.host.clone()).map_err(|error| {
            DeliveryError::InvalidUrl(format!(
                "{:?} cannot be checked against a certificate: {error}",
                target.host
            ))
        })?;
        let tls = self
            .tls
            .connect(name, tcp)
            .await
            .map_err(|error| DeliveryError::Tls(explain_tls(&target.host, &error)))?;
        send_over(tls, request).await
    }
}

/// Where a URL points.
struct Target {
    /// `https`?
    tls: bool,
    /// The host without IPv6 brackets, for connecting and for the certificate check.
    host: String,
    port: u16,
    /// `host[:port]` as in the URL, for the `Host` header.
    authority: Authority,
    /// The path and query (origin form), `/` when the URL has none.
    path_and_query: String,
}

impl Target {
    fn parse(url: &str) -> Result<Self, DeliveryError> {
        let invalid = |why: &str| DeliveryError::InvalidUrl(format!("{url:?}: {why}"));
        let uri: Uri = url
            .trim()
            .parse()
            .map_err(|error| invalid(&format!("not a URL ({error})")))?;
        let tls = match uri.scheme() {
            Some(scheme) if *scheme == Scheme::HTTPS => true,
            Some(scheme) if *scheme == Scheme::HTTP => false,
            Some(scheme) => {
                return Err(invalid(&format!(
                    "the scheme is {scheme}, only http and https are supported"
                )));
            }
            None => return Err(invalid("not an absolute http:// or https:// URL")),
        };
        let authority = uri
            .authority()
            .cloned()
            .ok_or_else(|| invalid("the URL has no host"))?;
        // A password in the URL would end up in logs and in the delivery log; and we would have
        // to decide how to send it. Refuse it plainly instead of silently dropping it.
        if authority.as_str().contains('@') {
            return Err(invalid("credentials in the URL are not supported"));
        }
        let host = authority
            .host()
            .trim_start_matches('[')
            .trim_end_matches(']')
            .to_owned();
        if host.is_empty() {
            return Err(invalid("the URL has no host"));
        }
        // Not `port_u16()`: it says "no port" for one out of range, and we would silently call
        // port 80 instead.
        let explicit_port = authority
            .as_str()
            .strip_prefix(authority.host())
            .and_then(|rest| rest.strip_prefix(':'))
            .filter(|port| !port.is_empty());
        let port = match explicit_port {
            None => {
                if tls {
                    443
                } else {
                    80
                }
            }
            Some(port) => port
                .parse()
                .map_err(|_| invalid(&format!("{port:?} is not a port number")))?,
        };
        let path_and_query = uri
            .path_and_query()
            .map_or("/", |path| path.as_str())
            .to_owned();
        let path_and_query = if path_and_query.is_empty() {
            "/".to_owned()
        } else {
            path_and_query
        };
        Ok(Self {
            tls,
            host,
            port,
            authority,
            path_and_query,
        })
    }
}

/// The signed `POST`, in origin form with a `Host` header (hyper's connection API sends what it
/// is given).
fn build_request(
    target: &Target,
    request: &WebhookRequest<'_>,
) -> Result<Request<Full<Bytes>>, DeliveryError> {
    let msg_id = HeaderValue::from_str(request.msg_id).map_err(|_| {
        DeliveryError::Protocol(format!(
            "the webhook ID {:?} cannot be sent as a header",
            request.msg_id
        ))
    })?;
    let signature = sign(
        request.secret,
        request.msg_id,
        request.timestamp,
        request.body,
    );
    let built = Request::builder()
        .method(Method::POST)
        .uri(target.path_and_query.as_str())
        .header(header::HOST, target.authority.as_str())
        .header(header::CONTENT_TYPE, "application/json")
        .header(header::USER_AGENT, USER_AGENT)
        .header(header::ACCEPT, "*/*")
        // One request per connection: tell the receiver not to keep it open for us.
        .header(header::CONNECTION, "close")
        .header("webhook-id", msg_id)
        .header("webhook-timestamp", request.timestamp)
        .header("webhook-signature", signature)
        .body(Full::new(Bytes::copy_from_slice(request.body)));
    built.map_err(|error| DeliveryError::InvalidUrl(format!("{:?}: {error}", request.url)))
}

/// Sends `request` over an open connection and reads the answer.
async fn send_over<S>(
    stream: S,
    request: Request<Full<Bytes>>,
) -> Result<(u16, String), DeliveryError>
where
    S: AsyncRead + AsyncWrite + Unpin,
{
    let (mut sender, connection) = hyper::client::conn::http1::Builder::new()
        // hyper's read buffer, and with it the largest response head, stays at our body cap
        // rather than its default of about 400 KB.
        .max_buf_size(MAX_BODY_READ)
        .handshake::<_, Full<Bytes>>(TokioIo::new(stream))
        .await
        .map_err(|error| DeliveryError::Protocol(describe(&error)))?;
    let exchange = async move {
        let response = sender
            .send_request(request)
            .await
            .map_err(|error| DeliveryError::Protocol(describe(&error)))?;
        read_answer(response).await
    };
    tokio::pin!(exchange);
    // The connection future does the actual IO: poll it alongside the exchange (not in a spawned
    // task, so that nothing outlives the timeout). The exchange comes first: once it has the
    // answer, a connection error after it does not matter.
    tokio::select! {
        biased;
        answer = &mut exchange => answer,
        finished = connection => match finished {
            // Closed cleanly (e.g. `Connection: close` after the answer): the exchange still has
            // what was received.
            Ok(()) => exchange.await,
            Err(error) => Err(DeliveryError::Protocol(describe(&error))),
        },
    }
}

/// The status and the body excerpt, reading at most [`MAX_BODY_READ`] bytes of the body.
async fn read_answer(response: Response<Incoming>) -> Result<(u16, String), DeliveryError> {
    let status = response.status().as_u16();
    let mut body = response.into_body();
    // One byte more than the excerpt, to see whether a character continues past its end.
    let mut kept = Vec::with_capacity(EXCERPT_BYTES + 1);
    let mut read = 0_usize;
    while read < MAX_BODY_READ {
        let Some(frame) = body.frame().await else {
            break;
        };
        let frame = frame.map_err(|error| {
            DeliveryError::Protocol(format!("reading the response body: {}", describe(&error)))
        })?;
        if let Ok(data) = frame.into_data() {
            read += data.len();
            let room = (EXCERPT_BYTES + 1).saturating_sub(kept.len());
            kept.extend_from_slice(&data[..data.len().min(room)]);
        }
    }
    Ok((status, excerpt(&kept)))
}

/// The first [`EXCERPT_BYTES`] of `bytes` as lossy UTF-8, without a character cut in half at the
/// end (which would show as a replacement character though the receiver sent nothing wrong).
fn excerpt(bytes: &[u8]) -> String {
    if bytes.len() <= EXCERPT_BYTES {
        return String::from_utf8_lossy(bytes).into_owned();
    }
    let is_continuation = |byte: u8| byte & 0b1100_0000 == 0b1000_0000;
    let mut end = EXCERPT_BYTES;
    // A UTF-8 character is at most 4 bytes: step back at most 3 to the start of the cut one.
    while end > EXCERPT_BYTES - 3 && bytes.get(end).copied().is_some_and(is_continuation) {
        end -= 1;
    }
    String::from_utf8_lossy(&bytes[..end]).into_owned()
}

/// An error with its causes ("connection closed before message completed: Connection reset by
/// peer"): hyper's own message alone rarely says what happened.
fn describe(error: &hyper::Error) -> String {
    let mut text = error.to_string();
    let mut source = error.source();
    while let Some(cause) = source {
        text.push_str(": ");
        text.push_str(&cause.to_string());
        source = cause.source();
    }
    text
}

/// A handshake error, with a hint where the certificate was refused.
fn explain_tls(host: &str, error: &std::io::Error) -> String {
    let certificate = error
        .get_ref()
        .and_then(|inner| inner.downcast_ref::<rustls::Error>())
        .is_some_and(|inner| matches!(inner, rustls::Error::InvalidCertificate(_)));
    if certificate {
        format!("{host}: {error} (the server's certificate is not trusted for this host)")
    } else {
        format!("{host}: {error}")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_2xx_is_success() {
        for status in [200, 201, 202, 204, 299] {
            assert!(is_success(status), "{status}");
        }
        for status in [100, 199, 301, 302, 304, 400, 410, 429, 500, 503] {
            assert!(!is_success(status), "{status}");
        }
    }

    #[test]
    fn urls_name_scheme_host_port_and_path() {
        let target = Target::parse("https://hooks.example.com/in?tenant=4").expect("URL");
        assert!(target.tls);
        assert_eq!(target.host, "hooks.example.com");
        assert_eq!(target.port, 443);
        assert_eq!(target.authority.as_str(), "hooks.example.com");
        assert_eq!(target.path_and_query, "/in?tenant=4");

        let target = Target::parse("http://[::1]:8080").expect("URL");
        assert!(!target.tls);
        assert_eq!(target.host, "::1");
        assert_eq!(target.port, 8080);
        assert_eq!(target.authority.as_str(), "[::1]:8080");
        assert_eq!(target.path_and_query, "/");

        let target = Target::parse("HTTP://Example.com/").expect("URL");
        assert!(!target.tls);
        assert_eq!(target.port, 80);

        let target = Target::parse("https://[2001:db8::1]/hook").expect("URL");
        assert_eq!(target.host, "2001:db8::1");
        assert_eq!(target.port, 443);
        assert_eq!(target.authority.as_str(), "[2001:db8::1]");

        let target = Target::parse("https://example.com:/hook").expect("URL");
        assert_eq!(target.port, 443);

        // A fragment is never sent, by any HTTP client.
        let target = Target::parse("https://example.com/hook?a=1#part").expect("URL");
        assert_eq!(target.path_and_query, "/hook?a=1");
        let target = Target::parse("https://example.com#part").expect("URL");
        assert_eq!(target.path_and_query, "/");
    }

    #[test]
    fn urls_that_cannot_be_delivered_to_are_invalid() {
        for url in [
            "ftp://example.com/",
            "example.com/hook",
            "/hook",
            "",
            "http://",
            "https://user:password@example.com/",
            "http://exa mple.com/",
            "http://example.com:99999/",
            "http://example.com:-1/",
        ] {
            assert!(
                matches!(Target::parse(url), Err(DeliveryError::InvalidUrl(_))),
                "{url:?}"
            );
        }
    }

    #[test]
    fn the_excerpt_is_the_first_kib_without_a_cut_character() {
        assert_eq!(excerpt(b"ok"), "ok");
        assert_eq!(excerpt(b"bad \xff byte"), "bad \u{fffd} byte");
        let ascii = vec![b'a'; 2000];
        assert_eq!(excerpt(&ascii).len(), 1024);
        // "é" is 2 bytes: with one byte of padding, the 512th "é" straddles byte 1024.
        let mut text = "x".to_owned();
        text.push_str(&"é".repeat(600));
        let shown = excerpt(text.as_bytes());
        assert_eq!(shown.len(), 1023, "{shown}");
        assert!(!shown.contains('\u{fffd}'));
        // "€" is 3 bytes, "😀" 4: whatever the offset, nothing is cut in half.
        for padding in 0..4 {
            for character in ["€", "😀"] {
                let text = format!("{}{}", "x".repeat(padding), character.repeat(400));
                let shown = excerpt(&text.as_bytes()[..EXCERPT_BYTES + 1]);
                assert!(shown.len() <= 1024 && shown.len() > 1020, "{}", shown.len());
                assert!(!shown.contains('\u{fffd}'), "{padding} {character}");
            }
        }
    }
}
