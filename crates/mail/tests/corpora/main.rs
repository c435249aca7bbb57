//! The mail crate's tests on real mail written by others (`../shared/corpora`, read at test
//! time, never copied into the project). Each module prints its figures with `--nocapture`.
//! `pop3_live` and `imap_live` run the POP3 and IMAP clients against the real servers
//! `scripts/test` starts, `smtp_live` the outbound SMTP transport. `osticket_threading` runs
//! the intake pipeline on a SQLite store in a temporary directory, `intake_commits` counts its
//! write transactions.

mod bounces;
mod imap_live;
mod intake_commits;
mod osticket_threading;
mod pop3_live;
mod replies;
mod smtp_live;

use std::path::PathBuf;

/// `../shared/corpora/<set>` beside the repository. A missing corpus fails the test loudly:
/// a corpus test that passes without its corpus would prove nothing.
pub fn corpus(set: &str) -> PathBuf {
    let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("../../../shared/corpora")
        .join(set);
    assert!(
        dir.is_dir(),
        "the mail corpus {} is missing: the shared/ folder must sit beside the repository",
        dir.display()
    );
    dir
}
