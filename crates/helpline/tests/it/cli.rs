//! The `helpline` binary's administration commands and its configuration layering.

use crate::support::{Backend, TestDatabase};
use std::path::Path;
use std::process::{Command, Output};

const BIN: &str = env!("CARGO_BIN_EXE_helpline");

/// Runs the binary with a clean `HELPLINE_*` environment plus `env`.
pub fn helpline(args: &[&str], env: &[(&str, &str)], cwd: &Path) -> Output {
    let mut command = Command::new(BIN);
    command
        .args(args)
        .current_dir(cwd)
        .env("HELPLINE_LOG", "warn");
    for (name, _) in std::env::vars() {
        if name.starts_with("HELPLINE_") && name != "HELPLINE_TEST_POSTGRES_URL" {
            command.env_remove(name);
        }
    }
    for (name, value) in env {
        command.env(name, value);
    }
    command.output().expect("run helpline")
}

fn stdout(output: &Output) -> String {
    String::from_utf8_lossy(&output.stdout).into_owned()
}

fn stderr(output: &Output) -> String {
    String::from_utf8_lossy(&output.stderr).into_owned()
}

fn ok(output: Output) -> String {
    assert!(
        output.status.success(),
        "exit {:?}\nstdout: {}\nstderr: {}",
        output.status,
        stdout(&output),
        stderr(&output)
    );
    stdout(&output)
}

#[test]
fn every_command_has_help() {
    let dir = tempfile::tempdir().expect("dir");
    for args in [
        vec!["--help"],
        vec!["serve", "--help"],
        vec!["migrate", "--help"],
        vec!["key", "--help"],
        vec!["key", "create", "--help"],
        vec!["key", "list", "--help"],
        vec!["key", "revoke", "--help"],
        vec!["dept", "--help"],
        vec!["dept", "add", "--help"],
        vec!["dept", "list", "--help"],
        vec!["topic", "add", "--help"],
        vec!["topic", "list", "--help"],
        vec!["staff", "add", "--help"],
        vec!["staff", "list", "--help"],
        vec!["openapi", "--help"],
        vec!["pipe", "--help"],
        vec!["mail", "inspect", "--help"],
        vec!["mail", "quarantine", "list", "--help"],
        vec!["mailbox", "add", "--help"],
        vec!["mailbox", "list", "--help"],
        vec!["mail", "test-send", "--help"],
        vec!["outbox", "list", "--help"],
        vec!["outbox", "retry", "--help"],
        vec!["outbox", "run", "--help"],
        vec!["webhook", "add", "--help"],
        vec!["webhook", "list", "--help"],
        vec!["webhook", "remove", "--help"],
    ] {
        let out = ok(helpline(&args, &[], dir.path()));
        assert!(out.contains("Usage: helpline"), "{args:?}: {out}");
    }
    assert!(
        !dir.path().join("helpline.db").exists(),
        "--help touches no database"
    );
}

#[test]
fn openapi_command_prints_the_served_document() {
    let dir = tempfile::tempdir().expect("dir");
    let printed: serde_json::Value =
        serde_json::from_str(&ok(helpline(&["openapi"], &[], dir.path()))).expect("JSON");
    assert_eq!(printed, *crate::spec::SPEC);
}

#[test]
fn keys_are_created_listed_revoked_and_never_stored_raw() {
    let dir = tempfile::tempdir().expect("dir");
    let db = dir.path().join("keys.db");
    let url = format!("sqlite://{}", db.display());
    let created = ok(helpline(
        &[
            "key",
            "create",
            "--database",
            &url,
            "--ip",
            "127.0.0.1",
            "10.0.0.0/8",
            "--scope",
            "tickets:create",
            "--scope",
            "cron:run",
            "--note",
            "website",
            "--json",
        ],
        &[],
        dir.path(),
    ));
    let created: serde_json::Value = serde_json::from_str(created.trim()).expect("JSON output");
    let secret = created["key"].as_str().expect("key").to_owned();
    assert_eq!(created["id"], 1);
    assert!(secret.starts_with("hl_") && secret.len() > 30, "{secret}");

    let listed = ok(helpline(
        &["key", "list", "--database", &url],
        &[],
        dir.path(),
    ));
    assert!(
        listed.contains(&secret[..7]) && listed.contains("active"),
        "{listed}"
    );
    assert!(
        listed.contains("127.0.0.1,10.0.0.0/8") && listed.contains("website"),
        "{listed}"
    );
    assert!(!listed.contains(&secret), "the secret is shown once only");

    // An osTicket key carried over keeps its value.
    let osticket = "BA00B76BAA30F62E1940B46CC1C3C73C";
    let out = ok(helpline(
        &[
            "key",
            "create",
            "--database",
            &url,
            "--ip",
            "192.0.2.5",
            "--scope",
            "tickets:create",
            "--secret",
            osticket,
        ],
        &[],
        dir.path(),
    ));
    assert!(out.contains(osticket), "{out}");

    let out = ok(helpline(
        &["key", "revoke", "--database", &url, "1"],
        &[],
        dir.path(),
    ));
    assert!(out.contains("revoked"), "{out}");
    let listed = ok(helpline(
        &["key", "list", "--database", &url, "--json"],
        &[],
        dir.path(),
    ));
    let keys: serde_json::Value = serde_json::from_str(&listed).expect("JSON list");
    assert!(
        keys[0]["revoked_at"].is_string() || keys[0]["revoked_at"].is_array(),
        "{listed}"
    );
    assert!(keys[1]["revoked_at"].is_null());

    // Neither secret is anywhere in the database files, only their hashes.
    let mut bytes = Vec::new();
    for suffix in ["", "-wal", "-shm"] {
        let path = format!("{}{suffix}", db.display());
        if let Ok(content) = std::fs::read(&path) {
            bytes.extend(content);
        }
    }
    let contains = |needle: &[u8]| bytes.windows(needle.len()).any(|w| w == needle);
    assert!(
        !contains(secret.as_bytes()),
        "raw generated key found in the database"
    );
    assert!(
        !contains(osticket.as_bytes()),
        "raw osTicket key found in the database"
    );
    let hash = helpline_core::apikey::KeySecret::presented(&secret).hash();
    assert!(contains(hash.as_bytes()), "the hash is what is stored");

    // Bad input names the flag.
    let bad = helpline(
        &[
            "key",
            "create",
            "--database",
            &url,
            "--ip",
            "example.com",
            "--scope",
            "admin",
        ],
        &[],
        dir.path(),
    );
    assert!(!bad.status.success());
    assert!(
        stderr(&bad).contains("--ip") && stderr(&bad).contains("example.com"),
        "{}",
        stderr(&bad)
    );
    let bad = helpline(
        &[
            "key",
            "create",
            "--database",
            &url,
            "--ip",
            "::1",
            "--scope",
            "tickets:delete",
        ],
        &[],
        dir.path(),
    );
    assert!(
        stderr(&bad).contains("unknown scope 'tickets:delete'"),
        "{}",
        stderr(&bad)
    );
    let bad = helpline(
        &[
            "key",
            "create",
            "--database",
            &url,
            "--ip",
            "::1",
            "--scope",
            "admin",
            "--secret",
            osticket,
        ],
        &[],
        dir.path(),
    );
    assert!(stderr(&bad).contains("already exists"), "{}", stderr(&bad));
    let bad = helpline(
        &["key", "revoke", "--database", &url, "99"],
        &[],
        dir.path(),
    );
    assert!(
        stderr(&bad).contains("API key 99 not found"),
        "{}",
        stderr(&bad)
    );
}

#[test]
fn catalogue_commands() {
    let dir = tempfile::tempdir().expect("dir");
    let url = format!("sqlite://{}", dir.path().join("c.db").display());
    let run = |args: &[&str]| {
        let mut all = args.to_vec();
        all.extend(["--database", url.as_str()]);
        helpline(&all, &[], dir.path())
    };
    assert!(ok(run(&["dept", "add", "Billing"])).contains("department 2 \"Billing\" added"));
    let bad = run(&["dept", "add", "billing"]);
    assert!(
        stderr(&bad).contains("a department named 'billing' already exists"),
        "{}",
        stderr(&bad)
    );
    let depts: serde_json::Value =
        serde_json::from_str(&ok(run(&["dept", "list", "--json"]))).expect("json");
    assert_eq!(depts[0]["name"], "Support");
    assert_eq!(depts[1]["name"], "Billing");

    assert!(
        ok(run(&[
            "topic",
            "add",
            "Invoices",
            "--department",
            "billing",
            "--priority",
            "high"
        ]))
        .contains("help topic 2")
    );
    let bad = run(&["topic", "add", "Other", "--department", "Sales"]);
    assert!(
        stderr(&bad).contains("--department: no department 'Sales'"),
        "{}",
        stderr(&bad)
    );
    let topics: serde_json::Value =
        serde_json::from_str(&ok(run(&["topic", "list", "--json"]))).expect("json");
    assert_eq!(topics[1]["name"], "Invoices");
    assert_eq!(topics[1]["department_id"], 2);
    assert_eq!(topics[1]["priority_id"], 3);

    assert!(
        ok(run(&[
            "staff",
            "add",
            "--username",
            "alice",
            "--name",
            "Alice Agent",
            "--email",
            "alice@example.com",
            "--department",
            "2"
        ]))
        .contains("staff member 1")
    );
    let bad = run(&[
        "staff",
        "add",
        "--username",
        "bob",
        "--name",
        "Bob",
        "--email",
        "not-mail",
    ]);
    assert!(stderr(&bad).contains("--email"), "{}", stderr(&bad));
    let bad = run(&[
        "staff",
        "add",
        "--username",
        "ALICE",
        "--name",
        "A",
        "--email",
        "a2@example.com",
    ]);
    assert!(stderr(&bad).contains("already exists"), "{}", stderr(&bad));
    let listed = ok(run(&["staff", "list"]));
    assert!(
        listed.contains("alice")
            && listed.contains("Alice Agent")
            && listed.contains("alice@example.com"),
        "{listed}"
    );
}

#[test]
fn configuration_layers_file_then_environment_then_flags() {
    let dir = tempfile::tempdir().expect("dir");
    let path = |name: &str| format!("sqlite://{}", dir.path().join(name).display());
    let config = dir.path().join("helpline.toml");
    std::fs::write(
        &config,
        format!("database_url = \"{}\"\n", path("from-file.db")),
    )
    .expect("write config");
    let config_arg = config.to_string_lossy().into_owned();

    ok(helpline(
        &["--config", &config_arg, "dept", "add", "A"],
        &[],
        dir.path(),
    ));
    assert!(dir.path().join("from-file.db").exists());

    ok(helpline(
        &["--config", &config_arg, "dept", "add", "B"],
        &[("HELPLINE_DATABASE_URL", &path("from-env.db"))],
        dir.path(),
    ));
    assert!(
        dir.path().join("from-env.db").exists(),
        "environment beats the file"
    );

    ok(helpline(
        &[
            "--config",
            &config_arg,
            "--database",
            &path("from-flag.db"),
            "dept",
            "add",
            "C",
        ],
        &[("HELPLINE_DATABASE_URL", &path("from-env.db"))],
        dir.path(),
    ));
    assert!(
        dir.path().join("from-flag.db").exists(),
        "the flag beats both"
    );

    // HELPLINE_CONFIG names the file too.
    let listed = ok(helpline(
        &["dept", "list"],
        &[("HELPLINE_CONFIG", &config_arg)],
        dir.path(),
    ));
    assert!(listed.contains(" A") && !listed.contains(" B"), "{listed}");

    // Mistakes are reported, not ignored.
    std::fs::write(&config, "databse_url = \"x\"\n").expect("write config");
    let bad = helpline(&["--config", &config_arg, "migrate"], &[], dir.path());
    assert!(!bad.status.success());
    assert!(stderr(&bad).contains("databse_url"), "{}", stderr(&bad));
    let bad = helpline(
        &["--config", "/nonexistent/helpline.toml", "migrate"],
        &[],
        dir.path(),
    );
    assert!(stderr(&bad).contains("does not exist"), "{}", stderr(&bad));
    let bad = helpline(&["migrate", "--database", "mysql://x"], &[], dir.path());
    assert!(
        stderr(&bad).contains("must start with sqlite:// or postgres://"),
        "{}",
        stderr(&bad)
    );
    let bad = helpline(
        &["migrate"],
        &[("HELPLINE_TICKET_NUMBER_MODE", "weird")],
        dir.path(),
    );
    assert!(
        bad.status.success(),
        "migrate does not need the desk settings"
    );
}

#[tokio::test]
async fn commands_work_on_postgres() {
    let Some((url, database)) = TestDatabase::create(Backend::Postgres).await else {
        return;
    };
    let dir = tempfile::tempdir().expect("dir");
    let out = ok(helpline(&["migrate", "--database", &url], &[], dir.path()));
    assert!(out.contains("postgres"), "{out}");
    let key = ok(helpline(
        &[
            "key",
            "create",
            "--database",
            &url,
            "--ip",
            "127.0.0.1",
            "--scope",
            "admin",
            "--json",
        ],
        &[],
        dir.path(),
    ));
    assert!(key.contains("\"id\":1"), "{key}");
    assert!(
        ok(helpline(
            &["dept", "add", "Sales", "--database", &url],
            &[],
            dir.path()
        ))
        .contains("\"Sales\" added")
    );
    let listed = ok(helpline(
        &["key", "list", "--database", &url],
        &[],
        dir.path(),
    ));
    assert!(listed.contains("admin"), "{listed}");
    database.remove().await;
}

/// Runs the binary with `input` on standard input.
fn helpline_with_input(args: &[&str], input: &[u8], cwd: &Path) -> Output {
    use std::io::Write;
    use std::process::Stdio;
    let mut command = Command::new(BIN);
    command
        .args(args)
        .current_dir(cwd)
        .env("HELPLINE_LOG", "warn")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    for (name, _) in std::env::vars() {
        if name.starts_with("HELPLINE_") && name != "HELPLINE_TEST_POSTGRES_URL" {
            command.env_remove(name);
        }
    }
    let mut child = command.spawn().expect("start helpline");
    if let Some(mut stdin) = child.stdin.take() {
        stdin.write_all(input).expect("write stdin");
    }
    child.wait_with_output().expect("wait")
}

const MAIL: &[u8] =
    b"From: Pat <pat@example.com>\r\nTo: support@example.net\r\nSubject: Piped in\r\n\
Message-ID: <piped@example.com>\r\n\r\nHello from the mail server.\r\n\r\n\
On Tue, 24 Nov 2026, Someone <s@example.com> wrote:\r\n> old text\r\n";

#[test]
fn pipe_answers_mail_servers_with_sysexits() {
    let dir = tempfile::tempdir().expect("dir");
    let url = format!("sqlite://{}", dir.path().join("pipe.db").display());
    let stored = helpline_with_input(&["pipe", "--database", &url], MAIL, dir.path());
    assert_eq!(stored.status.code(), Some(0), "{}", stderr(&stored));
    assert!(stdout(&stored).contains("processed"), "{}", stdout(&stored));
    let again = helpline_with_input(&["pipe", "--database", &url], MAIL, dir.path());
    assert_eq!(again.status.code(), Some(0));
    assert!(stdout(&again).contains("duplicate"), "{}", stdout(&again));
    let junk = helpline_with_input(
        &["pipe", "--database", &url],
        b"no headers here",
        dir.path(),
    );
    assert_eq!(
        junk.status.code(),
        Some(0),
        "stored and quarantined, not bounced"
    );
    assert!(stdout(&junk).contains("quarantined"), "{}", stdout(&junk));
    let listed = ok(helpline(
        &["mail", "quarantine", "list", "--database", &url, "--json"],
        &[],
        dir.path(),
    ));
    let listed: serde_json::Value = serde_json::from_str(&listed).expect("JSON");
    assert_eq!(listed.as_array().map(Vec::len), Some(1), "{listed}");
    let id = listed[0]["id"].to_string();
    let shown = ok(helpline(
        &["mail", "quarantine", "show", &id, "--database", &url],
        &[],
        dir.path(),
    ));
    assert!(
        shown.contains("no headers here") || shown.contains("quarantined"),
        "{shown}"
    );
    let retried = ok(helpline(
        &["mail", "quarantine", "retry", &id, "--database", &url],
        &[],
        dir.path(),
    ));
    assert!(retried.contains("quarantined"), "{retried}");
    let missing = helpline(
        &["mail", "quarantine", "retry", "999", "--database", &url],
        &[],
        dir.path(),
    );
    assert!(!missing.status.success());
    let empty = helpline_with_input(&["pipe", "--database", &url], b"", dir.path());
    assert_eq!(
        empty.status.code(),
        Some(65),
        "nothing to accept: a data error"
    );
    let down = helpline_with_input(
        &["pipe", "--database", "postgres://nobody@127.0.0.1:1/none"],
        MAIL,
        dir.path(),
    );
    assert_eq!(
        down.status.code(),
        Some(75),
        "database unavailable: try again later"
    );
}

#[test]
fn mail_inspect_explains_a_message() {
    let dir = tempfile::tempdir().expect("dir");
    let file = dir.path().join("m.eml");
    std::fs::write(&file, MAIL).expect("write");
    let path = file.to_string_lossy().into_owned();
    let report: serde_json::Value =
        serde_json::from_str(&ok(helpline(&["mail", "inspect", &path], &[], dir.path())))
            .expect("JSON");
    assert_eq!(report["class"], "normal");
    assert_eq!(report["message_id"], "<piped@example.com>");
    assert_eq!(report["from"]["address"], "pat@example.com");
    assert_eq!(report["subject"], "Piped in");
    assert_eq!(
        report["visible_text"].as_str().map(str::trim),
        Some("Hello from the mail server.")
    );
    assert!(
        report.get("rule").is_none(),
        "no database named: no threading decision"
    );
    let url = format!("sqlite://{}", dir.path().join("i.db").display());
    let report: serde_json::Value = serde_json::from_str(&ok(helpline(
        &["mail", "inspect", &path, "--database", &url],
        &[],
        dir.path(),
    )))
    .expect("JSON");
    assert!(
        report["rule"]
            .as_str()
            .expect("rule")
            .contains("new ticket"),
        "{report}"
    );
    let bad = helpline(&["mail", "inspect", "/nonexistent.eml"], &[], dir.path());
    assert!(!bad.status.success());
}

#[test]
fn mailboxes_are_added_listed_and_removed_without_showing_passwords() {
    let dir = tempfile::tempdir().expect("dir");
    let url = format!("sqlite://{}", dir.path().join("mb.db").display());
    let run = |args: &[&str]| {
        let mut all = args.to_vec();
        all.extend(["--database", url.as_str()]);
        helpline(&all, &[], dir.path())
    };
    let added = ok(run(&[
        "mailbox",
        "add",
        "imap://support%40example.com:s3cr%40t@Mail.Example.com:1143/Support",
        "--archive",
        "Done",
    ]));
    assert!(
        added.contains(
            "mailbox 1 imap://support@example.com:****@mail.example.com:1143/Support added"
        ),
        "{added}"
    );
    assert!(ok(run(&["mailbox", "add", "pop3://u:pw@127.0.0.1:1110"])).contains("mailbox 2"));
    let bad = run(&[
        "mailbox",
        "add",
        "pop3://u:pw@127.0.0.1:1110",
        "--archive",
        "X",
    ]);
    assert!(stderr(&bad).contains("POP3"), "{}", stderr(&bad));
    let bad = run(&[
        "mailbox",
        "add",
        "imap://support%40example.com:other@mail.example.com:1143/Support",
    ]);
    assert!(stderr(&bad).contains("already added"), "{}", stderr(&bad));
    let bad = run(&["mailbox", "add", "ftp://u:p@h"]);
    assert!(
        stderr(&bad).contains("unknown mailbox scheme"),
        "{}",
        stderr(&bad)
    );
    let bad = run(&["mailbox", "add", "imap://u:p@h", "--interval", "1"]);
    assert!(
        stderr(&bad).contains("at least 5 seconds"),
        "{}",
        stderr(&bad)
    );
    let listed = ok(run(&["mailbox", "list", "--json"]));
    assert!(
        !listed.contains("s3cr") && !listed.contains("pw@"),
        "passwords never shown: {listed}"
    );
    let listed: serde_json::Value = serde_json::from_str(&listed).expect("JSON");
    assert_eq!(listed[0]["after_fetch"], "archive:Done");
    assert_eq!(listed[1]["after_fetch"], "delete");
    assert!(ok(run(&["mailbox", "remove", "2"])).contains("removed"));
    assert!(!run(&["mailbox", "remove", "2"]).status.success());
    let table = ok(run(&["mailbox", "list"]));
    assert!(
        table.contains("mail.example.com") && !table.contains("127.0.0.1"),
        "{table}"
    );
}

#[test]
fn an_unusable_mail_tls_ca_file_stops_fetch_and_serve_naming_the_setting() {
    let dir = tempfile::tempdir().expect("dir");
    let url = format!("sqlite://{}", dir.path().join("tls.db").display());
    let missing = dir.path().join("missing-ca.pem");
    let not_pem = dir.path().join("not-a-ca.pem");
    std::fs::write(&not_pem, "this is not a certificate\n").expect("write");
    for (file, why) in [
        (&missing, "cannot read"),
        (&not_pem, "holds no certificate"),
    ] {
        let file = file.to_str().expect("path");
        for args in [
            vec!["mail", "fetch", "--database", url.as_str()],
            vec![
                "serve",
                "--database",
                url.as_str(),
                "--listen",
                "127.0.0.1:0",
            ],
        ] {
            let out = helpline(&args, &[("HELPLINE_MAIL_TLS_CA_FILE", file)], dir.path());
            assert!(!out.status.success(), "{args:?} with {file}");
            let text = stderr(&out);
            assert!(
                text.contains("mail_tls_ca_file")
                    && text.contains("HELPLINE_MAIL_TLS_CA_FILE")
                    && text.contains(file)
                    && text.contains(why),
                "{args:?}: {text}"
            );
        }
    }
}

#[test]
fn webhooks_are_added_listed_and_removed_with_the_secret_shown_once() {
    let dir = tempfile::tempdir().expect("dir");
    let url = format!("sqlite://{}", dir.path().join("hooks.db").display());
    let added = ok(helpline(
        &[
            "webhook",
            "add",
            "https://crm.example.com/hooks",
            "--event",
            "ticket.created",
            "--event",
            "status.changed,ticket.created",
            "--description",
            "CRM",
            "--json",
            "--database",
            &url,
        ],
        &[],
        dir.path(),
    ));
    let added: serde_json::Value = serde_json::from_str(&added).expect("JSON");
    let secret = added["secret"].as_str().expect("secret");
    assert!(
        helpline_outbox::webhook::WebhookSecret::parse(secret).is_ok(),
        "{secret}"
    );
    let listed = ok(helpline(
        &["webhook", "list", "--json", "--database", &url],
        &[],
        dir.path(),
    ));
    assert!(!listed.contains(secret), "the secret is never shown again");
    let listed: serde_json::Value = serde_json::from_str(&listed).expect("JSON");
    assert_eq!(
        listed[0]["events"],
        serde_json::json!(["ticket.created", "status.changed"])
    );
    assert_eq!(listed[0]["url"], "https://crm.example.com/hooks");

    for (args, wanted) in [
        (
            vec!["ftp://x.example/h", "--event", "ticket.created"],
            "http:// or https://",
        ),
        (
            vec!["https://u:p@x.example/h", "--event", "ticket.created"],
            "no credentials",
        ),
        (
            vec!["https://x.example/h", "--event", "ticket.deleted"],
            "unknown event 'ticket.deleted'",
        ),
    ] {
        let mut full = vec!["webhook", "add"];
        full.extend(args);
        full.extend(["--database", &url]);
        let out = helpline(&full, &[], dir.path());
        assert!(!out.status.success());
        assert!(stderr(&out).contains(wanted), "{full:?}: {}", stderr(&out));
    }
    ok(helpline(
        &["webhook", "remove", "1", "--database", &url],
        &[],
        dir.path(),
    ));
    let again = helpline(
        &["webhook", "remove", "1", "--database", &url],
        &[],
        dir.path(),
    );
    assert!(!again.status.success());
    assert!(stderr(&again).contains("no webhook has id 1"));
}

#[test]
fn mail_settings_are_checked_naming_the_setting() {
    let dir = tempfile::tempdir().expect("dir");
    let url = format!("sqlite://{}", dir.path().join("mail.db").display());
    let serve = |env: &[(&str, &str)]| {
        helpline(
            &["serve", "--listen", "127.0.0.1:0", "--database", &url],
            env,
            dir.path(),
        )
    };
    let out = serve(&[("HELPLINE_SMTP_URL", "smtp://127.0.0.1:1")]);
    assert!(!out.status.success());
    assert!(
        stderr(&out).contains("mail_from (HELPLINE_MAIL_FROM) is required"),
        "{}",
        stderr(&out)
    );
    let out = serve(&[
        ("HELPLINE_SMTP_URL", "gopher://mail.example.com"),
        ("HELPLINE_MAIL_FROM", "desk@example.com"),
    ]);
    assert!(!out.status.success());
    assert!(
        stderr(&out).contains("smtp_url (HELPLINE_SMTP_URL)"),
        "{}",
        stderr(&out)
    );
    let out = serve(&[
        ("HELPLINE_SMTP_URL", "smtp://127.0.0.1:1"),
        ("HELPLINE_MAIL_FROM", "not an address"),
    ]);
    assert!(!out.status.success());
    assert!(stderr(&out).contains("mail_from"), "{}", stderr(&out));
    let templates = dir.path().join("templates");
    std::fs::create_dir(&templates).expect("dir");
    std::fs::write(templates.join("autoresponse.txt"), "{% if %}").expect("template");
    let out = serve(&[("HELPLINE_TEMPLATES_DIR", templates.to_str().expect("path"))]);
    assert!(!out.status.success());
    assert!(
        stderr(&out).contains("autoresponse.txt"),
        "{}",
        stderr(&out)
    );
    // Without a mail server, test-send says what is missing.
    let out = helpline(&["mail", "test-send", "you@example.com"], &[], dir.path());
    assert!(!out.status.success());
    assert!(stderr(&out).contains("smtp_url"), "{}", stderr(&out));
}
