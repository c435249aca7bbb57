//! Bad input on the compatible routes: each gets its status and a message naming the problem,
//! and nothing is half-written.

use crate::on_both_stores;
use crate::support::{Backend, TestApp, nothing_written};
use helpline_api::CompatErrorStyle;

on_both_stores!(
    unknown_routes_and_methods_are_url_not_supported,
    malformed_bodies_are_400,
    missing_and_invalid_fields_are_listed,
    unknown_topic_and_priority_are_refused,
    bad_attachments_are_refused_whole,
    oversized_body_is_413,
    osticket_117_error_style,
);

async fn unknown_routes_and_methods_are_url_not_supported(backend: Backend) {
    let Some(app) = TestApp::spawn(backend).await else {
        return;
    };
    let key = app.key.clone();
    for (method, path) in [
        ("GET", "/api/tickets.json"),
        ("PUT", "/api/tickets.xml"),
        ("POST", "/api/tickets.yaml"),
        ("POST", "/api/tickets"),
        ("GET", "/api/tasks/cron"),
        ("POST", "/api/http.php/nothing"),
        ("GET", "/api"),
    ] {
        let response = app
            .request(method, path, &[("X-API-Key", &key)], b"{}")
            .await;
        assert_eq!(
            response.status_line, "HTTP/1.1 400 Bad Request",
            "{method} {path}"
        );
        assert_eq!(response.text(), "URL not supported", "{method} {path}");
    }
    app.finish().await;
}

async fn malformed_bodies_are_400(backend: Backend) {
    let Some(app) = TestApp::spawn(backend).await else {
        return;
    };
    for (path, body, expected) in [
        (
            "/api/tickets.json",
            &b"{\"email\": "[..],
            "Syntax error, malformed JSON",
        ),
        ("/api/tickets.json", b"", "Syntax error, malformed JSON"),
        ("/api/tickets.json", b"[1,2]", "must be a JSON object"),
        (
            "/api/tickets.json",
            b"name=a&email=b",
            "Syntax error, malformed JSON",
        ),
        (
            "/api/tickets.xml",
            b"<ticket><email>a</ticket>",
            "XML error",
        ),
        ("/api/tickets.xml", b"", "XML error"),
        (
            "/api/tickets.xml",
            b"<!DOCTYPE t [<!ENTITY x \"xx\">]><ticket>&x;</ticket>",
            "XML error",
        ),
    ] {
        let response = app.post(path, body).await;
        assert_eq!(response.status, 400, "{body:?}");
        assert!(
            response.text().contains(expected),
            "{path} {:?}: {}",
            String::from_utf8_lossy(body),
            response.text()
        );
    }
    assert!(nothing_written(&*app.store).await);
    app.finish().await;
}

async fn missing_and_invalid_fields_are_listed(backend: Backend) {
    let Some(app) = TestApp::spawn(backend).await else {
        return;
    };
    let response = app.post("/api/tickets.json", b"{}").await;
    assert_eq!(response.status, 400);
    assert_eq!(
        response.text(),
        "Unable to create new ticket: validation errors:\n\
         email: Email address is required\n\
         subject: Subject is required\n\
         message: Message is required"
    );
    for (body, field, words) in [
        (
            r#"{"email":"not-an-address","subject":"s","message":"m"}"#,
            "email:",
            "Valid email address required",
        ),
        (
            r#"{"email":"a@localhost","subject":"s","message":"m"}"#,
            "email:",
            "bad domain",
        ),
        (
            r#"{"email":"a@example.com","subject":"   ","message":"m"}"#,
            "subject:",
            "required",
        ),
        (
            r#"{"email":"a@example.com","subject":"s","message":"  "}"#,
            "message:",
            "required",
        ),
        (
            r#"{"email":"a@example.com","subject":"s","message":"data:text/html,<script>x</script>"}"#,
            "message:",
            "required",
        ),
        (
            r#"{"email":"a@example.com","subject":"s","message":"m","ip":"300.1.1.1"}"#,
            "ip:",
            "not an IP address",
        ),
        (
            r#"{"email":"a@example.com","subject":"s","message":"m","source":"Fax"}"#,
            "source:",
            "Invalid ticket origin",
        ),
        (
            r#"{"email":"a@example.com","subject":"s","message":"m","topicId":"abc"}"#,
            "topicId:",
            "not a valid id",
        ),
        (
            r#"{"email":["a@example.com"],"subject":"s","message":"m"}"#,
            "email:",
            "must be a string",
        ),
        (
            r#"{"email":"a@example.com","subject":"s","message":"data:text/plain;base64,###"}"#,
            "message:",
            "base64",
        ),
    ] {
        let response = app.post("/api/tickets.json", body.as_bytes()).await;
        assert_eq!(response.status, 400, "{body}: {}", response.text());
        let text = response.text();
        assert!(
            text.contains(field) && text.contains(words),
            "{body}: {text}"
        );
    }
    let long_subject = "x".repeat(256);
    let body = serde_json::json!({"email":"a@example.com","subject":long_subject,"message":"m"});
    let response = app
        .post("/api/tickets.json", body.to_string().as_bytes())
        .await;
    assert_eq!(response.status, 400);
    assert!(
        response
            .text()
            .contains("subject: Subject is longer than 255"),
        "{}",
        response.text()
    );
    assert!(nothing_written(&*app.store).await);
    app.finish().await;
}

async fn unknown_topic_and_priority_are_refused(backend: Backend) {
    let Some(app) = TestApp::spawn(backend).await else {
        return;
    };
    let response = app
        .post(
            "/api/tickets.json",
            br#"{"email":"t@example.com","subject":"s","message":"m","topicId":99,"priority":42}"#,
        )
        .await;
    assert_eq!(response.status, 400);
    assert_eq!(
        response.text(),
        "Unable to create new ticket: validation errors:\n\
         topicId: no help topic has id 99\n\
         priority: no priority has id 42"
    );
    assert!(
        nothing_written(&*app.store).await,
        "no customer was created either"
    );

    // With a known topic and no subject, osTicket takes the topic's name.
    let response = app
        .post(
            "/api/tickets.json",
            br#"{"email":"t@example.com","message":"m","topicId":1}"#,
        )
        .await;
    assert_eq!(response.status, 201, "{}", response.text());
    app.finish().await;
}

async fn bad_attachments_are_refused_whole(backend: Backend) {
    let Some(app) = TestApp::spawn_with(backend, |api, _| api.max_attachment_bytes = 16).await
    else {
        return;
    };
    for (attachments, expected) in [
        (
            r#"[{"a.bin":"data:application/octet-stream;base64,%%%%"}]"#,
            "a.bin: Poorly encoded base64 data",
        ),
        (
            r#"[{"big.txt":"data:text/plain,12345678901234567"}]"#,
            "big.txt: File size is too large",
        ),
        (r#"[{"../":"data:text/plain,x"}]"#, "has no file name"),
        (
            r#"[{"ok.txt":"data:text/plain,fine"}, {"x.gif":"data:image/gif;base64,R0lGOD=lh"}]"#,
            "attachments[1]",
        ),
        (r#"[{"t.txt":"data:text;plain,x"}]"#, "is not a MIME type"),
        (r#"{"a.txt":"data:,x"}"#, "attachments: must be a list"),
        (
            r#"[{"a.txt":42}]"#,
            "the content must be a data: URL string",
        ),
    ] {
        let body = format!(
            r#"{{"email":"files@example.com","subject":"s","message":"m","attachments":{attachments}}}"#
        );
        let response = app.post("/api/tickets.json", body.as_bytes()).await;
        assert_eq!(response.status, 400, "{attachments}: {}", response.text());
        assert!(
            response.text().contains(expected),
            "{attachments}: {}",
            response.text()
        );
    }
    let response = app
        .post(
            "/api/tickets.xml",
            br#"<ticket><email>x@example.com</email><subject>s</subject><message>m</message><attachments><file name="a.gif" type="image/gif" encoding="base64">!!notbase64!!</file></attachments></ticket>"#,
        )
        .await;
    assert_eq!(response.status, 400);
    assert!(
        response
            .text()
            .contains("a.gif: Poorly encoded base64 data"),
        "{}",
        response.text()
    );
    assert!(nothing_written(&*app.store).await);
    app.finish().await;
}

async fn oversized_body_is_413(backend: Backend) {
    let Some(app) = TestApp::spawn_with(backend, |api, _| api.max_body_bytes = 1024).await else {
        return;
    };
    let message = "x".repeat(2000);
    let body = serde_json::json!({"email":"big@example.com","subject":"s","message":message});
    let response = app
        .post("/api/tickets.json", body.to_string().as_bytes())
        .await;
    assert_eq!(response.status_line, "HTTP/1.1 413 Payload Too Large");
    assert!(
        response
            .text()
            .contains("larger than the limit of 1024 bytes"),
        "{}",
        response.text()
    );
    assert!(nothing_written(&*app.store).await);
    app.finish().await;
}

async fn osticket_117_error_style(backend: Backend) {
    let Some(app) =
        TestApp::spawn_with(backend, |api, _| api.compat_errors = CompatErrorStyle::V117).await
    else {
        return;
    };
    let response = app
        .post(
            "/api/tickets.json",
            br#"{"email":"bad","subject":"s","message":"m"}"#,
        )
        .await;
    assert_eq!(response.status_line, "HTTP/1.1 500 Internal Server Error");
    assert!(
        response
            .text()
            .starts_with("Unable to create new ticket :email\nValid email address required"),
        "{}",
        response.text()
    );
    app.finish().await;
}
