//! Replies to mail an osTicket desk sent before its move to Helpline: with the old desk's
//! `SECRET_SALT` stored and its thread entries mapped to ours, a reply naming one of that desk's
//! signed Message-IDs threads onto the imported ticket; a forged, tampered or foreign id does
//! not. Runs the real intake pipeline on a SQLite store in a temporary directory.

use helpline_core::inbound::{InboundStatus, NewInbound};
use helpline_core::legacy::{LegacyKind, OSTICKET_SECRET_SALT_SETTING};
use helpline_core::service::DeskSettings;
use helpline_core::store::Store;
use helpline_core::thread::ThreadEntry;
use helpline_core::ticket::TicketNumber;
use helpline_mail::osticket_id::{OsticketInstallation, RecipientClass};
use helpline_mail::pipeline::{IntakeOutcome, IntakeSettings, receive};
use helpline_store_sqlite::SqliteStore;

/// The old desk's salt (as in its `ost-config.php`).
const SALT: &str = "Xk3vQ9pL2mN7rT5wY8zB4cF6hJ1dG0sA";
/// The osTicket `thread_entry.id` the old desk's mail was about.
const OLD_ENTRY: u32 = 4242;

struct Desk {
    _dir: tempfile::TempDir,
    store: SqliteStore,
    settings: IntakeSettings,
}

impl Desk {
    async fn open() -> Self {
        let dir = tempfile::tempdir().expect("temporary directory");
        let url = format!("sqlite://{}", dir.path().join("helpline.db").display());
        let store = SqliteStore::open(&url).await.expect("open the store");
        let settings = IntakeSettings::load(&store, vec!["support@helpline.test".into()])
            .await
            .expect("intake settings");
        Self {
            _dir: dir,
            store,
            settings,
        }
    }

    /// The store as the services take it (`write` is a method of `dyn Store`).
    fn store(&self) -> &dyn Store {
        &self.store
    }

    async fn receive(&self, raw: Vec<u8>) -> IntakeOutcome {
        receive(
            &self.store,
            &DeskSettings::default(),
            &self.settings,
            NewInbound {
                source: "pipe".into(),
                mailbox: None,
                source_uid: None,
                raw,
            },
        )
        .await
        .expect("intake")
    }

    async fn put_setting(&self, name: &'static str, value: &str) {
        let value = value.to_owned();
        self.store()
            .write(move |tx| Box::pin(async move { Ok(tx.put_setting(name, &value).await?) }))
            .await
            .expect("setting stored");
    }

    async fn entries(&self, number: &TicketNumber) -> Vec<ThreadEntry> {
        let mut reader = self.store.reader().await.expect("reader");
        let ticket = reader
            .ticket_by_number(number)
            .await
            .expect("lookup")
            .expect("ticket");
        reader.entries(ticket.id).await.expect("entries")
    }
}

fn mail(from: &str, subject: &str, message_id: &str, headers: &str, body: &str) -> Vec<u8> {
    format!(
        "From: {from}\r\nTo: Support <support@helpline.test>\r\nSubject: {subject}\r\n\
         Message-ID: {message_id}\r\nDate: Thu, 03 Dec 2026 10:00:00 +0000\r\n{headers}\
         Content-Type: text/plain; charset=utf-8\r\n\r\n{body}\r\n"
    )
    .into_bytes()
}

fn reply_to(id: &str) -> String {
    format!("In-Reply-To: {id}\r\nReferences: <older@mail.example.com> {id}\r\n")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn replies_to_osticket_mail_thread_onto_the_imported_ticket() {
    let desk = Desk::open().await;

    // The imported ticket: one customer message, recorded as osTicket's entry 4242.
    let opened = desk
        .receive(mail(
            "Ann Customer <ann@example.com>",
            "Printer on fire",
            "<first@mail.example.com>",
            "",
            "The printer is smoking.",
        ))
        .await;
    let number = opened.ticket.clone().expect("a ticket was opened");
    let entry = opened.entry_id.expect("an entry was posted");
    let entry_raw = entry.0;
    desk.store()
        .write(move |tx| {
            Box::pin(async move {
                Ok(tx
                    .record_legacy_id(LegacyKind::Entry, i64::from(OLD_ENTRY), entry_raw)
                    .await?)
            })
        })
        .await
        .expect("legacy id recorded");
    let old_desk = OsticketInstallation::new(SALT).expect("salt");
    // What the old desk sent Ann about that entry (thread 900, Ann was user 17 there).
    let sent = old_desk.encode_b(
        17,
        OLD_ENTRY,
        900,
        RecipientClass::Owner,
        "a1b2c",
        "support@old-desk.example",
    );
    // The very id osTicket's own mailer makes for these values (run under PHP).
    assert_eq!(
        sent,
        "<BYs1dp7-a1b2c-EQAAAJIQAACEAwAAVVm+4UNh-support@old-desk.example>"
    );

    // Before the salt is stored, the old desk's ids mean nothing: a new ticket.
    let before = desk
        .receive(mail(
            "Ann Customer <ann@example.com>",
            "Re: Printer on fire",
            "<before-salt@mail.example.com>",
            &reply_to(&sent),
            "Any news?",
        ))
        .await;
    assert_eq!(before.status, InboundStatus::Processed);
    assert_ne!(before.ticket.as_ref(), Some(&number), "{}", before.rule);

    desk.put_setting(OSTICKET_SECRET_SALT_SETTING, SALT).await;

    // The owner's reply to the old desk's mail threads (no subject tag, no stored Message-ID).
    let reply = desk
        .receive(mail(
            "Ann Customer <ann@example.com>",
            "Re: Printer on fire",
            "<reply@mail.example.com>",
            &reply_to(&sent),
            "It is out now.\r\n\r\nOn Mon, 30 Nov 2026 at 09:00, Old Desk <support@old-desk.example> wrote:\r\n> We are looking into it.",
        ))
        .await;
    assert_eq!(reply.status, InboundStatus::Processed, "{}", reply.rule);
    assert_eq!(reply.ticket.as_ref(), Some(&number), "{}", reply.rule);
    assert!(reply.rule.contains("osTicket"), "{}", reply.rule);
    let thread = desk.entries(&number).await;
    assert_eq!(thread.len(), 2);
    assert_eq!(thread[1].id, reply.entry_id.expect("entry"));
    assert_eq!(thread[1].body.as_str().trim(), "It is out now.");
    assert!(!thread[1].flags.unknown_sender, "the owner is the owner");

    // Someone else with the same id is treated as any header match of a non-participant:
    // posted, flagged, never made a collaborator.
    let stranger = desk
        .receive(mail(
            "Mallory <mallory@evil.example>",
            "Re: Printer on fire",
            "<stranger@evil.example>",
            &format!("In-Reply-To: {sent}\r\n"),
            "Click my link.",
        ))
        .await;
    assert_eq!(stranger.ticket.as_ref(), Some(&number), "{}", stranger.rule);
    let thread = desk.entries(&number).await;
    assert!(
        thread[2].flags.unknown_sender,
        "a non-participant is flagged"
    );

    // Only the body marker survived (a client that drops In-Reply-To and References).
    let quoted = format!(
        "Thanks.\r\n\r\n> We are looking into it.\r\n> Ref-Mid: {}\r\n",
        sent.trim_matches(['<', '>'])
    );
    let by_body = desk
        .receive(mail(
            "Ann Customer <ann@example.com>",
            "Printer",
            "<by-body@mail.example.com>",
            "",
            &quoted,
        ))
        .await;
    assert_eq!(by_body.ticket.as_ref(), Some(&number), "{}", by_body.rule);
    assert!(by_body.rule.contains("in its body"), "{}", by_body.rule);

    // A tampered signature, another desk's salt, an entry never imported: new tickets.
    let inner = sent.trim_matches(['<', '>']);
    let parts: Vec<&str> = inner.splitn(4, '-').collect();
    let mut tag: Vec<char> = parts[2].chars().collect();
    let last = tag.len() - 1;
    tag[last] = if tag[last] == 'A' { 'B' } else { 'A' };
    let tampered = format!(
        "<{}-{}-{}-{}>",
        parts[0],
        parts[1],
        tag.iter().collect::<String>(),
        parts[3]
    );
    let foreign = OsticketInstallation::new("some other desk's salt")
        .expect("salt")
        .encode_b(
            17,
            OLD_ENTRY,
            900,
            RecipientClass::Owner,
            "a1b2c",
            "support@old-desk.example",
        );
    let not_imported = old_desk.encode_b(
        17,
        OLD_ENTRY + 1,
        900,
        RecipientClass::Owner,
        "a1b2c",
        "support@old-desk.example",
    );
    for (label, id) in [
        ("tampered", &tampered),
        ("foreign", &foreign),
        ("not imported", &not_imported),
    ] {
        let outcome = desk
            .receive(mail(
                "Ann Customer <ann@example.com>",
                "Re: Printer on fire",
                &format!("<{}@mail.example.com>", label.replace(' ', "-")),
                &format!("In-Reply-To: {id}\r\n"),
                "Hello again.",
            ))
            .await;
        assert_eq!(outcome.status, InboundStatus::Processed, "{label}");
        assert!(outcome.ticket.is_some(), "{label}: {}", outcome.rule);
        assert_ne!(
            outcome.ticket.as_ref(),
            Some(&number),
            "{label}: {}",
            outcome.rule
        );
        assert!(
            outcome.rule.contains("new ticket"),
            "{label}: {}",
            outcome.rule
        );
    }

    // Mail the old desk itself sent arriving here is a loop, not a customer message.
    let looped = desk
        .receive(mail(
            "Old Desk <support@old-desk.example>",
            "Ticket updated",
            &old_desk.encode_b(
                17,
                OLD_ENTRY,
                900,
                RecipientClass::Staff,
                "zz_99",
                "support@old-desk.example",
            ),
            "",
            "A staff alert.",
        ))
        .await;
    assert_eq!(looped.status, InboundStatus::Ignored, "{}", looped.rule);
    assert_eq!(desk.entries(&number).await.len(), 4);

    // The setting is read for each message: with the salt cleared, the id no longer threads.
    desk.put_setting(OSTICKET_SECRET_SALT_SETTING, "").await;
    let cleared = desk
        .receive(mail(
            "Ann Customer <ann@example.com>",
            "Re: Printer on fire",
            "<after-clear@mail.example.com>",
            &reply_to(&sent),
            "Still there?",
        ))
        .await;
    assert_ne!(cleared.ticket.as_ref(), Some(&number), "{}", cleared.rule);
}
