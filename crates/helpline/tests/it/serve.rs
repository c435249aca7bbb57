//! `helpline serve` as a process: start-up, health, a real ticket, graceful shutdown.

use crate::cli::helpline;
use crate::support::raw_request;
use std::net::{SocketAddr, TcpListener};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("free port")
}

async fn wait_until_up(address: SocketAddr, child: &mut Child) {
    let deadline = Instant::now() + Duration::from_secs(20);
    while Instant::now() < deadline {
        if tokio::net::TcpStream::connect(address).await.is_ok() {
            return;
        }
        if let Ok(Some(status)) = child.try_wait() {
            panic!("server exited early: {status}");
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    panic!("server did not start listening on {address}");
}

/// The server turns transparent huge pages off for itself (they nearly doubled its memory with
/// mimalloc). Linux shows the switch in `/proc/PID/status` (since 5.0; older kernels and other
/// systems have nothing to check).
fn assert_small_pages_only(child: &Child) {
    let Ok(status) = std::fs::read_to_string(format!("/proc/{}/status", child.id())) else {
        return;
    };
    if let Some(line) = status.lines().find(|line| line.starts_with("THP_enabled:")) {
        assert_eq!(line.split_whitespace().nth(1), Some("0"), "{line}");
    }
}

fn terminate(child: &Child) {
    let status = Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status()
        .expect("kill");
    assert!(status.success());
}

#[tokio::test]
async fn serves_until_sigterm_and_finishes_requests_in_flight() {
    let dir = tempfile::tempdir().expect("dir");
    let created = helpline(
        &[
            "key",
            "create",
            "--ip",
            "127.0.0.1",
            "--scope",
            "tickets:create",
            "--json",
        ],
        &[],
        dir.path(),
    );
    assert!(
        created.status.success(),
        "{}",
        String::from_utf8_lossy(&created.stderr)
    );
    let key: serde_json::Value = serde_json::from_slice(&created.stdout).expect("json");
    let key = key["key"].as_str().expect("key").to_owned();
    assert!(
        dir.path().join("helpline.db").exists(),
        "the default database is created in the working directory"
    );

    let port = free_port();
    let address: SocketAddr = format!("127.0.0.1:{port}").parse().expect("address");
    let mut child = Command::new(env!("CARGO_BIN_EXE_helpline"))
        .arg("serve")
        .current_dir(dir.path())
        .env("HELPLINE_LISTEN", address.to_string())
        .env("HELPLINE_LOG", "warn")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("start server");
    wait_until_up(address, &mut child).await;
    assert_small_pages_only(&child);

    let health = raw_request(address, "GET", "/healthz", &[], b"").await;
    assert_eq!(health.status, 200);
    let ready = raw_request(address, "GET", "/readyz", &[], b"").await;
    assert_eq!(ready.text().trim(), "ready (sqlite)");
    let created = raw_request(
        address,
        "POST",
        "/api/tickets.json",
        &[("X-API-Key", &key)],
        br#"{"email":"p@example.com","subject":"s","message":"m"}"#,
    )
    .await;
    assert_eq!(created.status, 201, "{}", created.text());

    // A request whose body is still arriving when SIGTERM comes must still be answered.
    let body = br#"{"email":"late@example.com","subject":"late","message":"still arriving"}"#;
    let mut stream = tokio::net::TcpStream::connect(address)
        .await
        .expect("connect");
    let head = format!(
        "POST /api/tickets.json HTTP/1.1\r\nHost: x\r\nX-API-Key: {key}\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
        body.len()
    );
    stream.write_all(head.as_bytes()).await.expect("head");
    stream.write_all(&body[..10]).await.expect("part");
    tokio::time::sleep(Duration::from_millis(300)).await;
    terminate(&child);
    tokio::time::sleep(Duration::from_millis(300)).await;
    stream.write_all(&body[10..]).await.expect("rest");
    let mut answer = String::new();
    stream.read_to_string(&mut answer).await.expect("answer");
    assert!(answer.starts_with("HTTP/1.1 201 Created"), "{answer}");

    let deadline = Instant::now() + Duration::from_secs(10);
    let status = loop {
        if let Some(status) = child.try_wait().expect("wait") {
            break status;
        }
        assert!(
            Instant::now() < deadline,
            "server did not stop after SIGTERM"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    assert!(status.success(), "clean exit after SIGTERM, got {status}");
    // New connections are refused once it has stopped.
    assert!(tokio::net::TcpStream::connect(address).await.is_err());
}
