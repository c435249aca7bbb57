//! `helpline import osticket` as an operator runs it: its help, its errors, and that the
//! password in `--from` never shows. (The import itself is tested against the real osTicket
//! fixture in crates/import/tests/osticket.rs.)

use crate::cli::helpline;

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

#[test]
fn import_osticket_has_help() {
    let dir = tempfile::tempdir().expect("dir");
    for args in [
        vec!["import", "--help"],
        vec!["import", "osticket", "--help"],
    ] {
        let output = helpline(&args, &[], dir.path());
        assert!(output.status.success(), "{args:?}");
        let out = text(&output.stdout);
        assert!(out.contains("Usage: helpline import"), "{out}");
    }
    let out = text(&helpline(&["import", "osticket", "--help"], &[], dir.path()).stdout);
    for flag in [
        "--from",
        "--prefix",
        "--secret-salt",
        "--resume",
        "--database",
    ] {
        assert!(out.contains(flag), "{flag} in {out}");
    }
}

#[test]
fn an_unreachable_source_fails_without_showing_the_password() {
    let dir = tempfile::tempdir().expect("dir");
    let database = format!("sqlite://{}", dir.path().join("helpline.db").display());
    let output = helpline(
        &[
            "import",
            "osticket",
            "--from",
            "mysql://osticket:hunter2-pw@127.0.0.1:1/osticket",
            "--database",
            &database,
        ],
        &[],
        dir.path(),
    );
    let (stdout, stderr) = (text(&output.stdout), text(&output.stderr));
    assert!(!output.status.success(), "{stdout}{stderr}");
    assert!(
        stderr.contains(
            "cannot connect to the osTicket database mysql://osticket:****@127.0.0.1:1/osticket"
        ),
        "{stderr}"
    );
    assert!(!stderr.contains("hunter2") && !stdout.contains("hunter2"));
    assert!(!dir.path().join("helpline.db").exists());
}

#[test]
fn a_database_that_is_not_osticket_is_refused() {
    let Some(server) = std::env::var("HELPLINE_TEST_MYSQL_URL")
        .ok()
        .filter(|url| !url.is_empty())
    else {
        let ci = std::env::var("CI").is_ok_and(|v| v == "true" || v == "1");
        assert!(
            !ci,
            "HELPLINE_TEST_MYSQL_URL is not set, and CI must run this test"
        );
        eprintln!("skipping: HELPLINE_TEST_MYSQL_URL is not set");
        return;
    };
    let server = match server.split_once("://") {
        Some((scheme, rest)) => format!(
            "{scheme}://{}",
            rest.split(['/', '?']).next().unwrap_or_default()
        ),
        None => server,
    };
    let dir = tempfile::tempdir().expect("dir");
    let database = format!("sqlite://{}", dir.path().join("helpline.db").display());
    // Every MySQL/MariaDB server has its own `mysql` database, which is no osTicket.
    let output = helpline(
        &[
            "import",
            "osticket",
            "--from",
            &format!("{server}/mysql"),
            "--database",
            &database,
        ],
        &[],
        dir.path(),
    );
    let stderr = text(&output.stderr);
    assert!(!output.status.success(), "{stderr}");
    assert!(
        stderr.contains("database 'mysql' is not an osTicket database"),
        "{stderr}"
    );
    assert!(
        !dir.path().join("helpline.db").exists(),
        "a refused source must not leave a new Helpline database behind"
    );
}
