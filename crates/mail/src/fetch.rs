//! Fetching from mailboxes: one round over a [`MailSource`] (IMAP folder, POP3 maildrop).
//!
//! Nothing lost, nothing doubled: each message is stored under its mailbox and unique id
//! (IMAP `UIDVALIDITY:UID`, POP3 UIDL) before anything else, processed, and only once its
//! outcome is committed is it flagged, moved or deleted in the mailbox. A crash anywhere in
//! between leaves the message in the mailbox; the next round finds it already stored (same
//! mailbox, same id) and only finishes what was left — it never posts twice. A message that
//! cannot be processed is quarantined and then handled like any other, so it never blocks the
//! mailbox.

use crate::pipeline::{self, IntakeOutcome, IntakeSettings};
use helpline_core::Error;
use helpline_core::inbound::{InboundStatus, NewInbound};
use helpline_core::mailbox::{AfterFetch, Mailbox};
use helpline_core::service::DeskSettings;
use helpline_core::store::Store;

/// A message waiting in a mailbox.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Waiting {
    /// How the source addresses it in this session (IMAP UID, POP3 message number).
    pub handle: u32,
    /// Its id, stable across sessions (`UIDVALIDITY:UID`, UIDL).
    pub unique_id: String,
    /// Where the mailbox stands once this message is handled, for sources that read by
    /// position (IMAP: `UIDVALIDITY:UID`); `None` for those that list everything (POP3).
    pub position: Option<String>,
}

/// Why talking to a mailbox failed.
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct SourceError(pub String);

/// A mailbox session, whatever the protocol.
#[async_trait::async_trait]
pub trait MailSource: Send {
    /// The protocol's name for records (`imap`, `pop3`).
    fn protocol(&self) -> &'static str;
    /// Messages waiting to be taken in: those after `position` (as a previous round recorded
    /// it), or, without one, those the source considers new (IMAP: unseen).
    async fn waiting(&mut self, position: Option<&str>) -> Result<Vec<Waiting>, SourceError>;
    /// A message's raw bytes, without changing its state in the mailbox; `Ok(None)` when it is
    /// larger than `max_bytes` (it is then left where it is).
    async fn fetch(
        &mut self,
        message: &Waiting,
        max_bytes: usize,
    ) -> Result<Option<Vec<u8>>, SourceError>;
    /// Marks, moves or deletes a message whose outcome is committed.
    async fn done(&mut self, message: &Waiting, after: &AfterFetch) -> Result<(), SourceError>;
    /// Ends the session (POP3 deletions take effect here).
    async fn close(self: Box<Self>) -> Result<(), SourceError>;
}

/// What one round did.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct RoundReport {
    /// Messages taken in and processed this round (first time).
    pub new: usize,
    /// Messages found stored already (a round interrupted before) and finished now.
    pub resumed: usize,
    /// Of all of them, how many were quarantined.
    pub quarantined: usize,
    /// Outcomes, in mailbox order.
    pub outcomes: Vec<IntakeOutcome>,
}

/// The key inbound records of `mailbox` are stored under.
pub fn mailbox_key(mailbox: &Mailbox) -> String {
    format!("mailbox:{}", mailbox.id)
}

/// Takes in every waiting message of `source`. Stops at the first database error (the messages
/// stay in the mailbox for the next round); a source error on one message stops the round too,
/// since the connection is likely gone.
pub async fn fetch_round(
    store: &dyn Store,
    desk: &DeskSettings,
    settings: &IntakeSettings,
    mailbox: &Mailbox,
    mut source: Box<dyn MailSource>,
) -> Result<RoundReport, FetchError> {
    let key = mailbox_key(mailbox);
    let position_setting = format!("{key}:position");
    let mut report = RoundReport::default();
    let position = store
        .reader()
        .await
        .map_err(|e| FetchError::Store(e.into()))?
        .setting(&position_setting)
        .await
        .map_err(|e| FetchError::Store(e.into()))?;
    let waiting = source
        .waiting(position.as_deref())
        .await
        .map_err(FetchError::Source)?;
    for message in waiting {
        // Read the bytes even for a message stored before: a lookup by id alone would save the
        // transfer, but this path only runs after an interrupted round.
        let limit = settings.max_message_bytes;
        let fetched = source
            .fetch(&message, limit)
            .await
            .map_err(FetchError::Source)?;
        let oversized = fetched.is_none();
        let record = NewInbound {
            source: source.protocol().to_owned(),
            mailbox: Some(key.clone()),
            source_uid: Some(message.unique_id.clone()),
            raw: fetched.unwrap_or_default(),
        };
        let (stored, created) = store
            .write(move |tx| {
                Box::pin(async move {
                    let (record, created) =
                        tx.insert_inbound(&record, helpline_core::now()).await?;
                    Ok((record.id, created))
                })
            })
            .await
            .map_err(FetchError::Store)?;
        if oversized {
            // Too large to take in: recorded in the quarantine, and left in the mailbox (never
            // deleted unread) for an operator to deal with; the rest of the mailbox goes on.
            let outcome = pipeline::quarantine_unfetched(
                store,
                stored,
                format!("larger than the limit of {limit} bytes: left in the mailbox"),
            )
            .await
            .map_err(FetchError::Store)?;
            if created {
                report.new += 1;
                report.quarantined += 1;
            }
            report.outcomes.push(outcome);
            record_position(store, &position_setting, &message).await?;
            continue;
        }
        let outcome = pipeline::process(store, desk, settings, stored)
            .await
            .map_err(FetchError::Store)?;
        if outcome.status == InboundStatus::Pending {
            // Not finished (should not happen): leave it in the mailbox for the next round.
            continue;
        }
        if created {
            report.new += 1;
        } else {
            report.resumed += 1;
        }
        if outcome.status == InboundStatus::Quarantined {
            report.quarantined += 1;
        }
        report.outcomes.push(outcome);
        source
            .done(&message, &mailbox.after_fetch)
            .await
            .map_err(FetchError::Source)?;
        record_position(store, &position_setting, &message).await?;
    }
    source.close().await.map_err(FetchError::Source)?;
    Ok(report)
}

/// Remembers that the mailbox is handled up to `message`, so the next round asks only for
/// what came after — read or unread (a message someone opened in a mail client before
/// Helpline fetched it is still taken in).
async fn record_position(
    store: &dyn Store,
    setting: &str,
    message: &Waiting,
) -> Result<(), FetchError> {
    let Some(position) = message.position.clone() else {
        return Ok(());
    };
    let setting = setting.to_owned();
    store
        .write(move |tx| {
            Box::pin(async move {
                tx.put_setting(&setting, &position).await?;
                Ok(())
            })
        })
        .await
        .map_err(FetchError::Store)
}

/// Why a round stopped.
#[derive(Debug, thiserror::Error)]
pub enum FetchError {
    /// The mailbox server failed or refused.
    #[error("mailbox: {0}")]
    Source(SourceError),
    /// The database failed; nothing in the mailbox was touched for the message concerned.
    #[error("database: {0}")]
    Store(Error),
}

/// Opens a session on a mailbox (IMAP or POP3; tests pass a scripted one).
pub type Connector = dyn Fn(&Mailbox) -> futures::future::BoxFuture<'static, Result<Box<dyn MailSource>, SourceError>>
    + Send
    + Sync;

/// How long a round may hold a mailbox's lease; the lease is handed back when the round ends,
/// and a dead node's lease runs out after this.
pub const LEASE: time::Duration = time::Duration::minutes(2);

/// One fetch round over every mailbox this node can lease (`holder` names the node). Each
/// mailbox's outcome is recorded on it (`last_fetch_at`, `last_error`); one failing mailbox
/// does not stop the others.
pub async fn fetch_all(
    store: &dyn Store,
    desk: &DeskSettings,
    settings: &IntakeSettings,
    holder: &str,
    connect: &Connector,
) -> Result<Vec<(Mailbox, Result<RoundReport, String>)>, Error> {
    let mailboxes = store.reader().await?.mailboxes().await?;
    let mut results = Vec::with_capacity(mailboxes.len());
    for mailbox in mailboxes {
        if let Some(result) = fetch_one(store, desk, settings, holder, connect, &mailbox).await? {
            results.push((mailbox, result));
        }
    }
    Ok(results)
}

/// One round on one mailbox, if this node gets its lease (`None` otherwise).
pub async fn fetch_one(
    store: &dyn Store,
    desk: &DeskSettings,
    settings: &IntakeSettings,
    holder: &str,
    connect: &Connector,
    mailbox: &Mailbox,
) -> Result<Option<Result<RoundReport, String>>, Error> {
    let id = mailbox.id;
    let owner = holder.to_owned();
    let leased = store
        .write(move |tx| {
            Box::pin(async move {
                let now = helpline_core::now();
                Ok(tx.lease_mailbox(id, &owner, now, now + LEASE).await?)
            })
        })
        .await?;
    if !leased {
        return Ok(None);
    }
    let result = match connect(mailbox).await {
        Ok(source) => fetch_round(store, desk, settings, mailbox, source)
            .await
            .map_err(|e| e.to_string()),
        Err(error) => Err(format!("cannot connect: {error}")),
    };
    let error = result.as_ref().err().cloned();
    if let Some(error) = &error {
        tracing::warn!(mailbox = %mailbox.address.redacted(), %error, "fetch round failed");
    }
    let owner = holder.to_owned();
    store
        .write(move |tx| {
            Box::pin(async move {
                let now = helpline_core::now();
                tx.mailbox_fetched(id, error.as_deref(), now).await?;
                // Hand the lease back: it guards a round, not the time between rounds, so any
                // node (or `helpline mail fetch`) may run the next one.
                tx.lease_mailbox(id, &owner, now, now).await?;
                Ok(())
            })
        })
        .await?;
    Ok(Some(result))
}

/// Keeps one mailbox fetched until `stop` resolves: a round whenever this node holds the lease,
/// then — for IMAP servers that offer IDLE — waiting on IDLE so new mail is taken in within
/// moments, or else sleeping the mailbox's poll interval.
pub async fn watch_mailbox(
    store: std::sync::Arc<dyn Store>,
    desk: std::sync::Arc<DeskSettings>,
    settings: std::sync::Arc<IntakeSettings>,
    holder: String,
    connect: std::sync::Arc<Connector>,
    id: helpline_core::mailbox::MailboxId,
    mut stop: tokio::sync::watch::Receiver<bool>,
) {
    loop {
        if *stop.borrow() {
            return;
        }
        let mailbox = match store.reader().await {
            Ok(mut reader) => reader.mailbox(id).await,
            Err(error) => Err(error),
        };
        let mailbox = match mailbox {
            Ok(Some(mailbox)) => mailbox,
            Ok(None) => return, // removed
            Err(error) => {
                tracing::warn!(mailbox = %id, %error, "cannot read the mailbox; retrying");
                if wait_or_stop(&mut stop, std::time::Duration::from_secs(10)).await {
                    return;
                }
                continue;
            }
        };
        let progressed = match fetch_one(&*store, &desk, &settings, &holder, &*connect, &mailbox)
            .await
        {
            Ok(Some(Ok(report))) if report.new + report.resumed > 0 => {
                tracing::info!(mailbox = %mailbox.address.redacted(), new = report.new, resumed = report.resumed, "mail fetched");
                true
            }
            Ok(_) => false,
            Err(error) => {
                tracing::warn!(mailbox = %id, %error, "fetch round failed");
                false
            }
        };
        let interval = std::time::Duration::from_secs(u64::from(mailbox.poll_seconds.max(5)));
        // Look for mail that arrived during the round only after a round that took some in: a
        // round that failed, was skipped (another node's lease) or found only messages it
        // cannot take (too large) must not turn into a tight reconnect loop.
        let idled = mailbox.address.protocol.is_imap()
            && idle_until_mail(
                &mailbox,
                &settings.mail_tls,
                interval,
                progressed,
                &mut stop,
            )
            .await;
        if !idled && wait_or_stop(&mut stop, interval).await {
            return;
        }
    }
}

/// Waits on IMAP IDLE until new mail arrives or `wait` passes. `false` when IDLE could not be
/// used (the caller then sleeps instead).
async fn idle_until_mail(
    mailbox: &Mailbox,
    tls: &crate::tls::TlsSettings,
    wait: std::time::Duration,
    look_first: bool,
    stop: &mut tokio::sync::watch::Receiver<bool>,
) -> bool {
    let Ok(mut session) = crate::sources::connect_imap(&mailbox.address, tls).await else {
        return false;
    };
    if !session.supports_idle() {
        let _ = session.logout().await;
        return false;
    }
    // Mail that arrived after the last round's search but before this session opened would
    // announce itself to nobody: look first, and go straight back to a round if any is waiting.
    match if look_first {
        session.unseen_uids().await
    } else {
        Ok(Vec::new())
    } {
        Ok(waiting) if !waiting.is_empty() => {
            let _ = session.logout().await;
            return true;
        }
        Ok(_) => {}
        Err(_) => {
            let _ = session.logout().await;
            return false;
        }
    }
    let idle = session.idle(wait);
    let used = tokio::select! {
        outcome = idle => outcome.is_ok(),
        _ = stop.changed() => true,
    };
    let _ = session.logout().await;
    used
}

/// Sleeps `wait`; `true` when told to stop meanwhile.
async fn wait_or_stop(
    stop: &mut tokio::sync::watch::Receiver<bool>,
    wait: std::time::Duration,
) -> bool {
    tokio::select! {
        () = tokio::time::sleep(wait) => *stop.borrow(),
        changed = stop.changed() => changed.is_err() || *stop.borrow(),
    }
}
