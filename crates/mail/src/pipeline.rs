//! The one intake pipeline every source uses (HTTP, pipe, IMAP, POP3): parse, classify,
//! thread, strip and post — the post and the record of its outcome in one transaction, so a
//! message is posted once however often it is processed, and a message that cannot be
//! processed is quarantined with its error, never lost.
//!
//! Where the raw bytes are stored depends on who still holds them. A mailbox message and a
//! piped one are stored first, on their own, before anything else is tried: the mailbox or the
//! mail server is told as soon as that commit is durable; a crash after it leaves the message
//! pending, to be processed again. A message posted over HTTP ([`receive`]) is stored by the
//! transaction that posts it, in one durable commit; its sender holds it until the answer (a
//! crash before it leaves nothing, and the unanswered sender sends it again), and when that
//! transaction is refused it is stored first after all and processed as above.

use crate::classify::{MailClass, classify};
use crate::message_id::{self, MailSecret};
use crate::osticket_id::{self, OsticketInstallation, OsticketMessageId};
use crate::parse::{DEFAULT_MAX_MESSAGE_BYTES, InboundMail};
use crate::strip;
use helpline_core::attachment::NewAttachment;
use helpline_core::body::{BodyFormat, MessageBody};
use helpline_core::email::EmailAddress;
use helpline_core::event::Actor;
use helpline_core::ids::{EntryId, TicketId};
use helpline_core::inbound::{InboundId, InboundOutcome, InboundRecord, InboundStatus, NewInbound};
use helpline_core::legacy::{LegacyKind, OSTICKET_SECRET_SALT_SETTING};
use helpline_core::service::posting::{
    CustomerMessage, CustomerRef, InternalNote, NoteAuthor, StaffRef, post_customer_message,
    post_internal_note,
};
use helpline_core::service::tickets::open_ticket_work;
use helpline_core::service::updates::{CollaboratorRef, add_collaborator};
use helpline_core::service::{DeskSettings, Work};
use helpline_core::store::{Reader, Store, Writer};
use helpline_core::thread::{EntryFlags, MailIds};
use helpline_core::ticket::{NewTicket, NotifyOptions, Source, Subject, Ticket, TicketNumber};
use helpline_core::user::CustomerContact;
use helpline_core::{Error, StoreError};
use std::sync::Arc;

/// What the pipeline needs to know about the desk.
#[derive(Debug, Clone)]
pub struct IntakeSettings {
    /// Signs and recognises our Message-IDs.
    pub secret: MailSecret,
    /// Our own addresses (lower case): never customers, never collaborators; mail from them is
    /// our own coming back.
    pub system_addresses: Vec<String>,
    /// Largest message processed; larger ones are quarantined.
    pub max_message_bytes: usize,
    /// Largest attachment kept; larger ones are left out and noted.
    pub max_attachment_bytes: usize,
    /// Which servers `imaps://` and `pop3s://` mailboxes trust: the public roots by default;
    /// whoever fetches mail sets it from `mail_tls_ca_file`.
    pub mail_tls: crate::tls::TlsSettings,
}

impl IntakeSettings {
    /// Settings with the database's secret (created on first use) and default limits.
    pub async fn load(store: &dyn Store, system_addresses: Vec<String>) -> Result<Self, Error> {
        let candidate = MailSecret::generate_hex();
        let stored = store
            .write(move |tx| {
                Box::pin(async move {
                    Ok(tx
                        .init_setting(message_id::SECRET_SETTING, &candidate)
                        .await?)
                })
            })
            .await?;
        let secret = MailSecret::from_hex(&stored).ok_or_else(|| {
            Error::Store(StoreError::Corrupt(
                "the stored mail secret is not valid hex".into(),
            ))
        })?;
        Self::with_secret(store, secret, system_addresses).await
    }

    /// Like [`IntakeSettings::load`] but writing nothing: when no secret exists yet, a
    /// throw-away one is used (no Message-ID of ours can exist then). For `mail inspect`.
    pub async fn load_read_only(
        store: &dyn Store,
        system_addresses: Vec<String>,
    ) -> Result<Self, Error> {
        let stored = store
            .reader()
            .await?
            .setting(message_id::SECRET_SETTING)
            .await?;
        let secret = stored
            .as_deref()
            .and_then(MailSecret::from_hex)
            .or_else(|| MailSecret::from_hex(&MailSecret::generate_hex()))
            .ok_or_else(|| Error::Store(StoreError::Corrupt("no usable mail secret".into())))?;
        Self::with_secret(store, secret, system_addresses).await
    }

    /// Our own addresses are the configured ones plus every mailbox's login that is an
    /// address: mail to them must never add them as collaborators, and mail from them is ours.
    async fn with_secret(
        store: &dyn Store,
        secret: MailSecret,
        system_addresses: Vec<String>,
    ) -> Result<Self, Error> {
        let mut system_addresses: Vec<String> = system_addresses
            .into_iter()
            .map(|a| a.trim().to_ascii_lowercase())
            .collect();
        for mailbox in store.reader().await?.mailboxes().await? {
            let login = mailbox.address.user.to_ascii_lowercase();
            if EmailAddress::parse(&login).is_ok() && !system_addresses.contains(&login) {
                system_addresses.push(login);
            }
        }
        Ok(Self {
            secret,
            system_addresses,
            max_message_bytes: DEFAULT_MAX_MESSAGE_BYTES,
            max_attachment_bytes: 16 * 1024 * 1024,
            mail_tls: crate::tls::TlsSettings::public_roots(),
        })
    }
}

/// How one message ended, for the caller (HTTP answer, pipe exit code, `mail inspect`).
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct IntakeOutcome {
    /// The stored record.
    pub inbound_id: InboundId,
    /// Processed, duplicate, ignored or quarantined.
    pub status: InboundStatus,
    /// `normal`, `auto_reply`, `bulk` or `bounce`.
    pub class: Option<String>,
    /// Why it landed where it did.
    pub rule: String,
    /// The ticket it went to.
    pub ticket: Option<TicketNumber>,
    /// The entry it became.
    pub entry_id: Option<EntryId>,
}

/// Stores `message` and processes it.
///
/// The raw bytes are at hand, so the message is parsed and its place decided first, and then
/// stored in the transaction that posts it and records the outcome: one durable commit per
/// message instead of two, and nothing is written before that commit, so a failure before it
/// leaves nothing behind and the caller (which still holds the message) is told. When that
/// transaction is refused (the sender may not post, a ticket is gone, the database refuses a
/// value, the same mailbox message was stored before) or the message cannot be parsed, it is
/// processed the careful way: stored as pending on its own, then processed, and quarantined
/// with the error when that fails again. A database outage is not retried that way: whether a
/// commit the outage interrupted went through is not known, and storing the message again
/// could double it; the caller is told and sends it again, as it would have when storing
/// first failed.
pub async fn receive(
    store: &dyn Store,
    desk: &DeskSettings,
    settings: &IntakeSettings,
    message: NewInbound,
) -> Result<IntakeOutcome, Error> {
    let message = Arc::new(message);
    if let Ok(mail) = InboundMail::parse(&message.raw, settings.max_message_bytes) {
        let record = Record::New(Arc::clone(&message));
        match post(store, desk, settings, &mail, &record).await {
            Ok(outcome) => return Ok(outcome),
            Err(error @ Error::Store(StoreError::Unavailable(_))) => return Err(error),
            Err(error) => {
                tracing::debug!(%error, "message not posted in one transaction; storing it first")
            }
        }
    }
    let message = Arc::unwrap_or_clone(message);
    receive_stored_first(store, desk, settings, message).await
}

/// Stores `message` as a pending record on its own, then processes it.
async fn receive_stored_first(
    store: &dyn Store,
    desk: &DeskSettings,
    settings: &IntakeSettings,
    message: NewInbound,
) -> Result<IntakeOutcome, Error> {
    let (id, stored) = store_new(store, message).await?;
    // A record this call created is pending and its bytes are at hand: processed without
    // reading them back (whoever else might process it meanwhile — a pending round — is
    // stopped by the check under lock in the posting transaction).
    let processed = match stored {
        Some(raw) => process_raw(store, desk, settings, id, &raw).await,
        None => process(store, desk, settings, id).await,
    };
    match processed {
        // Stored, so safe: the caller must not send it again. It stays pending and is finished
        // by the next processing round (start-up, every 30 s in `serve`, the cron route).
        Err(Error::Store(error)) => {
            tracing::warn!(inbound = %id, %error, "message stored, processing deferred");
            Ok(IntakeOutcome {
                inbound_id: id,
                status: InboundStatus::Pending,
                class: None,
                rule: format!("stored; processing deferred: {error}"),
                ticket: None,
                entry_id: None,
            })
        }
        other => other,
    }
}

/// Classifies, decides and posts `mail` (whose record is `record`); any error is returned as it
/// is, for the caller to decide between quarantine and storing first.
async fn post(
    store: &dyn Store,
    desk: &DeskSettings,
    settings: &IntakeSettings,
    mail: &InboundMail,
    record: &Record,
) -> Result<IntakeOutcome, Error> {
    let classification = classify(mail);
    let class = classification.class;
    let plan = decide(store, settings, mail, class).await?;
    let base = InboundOutcome {
        status: InboundStatus::Processed,
        class: Some(class.as_str().to_owned()),
        rule: String::new(),
        message_id: mail_ids(mail).message_id,
        ticket_id: None,
        entry_id: None,
    };
    apply(
        store,
        desk,
        settings,
        mail,
        class,
        &classification.rule,
        plan,
        base,
        record,
    )
    .await
}

/// The inbound record a posting transaction finishes.
#[derive(Clone)]
enum Record {
    /// Stored before, as pending.
    Stored(InboundId),
    /// Not stored yet: the posting transaction stores it, so that the message, its post and
    /// its outcome commit together.
    New(Arc<NewInbound>),
}

impl Record {
    /// Locks a stored record inside the posting transaction and returns its id when another
    /// worker finished it already (then nothing is to be posted). A new record is always this
    /// transaction's.
    async fn finished_elsewhere(&self, tx: &mut dyn Writer) -> Result<Option<InboundId>, Error> {
        match self {
            // Locked until commit: a second worker on the same message waits here, then sees
            // it processed and posts nothing.
            Self::Stored(id) => {
                Ok((tx.lock_inbound(*id).await? != Some(InboundStatus::Pending)).then_some(*id))
            }
            Self::New(_) => Ok(None),
        }
    }

    /// Records `outcome` — storing a new message with it, in one write (a mailbox message
    /// stored meanwhile makes that write fail, and the transaction with it) — and returns the
    /// record's id.
    async fn finish(
        &self,
        tx: &mut dyn Writer,
        outcome: &InboundOutcome,
    ) -> Result<InboundId, Error> {
        let now = helpline_core::now();
        match self {
            Self::Stored(id) => {
                tx.finish_inbound(*id, outcome, now).await?;
                Ok(*id)
            }
            Self::New(message) => Ok(tx.insert_finished_inbound(message, outcome, now).await?),
        }
    }
}

/// The number of `ticket`, read in the writing transaction.
async fn ticket_number(
    tx: &mut dyn Writer,
    ticket: Option<TicketId>,
) -> Result<Option<TicketNumber>, Error> {
    Ok(match ticket {
        Some(ticket) => tx.ticket(ticket).await?.map(|t| t.number),
        None => None,
    })
}

/// Stores the raw bytes as a pending record (the first, and only indispensable, step).
pub async fn store_raw(store: &dyn Store, message: NewInbound) -> Result<InboundId, Error> {
    Ok(store_new(store, message).await?.0)
}

/// Stores the raw bytes; hands them back when the record is new (`None` when the same mailbox
/// message was stored before).
async fn store_new(
    store: &dyn Store,
    message: NewInbound,
) -> Result<(InboundId, Option<Vec<u8>>), Error> {
    store
        .write(move |tx| {
            Box::pin(async move {
                let (record, created) = tx.insert_inbound(&message, helpline_core::now()).await?;
                Ok((record.id, created.then_some(message.raw)))
            })
        })
        .await
}

/// Processes a stored message. A record that is no longer pending is left as it is and its
/// outcome reported (processing twice never posts twice).
pub async fn process(
    store: &dyn Store,
    desk: &DeskSettings,
    settings: &IntakeSettings,
    id: InboundId,
) -> Result<IntakeOutcome, Error> {
    let (record, raw) = store
        .reader()
        .await?
        .inbound(id)
        .await?
        .ok_or_else(|| Error::not_found(format!("inbound message {id}")))?;
    if record.status != InboundStatus::Pending {
        return outcome_of(store, &record).await;
    }
    process_raw(store, desk, settings, id, &raw).await
}

/// Processes the pending record `id` whose bytes are `raw`.
async fn process_raw(
    store: &dyn Store,
    desk: &DeskSettings,
    settings: &IntakeSettings,
    id: InboundId,
    raw: &[u8],
) -> Result<IntakeOutcome, Error> {
    let mail = match InboundMail::parse(raw, settings.max_message_bytes) {
        Ok(mail) => mail,
        Err(error) => {
            return quarantine(store, id, None, None, format!("cannot be parsed: {error}")).await;
        }
    };
    match post(store, desk, settings, &mail, &Record::Stored(id)).await {
        Ok(outcome) => Ok(outcome),
        // Only an outage is worth waiting out; any other database refusal (a value it cannot
        // store, a constraint) would fail the same way forever: quarantine instead of blocking.
        Err(Error::Store(error @ StoreError::Unavailable(_))) => Err(Error::Store(error)),
        Err(error) => {
            quarantine(
                store,
                id,
                Some(classify(&mail).class),
                mail.message_id.clone(),
                error.to_string(),
            )
            .await
        }
    }
}

/// Puts a quarantined message back in the queue and processes it again (after a fix, or once
/// a missing customer or ticket exists). Not-found when it is not quarantined.
pub async fn retry(
    store: &dyn Store,
    desk: &DeskSettings,
    settings: &IntakeSettings,
    id: InboundId,
) -> Result<IntakeOutcome, Error> {
    let requeued = store
        .write(move |tx| Box::pin(async move { Ok(tx.requeue_inbound(id).await?) }))
        .await?;
    if !requeued {
        return Err(Error::not_found(format!("quarantined message {id}")));
    }
    process(store, desk, settings, id).await
}

/// Processes up to `limit` messages left pending (stored, but processing was interrupted by a
/// crash or an outage). Returns their outcomes.
pub async fn process_pending(
    store: &dyn Store,
    desk: &DeskSettings,
    settings: &IntakeSettings,
    limit: u32,
) -> Result<Vec<IntakeOutcome>, Error> {
    let pending = store
        .reader()
        .await?
        .inbound_list(InboundStatus::Pending, None, limit)
        .await?;
    let mut outcomes = Vec::with_capacity(pending.len());
    for record in pending {
        match process(store, desk, settings, record.id).await {
            Ok(outcome) => outcomes.push(outcome),
            // The database is failing: the rest would fail too; try again next round.
            Err(Error::Store(error @ StoreError::Unavailable(_))) => {
                return Err(Error::Store(error));
            }
            Err(error) => {
                tracing::warn!(inbound = %record.id, %error, "pending message not processed")
            }
        }
    }
    Ok(outcomes)
}

/// Quarantines a mailbox message that could not even be fetched (too large), unless its record
/// already ended. Its raw bytes are not stored: the message stays in the mailbox.
pub async fn quarantine_unfetched(
    store: &dyn Store,
    id: InboundId,
    reason: String,
) -> Result<IntakeOutcome, Error> {
    quarantine(store, id, None, None, reason).await
}

/// Where a message goes.
#[derive(Debug, Clone)]
enum Plan {
    /// Already stored once.
    Duplicate { ticket: TicketId, entry: EntryId },
    /// Deliberately not posted.
    Ignore { rule: String },
    /// Onto an existing ticket.
    Thread {
        ticket: Box<Ticket>,
        rule: String,
        matched_by_headers: bool,
    },
    /// A new ticket.
    NewTicket { rule: String },
}

/// Decides where `mail` goes, reading only (the post happens in one transaction afterwards).
async fn decide(
    store: &dyn Store,
    settings: &IntakeSettings,
    mail: &InboundMail,
    class: MailClass,
) -> Result<Plan, Error> {
    let mut reader = store.reader().await?;
    let mut osticket = OsticketIds::default();
    if let Some(own) = &mail.message_id {
        if let Some((ticket, entry)) = reader
            .entry_by_message_id(std::slice::from_ref(own))
            .await?
        {
            return Ok(Plan::Duplicate { ticket, entry });
        }
        if message_id::verify(&settings.secret, own).is_some() {
            return Ok(Plan::Ignore {
                rule: "its own Message-ID is one of ours: our mail came back (loop)".into(),
            });
        }
        if osticket.decode(&mut *reader, own).await?.is_some() {
            return Ok(Plan::Ignore {
                rule: "its own Message-ID is one the imported osTicket desk signed: \
                       that desk's mail came back (loop)"
                    .into(),
            });
        }
    }
    if let Some(from) = mail.from_address()
        && settings.system_addresses.contains(&from)
    {
        return Ok(Plan::Ignore {
            rule: format!("sent from our own address {from} (loop)"),
        });
    }

    // Candidates: the nearest parent first, then the rest of the chain; for a bounce, also the
    // headers of the message it returns.
    let mut candidates: Vec<String> = mail.in_reply_to.clone();
    candidates.extend(mail.references.iter().rev().cloned());
    if class == MailClass::Bounce {
        for attachment in &mail.attachments {
            let carries_original = matches!(
                attachment.content_type.as_str(),
                "message/rfc822" | "text/rfc822-headers" | "message/rfc822-headers"
            );
            if carries_original
                && let Ok(original) = InboundMail::parse(&attachment.content, usize::MAX)
            {
                candidates.extend(original.message_id);
                candidates.extend(original.in_reply_to);
                candidates.extend(original.references.into_iter().rev());
            }
        }
    }
    for candidate in &candidates {
        if let Some((ticket_id, _)) = message_id::verify(&settings.secret, candidate)
            && let Some(ticket) = reader.ticket(ticket_id).await?
        {
            return Ok(Plan::Thread {
                ticket: Box::new(ticket),
                rule: format!("our signed Message-ID {candidate} in its headers"),
                matched_by_headers: true,
            });
        }
        if let Some((ticket, entry)) = osticket.thread(&mut *reader, candidate).await? {
            return Ok(Plan::Thread {
                ticket: Box::new(ticket),
                rule: format!(
                    "the imported osTicket desk's signed Message-ID {candidate} (its entry \
                     {entry}) in its headers"
                ),
                matched_by_headers: true,
            });
        }
    }
    // osTicket also writes its id into the body (for clients that drop the headers); only its
    // signed ids are looked for there, after every header, as osTicket does.
    if osticket.may_apply() {
        for marker in osticket_id::body_markers(mail.html.as_deref(), mail.text.as_deref()) {
            if candidates.contains(&marker) {
                continue;
            }
            if let Some((ticket, entry)) = osticket.thread(&mut *reader, &marker).await? {
                return Ok(Plan::Thread {
                    ticket: Box::new(ticket),
                    rule: format!(
                        "the imported osTicket desk's signed Message-ID {marker} (its entry \
                         {entry}) in its body"
                    ),
                    matched_by_headers: true,
                });
            }
        }
    }
    if let Some((ticket_id, _)) = reader.entry_by_message_id(&candidates).await?
        && let Some(ticket) = reader.ticket(ticket_id).await?
    {
        return Ok(Plan::Thread {
            ticket: Box::new(ticket),
            rule: "a Message-ID of this ticket's thread in In-Reply-To/References".into(),
            matched_by_headers: true,
        });
    }
    if class == MailClass::Bounce {
        return Ok(Plan::Ignore {
            rule: "a bounce that names no message of ours: not a customer message".into(),
        });
    }
    if let Some(number) = mail.subject.as_deref().and_then(subject_tag)
        && let Some(ticket) = reader.ticket_by_number(&number).await?
    {
        if is_participant(&mut *reader, &ticket, mail).await? {
            return Ok(Plan::Thread {
                ticket: Box::new(ticket),
                rule: format!("subject tag [#{number}] from a participant of the ticket"),
                matched_by_headers: false,
            });
        }
        return Ok(Plan::NewTicket {
            rule: format!(
                "subject tag [#{number}], but the sender is not a participant: a new ticket"
            ),
        });
    }
    Ok(Plan::NewTicket {
        rule: "no thread matched: a new ticket".into(),
    })
}

/// osTicket's signed Message-IDs, recognised once `helpline import osticket --secret-salt` has
/// stored that desk's salt. The setting is read at most once per message, and only when an id
/// has the shape of one of osTicket's: ordinary mail costs nothing.
#[derive(Default)]
struct OsticketIds {
    /// `None` until read; then the installation, if a salt is set.
    installation: Option<Option<OsticketInstallation>>,
}

impl OsticketIds {
    /// Whether osTicket ids may still be recognised (no salt read yet, or one was set).
    fn may_apply(&self) -> bool {
        !matches!(self.installation, Some(None))
    }

    /// What `message_id` says, when the imported desk signed it.
    async fn decode(
        &mut self,
        reader: &mut dyn Reader,
        message_id: &str,
    ) -> Result<Option<OsticketMessageId>, Error> {
        if !osticket_id::has_shape(message_id) {
            return Ok(None);
        }
        let installation = match &self.installation {
            Some(installation) => installation,
            None => {
                let salt = reader.setting(OSTICKET_SECRET_SALT_SETTING).await?;
                self.installation
                    .insert(salt.as_deref().and_then(OsticketInstallation::new))
            }
        };
        Ok(installation
            .as_ref()
            .and_then(|installation| installation.decode(message_id)))
    }

    /// The ticket (and osTicket entry id) `message_id` leads to: an id the imported desk signed,
    /// naming an entry that was imported and still exists. Like osTicket, only the entry
    /// counts: who may post is decided from the sender, as for any header match.
    async fn thread(
        &mut self,
        reader: &mut dyn Reader,
        message_id: &str,
    ) -> Result<Option<(Ticket, u32)>, Error> {
        let Some(decoded) = self.decode(reader, message_id).await? else {
            return Ok(None);
        };
        if decoded.entry_id == 0 {
            return Ok(None);
        }
        let Some(entry) = reader
            .legacy_id(LegacyKind::Entry, i64::from(decoded.entry_id))
            .await?
        else {
            return Ok(None);
        };
        let Some(ticket_id) = reader.entry_ticket(EntryId(entry)).await? else {
            return Ok(None);
        };
        Ok(reader
            .ticket(ticket_id)
            .await?
            .map(|ticket| (ticket, decoded.entry_id)))
    }
}

/// Where `mail` would go, without writing anything: the rule and the ticket (for
/// `helpline mail inspect`).
pub async fn explain(
    store: &dyn Store,
    settings: &IntakeSettings,
    mail: &InboundMail,
) -> Result<(String, Option<TicketNumber>), Error> {
    let class = classify(mail).class;
    Ok(match decide(store, settings, mail, class).await? {
        Plan::Duplicate { ticket, .. } => {
            let number = store
                .reader()
                .await?
                .ticket(ticket)
                .await?
                .map(|t| t.number);
            (
                "its Message-ID was already posted: a duplicate".into(),
                number,
            )
        }
        Plan::Ignore { rule } => (rule, None),
        Plan::Thread { ticket, rule, .. } => (rule, Some(ticket.number)),
        Plan::NewTicket { rule } => (rule, None),
    })
}

/// The text shown on the thread for `mail` (what `visible_body` stores), as plain text.
pub fn visible_text(mail: &InboundMail) -> Option<String> {
    visible_body(mail).map(|body| match body.format() {
        BodyFormat::Text => body.as_str().to_owned(),
        BodyFormat::Html => html2text::config::plain_no_decorate()
            .string_from_read(body.as_str().as_bytes(), 100_000)
            .unwrap_or_else(|_| body.as_str().to_owned()),
    })
}

/// The ticket number in a `[#number]` subject tag.
pub fn subject_tag(subject: &str) -> Option<TicketNumber> {
    let start = subject.find("[#")? + 2;
    let end = subject[start..].find(']')? + start;
    TicketNumber::parse(&subject[start..end]).ok()
}

async fn is_participant(
    reader: &mut dyn Reader,
    ticket: &Ticket,
    mail: &InboundMail,
) -> Result<bool, Error> {
    let Some(from) = mail
        .from
        .as_ref()
        .and_then(|f| EmailAddress::parse(&f.address).ok())
    else {
        return Ok(false);
    };
    let Some(user) = reader.user_by_email(&from).await? else {
        return Ok(false);
    };
    if user.id == ticket.user_id {
        return Ok(true);
    }
    Ok(reader
        .collaborators(ticket.id)
        .await?
        .iter()
        .any(|c| c.user_id == user.id))
}

/// Carries out `plan` in one transaction with the record of its outcome.
#[allow(clippy::too_many_arguments)]
async fn apply(
    store: &dyn Store,
    desk: &DeskSettings,
    settings: &IntakeSettings,
    mail: &InboundMail,
    class: MailClass,
    class_rule: &str,
    plan: Plan,
    base: InboundOutcome,
    record: &Record,
) -> Result<IntakeOutcome, Error> {
    let mail_ids = mail_ids(mail);
    let automatic = class != MailClass::Normal;
    let from = mail.from.as_ref().and_then(|f| {
        EmailAddress::parse(&f.address)
            .ok()
            .map(|email| (f.name.clone(), email))
    });
    match plan {
        Plan::Duplicate { ticket, entry } => {
            let outcome = InboundOutcome {
                status: InboundStatus::Duplicate,
                rule: "its Message-ID was already posted".into(),
                ticket_id: Some(ticket),
                entry_id: Some(entry),
                ..base
            };
            finish(store, record, outcome).await
        }
        Plan::Ignore { rule } => {
            let outcome = InboundOutcome {
                status: InboundStatus::Ignored,
                rule: format!("{rule} [{class_rule}]"),
                ..base
            };
            finish(store, record, outcome).await
        }
        Plan::Thread {
            ticket,
            rule,
            matched_by_headers,
        } => {
            let number = ticket.number.clone();
            let staff = match &from {
                Some((_, email)) => {
                    let mut reader = store.reader().await?;
                    reader
                        .staff()
                        .await?
                        .into_iter()
                        .find(|s| s.email.key() == email.key() && s.active)
                }
                None => None,
            };
            // Stripping and sanitising are the costliest steps: done only for a post.
            let body = visible_body(mail).unwrap_or_else(no_text);
            let work: Work<PostedEntry> =
                if class == MailClass::Bounce && from_delivery_system(mail) {
                    note_work(
                        desk,
                        number,
                        NoteAuthor::Named("Mail delivery system".into()),
                        mail,
                        body,
                        mail_ids,
                        EntryFlags {
                            bounce: true,
                            ..EntryFlags::default()
                        },
                    )
                } else if let Some(staff) = staff {
                    note_work(
                        desk,
                        number,
                        NoteAuthor::Staff(StaffRef::Id(staff.id)),
                        mail,
                        body,
                        mail_ids,
                        EntryFlags::default(),
                    )
                } else {
                    let Some((name, email)) = from.clone() else {
                        return Err(Error::invalid(
                            "from",
                            "the message has no valid sender address",
                        ));
                    };
                    let participant = {
                        let mut reader = store.reader().await?;
                        is_participant(&mut *reader, &ticket, mail).await?
                    };
                    let poster = if participant {
                        CustomerRef::Email(email.clone())
                    } else if matched_by_headers {
                        CustomerRef::Unverified {
                            name,
                            email: email.clone(),
                        }
                    } else {
                        return Err(Error::Forbidden("the sender is not a participant".into()));
                    };
                    let cc: Vec<CustomerContact> = if participant && !automatic {
                        mail.to
                            .iter()
                            .chain(&mail.cc)
                            .filter(|m| {
                                !settings
                                    .system_addresses
                                    .contains(&m.address.to_ascii_lowercase())
                            })
                            .filter(|m| !m.address.eq_ignore_ascii_case(email.as_str()))
                            .filter_map(|m| {
                                EmailAddress::parse(&m.address)
                                    .ok()
                                    .map(|email| CustomerContact {
                                        email,
                                        name: m.name.clone(),
                                        phone: None,
                                        notes: None,
                                    })
                            })
                            .collect()
                    } else {
                        Vec::new()
                    };
                    message_work(
                        desk,
                        number,
                        CustomerMessage {
                            poster,
                            body,
                            attachments: attachments(mail, settings.max_attachment_bytes),
                            ip: None,
                            source: Source::Email,
                            mail: mail_ids,
                            may_reopen: !automatic,
                            flags: EntryFlags {
                                automatic,
                                ..EntryFlags::default()
                            },
                            notify: !automatic,
                        },
                        cc,
                    )
                };
            let outcome = InboundOutcome {
                rule: format!("{rule} [{class_rule}]"),
                ..base.clone()
            };
            match run_and_finish(store, record, work, outcome).await {
                Err(Error::Conflict(reason)) => {
                    // Closed for good: like osTicket, the mail starts a new ticket.
                    let rule = format!("{reason}: a new ticket instead [{class_rule}]");
                    new_ticket(store, desk, settings, mail, class, rule, base, record).await
                }
                other => other,
            }
        }
        Plan::NewTicket { rule } => {
            new_ticket(
                store,
                desk,
                settings,
                mail,
                class,
                format!("{rule} [{class_rule}]"),
                base,
                record,
            )
            .await
        }
    }
}

fn note_work(
    desk: &DeskSettings,
    number: TicketNumber,
    author: NoteAuthor,
    mail: &InboundMail,
    body: MessageBody,
    mail_ids: MailIds,
    flags: EntryFlags,
) -> Work<PostedEntry> {
    let title = mail
        .subject
        .clone()
        .and_then(|s| Subject::parse(&s).ok())
        .map(|s| s.as_str().to_owned());
    let work = post_internal_note(
        desk,
        number,
        InternalNote {
            author,
            title,
            body,
            mail: mail_ids,
            flags,
            // Notes from mail are bounces, auto-replies and staff mail: no alert loops.
            notify: false,
        },
        Actor::system(),
    );
    Box::new(move |tx| {
        Box::pin(async move {
            let posted = work(tx).await?;
            Ok(PostedEntry::of(&posted.ticket, posted.entry.id))
        })
    })
}

fn message_work(
    desk: &DeskSettings,
    number: TicketNumber,
    message: CustomerMessage,
    cc: Vec<CustomerContact>,
) -> Work<PostedEntry> {
    let post = post_customer_message(desk, number.clone(), message, Actor::system());
    Box::new(move |tx| {
        Box::pin(async move {
            let posted = post(&mut *tx).await?;
            for contact in cc {
                let added = add_collaborator(
                    number.clone(),
                    CollaboratorRef::Contact(contact),
                    Actor::system(),
                )(&mut *tx)
                .await;
                match added {
                    // The owner in Cc: nothing to add.
                    Ok(_) | Err(Error::Conflict(_)) => {}
                    Err(other) => return Err(other),
                }
            }
            Ok(PostedEntry::of(&posted.ticket, posted.entry.id))
        })
    })
}

#[allow(clippy::too_many_arguments)]
async fn new_ticket(
    store: &dyn Store,
    desk: &DeskSettings,
    settings: &IntakeSettings,
    mail: &InboundMail,
    class: MailClass,
    rule: String,
    base: InboundOutcome,
    record: &Record,
) -> Result<IntakeOutcome, Error> {
    let Some(from) = mail.from.as_ref() else {
        return Err(Error::invalid("from", "the message has no sender"));
    };
    let email = EmailAddress::parse(&from.address)
        .map_err(|e| Error::invalid("from", format!("sender address {e}")))?;
    let body = visible_body(mail);
    let subject = mail
        .subject
        .as_deref()
        .and_then(|s| Subject::parse(s).ok())
        .unwrap_or_else(|| Subject::from_stored("[No Subject]".into()));
    let automatic = class != MailClass::Normal;
    let new = NewTicket {
        contact: CustomerContact {
            email,
            name: clean_name(from.name.as_ref()),
            phone: None,
            notes: None,
        },
        subject,
        message: body
            .unwrap_or_else(|| MessageBody::from_stored("(no text)".into(), BodyFormat::Text)),
        topic_id: None,
        priority_id: None,
        source: Source::Email,
        ip: None,
        attachments: attachments(mail, settings.max_attachment_bytes),
        notify: NotifyOptions {
            alert: !automatic,
            autorespond: !automatic,
        },
        mail: mail_ids(mail),
        flags: EntryFlags {
            automatic,
            ..EntryFlags::default()
        },
    };
    let open = open_ticket_work(desk, new, Actor::system());
    let work: Work<PostedEntry> = Box::new(move |tx| {
        Box::pin(async move {
            let opened = open(tx).await?;
            Ok(PostedEntry::of(&opened.ticket, opened.first_entry.id))
        })
    });
    run_and_finish(store, record, work, InboundOutcome { rule, ..base }).await
}

/// What a posting work did: the ticket (with its number, for the answer) and the entry.
struct PostedEntry {
    ticket: TicketId,
    number: TicketNumber,
    entry: EntryId,
}

impl PostedEntry {
    fn of(ticket: &Ticket, entry: EntryId) -> Self {
        Self {
            ticket: ticket.id,
            number: ticket.number.clone(),
            entry,
        }
    }
}

/// Runs `work` and records its outcome in the same transaction — unless another process got
/// there first, in which case nothing is posted.
async fn run_and_finish(
    store: &dyn Store,
    record: &Record,
    work: Work<PostedEntry>,
    outcome: InboundOutcome,
) -> Result<IntakeOutcome, Error> {
    let record = record.clone();
    let (id, finished) = store
        .write(move |tx| {
            Box::pin(async move {
                if let Some(id) = record.finished_elsewhere(&mut *tx).await? {
                    return Ok((id, None));
                }
                // Two copies of one mail (sent to two of our addresses, piped twice) may be
                // processed at the same moment: only the first to get here posts.
                if let Some(message_id) = &outcome.message_id {
                    tx.lock_key(&format!("message-id:{message_id}")).await?;
                    if let Some((ticket, entry)) = tx
                        .entry_by_message_id(std::slice::from_ref(message_id))
                        .await?
                    {
                        let duplicate = InboundOutcome {
                            status: InboundStatus::Duplicate,
                            rule: "its Message-ID was posted meanwhile".into(),
                            ticket_id: Some(ticket),
                            entry_id: Some(entry),
                            ..outcome
                        };
                        let id = record.finish(&mut *tx, &duplicate).await?;
                        let number = ticket_number(&mut *tx, Some(ticket)).await?;
                        return Ok((id, Some((duplicate, number))));
                    }
                }
                let posted = work(&mut *tx).await?;
                let outcome = InboundOutcome {
                    ticket_id: Some(posted.ticket),
                    entry_id: Some(posted.entry),
                    ..outcome
                };
                let id = record.finish(&mut *tx, &outcome).await?;
                Ok((id, Some((outcome, Some(posted.number)))))
            })
        })
        .await?;
    committed(store, id, finished).await
}

/// Records `outcome` for a message that is not posted.
async fn finish(
    store: &dyn Store,
    record: &Record,
    outcome: InboundOutcome,
) -> Result<IntakeOutcome, Error> {
    let record = record.clone();
    let (id, finished) = store
        .write(move |tx| {
            Box::pin(async move {
                if let Some(id) = record.finished_elsewhere(&mut *tx).await? {
                    return Ok((id, None));
                }
                let id = record.finish(&mut *tx, &outcome).await?;
                let number = ticket_number(&mut *tx, outcome.ticket_id).await?;
                Ok((id, Some((outcome, number))))
            })
        })
        .await?;
    committed(store, id, finished).await
}

/// The outcome of record `id` as committed: the one this call wrote (`written`, with the
/// ticket's number, read in the writing transaction), or — when another worker finished the
/// record first — the one read back from the database. Nothing is read after a write of this
/// call commits, so an error here always means that nothing was written.
async fn committed(
    store: &dyn Store,
    id: InboundId,
    written: Option<(InboundOutcome, Option<TicketNumber>)>,
) -> Result<IntakeOutcome, Error> {
    let Some((outcome, ticket)) = written else {
        let record = store
            .reader()
            .await?
            .inbound(id)
            .await?
            .map(|(record, _)| record)
            .ok_or_else(|| Error::not_found(format!("inbound message {id}")))?;
        return outcome_of(store, &record).await;
    };
    Ok(IntakeOutcome {
        inbound_id: id,
        status: outcome.status,
        class: outcome.class,
        rule: outcome.rule,
        ticket,
        entry_id: outcome.entry_id,
    })
}

async fn quarantine(
    store: &dyn Store,
    id: InboundId,
    class: Option<MailClass>,
    message_id: Option<String>,
    error: String,
) -> Result<IntakeOutcome, Error> {
    tracing::warn!(inbound = %id, %error, "inbound message quarantined");
    let error: String = error
        .chars()
        .filter(|c| *c == '\n' || !c.is_control())
        .collect();
    let message_id = message_id.map(|m| m.chars().filter(|c| !c.is_control()).collect());
    finish(
        store,
        &Record::Stored(id),
        InboundOutcome {
            status: InboundStatus::Quarantined,
            class: class.map(|c| c.as_str().to_owned()),
            rule: error,
            message_id,
            ticket_id: None,
            entry_id: None,
        },
    )
    .await
}

async fn outcome_of(store: &dyn Store, record: &InboundRecord) -> Result<IntakeOutcome, Error> {
    let ticket = match record.ticket_id {
        Some(id) => store.reader().await?.ticket(id).await?.map(|t| t.number),
        None => None,
    };
    Ok(IntakeOutcome {
        inbound_id: record.id,
        status: record.status,
        class: record.class.clone(),
        rule: record.rule.clone().unwrap_or_default(),
        ticket,
        entry_id: record.entry_id,
    })
}

/// The body of a message without any text (a photo sent alone): attachments still arrive.
fn no_text() -> MessageBody {
    MessageBody::from_stored("(no text)".into(), BodyFormat::Text)
}

/// A display name from a mail header, made safe to store: control characters (a NUL cannot be
/// stored in PostgreSQL) dropped, length bounded; `None` when nothing is left.
fn clean_name(name: Option<&String>) -> Option<String> {
    let name: String = name?
        .chars()
        .filter(|c| !c.is_control())
        .take(128)
        .collect();
    let name = name.trim();
    (!name.is_empty()).then(|| name.to_owned())
}

/// Whether a bounce comes from a mail system (mailer-daemon, postmaster, no sender or a null
/// Return-Path) rather than from a person who merely sends bounce-shaped mail.
fn from_delivery_system(mail: &InboundMail) -> bool {
    let null_sender = mail.header("return-path").is_some_and(|r| r.trim() == "<>");
    match mail.from_address() {
        None => true,
        Some(from) => {
            let local = from.split('@').next().unwrap_or_default();
            null_sender || matches!(local, "mailer-daemon" | "postmaster" | "mail-daemon")
        }
    }
}

/// The body shown on the thread: the HTML part when there is one (sanitised), else the text
/// part, each with quoted history stripped. The raw message stays stored in full.
fn visible_body(mail: &InboundMail) -> Option<MessageBody> {
    if let Some(html) = mail.html.as_deref().filter(|h| !h.trim().is_empty())
        && let Ok(body) = MessageBody::parse(&strip::visible_html(html), BodyFormat::Html)
    {
        return Some(body);
    }
    let text = mail.text.as_deref()?;
    MessageBody::parse(&strip::visible_text(text), BodyFormat::Text).ok()
}

/// The threading headers to keep with the entry. Control characters (a NUL cannot be stored in
/// PostgreSQL) are dropped: they are never part of a real Message-ID.
fn mail_ids(mail: &InboundMail) -> MailIds {
    let clean = |id: &String| id.chars().filter(|c| !c.is_control()).collect::<String>();
    MailIds {
        message_id: mail.message_id.as_ref().map(clean),
        in_reply_to: mail.in_reply_to.first().map(clean),
        references: (!mail.references.is_empty()).then(|| {
            mail.references
                .iter()
                .map(clean)
                .collect::<Vec<_>>()
                .join(" ")
        }),
    }
}

/// The message's files that fit the limit.
fn attachments(mail: &InboundMail, max_bytes: usize) -> Vec<NewAttachment> {
    mail.attachments
        .iter()
        .filter_map(|a| {
            NewAttachment::new(&a.filename, &a.content_type, a.content.clone(), max_bytes)
                .map(|file| file.with_content_id(a.content_id.clone()))
                .map_err(|error| {
                    tracing::warn!(file = %a.filename, %error, "inbound attachment left out");
                })
                .ok()
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn subject_tags_are_found() {
        assert_eq!(
            subject_tag("Re: Printer [#482913] again").map(|n| n.to_string()),
            Some("482913".into())
        );
        assert_eq!(
            subject_tag("[#HD-0042] x").map(|n| n.to_string()),
            Some("HD-0042".into())
        );
        assert!(subject_tag("#482913 without brackets").is_none());
        assert!(subject_tag("[#] empty").is_none());
        assert!(subject_tag("[#a b] space").is_none());
    }
}
