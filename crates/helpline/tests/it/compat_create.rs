//! `POST /api/tickets.json|.xml`: every documented field, both formats, both URL forms.

use crate::on_both_stores;
use crate::support::{Backend, TestApp};
use helpline_core::body::BodyFormat;
use helpline_core::ids::{PriorityId, TopicId};
use helpline_core::thread::{Author, EntryKind};
use helpline_core::ticket::{Source, Ticket, TicketNumber};

on_both_stores!(
    minimal_json_ticket_answers_201_with_the_number,
    request_shaped_like_osticket_api_ticket_create_php,
    every_json_field_is_stored,
    xml_example_from_osticket_docs,
    http_php_path_and_any_content_type,
    sql_metacharacters_are_stored_verbatim,
    concurrent_creates_for_one_new_address_make_one_customer,
    sequential_numbers_from_settings,
);

async fn ticket(app: &TestApp, number: &str) -> Ticket {
    app.store
        .reader()
        .await
        .expect("reader")
        .ticket_by_number(&TicketNumber::parse(number).expect("number"))
        .await
        .expect("lookup")
        .unwrap_or_else(|| panic!("ticket {number} is stored"))
}

async fn minimal_json_ticket_answers_201_with_the_number(backend: Backend) {
    let Some(app) = TestApp::spawn(backend).await else {
        return;
    };
    let response = app
        .post(
            "/api/tickets.json",
            br#"{"name":"Ann","email":"ann@example.com","subject":"Hi","message":"Hello there"}"#,
        )
        .await;
    assert_eq!(response.status_line, "HTTP/1.1 201 Created");
    assert_eq!(
        response.header("content-type"),
        Some("text/html; charset=UTF-8")
    );
    let number = response.text();
    assert_eq!(number.len(), 6, "bare six-digit number, got {number:?}");
    assert!(number.chars().all(|c| c.is_ascii_digit()));
    assert_eq!(response.header("content-length"), Some("6"));

    let ticket = ticket(&app, &number).await;
    assert_eq!(ticket.subject.as_str(), "Hi");
    assert_eq!(ticket.source, Source::Api);
    assert_eq!(ticket.ip, Some("127.0.0.1".parse().expect("ip")));
    assert_eq!(ticket.priority_id, PriorityId(2), "default Normal");
    let mut reader = app.store.reader().await.expect("reader");
    let entries = reader.entries(ticket.id).await.expect("entries");
    assert_eq!(entries.len(), 1);
    assert_eq!(entries[0].body.as_str(), "Hello there");
    assert_eq!(entries[0].body.format(), BodyFormat::Text);
    assert!(
        entries[0].api_key_id.is_some(),
        "the key that posted it is kept"
    );
    let user = reader
        .user(ticket.user_id)
        .await
        .expect("user")
        .expect("exists");
    assert_eq!(user.name, "Ann");
    drop(reader);
    app.finish().await;
}

async fn request_shaped_like_osticket_api_ticket_create_php(backend: Backend) {
    let Some(app) = TestApp::spawn(backend).await else {
        return;
    };
    // Exactly what setup/scripts/api_ticket_create.php sends: curl's default form content type,
    // an empty Expect header, osTicket's user agent, and the JSON as the raw body.
    let body = br#"{"name":"Angry User","email":"api@osticket.com","subject":"Test API message","message":"This is a test of the osTicket API","ip":"123.211.233.122","attachments":[]}"#;
    let key = app.key.clone();
    let response = app
        .request(
            "POST",
            "/api/tickets.json",
            &[
                ("X-API-Key", &key),
                ("Expect", ""),
                ("User-Agent", "osTicket API Client v1.7"),
                ("Content-Type", "application/x-www-form-urlencoded"),
                ("Accept", "*/*"),
            ],
            body,
        )
        .await;
    assert_eq!(response.status, 201, "{}", response.text());
    let number = response.text();
    assert!(
        number.parse::<u64>().is_ok(),
        "the body casts to a number: {number:?}"
    );
    let ticket = ticket(&app, &number).await;
    assert_eq!(ticket.ip, Some("123.211.233.122".parse().expect("ip")));
    app.finish().await;
}

async fn every_json_field_is_stored(backend: Backend) {
    let Some(app) = TestApp::spawn(backend).await else {
        return;
    };
    let body = serde_json::json!({
        "name": "Jörg Kunde",
        "email": "joerg@example.de",
        "subject": "Drucker defekt",
        "message": "data:text/html;charset=utf-8,<p onclick=\"x()\">Gr%C3%BC%C3%9Fe <script>alert(1)</script><b>bold</b></p>",
        "phone": "318-555-8634x123",
        "notes": "VIP customer",
        "topicId": 1,
        "priority": "3",
        "source": "Phone",
        "ip": "2001:db8::42",
        "alert": false,
        "autorespond": "false",
        "attachments": [
            {"pixel.png": "data:image/png;base64,iVBORw0KGgo="},
            {"notes.txt": "data:text/plain;charset=utf-8,plain%20text"},
            {"raw.txt": "not a data url"}
        ]
    });
    let response = app
        .post("/api/tickets.json", body.to_string().as_bytes())
        .await;
    assert_eq!(response.status, 201, "{}", response.text());
    let ticket = ticket(&app, &response.text()).await;
    assert_eq!(ticket.topic_id, Some(TopicId(1)));
    assert_eq!(ticket.priority_id, PriorityId(3));
    assert_eq!(ticket.source, Source::Phone);
    assert_eq!(ticket.ip, Some("2001:db8::42".parse().expect("ip")));

    let mut reader = app.store.reader().await.expect("reader");
    let user = reader
        .user(ticket.user_id)
        .await
        .expect("user")
        .expect("exists");
    assert_eq!(user.name, "Jörg Kunde");
    assert_eq!(user.phone.as_deref(), Some("318-555-8634X123"));
    assert_eq!(user.notes.as_deref(), Some("VIP customer"));

    let entries = reader.entries(ticket.id).await.expect("entries");
    let message = &entries[0];
    assert_eq!(message.kind, EntryKind::Message);
    assert_eq!(message.author, Author::User(user.id));
    assert_eq!(message.body.format(), BodyFormat::Html);
    let html = message.body.as_str();
    assert!(html.contains("Grüße"), "{html}");
    assert!(html.contains("<b>bold</b>"), "{html}");
    assert!(
        !html.contains("script") && !html.contains("onclick"),
        "{html}"
    );

    let files: Vec<_> = message
        .attachments
        .iter()
        .map(|a| (a.filename.as_str(), a.content_type.as_str(), a.size))
        .collect();
    assert_eq!(
        files,
        vec![
            ("pixel.png", "image/png", 8),
            ("notes.txt", "text/plain", 10),
            ("raw.txt", "text/plain", 14)
        ]
    );
    let (_, png) = reader
        .attachment(message.attachments[0].id)
        .await
        .expect("attachment")
        .expect("exists");
    assert_eq!(png, b"\x89PNG\r\n\x1a\n");
    let (_, text) = reader
        .attachment(message.attachments[1].id)
        .await
        .expect("attachment")
        .expect("exists");
    assert_eq!(text, b"plain text");

    let events = reader.ticket_events(ticket.id).await.expect("events");
    let created: serde_json::Value =
        serde_json::from_str(&events[0].data).expect("event data is JSON");
    assert_eq!(
        created["notify"],
        serde_json::json!({"alert": false, "autorespond": false})
    );
    drop(reader);
    app.finish().await;
}

/// The XML payload of osTicket's setup/doc/api/tickets.md.
const OSTICKET_XML_EXAMPLE: &str = r#"<?xml version="1.0" encoding="UTF-8"?>
<ticket alert="true" autorespond="true" source="API">
    <name>Angry User</name>
    <email>api@osticket.com</email>
    <subject>Testing API</subject>
    <phone>318-555-8634X123</phone>
    <message type="text/plain"><![CDATA[Message content here]]></message>
    <attachments>
        <file name="file.txt" type="text/plain"><![CDATA[
            File content is here and is automatically trimmed
        ]]></file>
        <file name="image.gif" type="image/gif" encoding="base64">
            R0lGODlhDAAMALMBAP8AAP///wAAAP///wAAAAAAAAAAAAAAAAAAAAAAAAAA
            AAAAAAAAAAAAAAAAACH5BAEAAAIALAAAAAAMAAwAAAQZEMhJq704680761Kx
            Y3PtvP2tb/7eQYxD/58TC8Wr+5oPdtkiF3CRTa/QCl7pAAAAAAAAAAA=
        </file>
    </attachments>
    <ip>123.211.233.122</ip>
</ticket>"#;

async fn xml_example_from_osticket_docs(backend: Backend) {
    let Some(app) = TestApp::spawn(backend).await else {
        return;
    };
    let response = app
        .post("/api/tickets.xml", OSTICKET_XML_EXAMPLE.as_bytes())
        .await;
    assert_eq!(
        response.status_line,
        "HTTP/1.1 201 Created",
        "{}",
        response.text()
    );
    let ticket = ticket(&app, &response.text()).await;
    assert_eq!(ticket.subject.as_str(), "Testing API");
    assert_eq!(ticket.ip, Some("123.211.233.122".parse().expect("ip")));
    let mut reader = app.store.reader().await.expect("reader");
    let entries = reader.entries(ticket.id).await.expect("entries");
    assert_eq!(entries[0].body.as_str(), "Message content here");
    let attachments = &entries[0].attachments;
    assert_eq!(attachments.len(), 2);
    let (_, text) = reader
        .attachment(attachments[0].id)
        .await
        .expect("a")
        .expect("exists");
    assert_eq!(text, b"File content is here and is automatically trimmed");
    let (meta, gif) = reader
        .attachment(attachments[1].id)
        .await
        .expect("a")
        .expect("exists");
    assert_eq!(meta.content_type, "image/gif");
    assert!(
        gif.starts_with(b"GIF89a"),
        "decoded GIF, got {:?}",
        &gif[..6]
    );
    let user = reader
        .user(ticket.user_id)
        .await
        .expect("user")
        .expect("exists");
    assert_eq!(user.phone.as_deref(), Some("318-555-8634X123"));

    // An HTML message and a phone extension attribute.
    let response = app
        .post(
            "/api/http.php/tickets.xml",
            br#"<ticket><email>x@example.com</email><subject>S</subject><phone ext="7">555</phone><message type="text/html"><![CDATA[<i>hi</i><img src=x onerror=alert(1)>]]></message></ticket>"#,
        )
        .await;
    assert_eq!(response.status, 201, "{}", response.text());
    let ticket = self::ticket(&app, &response.text()).await;
    let entries = reader.entries(ticket.id).await.expect("entries");
    assert_eq!(entries[0].body.format(), BodyFormat::Html);
    assert!(entries[0].body.as_str().contains("<i>hi</i>"));
    assert!(!entries[0].body.as_str().contains("onerror"));
    let user = reader
        .user(ticket.user_id)
        .await
        .expect("user")
        .expect("exists");
    assert_eq!(user.phone.as_deref(), Some("555X7"));
    assert_eq!(
        user.name, "x",
        "a new customer without a name gets the address's local part"
    );
    drop(reader);
    app.finish().await;
}

async fn http_php_path_and_any_content_type(backend: Backend) {
    let Some(app) = TestApp::spawn(backend).await else {
        return;
    };
    let key = app.key.clone();
    for (path, content_type) in [
        (
            "/api/http.php/tickets.json",
            "application/x-www-form-urlencoded",
        ),
        ("/api/tickets.json", "text/plain"),
        ("/api/tickets.json", "application/json"),
        ("/api/tickets.json", "application/xml"),
    ] {
        let response = app
            .request(
                "POST",
                path,
                &[("X-API-Key", &key), ("Content-Type", content_type)],
                br#"{"email":"ct@example.com","subject":"s","message":"m"}"#,
            )
            .await;
        assert_eq!(
            response.status,
            201,
            "{path} {content_type}: {}",
            response.text()
        );
    }
    app.finish().await;
}

async fn sql_metacharacters_are_stored_verbatim(backend: Backend) {
    let Some(app) = TestApp::spawn(backend).await else {
        return;
    };
    let nasty = "Robert'); DROP TABLE ticket; -- \" \\ % _ $1 ?";
    let body = serde_json::json!({
        "name": nasty,
        "email": "o'brien+x@example.com",
        "subject": nasty,
        "message": nasty,
    });
    let response = app
        .post("/api/tickets.json", body.to_string().as_bytes())
        .await;
    assert_eq!(response.status, 201, "{}", response.text());
    let ticket = ticket(&app, &response.text()).await;
    assert_eq!(ticket.subject.as_str(), nasty);
    let mut reader = app.store.reader().await.expect("reader");
    let user = reader
        .user(ticket.user_id)
        .await
        .expect("user")
        .expect("exists");
    assert_eq!(user.name, nasty);
    assert_eq!(user.emails[0].as_str(), "o'brien+x@example.com");
    assert_eq!(
        reader.entries(ticket.id).await.expect("entries")[0]
            .body
            .as_str(),
        nasty
    );
    drop(reader);
    // The table is still there and works.
    let again = app
        .post("/api/tickets.json", body.to_string().as_bytes())
        .await;
    assert_eq!(again.status, 201);
    app.finish().await;
}

async fn concurrent_creates_for_one_new_address_make_one_customer(backend: Backend) {
    let Some(app) = TestApp::spawn(backend).await else {
        return;
    };
    let body = br#"{"name":"Racer","email":"racer@example.com","subject":"race","message":"go"}"#;
    let responses =
        futures::future::join_all((0..100).map(|_| app.post("/api/tickets.json", body))).await;
    let numbers: std::collections::HashSet<_> = responses
        .iter()
        .map(|r| {
            assert_eq!(r.status, 201, "{}", r.text());
            r.text()
        })
        .collect();
    assert_eq!(numbers.len(), 100, "100 tickets with distinct numbers");
    let users = app
        .store
        .reader()
        .await
        .expect("reader")
        .users(None, 100)
        .await
        .expect("users");
    assert_eq!(users.len(), 1, "exactly one customer for one address");
    app.finish().await;
}

async fn sequential_numbers_from_settings(backend: Backend) {
    let Some(app) = TestApp::spawn_with(backend, |_, desk| {
        desk.number_format =
            helpline_core::number::NumberFormat::Sequential("HL-#####".parse().expect("pattern"));
    })
    .await
    else {
        return;
    };
    let mut numbers = Vec::new();
    for _ in 0..3 {
        let response = app
            .post(
                "/api/tickets.json",
                br#"{"email":"s@example.com","subject":"s","message":"m"}"#,
            )
            .await;
        numbers.push(response.text());
    }
    assert_eq!(numbers, vec!["HL-00001", "HL-00002", "HL-00003"]);
    app.finish().await;
}
