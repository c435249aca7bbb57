//! Fetch rounds over a scripted mailbox: nothing lost, nothing doubled, even when the session
//! dies between the commit and the flag/move/delete.

use crate::on_both_stores;
use crate::support::{Backend, TestApp};
use helpline_core::inbound::InboundStatus;
use helpline_core::mailbox::{AfterFetch, Mailbox, MailboxAddress, MailboxId};
use helpline_mail::fetch::{MailSource, SourceError, Waiting, fetch_round};
use std::sync::{Arc, Mutex};

/// A mailbox in memory: what is in it, and what was done to what.
#[derive(Debug, Default)]
struct FakeBox {
    messages: Vec<(String, Vec<u8>)>,
    done: Vec<(String, String)>,
    /// Unique ids the fake reports as too large to fetch.
    oversized: Vec<String>,
    /// How often each message was read.
    fetched: std::collections::HashMap<String, usize>,
    /// `done` succeeds this many more times, then fails (the session dies right after a
    /// commit); `None` never fails.
    fail_after: Option<usize>,
}

struct FakeSource(Arc<Mutex<FakeBox>>);

#[async_trait::async_trait]
impl MailSource for FakeSource {
    fn protocol(&self) -> &'static str {
        "imap"
    }

    async fn waiting(&mut self, _position: Option<&str>) -> Result<Vec<Waiting>, SourceError> {
        let state = self.0.lock().map_err(|e| SourceError(e.to_string()))?;
        Ok(state
            .messages
            .iter()
            .enumerate()
            .map(|(i, (id, _))| Waiting {
                handle: u32::try_from(i).unwrap_or(u32::MAX),
                unique_id: id.clone(),
                position: None,
            })
            .collect())
    }

    async fn fetch(
        &mut self,
        message: &Waiting,
        _max: usize,
    ) -> Result<Option<Vec<u8>>, SourceError> {
        let mut state = self.0.lock().map_err(|e| SourceError(e.to_string()))?;
        *state.fetched.entry(message.unique_id.clone()).or_default() += 1;
        if state.oversized.contains(&message.unique_id) {
            return Ok(None);
        }
        state
            .messages
            .iter()
            .find(|(id, _)| *id == message.unique_id)
            .map(|(_, raw)| Some(raw.clone()))
            .ok_or_else(|| SourceError("gone".into()))
    }

    async fn done(&mut self, message: &Waiting, after: &AfterFetch) -> Result<(), SourceError> {
        let mut state = self.0.lock().map_err(|e| SourceError(e.to_string()))?;
        match state.fail_after {
            Some(0) => {
                state.fail_after = None;
                return Err(SourceError("connection lost".into()));
            }
            Some(n) => state.fail_after = Some(n - 1),
            None => {}
        }
        state.messages.retain(|(id, _)| *id != message.unique_id);
        state
            .done
            .push((message.unique_id.clone(), after.to_stored()));
        Ok(())
    }

    async fn close(self: Box<Self>) -> Result<(), SourceError> {
        Ok(())
    }
}

fn mailbox() -> Mailbox {
    Mailbox {
        id: MailboxId(1),
        address: MailboxAddress::parse("imap://support:secret@127.0.0.1/INBOX").expect("url"),
        after_fetch: AfterFetch::Archive("Done".into()),
        poll_seconds: 60,
        created_at: helpline_core::now(),
        last_fetch_at: None,
        last_error: None,
    }
}

fn mail(i: usize) -> Vec<u8> {
    format!(
        "From: customer{}@example.com\r\nTo: support@helpline.test\r\nSubject: Fetched {i}\r\n\
         Message-ID: <fetched-{i}@example.com>\r\n\r\nMessage number {i}.\r\n",
        i % 7
    )
    .into_bytes()
}

on_both_stores!(
    interrupted_rounds_neither_lose_nor_double_messages,
    mailboxes_are_leased_to_one_node_and_record_their_rounds,
    oversized_messages_are_quarantined_and_left_in_the_mailbox,
);

async fn interrupted_rounds_neither_lose_nor_double_messages(backend: Backend) {
    let Some(app) = TestApp::spawn(backend).await else {
        return;
    };
    let desk = helpline_core::service::DeskSettings::default();
    let state = Arc::new(Mutex::new(FakeBox::default()));
    {
        let mut s = state.lock().expect("lock");
        for i in 0..300 {
            s.messages.push((format!("7:{i}"), mail(i)));
        }
        // One unreadable message must not block the rest.
        s.messages
            .insert(150, ("7:junk".into(), b"junk without headers".to_vec()));
    }
    // Sessions that die after a commit, again and again, until the mailbox is empty.
    let mut rounds = 0;
    let mut resumed = 0;
    while !state.lock().expect("lock").messages.is_empty() {
        rounds += 1;
        assert!(rounds < 200, "the mailbox never empties");
        // The session dies after a different number of messages each time, 25 times over.
        state.lock().expect("lock").fail_after = (rounds <= 25).then_some((rounds * 37) % 23);
        let round = fetch_round(
            &*app.store,
            &desk,
            &app.intake,
            &mailbox(),
            Box::new(FakeSource(Arc::clone(&state))),
        )
        .await;
        match round {
            Ok(report) => resumed += report.resumed,
            Err(helpline_mail::fetch::FetchError::Source(_)) => {}
            Err(other) => panic!("round failed: {other}"),
        }
    }
    {
        let s = state.lock().expect("lock");
        assert_eq!(s.done.len(), 301, "every message was archived exactly once");
        assert!(s.done.iter().all(|(_, action)| action == "archive:Done"));
    }
    let counts = app
        .store
        .reader()
        .await
        .expect("r")
        .row_counts()
        .await
        .expect("counts");
    assert_eq!(counts.inbound, 301, "each message stored once");
    assert_eq!(counts.tickets, 300, "each message posted once");
    let quarantined = app
        .store
        .reader()
        .await
        .expect("r")
        .inbound_list(InboundStatus::Quarantined, None, 10)
        .await
        .expect("q");
    assert_eq!(quarantined.len(), 1);
    let read_twice = state
        .lock()
        .expect("lock")
        .fetched
        .values()
        .filter(|n| **n > 1)
        .count();
    // Most of the 25 lost sessions died after a commit (a few rounds had fewer messages left
    // than the failure point): those messages were read again and finished, not posted again.
    assert!(
        read_twice >= 20,
        "only {read_twice} messages were resumed after a lost session"
    );
    resumed += read_twice;
    println!(
        "fetch: 301 messages in {rounds} interrupted rounds, {resumed} resumed after a lost session"
    );
    app.finish().await;
}

/// Rounds over registered mailboxes: each mailbox is fetched by the node holding its lease, and
/// the round's outcome is recorded on the mailbox.
async fn mailboxes_are_leased_to_one_node_and_record_their_rounds(backend: Backend) {
    let Some(app) = TestApp::spawn(backend).await else {
        return;
    };
    let desk = helpline_core::service::DeskSettings::default();
    let added = app
        .store
        .write(|tx| {
            Box::pin(async move {
                Ok(tx
                    .insert_mailbox(
                        &helpline_core::mailbox::NewMailbox {
                            address: MailboxAddress::parse(
                                "imap://support:secret@127.0.0.1:10143/INBOX",
                            )
                            .expect("url"),
                            after_fetch: AfterFetch::Seen,
                            poll_seconds: 30,
                        },
                        helpline_core::now(),
                    )
                    .await?)
            })
        })
        .await
        .expect("mailbox");
    let state = Arc::new(Mutex::new(FakeBox::default()));
    state
        .lock()
        .expect("lock")
        .messages
        .push(("9:1".into(), mail(1)));
    let shared = Arc::clone(&state);
    let connect: Box<helpline_mail::fetch::Connector> = Box::new(move |_| {
        let shared = Arc::clone(&shared);
        Box::pin(async move { Ok(Box::new(FakeSource(shared)) as Box<dyn MailSource>) })
    });
    let results =
        helpline_mail::fetch::fetch_all(&*app.store, &desk, &app.intake, "node-a", &*connect)
            .await
            .expect("round");
    assert_eq!(results.len(), 1);
    assert_eq!(results[0].1.as_ref().expect("ok").new, 1);
    // While another node holds the lease (in the middle of its round), this node leaves the
    // mailbox alone; once the lease is handed back, it may fetch.
    let id = added.id;
    let taken = app
        .store
        .write(move |tx| {
            Box::pin(async move {
                let now = helpline_core::now();
                Ok(tx
                    .lease_mailbox(id, "node-b", now, now + time::Duration::minutes(2))
                    .await?)
            })
        })
        .await
        .expect("lease");
    assert!(taken, "the lease was handed back after node-a's round");
    let skipped =
        helpline_mail::fetch::fetch_all(&*app.store, &desk, &app.intake, "node-a", &*connect)
            .await
            .expect("round");
    assert!(
        skipped.is_empty(),
        "node-a must not fetch while node-b's round holds the lease"
    );
    app.store
        .write(move |tx| {
            Box::pin(async move {
                let now = helpline_core::now();
                Ok(tx.lease_mailbox(id, "node-b", now, now).await?)
            })
        })
        .await
        .expect("release");
    // A failing server is recorded on the mailbox, and does not stop the round.
    let failing: Box<helpline_mail::fetch::Connector> =
        Box::new(|_| Box::pin(async { Err(SourceError("connection refused".into())) }));
    let results =
        helpline_mail::fetch::fetch_all(&*app.store, &desk, &app.intake, "node-a", &*failing)
            .await
            .expect("round");
    assert!(results[0].1.as_ref().is_err());
    let stored = app
        .store
        .reader()
        .await
        .expect("r")
        .mailbox(added.id)
        .await
        .expect("m")
        .expect("exists");
    assert!(
        stored
            .last_error
            .as_deref()
            .unwrap_or_default()
            .contains("connection refused")
    );
    assert!(stored.last_fetch_at.is_some());
    app.finish().await;
}

async fn oversized_messages_are_quarantined_and_left_in_the_mailbox(backend: Backend) {
    let Some(app) = TestApp::spawn(backend).await else {
        return;
    };
    let desk = helpline_core::service::DeskSettings::default();
    let state = Arc::new(Mutex::new(FakeBox::default()));
    {
        let mut s = state.lock().expect("lock");
        for i in 0..3 {
            s.messages.push((format!("5:{i}"), mail(i)));
        }
        s.oversized.push("5:1".into());
    }
    for _ in 0..2 {
        fetch_round(
            &*app.store,
            &desk,
            &app.intake,
            &mailbox(),
            Box::new(FakeSource(Arc::clone(&state))),
        )
        .await
        .expect("round");
    }
    {
        let s = state.lock().expect("lock");
        assert_eq!(
            s.messages.len(),
            1,
            "the oversized message stays in the mailbox"
        );
        assert_eq!(s.messages[0].0, "5:1");
        assert_eq!(s.done.len(), 2, "the others were taken in past it");
    }
    let mut reader = app.store.reader().await.expect("r");
    let quarantined = reader
        .inbound_list(InboundStatus::Quarantined, None, 10)
        .await
        .expect("q");
    assert_eq!(
        quarantined.len(),
        1,
        "recorded once, however often it is seen"
    );
    assert!(
        quarantined[0]
            .rule
            .as_deref()
            .unwrap_or_default()
            .contains("larger than"),
        "{:?}",
        quarantined[0].rule
    );
    assert_eq!(reader.row_counts().await.expect("counts").tickets, 2);
    drop(reader);
    app.finish().await;
}
