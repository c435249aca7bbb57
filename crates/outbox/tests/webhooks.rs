//! Webhook delivery against real receivers on loopback: a small hyper server that records what
//! it gets (over TCP or TLS), and raw TCP listeners for the receivers that misbehave.

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use helpline_outbox::webhook::{
    DeliveryError, DeliveryResponse, WebhookClient, WebhookRequest, WebhookSecret, is_success,
    verify,
};
use http_body_util::{BodyExt, Full};
use hyper::body::{Bytes, Incoming};
use hyper::{HeaderMap, Request, Response};
use hyper_util::rt::TokioIo;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio_rustls::TlsAcceptor;
use tokio_rustls::rustls::pki_types::pem::PemObject;
use tokio_rustls::rustls::pki_types::{CertificateDer, PrivateKeyDer};
use tokio_rustls::rustls::{self, ClientConfig, RootCertStore, ServerConfig};

/// A throwaway CA and a server certificate it signed for `127.0.0.1` and `localhost` (copies of
/// helpline-mail's test data; valid until 2126).
const TEST_CA: &[u8] = include_bytes!("data/test-ca.pem");
const TEST_SERVER_CHAIN: &[u8] = include_bytes!("data/test-server.pem");
const TEST_SERVER_KEY: &[u8] = include_bytes!("data/test-server.key");

const TIMEOUT: Duration = Duration::from_secs(10);
const BODY: &[u8] =
    br#"{"type":"ticket.created","data":{"number":"482913","subject":"Drucker brennt \u00fc"}}"#;

fn provider() -> Arc<rustls::crypto::CryptoProvider> {
    Arc::new(rustls::crypto::ring::default_provider())
}

fn client_trusting(roots: RootCertStore) -> Arc<ClientConfig> {
    let config = ClientConfig::builder_with_provider(provider())
        .with_safe_default_protocol_versions()
        .expect("TLS versions")
        .with_root_certificates(roots)
        .with_no_client_auth();
    Arc::new(config)
}

/// A client configuration trusting only the test CA.
fn test_ca_tls() -> Arc<ClientConfig> {
    let mut roots = RootCertStore::empty();
    for certificate in CertificateDer::pem_slice_iter(TEST_CA) {
        roots.add(certificate.expect("CA PEM")).expect("CA");
    }
    client_trusting(roots)
}

/// A client configuration trusting nothing (any https URL fails its certificate check).
fn no_roots_tls() -> Arc<ClientConfig> {
    client_trusting(RootCertStore::empty())
}

fn client(timeout: Duration) -> WebhookClient {
    WebhookClient::new(timeout, test_ca_tls())
}

fn test_server_acceptor() -> TlsAcceptor {
    let chain = CertificateDer::pem_slice_iter(TEST_SERVER_CHAIN)
        .collect::<Result<Vec<_>, _>>()
        .expect("server certificate");
    let key = PrivateKeyDer::from_pem_slice(TEST_SERVER_KEY).expect("server key");
    let config = ServerConfig::builder_with_provider(provider())
        .with_safe_default_protocol_versions()
        .expect("TLS versions")
        .with_no_client_auth()
        .with_single_cert(chain, key)
        .expect("server config");
    TlsAcceptor::from(Arc::new(config))
}

fn now() -> i64 {
    time::OffsetDateTime::now_utc().unix_timestamp()
}

/// One request as a receiver saw it.
#[derive(Debug, Clone)]
struct Received {
    method: String,
    path_and_query: String,
    headers: HeaderMap,
    body: Vec<u8>,
}

impl Received {
    fn header(&self, name: &str) -> &str {
        self.headers
            .get(name)
            .unwrap_or_else(|| panic!("no {name} header in {:?}", self.headers))
            .to_str()
            .expect("ASCII header")
    }

    /// Verifies the request as a receiver would, from the headers it got.
    fn verify(&self, secret: &WebhookSecret) -> Result<(), helpline_outbox::webhook::VerifyError> {
        verify(
            secret,
            self.header("webhook-id"),
            self.header("webhook-timestamp"),
            self.header("webhook-signature"),
            &self.body,
            now(),
            300,
        )
    }
}

/// A hyper HTTP/1 receiver on `127.0.0.1:0` that records every request and answers each with
/// `status`, `extra_headers` and `answer_body`.
struct Receiver {
    /// `http://127.0.0.1:<port>` or `https://…`.
    base: String,
    port: u16,
    received: Arc<Mutex<Vec<Received>>>,
}

impl Receiver {
    async fn start(
        status: u16,
        extra_headers: &[(&'static str, String)],
        answer_body: &'static str,
        tls: Option<TlsAcceptor>,
    ) -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
        let port = listener.local_addr().expect("address").port();
        let scheme = if tls.is_some() { "https" } else { "http" };
        let received = Arc::new(Mutex::new(Vec::new()));
        let log = Arc::clone(&received);
        let extra_headers = extra_headers.to_vec();
        tokio::spawn(async move {
            while let Ok((tcp, _)) = listener.accept().await {
                let log = Arc::clone(&log);
                let extra_headers = extra_headers.clone();
                let tls = tls.clone();
                tokio::spawn(async move {
                    let service = hyper::service::service_fn(move |request: Request<Incoming>| {
                        let log = Arc::clone(&log);
                        let extra_headers = extra_headers.clone();
                        async move {
                            let (parts, incoming) = request.into_parts();
                            let body = incoming.collect().await?.to_bytes().to_vec();
                            log.lock().expect("log").push(Received {
                                method: parts.method.to_string(),
                                path_and_query: parts
                                    .uri
                                    .path_and_query()
                                    .map(|path| path.to_string())
                                    .unwrap_or_default(),
                                headers: parts.headers,
                                body,
                            });
                            let mut answer = Response::builder().status(status);
                            for (name, value) in extra_headers {
                                answer = answer.header(name, value);
                            }
                            Ok::<_, hyper::Error>(
                                answer
                                    .body(Full::new(Bytes::from_static(answer_body.as_bytes())))
                                    .expect("response"),
                            )
                        }
                    });
                    let http = hyper::server::conn::http1::Builder::new();
                    match tls {
                        None => {
                            let _ = http.serve_connection(TokioIo::new(tcp), service).await;
                        }
                        Some(acceptor) => {
                            if let Ok(stream) = acceptor.accept(tcp).await {
                                let _ = http.serve_connection(TokioIo::new(stream), service).await;
                            }
                        }
                    }
                });
            }
        });
        Self {
            base: format!("{scheme}://127.0.0.1:{port}"),
            port,
            received,
        }
    }

    async fn answering(status: u16, body: &'static str) -> Self {
        Self::start(status, &[], body, None).await
    }

    fn received(&self) -> Vec<Received> {
        self.received.lock().expect("log").clone()
    }

    fn only_request(&self) -> Received {
        let received = self.received();
        assert_eq!(received.len(), 1, "{received:?}");
        received.into_iter().next().expect("one request")
    }
}

async fn deliver(
    client: &WebhookClient,
    url: &str,
    secret: &WebhookSecret,
) -> Result<DeliveryResponse, DeliveryError> {
    client
        .deliver(&WebhookRequest {
            url,
            msg_id: "msg_2KWPBgLlAfxdpx2AI54pPJ85f4W",
            timestamp: now(),
            body: BODY,
            secret,
        })
        .await
}

/// A raw TCP listener on loopback handing each accepted connection to `handle`.
async fn raw_receiver<F, Fut>(handle: F) -> u16
where
    F: Fn(TcpStream) -> Fut + Send + 'static,
    Fut: Future<Output = ()> + Send + 'static,
{
    let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let port = listener.local_addr().expect("address").port();
    tokio::spawn(async move {
        while let Ok((tcp, _)) = listener.accept().await {
            tokio::spawn(handle(tcp));
        }
    });
    port
}

/// Reads until the end of a request head (the requests here are small: head and body arrive
/// together).
async fn read_request_head(tcp: &mut TcpStream) {
    let mut seen = Vec::new();
    let mut buffer = [0_u8; 4096];
    while !seen.windows(4).any(|window| window == b"\r\n\r\n") {
        match tcp.read(&mut buffer).await {
            Ok(0) | Err(_) => return,
            Ok(read) => seen.extend_from_slice(&buffer[..read]),
        }
    }
}

#[tokio::test]
async fn a_delivery_is_a_signed_json_post_the_receiver_can_verify() {
    let receiver = Receiver::answering(200, "thanks").await;
    let secret = WebhookSecret::generate();
    let url = format!("{}/hooks/helpline?tenant=4", receiver.base);
    let before = now();

    let response = deliver(&client(TIMEOUT), &url, &secret)
        .await
        .expect("delivered");

    assert_eq!(response.status, 200);
    assert!(is_success(response.status));
    assert_eq!(response.body_excerpt, "thanks");
    assert!(response.duration_ms < TIMEOUT.as_millis() as u64);
    let request = receiver.only_request();
    assert_eq!(request.method, "POST");
    assert_eq!(request.path_and_query, "/hooks/helpline?tenant=4");
    assert_eq!(request.body, BODY);
    assert_eq!(request.header("content-type"), "application/json");
    assert_eq!(
        request.header("user-agent"),
        format!("Helpline-Webhooks/{}", env!("CARGO_PKG_VERSION"))
    );
    assert_eq!(
        request.header("host"),
        format!("127.0.0.1:{}", receiver.port)
    );
    assert_eq!(request.header("content-length"), BODY.len().to_string());
    assert_eq!(
        request.header("webhook-id"),
        "msg_2KWPBgLlAfxdpx2AI54pPJ85f4W"
    );
    let timestamp: i64 = request
        .header("webhook-timestamp")
        .parse()
        .expect("integer");
    assert!((before..=now()).contains(&timestamp), "{timestamp}");
    assert!(request.header("webhook-signature").starts_with("v1,"));
    assert_eq!(request.verify(&secret), Ok(()));

    // Another endpoint's secret does not verify it.
    assert!(request.verify(&WebhookSecret::generate()).is_err());
}

/// Computes the signature with Python's standard library (hmac, hashlib, base64): an
/// implementation that shares nothing with ours. `None` when python3 is not installed.
fn python_signature(secret: &str, msg_id: &str, timestamp: &str, body: &[u8]) -> Option<String> {
    use std::io::Write;
    const SCRIPT: &str = r#"
import base64, hashlib, hmac, sys
secret, msg_id, timestamp = sys.argv[1:4]
assert secret.startswith("whsec_")
key = base64.b64decode(secret[len("whsec_"):])
signed = msg_id.encode() + b"." + timestamp.encode() + b"." + sys.stdin.buffer.read()
print("v1," + base64.b64encode(hmac.new(key, signed, hashlib.sha256).digest()).decode())
"#;
    let spawned = std::process::Command::new("python3")
        .args(["-c", SCRIPT, secret, msg_id, timestamp])
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .spawn();
    let mut child = match spawned {
        Ok(child) => child,
        Err(error) if error.kind() == std::io::ErrorKind::NotFound => {
            assert!(
                std::env::var("CI").as_deref() != Ok("true"),
                "python3 is missing, and under CI=true that is a failure"
            );
            eprintln!("python3 is missing: the independent signature check is skipped");
            return None;
        }
        Err(error) => panic!("cannot run python3: {error}"),
    };
    child
        .stdin
        .take()
        .expect("stdin")
        .write_all(body)
        .expect("body to python3");
    let output = child.wait_with_output().expect("python3");
    assert!(output.status.success(), "python3 failed: {output:?}");
    Some(
        String::from_utf8(output.stdout)
            .expect("UTF-8")
            .trim()
            .to_owned(),
    )
}

#[tokio::test]
async fn an_independent_implementation_computes_the_same_signature() {
    // The published Standard Webhooks vector first, so the script itself is known to be right.
    if let Some(vector) = python_signature(
        "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw",
        "msg_p5jXN8AQM9LWM0D4loKWxJek",
        "1614265330",
        br#"{"test": 2432232314}"#,
    ) {
        assert_eq!(vector, "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE=");
    }

    let receiver = Receiver::answering(204, "").await;
    let secret = WebhookSecret::generate();
    let response = deliver(&client(TIMEOUT), &receiver.base, &secret)
        .await
        .expect("delivered");
    assert_eq!(response.status, 204);
    assert_eq!(response.body_excerpt, "");
    let request = receiver.only_request();
    assert_eq!(request.path_and_query, "/");

    if let Some(independent) = python_signature(
        &secret.to_text(),
        request.header("webhook-id"),
        request.header("webhook-timestamp"),
        &request.body,
    ) {
        assert_eq!(request.header("webhook-signature"), independent);
    }
}

#[tokio::test]
async fn an_error_status_is_an_answer_not_an_error() {
    let receiver = Receiver::answering(500, "database on fire").await;
    let secret = WebhookSecret::generate();
    let response = deliver(&client(TIMEOUT), &receiver.base, &secret)
        .await
        .expect("an answer");
    assert_eq!(response.status, 500);
    assert!(!is_success(response.status));
    assert_eq!(response.body_excerpt, "database on fire");
    assert_eq!(receiver.only_request().verify(&secret), Ok(()));
}

#[tokio::test]
async fn redirects_are_reported_not_followed() {
    let elsewhere = Receiver::answering(200, "moved here").await;
    let location = format!("{}/new", elsewhere.base);
    let receiver = Receiver::start(307, &[("location", location)], "", None).await;
    let response = deliver(&client(TIMEOUT), &receiver.base, &WebhookSecret::generate())
        .await
        .expect("an answer");
    assert_eq!(response.status, 307);
    assert!(!is_success(response.status));
    assert_eq!(receiver.received().len(), 1);
    assert!(elsewhere.received().is_empty());
}

#[tokio::test]
async fn a_closed_port_is_a_connect_error() {
    let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let port = listener.local_addr().expect("address").port();
    drop(listener);
    let url = format!("http://127.0.0.1:{port}/hook");
    let error = deliver(&client(TIMEOUT), &url, &WebhookSecret::generate())
        .await
        .expect_err("nobody listens");
    match &error {
        DeliveryError::Connect(message) => {
            assert!(message.contains(&format!("127.0.0.1:{port}")), "{message}")
        }
        other => panic!("expected Connect, got {other:?}"),
    }
}

#[tokio::test]
async fn a_receiver_that_never_answers_times_out() {
    // Reads the request, then keeps the connection open without a word.
    let silent = raw_receiver(|mut tcp| async move {
        read_request_head(&mut tcp).await;
        tokio::time::sleep(Duration::from_secs(30)).await;
        drop(tcp);
    })
    .await;
    // Sends the head of an answer, then never the body it announced: the timeout covers the
    // whole exchange, not only the wait for the status line.
    let stalling = raw_receiver(|mut tcp| async move {
        read_request_head(&mut tcp).await;
        let _ = tcp
            .write_all(b"HTTP/1.1 200 OK\r\nContent-Length: 100\r\n\r\nonly a part")
            .await;
        tokio::time::sleep(Duration::from_secs(30)).await;
    })
    .await;
    // Accepts TCP but never speaks TLS.
    let mute_tls = raw_receiver(|tcp| async move {
        tokio::time::sleep(Duration::from_secs(30)).await;
        drop(tcp);
    })
    .await;

    let timeout = Duration::from_millis(300);
    let client = client(timeout);
    for url in [
        format!("http://127.0.0.1:{silent}/"),
        format!("http://127.0.0.1:{stalling}/"),
        format!("https://127.0.0.1:{mute_tls}/"),
    ] {
        let started = Instant::now();
        let result = deliver(&client, &url, &WebhookSecret::generate()).await;
        let elapsed = started.elapsed();
        assert_eq!(result, Err(DeliveryError::Timeout), "{url}");
        assert!(elapsed >= timeout, "{url}: {elapsed:?}");
        assert!(elapsed < Duration::from_secs(5), "{url}: {elapsed:?}");
    }
}

#[tokio::test]
async fn only_http_and_https_urls_are_accepted() {
    let receiver = Receiver::answering(200, "").await;
    let client = client(TIMEOUT);
    let secret = WebhookSecret::generate();
    for url in [
        format!("ftp://127.0.0.1:{}/hook", receiver.port),
        "127.0.0.1/hook".to_owned(),
        "not a url".to_owned(),
        format!("http://user:password@127.0.0.1:{}/hook", receiver.port),
    ] {
        let result = deliver(&client, &url, &secret).await;
        assert!(
            matches!(result, Err(DeliveryError::InvalidUrl(_))),
            "{url}: {result:?}"
        );
    }
    assert!(receiver.received().is_empty());
}

#[tokio::test]
async fn a_response_body_larger_than_the_cap_is_truncated_not_read_whole() {
    // An endless chunked body: a client reading it whole would never finish. The receiver
    // reports how much it managed to write before the client hung up.
    let (written_tx, mut written_rx) = tokio::sync::mpsc::unbounded_channel();
    let port = raw_receiver(move |mut tcp| {
        let written_tx = written_tx.clone();
        async move {
            read_request_head(&mut tcp).await;
            let head = b"HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nTransfer-Encoding: chunked\r\n\r\n";
            if tcp.write_all(head).await.is_err() {
                return;
            }
            let mut chunk = format!("{:x}\r\n", 8192).into_bytes();
            chunk.extend(std::iter::repeat_n(b'a', 8192));
            chunk.extend_from_slice(b"\r\n");
            let mut written = 0_usize;
            while tcp.write_all(&chunk).await.is_ok() {
                written += 8192;
                if written > 1 << 30 {
                    break; // read whole after all: the assertion below says so
                }
            }
            let _ = written_tx.send(written);
        }
    })
    .await;

    let url = format!("http://127.0.0.1:{port}/");
    let started = Instant::now();
    let response = deliver(&client(TIMEOUT), &url, &WebhookSecret::generate())
        .await
        .expect("an answer");
    assert!(started.elapsed() < Duration::from_secs(5));
    assert_eq!(response.status, 200);
    assert_eq!(response.body_excerpt, "a".repeat(1024));
    let written = tokio::time::timeout(Duration::from_secs(10), written_rx.recv())
        .await
        .expect("the receiver noticed the hang-up")
        .expect("a count");
    // What the client did not read sits in the kernel's socket buffers (a few MB on loopback at
    // most); far below the gigabyte the receiver would have written to a client reading it all.
    assert!(written < 64 << 20, "{written} bytes written");
}

#[tokio::test]
async fn a_receiver_that_hangs_up_or_speaks_no_http_is_a_protocol_error() {
    let hangs_up = raw_receiver(|mut tcp| async move {
        read_request_head(&mut tcp).await;
        drop(tcp);
    })
    .await;
    let gibberish = raw_receiver(|mut tcp| async move {
        read_request_head(&mut tcp).await;
        let _ = tcp.write_all(b"HELLO THERE\r\n\r\n").await;
        let _ = tcp.shutdown().await;
    })
    .await;
    let client = client(TIMEOUT);
    for port in [hangs_up, gibberish] {
        let url = format!("http://127.0.0.1:{port}/");
        let result = deliver(&client, &url, &WebhookSecret::generate()).await;
        assert!(
            matches!(result, Err(DeliveryError::Protocol(_))),
            "{port}: {result:?}"
        );
    }
}

#[tokio::test]
async fn https_to_a_trusted_server_is_delivered_by_ip_address_and_name() {
    let receiver = Receiver::start(202, &[], "queued", Some(test_server_acceptor())).await;
    assert!(receiver.base.starts_with("https://"));
    let secret = WebhookSecret::generate();
    let client = client(TIMEOUT);
    for url in [
        format!("https://127.0.0.1:{}/hook", receiver.port),
        format!("https://localhost:{}/hook", receiver.port),
    ] {
        let response = deliver(&client, &url, &secret).await;
        let response = response.unwrap_or_else(|error| panic!("{url}: {error}"));
        assert_eq!(response.status, 202);
        assert_eq!(response.body_excerpt, "queued");
    }
    let received = receiver.received();
    assert_eq!(received.len(), 2);
    for request in received {
        assert_eq!(request.body, BODY);
        assert_eq!(request.verify(&secret), Ok(()));
    }
}

#[tokio::test]
async fn https_to_an_untrusted_or_plain_server_is_a_tls_error() {
    let tls_receiver = Receiver::start(200, &[], "", Some(test_server_acceptor())).await;
    let plain_receiver = Receiver::answering(200, "").await;
    let secret = WebhookSecret::generate();

    let untrusting = WebhookClient::new(TIMEOUT, no_roots_tls());
    let url = format!("https://127.0.0.1:{}/", tls_receiver.port);
    match deliver(&untrusting, &url, &secret).await {
        Err(DeliveryError::Tls(message)) => assert!(message.contains("not trusted"), "{message}"),
        other => panic!("expected Tls, got {other:?}"),
    }

    let url = format!("https://127.0.0.1:{}/", plain_receiver.port);
    let result = deliver(&client(TIMEOUT), &url, &secret).await;
    assert!(matches!(result, Err(DeliveryError::Tls(_))), "{result:?}");

    assert!(tls_receiver.received().is_empty());
    assert!(plain_receiver.received().is_empty());
}

#[tokio::test]
async fn the_client_is_cheap_to_clone_and_delivers_concurrently() {
    let receiver = Receiver::answering(200, "ok").await;
    let secret = WebhookSecret::generate();
    let client = client(TIMEOUT);
    let deliveries = (0..8).map(|_| {
        let client = client.clone();
        let url = receiver.base.clone();
        let secret = secret.clone();
        tokio::spawn(async move { deliver(&client, &url, &secret).await })
    });
    for delivery in deliveries.collect::<Vec<_>>() {
        let response = delivery.await.expect("task").expect("delivered");
        assert_eq!(response.status, 200);
    }
    let received = receiver.received();
    assert_eq!(received.len(), 8);
    assert!(
        received
            .iter()
            .all(|request| request.verify(&secret).is_ok())
    );
}
