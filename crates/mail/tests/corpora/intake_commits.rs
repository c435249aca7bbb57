//! How many durable commits a message posted over HTTP costs, and that the one-commit way loses
//! and doubles nothing: `receive` stores it with its post in one transaction, falls back to
//! storing it first when that transaction is refused, and leaves an outage to the caller. Runs
//! the real pipeline on a SQLite store in a temporary directory, behind a wrapper that counts
//! (and can fail) write transactions.

use helpline_core::error::BoxError;
use helpline_core::event::Actor;
use helpline_core::inbound::{InboundRecord, InboundStatus, NewInbound};
use helpline_core::service::DeskSettings;
use helpline_core::service::posting::StatusRef;
use helpline_core::service::updates::{TicketChanges, update_ticket};
use helpline_core::store::{ErasedWork, Reader, Store};
use helpline_core::{Error, StoreError};
use helpline_mail::pipeline::{IntakeOutcome, IntakeSettings, receive, store_raw};
use helpline_store_sqlite::SqliteStore;
use std::any::Any;
use std::sync::atomic::{AtomicUsize, Ordering};

/// How the next write transactions are refused.
#[derive(Clone, Copy)]
enum Refusal {
    /// As in an outage: whether an interrupted commit went through is not known.
    Outage,
    /// As when the database refuses the work (a constraint, a value): nothing was written.
    Refused,
}

/// A SQLite store that counts write transactions and refuses the next `refuse` of them.
struct CountingStore {
    inner: SqliteStore,
    writes: AtomicUsize,
    refuse: AtomicUsize,
    refusal: std::sync::Mutex<Refusal>,
}

#[async_trait::async_trait]
impl Store for CountingStore {
    fn backend(&self) -> &'static str {
        self.inner.backend()
    }

    async fn ping(&self) -> Result<(), StoreError> {
        self.inner.ping().await
    }

    async fn reader(&self) -> Result<Box<dyn Reader + '_>, StoreError> {
        self.inner.reader().await
    }

    async fn write_erased(&self, work: ErasedWork) -> Result<Box<dyn Any + Send>, Error> {
        self.writes.fetch_add(1, Ordering::SeqCst);
        let refused = self
            .refuse
            .fetch_update(Ordering::SeqCst, Ordering::SeqCst, |n| n.checked_sub(1))
            .is_ok();
        if refused {
            let why: BoxError = "the database refused (injected)".into();
            let refusal = *self.refusal.lock().expect("refusal");
            return Err(match refusal {
                Refusal::Outage => StoreError::Unavailable(why),
                Refusal::Refused => StoreError::Other(why),
            }
            .into());
        }
        self.inner.write_erased(work).await
    }
}

struct Desk {
    _dir: tempfile::TempDir,
    store: CountingStore,
    settings: IntakeSettings,
}

impl Desk {
    async fn open() -> Self {
        let dir = tempfile::tempdir().expect("temporary directory");
        let url = format!("sqlite://{}", dir.path().join("helpline.db").display());
        let inner = SqliteStore::open(&url).await.expect("open the store");
        let settings = IntakeSettings::load(&inner, vec!["support@helpline.test".into()])
            .await
            .expect("intake settings");
        Self {
            _dir: dir,
            store: CountingStore {
                inner,
                writes: AtomicUsize::new(0),
                refuse: AtomicUsize::new(0),
                refusal: std::sync::Mutex::new(Refusal::Outage),
            },
            settings,
        }
    }

    /// Receives `raw` (with a mailbox uid when given) and returns the outcome and how many
    /// write transactions it took.
    async fn receive(
        &self,
        raw: &[u8],
        uid: Option<&str>,
    ) -> (Result<IntakeOutcome, Error>, usize) {
        let before = self.store.writes.load(Ordering::SeqCst);
        let outcome = receive(
            &self.store,
            &DeskSettings::default(),
            &self.settings,
            NewInbound {
                source: "api".into(),
                mailbox: uid.map(|_| "INBOX".to_owned()),
                source_uid: uid.map(str::to_owned),
                raw: raw.to_vec(),
            },
        )
        .await;
        (outcome, self.store.writes.load(Ordering::SeqCst) - before)
    }

    /// Has the next `count` write transactions refused as `refusal` says.
    fn refuse(&self, count: usize, refusal: Refusal) {
        *self.store.refusal.lock().expect("refusal") = refusal;
        self.store.refuse.store(count, Ordering::SeqCst);
    }

    /// Every inbound record, whatever its status.
    async fn records(&self) -> Vec<InboundRecord> {
        let mut reader = self.store.reader().await.expect("reader");
        let mut all = Vec::new();
        for status in [
            InboundStatus::Pending,
            InboundStatus::Processed,
            InboundStatus::Duplicate,
            InboundStatus::Ignored,
            InboundStatus::Quarantined,
        ] {
            all.extend(
                reader
                    .inbound_list(status, None, 1000)
                    .await
                    .expect("inbound list"),
            );
        }
        all
    }
}

fn mail(from: &str, subject: &str, message_id: &str) -> Vec<u8> {
    format!(
        "From: {from}\r\nTo: Support <support@helpline.test>\r\nSubject: {subject}\r\n\
         Message-ID: {message_id}\r\nDate: Thu, 03 Dec 2026 10:00:00 +0000\r\n\
         Content-Type: text/html; charset=utf-8\r\n\r\n<p>My printer is on <b>fire</b>.</p>\r\n"
    )
    .into_bytes()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_new_ticket_by_mail_is_one_durable_commit() {
    let desk = Desk::open().await;
    let (outcome, writes) = desk
        .receive(
            &mail("Ann <ann@example.com>", "Printer", "<a1@example.com>"),
            None,
        )
        .await;
    let outcome = outcome.expect("posted");
    assert_eq!(outcome.status, InboundStatus::Processed, "{outcome:?}");
    assert!(outcome.ticket.is_some(), "{outcome:?}");
    assert_eq!(
        writes, 1,
        "the message, its ticket and its outcome in one commit"
    );

    let records = desk.records().await;
    assert_eq!(records.len(), 1, "{records:?}");
    assert_eq!(records[0].id, outcome.inbound_id);
    assert_eq!(records[0].status, InboundStatus::Processed);
    assert_eq!(records[0].entry_id, outcome.entry_id);
    let (_, raw) = desk
        .store
        .reader()
        .await
        .expect("reader")
        .inbound(outcome.inbound_id)
        .await
        .expect("read")
        .expect("stored");
    assert_eq!(
        raw,
        mail("Ann <ann@example.com>", "Printer", "<a1@example.com>")
    );

    // The same Message-ID again: a duplicate, still one commit, and it names the ticket.
    let (again, writes) = desk
        .receive(
            &mail("Ann <ann@example.com>", "Printer", "<a1@example.com>"),
            None,
        )
        .await;
    let again = again.expect("recorded");
    assert_eq!(again.status, InboundStatus::Duplicate, "{again:?}");
    assert_eq!(again.ticket, outcome.ticket);
    assert_eq!(writes, 1);
    assert_eq!(desk.records().await.len(), 2);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_message_that_cannot_be_posted_is_stored_once_and_quarantined() {
    let desk = Desk::open().await;
    // No sender: no ticket can be opened, so the one-commit way fails and the message is stored
    // on its own, then quarantined with the reason.
    let raw = b"To: support@helpline.test\r\nSubject: Who am I\r\nMessage-ID: <q1@example.com>\r\n\r\nhello\r\n";
    let (outcome, writes) = desk.receive(raw, None).await;
    let outcome = outcome.expect("kept");
    assert_eq!(outcome.status, InboundStatus::Quarantined, "{outcome:?}");
    assert!(outcome.rule.contains("from"), "{}", outcome.rule);
    assert_eq!(
        writes, 2,
        "storing first, then the quarantine (the post failed before writing)"
    );
    let records = desk.records().await;
    assert_eq!(records.len(), 1, "stored exactly once: {records:?}");
    assert_eq!(records[0].status, InboundStatus::Quarantined);
    assert!(records[0].ticket_id.is_none());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_refused_post_stores_the_message_first_without_doubling_it() {
    let desk = Desk::open().await;
    desk.refuse(1, Refusal::Refused);
    let (outcome, writes) = desk
        .receive(
            &mail("Bo <bo@example.com>", "Down", "<o1@example.com>"),
            None,
        )
        .await;
    let outcome = outcome.expect("posted after all");
    assert_eq!(outcome.status, InboundStatus::Processed, "{outcome:?}");
    assert_eq!(writes, 3, "the refused post, storing first, the post");
    let records = desk.records().await;
    assert_eq!(records.len(), 1, "{records:?}");
    assert_eq!(records[0].status, InboundStatus::Processed);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_outage_during_the_post_is_the_callers_to_retry() {
    let desk = Desk::open().await;
    // Whether a commit an outage interrupted went through is not known: storing the message
    // again could double it, so the caller, who still holds it, is told and sends it again.
    desk.refuse(1, Refusal::Outage);
    let raw = mail("Bo <bo@example.com>", "Down", "<o2@example.com>");
    let (outcome, writes) = desk.receive(&raw, None).await;
    assert!(
        matches!(outcome, Err(Error::Store(StoreError::Unavailable(_)))),
        "{outcome:?}"
    );
    assert_eq!(writes, 1);
    assert!(desk.records().await.is_empty());

    let (again, writes) = desk.receive(&raw, None).await;
    assert_eq!(again.expect("posted").status, InboundStatus::Processed);
    assert_eq!(writes, 1);
    assert_eq!(desk.records().await.len(), 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_reply_to_a_ticket_closed_for_good_opens_one_new_ticket() {
    let desk = Desk::open().await;
    let (first, _) = desk
        .receive(
            &mail("Ed <ed@example.com>", "Printer", "<c1@example.com>"),
            None,
        )
        .await;
    let old = first.expect("posted").ticket.expect("a ticket");
    let archive = update_ticket(
        old.clone(),
        TicketChanges {
            status: Some(StatusRef::Name("Archived".into())),
            ..TicketChanges::default()
        },
        Actor::system(),
    );
    let store: &dyn Store = &desk.store;
    store.write(archive).await.expect("archived");

    // The reply threads onto the archived ticket, whose status allows no reopening: the
    // posting transaction is refused (rolling back the message's record with it) and the
    // mail opens a new ticket instead, in a transaction of its own.
    let reply = format!(
        "From: Ed <ed@example.com>\r\nTo: support@helpline.test\r\nSubject: Re: Printer [#{old}]\r\n\
         Message-ID: <c2@example.com>\r\nIn-Reply-To: <c1@example.com>\r\n\
         References: <c1@example.com>\r\n\r\nStill on fire.\r\n"
    );
    let (outcome, writes) = desk.receive(reply.as_bytes(), None).await;
    let outcome = outcome.expect("posted");
    assert_eq!(outcome.status, InboundStatus::Processed, "{outcome:?}");
    assert!(
        outcome.rule.contains("a new ticket instead"),
        "{}",
        outcome.rule
    );
    let new = outcome.ticket.expect("a ticket");
    assert_ne!(new, old);
    assert_eq!(writes, 2, "the refused reply, the new ticket");
    assert_eq!(desk.records().await.len(), 2, "one record per message");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_mailbox_message_stored_before_is_processed_once() {
    let desk = Desk::open().await;
    let raw = mail("Fay <fay@example.com>", "Stored", "<s1@example.com>");
    // Stored (as a mailbox fetch does) but not processed yet.
    let stored = store_raw(
        &desk.store,
        NewInbound {
            source: "imap".into(),
            mailbox: Some("INBOX".into()),
            source_uid: Some("9".into()),
            raw: raw.clone(),
        },
    )
    .await
    .expect("stored");
    let (outcome, _) = desk.receive(&raw, Some("9")).await;
    let outcome = outcome.expect("processed");
    assert_eq!(outcome.inbound_id, stored);
    assert_eq!(outcome.status, InboundStatus::Processed, "{outcome:?}");
    assert!(outcome.ticket.is_some());
    assert_eq!(desk.records().await.len(), 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_mailbox_message_received_twice_is_posted_once() {
    let desk = Desk::open().await;
    let raw = mail("Cy <cy@example.com>", "Twice", "<t1@example.com>");
    let (first, writes) = desk.receive(&raw, Some("17")).await;
    let first = first.expect("posted");
    assert_eq!(first.status, InboundStatus::Processed);
    assert_eq!(writes, 1);
    let (second, _) = desk.receive(&raw, Some("17")).await;
    let second = second.expect("known");
    assert_eq!(second.inbound_id, first.inbound_id);
    assert_eq!(second.status, InboundStatus::Processed);
    assert_eq!(second.ticket, first.ticket);
    assert_eq!(desk.records().await.len(), 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_attachment_limit_applies_to_new_tickets_by_mail() {
    let mut desk = Desk::open().await;
    desk.settings.max_attachment_bytes = 1000;
    let part = |name: &str, bytes: usize| {
        format!(
            "--b\r\nContent-Type: application/octet-stream\r\n\
             Content-Disposition: attachment; filename=\"{name}\"\r\n\
             Content-Transfer-Encoding: base64\r\n\r\n{}\r\n",
            "QUFB".repeat(bytes / 3)
        )
    };
    let raw = format!(
        "From: Di <di@example.com>\r\nTo: support@helpline.test\r\nSubject: Logs\r\n\
         Message-ID: <att1@example.com>\r\nMIME-Version: 1.0\r\n\
         Content-Type: multipart/mixed; boundary=\"b\"\r\n\r\n\
         --b\r\nContent-Type: text/plain\r\n\r\nLogs attached.\r\n{}{}--b--\r\n",
        part("small.log", 600),
        part("big.log", 3000)
    );
    let (outcome, _) = desk.receive(raw.as_bytes(), None).await;
    let outcome = outcome.expect("posted");
    assert_eq!(outcome.status, InboundStatus::Processed, "{outcome:?}");
    let number = outcome.ticket.expect("a ticket");
    let mut reader = desk.store.reader().await.expect("reader");
    let ticket = reader
        .ticket_by_number(&number)
        .await
        .expect("lookup")
        .expect("ticket");
    let entries = reader.entries(ticket.id).await.expect("entries");
    let names: Vec<&str> = entries[0]
        .attachments
        .iter()
        .map(|a| a.filename.as_str())
        .collect();
    assert_eq!(
        names,
        ["small.log"],
        "the 3,000-byte file is over the limit"
    );
}
