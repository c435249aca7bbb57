//! `helpline import osticket`: an osTicket installation (1.14–1.18) read over a MySQL/MariaDB
//! connection and written into Helpline.
//!
//! The import checks the source before it writes anything (the URL connects, the prefix's
//! tables exist, the schema is one it reads, the target holds no earlier import unless resuming),
//! then writes kind by kind in [`LegacyKind::ALL`] order, in units of a few hundred records. Each
//! record and its legacy-id map entry are written in the same unit of work, so an import cut
//! short resumes exactly (`resume`), and nothing is ever written twice.
//!
//! Catalogue records (departments, help topics, statuses, priorities, SLAs, organisations) and
//! staff are matched by name (username for staff) onto what Helpline already has — a fresh
//! Helpline database is seeded with osTicket's own defaults, "Support", "Open", "Normal"… — and
//! created otherwise. Customers are matched by address.

mod source;

pub use source::redact;

use crate::Progress;
use crate::report::{DuplicateUser, ImportReport, KindReport};
use futures::stream::{self, StreamExt};
use helpline_core::apikey::{IpRule, KeySecret, NewApiKey, Scope};
use helpline_core::attachment::NewAttachment;
use helpline_core::body::{BodyFormat, MessageBody};
use helpline_core::catalog::StatusState;
use helpline_core::catalog::{NewDepartment, NewPriority, NewSla, NewStaff, NewStatus, NewTopic};
use helpline_core::email::EmailAddress;
use helpline_core::event::{Actor, EventKind, NewEvent};
use helpline_core::ids::{
    DepartmentId, OrganizationId, PriorityId, StaffId, StatusId, TicketId, TopicId, UserId,
};
use helpline_core::legacy::{
    ImportedStaff, ImportedUser, LegacyKind, OSTICKET_SECRET_SALT_SETTING, OSTICKET_SOURCE_SETTING,
};
use helpline_core::store::{NewTicketDefaults, Store, TicketDraft, TxFuture, Writer};
use helpline_core::thread::{Author, EntryFlags, EntryKind, MailIds, NewEntry};
use helpline_core::ticket::{Source as Channel, Subject, Ticket, TicketNumber};
use helpline_core::user::NewOrganization;
use helpline_core::{Error, StoreError};
use helpline_mail::osticket_id::{self, OsticketInstallation};
use source::{AttachmentRow, EntryRow, Source, SourceInfo, TicketRow, TopicRow, UserEmailRow};
use std::collections::{HashMap, HashSet};
use std::net::IpAddr;
use std::sync::Arc;
use std::time::Instant;
use time::OffsetDateTime;

/// Records per unit of work.
pub const DEFAULT_BATCH: usize = 250;

/// Attachment bytes per unit of work (a unit with one larger file holds just that file).
const MAX_UNIT_BYTES: usize = 64 * 1024 * 1024;

/// Units of work in flight at once (separate connections on PostgreSQL; one group commit on
/// SQLite).
const CONCURRENT_UNITS: usize = 4;

/// What an entry without text (osTicket stores `-` for an empty body) shows.
const EMPTY_BODY: &str = "(no text)";

/// How the import runs.
#[derive(Debug, Clone, Default)]
pub struct Options {
    /// osTicket's `SECRET_SALT` (from `include/ost-config.php`): stored so that mail intake
    /// recognises osTicket's signed Message-IDs in replies to mail osTicket sent.
    pub secret_salt: Option<String>,
    /// Continue an earlier import into this database: records already imported are skipped.
    /// Without it, a database that already holds an import is refused.
    pub resume: bool,
    /// Records per unit of work (0: [`DEFAULT_BATCH`]).
    pub batch_size: usize,
}

/// Why an import could not run (or stopped).
#[derive(Debug, thiserror::Error)]
pub enum ImportError {
    /// The source URL is not a MySQL/MariaDB URL naming a database.
    #[error("'{0}' is not a usable source: give mysql://USER:PASS@HOST:PORT/DATABASE")]
    BadUrl(String),
    /// The table prefix is not one osTicket could have made.
    #[error(
        "'{0}' is not a table prefix: letters, digits and '_' only (osTicket's default is ost_)"
    )]
    BadPrefix(String),
    /// The database could not be reached or logged into.
    #[error("cannot connect to the osTicket database {url}: {message}")]
    Connect {
        /// The URL, password hidden.
        url: String,
        /// The driver's message.
        message: String,
    },
    /// The database has no osTicket tables at all.
    #[error("database '{database}' is not an osTicket database: {detail}")]
    NotOsticket {
        /// The database name.
        database: String,
        /// What is missing.
        detail: String,
    },
    /// osTicket's tables are there, under another prefix.
    #[error(
        "database '{database}' has no osTicket tables with the prefix '{prefix}'; it has them \
         with {}: pass that as --prefix (osTicket's TABLE_PREFIX in include/ost-config.php)",
        found.iter().map(|p| format!("'{p}'")).collect::<Vec<_>>().join(", ")
    )]
    WrongPrefix {
        /// The prefix given.
        prefix: String,
        /// The database name.
        database: String,
        /// The prefixes that do have osTicket's tables.
        found: Vec<String>,
    },
    /// An osTicket version (or a schema) this import does not read.
    #[error("unsupported osTicket database: {0}")]
    Unsupported(String),
    /// The target already holds an import and `resume` was not given.
    #[error(
        "this Helpline database already holds an osTicket import ({0}); run the import again \
         with --resume to continue it: records already imported are recognised and skipped, \
         nothing is duplicated"
    )]
    AlreadyImported(String),
    /// `--resume` from another osTicket desk than the one imported before.
    #[error(
        "this Helpline database was imported from another osTicket desk ({earlier}), not from \
         this one ({this}): resuming would take this desk's records for ones already imported. \
         Import into a new Helpline database instead"
    )]
    OtherSource {
        /// The desk imported before.
        earlier: String,
        /// The desk given now.
        this: String,
    },
    /// Reading the source failed.
    #[error("reading {what} from the osTicket database failed: {message}")]
    Source {
        /// What was being read.
        what: String,
        /// The driver's message.
        message: String,
    },
    /// Writing to Helpline failed.
    #[error("writing to Helpline failed: {0}")]
    Target(#[from] Error),
}

impl From<StoreError> for ImportError {
    fn from(error: StoreError) -> Self {
        Self::Target(Error::Store(error))
    }
}

/// Runs the source checks [`import`] starts with (the URL connects, the prefix's tables exist,
/// the schema is one the import reads) and nothing else, so a caller can refuse a bad source
/// before it opens, or creates, the target database.
pub async fn check_source(source_url: &str, prefix: &str) -> Result<(), ImportError> {
    Source::open(source_url, prefix).await?.close().await;
    Ok(())
}

/// Imports the osTicket database at `source_url` (tables named with `prefix`, e.g. `ost_`)
/// into `store`. Nothing is written before every check passed.
pub async fn import(
    source_url: &str,
    prefix: &str,
    options: &Options,
    store: &dyn Store,
    progress: &dyn Progress,
) -> Result<ImportReport, ImportError> {
    let started = Instant::now();
    let mut source = Source::open(source_url, prefix).await?;

    // The target: an earlier import is continued only when asked to.
    let mut earlier = Vec::new();
    {
        let mut reader = store.reader().await?;
        for kind in LegacyKind::ALL {
            let n = reader.legacy_ids(kind).await?.len();
            if n > 0 {
                earlier.push(format!("{n} {}", kind.as_str()));
                if !options.resume {
                    break;
                }
            }
        }
    }
    if !earlier.is_empty() && !options.resume {
        return Err(ImportError::AlreadyImported(format!(
            "{} … mapped",
            earlier.join(", ")
        )));
    }
    let identity = source.identity().await?;
    let recorded = store
        .reader()
        .await?
        .setting(OSTICKET_SOURCE_SETTING)
        .await?;
    // Checked only against an import that wrote records: a database where a first attempt
    // stopped before any may take another desk.
    if let Some(recorded) = recorded
        && recorded != identity
        && !earlier.is_empty()
    {
        return Err(ImportError::OtherSource {
            earlier: recorded,
            this: identity,
        });
    }

    let mut run = Run::new(store, progress, &source.info, options, prefix).await?;
    run.report.source = format!(
        "{} (database {}, prefix {prefix})",
        redact(source_url),
        source.info.database
    );
    run.report.version = source.info.version.clone();
    if !source.info.known_release {
        run.note(format!(
            "{}: not the schema of a release this import knows (1.14–1.18); every column it \
             reads is there, so it went ahead",
            source.info.version
        ));
    }
    if !earlier.is_empty() {
        run.note(format!(
            "resumed an earlier import ({} already mapped)",
            earlier.join(", ")
        ));
    }
    run.note(format!(
        "times were read in the osTicket database server's time zone, {}: osTicket keeps them \
         in the zone of the server it ran on; if this server's differs (a dump restored \
         elsewhere), set it to that zone and import again into a new database",
        source.info.time_zone
    ));
    let salt = options.secret_salt.clone();
    store
        .write(move |tx| {
            Box::pin(async move {
                tx.put_setting(OSTICKET_SOURCE_SETTING, &identity).await?;
                if let Some(salt) = &salt {
                    tx.put_setting(OSTICKET_SECRET_SALT_SETTING, salt).await?;
                }
                Ok(())
            })
        })
        .await?;
    if options.secret_salt.is_some() {
        run.note(
            "osTicket's SECRET_SALT is stored: replies to mail osTicket sent (its signed \
             Message-IDs) thread onto the imported tickets"
                .to_owned(),
        );
    }

    let outcome = run.all(&mut source).await;
    source.close().await;
    progress.finish();
    outcome?;
    let mut report = run.finish();
    report.elapsed = started.elapsed();
    Ok(report)
}

/// One record to write, resolved to Helpline's ids before the unit of work starts.
struct Item {
    kind: LegacyKind,
    /// The report row it counts in (`entry` items count in `entry`).
    source_id: i64,
    write: Write,
    /// Attachment bytes it carries (units are bounded by it).
    weight: usize,
    /// Items of one group (a ticket's entries, its events) are written in order, in one unit.
    group: i64,
}

enum Write {
    /// Mapped onto an existing record: only the map entry is written.
    Map(i64),
    Department(NewDepartment, OffsetDateTime),
    Topic(NewTopic, OffsetDateTime),
    Status(NewStatus),
    Priority(NewPriority),
    Sla(NewSla, OffsetDateTime),
    Organization(NewOrganization),
    Staff(ImportedStaff),
    User(ImportedUser),
    Ticket(Box<TicketWrite>),
    /// A ticket an earlier run imported: its changeable fields, if the source's are newer.
    TicketRefresh(TicketId, Box<TicketState>),
    Entry {
        ticket: TicketId,
        entry: Box<NewEntry>,
        at: OffsetDateTime,
        /// Hidden earlier versions of this (edited) entry: mapped onto it, in its unit.
        earlier: Vec<i64>,
    },
    Collaborator {
        ticket: TicketId,
        user: UserId,
        at: OffsetDateTime,
    },
    Event(NewEvent, OffsetDateTime),
    ApiKey {
        key: NewApiKey,
        at: OffsetDateTime,
        revoked: Option<OffsetDateTime>,
    },
}

/// A ticket's row and every changeable field, set by `update_ticket` after the insert.
struct TicketWrite {
    draft: TicketDraft,
    state: TicketState,
}

/// A ticket's changeable fields as the source has them, in Helpline's ids.
struct TicketState {
    department_id: DepartmentId,
    topic_id: Option<TopicId>,
    status_id: StatusId,
    priority_id: PriorityId,
    assignee: Option<StaffId>,
    is_answered: bool,
    due_at: Option<OffsetDateTime>,
    updated_at: OffsetDateTime,
    last_message_at: Option<OffsetDateTime>,
    last_response_at: Option<OffsetDateTime>,
    closed_at: Option<OffsetDateTime>,
    reopened_at: Option<OffsetDateTime>,
}

impl TicketState {
    /// Sets `ticket`'s changeable fields to these.
    fn apply_to(&self, ticket: &mut Ticket) {
        ticket.department_id = self.department_id;
        ticket.topic_id = self.topic_id;
        ticket.status_id = self.status_id;
        ticket.priority_id = self.priority_id;
        ticket.assignee_id = self.assignee;
        ticket.is_answered = self.is_answered;
        ticket.due_at = self.due_at;
        ticket.updated_at = self.updated_at;
        ticket.last_message_at = self.last_message_at;
        ticket.last_response_at = self.last_response_at;
        ticket.closed_at = self.closed_at;
        ticket.reopened_at = self.reopened_at;
    }
}

enum Outcome {
    Written(i64),
    Matched(i64),
    Refused(String),
    /// A record an earlier run imported, brought up to date (`true`) or already current.
    Refreshed(bool),
}

impl Item {
    /// Written in order with the other items of `group`, in the same unit.
    fn in_group(self, group: i64) -> Self {
        Self { group, ..self }
    }

    fn new(kind: LegacyKind, source_id: i64, write: Write) -> Self {
        Self {
            kind,
            source_id,
            write,
            weight: 0,
            group: source_id,
        }
    }

    /// Source ids mapped along with this one (an edited entry's hidden earlier versions).
    fn earlier(&self) -> &[i64] {
        match &self.write {
            Write::Entry { earlier, .. } => earlier,
            _ => &[],
        }
    }
}

/// Writes `unit` in one transaction: every record with its map entry, or nothing.
async fn run_unit(store: &dyn Store, unit: Vec<Arc<Item>>) -> Result<Vec<Outcome>, Error> {
    store
        .write(move |tx| {
            Box::pin(async move {
                let mut outcomes = Vec::with_capacity(unit.len());
                for item in &unit {
                    outcomes.push(apply(&mut *tx, item).await?);
                }
                Ok(outcomes)
            })
        })
        .await
}

/// Writes one item and its map entry.
fn apply<'a>(tx: &'a mut dyn Writer, item: &'a Item) -> TxFuture<'a, Outcome> {
    Box::pin(async move {
        let outcome = match &item.write {
            Write::Map(target) => Outcome::Matched(*target),
            Write::Department(new, at) => {
                Outcome::Written(tx.insert_department(new, *at).await?.id.0)
            }
            Write::Topic(new, at) => Outcome::Written(tx.insert_topic(new, *at).await?.id.0),
            Write::Status(new) => Outcome::Written(tx.insert_status(new).await?.id.0),
            Write::Priority(new) => Outcome::Written(tx.insert_priority(new).await?.id.0),
            Write::Sla(new, at) => Outcome::Written(tx.insert_sla(new, *at).await?.id.0),
            Write::Organization(new) => Outcome::Written(tx.insert_organization(new).await?.id.0),
            Write::Staff(new) => Outcome::Written(tx.import_staff(new).await?.id.0),
            Write::User(new) => Outcome::Written(tx.import_user(new).await?.id.0),
            Write::Ticket(new) => match tx.insert_ticket(&new.draft).await? {
                None => Outcome::Refused(format!(
                    "its number {} already belongs to a Helpline ticket",
                    new.draft.number
                )),
                Some(mut ticket) => {
                    new.state.apply_to(&mut ticket);
                    tx.update_ticket(&ticket).await?;
                    Outcome::Written(ticket.id.0)
                }
            },
            // Changed in the source since an earlier run, and not since in Helpline: the
            // later change wins.
            Write::TicketRefresh(id, state) => match tx.ticket(*id).await? {
                Some(mut ticket) if ticket.updated_at < state.updated_at => {
                    state.apply_to(&mut ticket);
                    tx.update_ticket(&ticket).await?;
                    Outcome::Refreshed(true)
                }
                _ => Outcome::Refreshed(false),
            },
            Write::Entry {
                ticket,
                entry,
                at,
                earlier,
            } => {
                let id = tx.insert_entry(*ticket, entry, *at).await?.id.0;
                // osTicket's signed Message-IDs may name an earlier version.
                for &hidden in earlier {
                    tx.record_legacy_id(item.kind, hidden, id).await?;
                }
                Outcome::Written(id)
            }
            Write::Collaborator { ticket, user, at } => {
                if tx.add_collaborator(*ticket, *user, *at).await? {
                    Outcome::Written(ticket.0)
                } else {
                    // Already one (two source users merged into one customer).
                    Outcome::Matched(ticket.0)
                }
            }
            Write::Event(event, at) => Outcome::Written(tx.insert_event(event, *at).await?.0),
            Write::ApiKey { key, at, revoked } => {
                let stored = tx.insert_api_key(key, *at).await?;
                if let Some(revoked) = revoked {
                    tx.revoke_api_key(stored.id, *revoked).await?;
                }
                Outcome::Written(stored.id.0)
            }
        };
        if let Outcome::Written(target) | Outcome::Matched(target) = outcome {
            tx.record_legacy_id(item.kind, item.source_id, target)
                .await?;
        }
        Ok(outcome)
    })
}

/// The state of one import run.
struct Run<'a> {
    store: &'a dyn Store,
    progress: &'a dyn Progress,
    batch: usize,
    prefix: String,
    info: SourceInfo,
    report: ImportReport,
    /// Source id → our id, per kind (earlier runs' entries included).
    maps: HashMap<LegacyKind, HashMap<i64, i64>>,
    /// What Helpline uses when the source names nothing usable.
    defaults: NewTicketDefaults,
    /// Source topic id → (source department, source priority), parents resolved.
    topic_defaults: HashMap<i64, (i64, i64)>,
    /// Source priority names (key and description, lower case) → source id.
    priority_names: HashMap<String, i64>,
    renumbered: Vec<(String, String)>,
    empty_bodies: Vec<i64>,
    no_subject: Vec<i64>,
    size_mismatches: Vec<String>,
    /// Hidden earlier versions of edited entries (not imported as entries of their own).
    edited_versions: Vec<i64>,
    /// The installation `--secret-salt` names, to check the salt against the ids in the stored
    /// mail headers.
    installation: Option<OsticketInstallation>,
    /// Ids shaped like osTicket's signed Message-IDs in the stored headers, and how many of
    /// them the given salt verifies.
    signed_ids_seen: u64,
    signed_ids_verified: u64,
}

/// The report rows, in the order the kinds are imported (`attachment` after `entry`).
const REPORT_KINDS: [&str; 14] = [
    "department",
    "status",
    "priority",
    "sla",
    "topic",
    "organization",
    "staff",
    "user",
    "ticket",
    "entry",
    "attachment",
    "collaborator",
    "event",
    "api_key",
];

impl<'a> Run<'a> {
    async fn new(
        store: &'a dyn Store,
        progress: &'a dyn Progress,
        info: &SourceInfo,
        options: &Options,
        prefix: &str,
    ) -> Result<Self, ImportError> {
        let mut reader = store.reader().await?;
        let defaults = reader.new_ticket_defaults().await?;
        drop(reader);
        Ok(Self {
            store,
            progress,
            batch: if options.batch_size == 0 {
                DEFAULT_BATCH
            } else {
                options.batch_size
            },
            prefix: prefix.to_owned(),
            info: info.clone(),
            report: ImportReport {
                kinds: REPORT_KINDS.into_iter().map(KindReport::new).collect(),
                ..ImportReport::default()
            },
            maps: HashMap::new(),
            defaults,
            topic_defaults: HashMap::new(),
            priority_names: HashMap::new(),
            renumbered: Vec::new(),
            empty_bodies: Vec::new(),
            no_subject: Vec::new(),
            size_mismatches: Vec::new(),
            edited_versions: Vec::new(),
            installation: options
                .secret_salt
                .as_deref()
                .and_then(OsticketInstallation::new),
            signed_ids_seen: 0,
            signed_ids_verified: 0,
        })
    }

    async fn all(&mut self, source: &mut Source) -> Result<(), ImportError> {
        let mut clock = Instant::now();
        self.departments(source).await?;
        self.lap("department", &mut clock);
        self.statuses(source).await?;
        self.lap("status", &mut clock);
        self.priorities(source).await?;
        self.lap("priority", &mut clock);
        self.slas(source).await?;
        self.lap("sla", &mut clock);
        // After priorities: a topic names its default priority.
        self.topics(source).await?;
        self.lap("topic", &mut clock);
        self.organizations(source).await?;
        self.lap("organization", &mut clock);
        self.staff(source).await?;
        self.lap("staff", &mut clock);
        self.users(source).await?;
        self.lap("user", &mut clock);
        let tickets = source.ticket_ids().await?;
        let counts = source.counts().await?;
        self.tickets(source, &tickets).await?;
        self.lap("ticket", &mut clock);
        // Attachments are read and written with their entries.
        self.entries(source, &tickets, counts.entries).await?;
        self.lap("entry", &mut clock);
        self.collaborators(source, &tickets, counts.collaborators)
            .await?;
        self.lap("collaborator", &mut clock);
        self.events(source, &tickets, counts.events).await?;
        self.lap("event", &mut clock);
        self.api_keys(source).await?;
        self.lap("api_key", &mut clock);
        Ok(())
    }

    /// How many tickets (or their threads) are read at once: enough for every unit in flight.
    fn read_chunk(&self) -> usize {
        self.batch.max(1) * CONCURRENT_UNITS
    }

    /// Charges the time since `clock` to `kind`.
    fn lap(&mut self, kind: &str, clock: &mut Instant) {
        self.kind(kind).elapsed = clock.elapsed();
        *clock = Instant::now();
    }

    fn finish(mut self) -> ImportReport {
        // Customers' replies to osTicket's mail name its signed Message-IDs: they show whether
        // the salt given is this desk's, or that one is needed.
        let (seen, verified) = (self.signed_ids_seen, self.signed_ids_verified);
        if seen > 0 {
            if self.installation.is_none() {
                self.note(format!(
                    "{seen} Message-IDs osTicket signed are named in the stored mail headers: \
                     run the import again with --secret-salt (and --resume) so that replies to \
                     osTicket's mail keep threading"
                ));
            } else if verified == 0 {
                self.note(format!(
                    "the --secret-salt given verifies none of the {seen} Message-IDs osTicket \
                     signed that the stored mail headers name: it is probably not this desk's \
                     SECRET_SALT (include/ost-config.php); run again with the right one and \
                     --resume"
                ));
            } else {
                self.note(format!(
                    "the --secret-salt given verifies {verified} of the {seen} Message-IDs \
                     osTicket signed that the stored mail headers name"
                ));
            }
        }
        if !self.renumbered.is_empty() {
            let examples: Vec<String> = self
                .renumbered
                .iter()
                .take(10)
                .map(|(old, new)| format!("{old} → {new}"))
                .collect();
            self.note(format!(
                "{} ticket numbers had characters Helpline's numbers cannot hold (letters, \
                 digits, '-' and '_' only) and were imported with '-' in their place: {}{}",
                self.renumbered.len(),
                examples.join(", "),
                if self.renumbered.len() > 10 {
                    ", …"
                } else {
                    ""
                }
            ));
        }
        if !self.empty_bodies.is_empty() {
            self.note(format!(
                "{} thread entries had no text in osTicket (an empty body, '-', or HTML with \
                 nothing visible) and show \"{EMPTY_BODY}\": {}",
                self.empty_bodies.len(),
                short_list(&self.empty_bodies)
            ));
        }
        if !self.no_subject.is_empty() {
            self.note(format!(
                "{} tickets had no subject in {}ticket__cdata nor in their form values and \
                 are titled \"(no subject)\": {}",
                self.no_subject.len(),
                self.prefix,
                short_list(&self.no_subject)
            ));
        }
        if !self.edited_versions.is_empty() {
            self.note(format!(
                "{} earlier versions of edited entries were not imported: osTicket keeps them \
                 hidden, shows the edited version only, and so does Helpline (mail naming an \
                 earlier version threads onto the edited one): {}",
                self.edited_versions.len(),
                short_list(&self.edited_versions)
            ));
        }
        if !self.size_mismatches.is_empty() {
            self.note(format!(
                "attachments whose content differs in size from osTicket's file record \
                 (imported as stored in {}file_chunk): {}",
                self.prefix,
                self.size_mismatches.join(", ")
            ));
        }
        self.report
    }

    fn note(&mut self, note: String) {
        self.report.notes.push(note);
    }

    fn kind(&mut self, name: &str) -> &mut KindReport {
        let index = REPORT_KINDS
            .iter()
            .position(|k| *k == name)
            .unwrap_or(REPORT_KINDS.len() - 1);
        &mut self.report.kinds[index]
    }

    fn target(&self, kind: LegacyKind, source_id: i64) -> Option<i64> {
        if source_id <= 0 {
            return None;
        }
        self.maps.get(&kind)?.get(&source_id).copied()
    }

    /// Loads the map entries earlier runs wrote for `kind`.
    async fn load_map(&mut self, kind: LegacyKind) -> Result<(), ImportError> {
        let pairs = self.store.reader().await?.legacy_ids(kind).await?;
        self.maps.insert(kind, pairs.into_iter().collect());
        Ok(())
    }

    fn done(&self, kind: LegacyKind, source_id: i64) -> bool {
        self.maps
            .get(&kind)
            .is_some_and(|map| map.contains_key(&source_id))
    }

    /// Writes `items` in units of work; counts each outcome in `report_kind`. Returns the
    /// source ids that landed (written or matched).
    async fn write_items(
        &mut self,
        report_kind: &str,
        items: Vec<Item>,
    ) -> Result<HashSet<i64>, ImportError> {
        let items: Vec<Arc<Item>> = items.into_iter().map(Arc::new).collect();
        // Units of about `batch` records that never split a group (one ticket's entries or
        // events: each unit writes its records in order), so units may run side by side. A
        // group too big for one unit's byte budget is split, and then units run one by one.
        let mut units: Vec<Vec<Arc<Item>>> = Vec::new();
        let mut one_by_one = false;
        let mut start = 0;
        while start < items.len() {
            let mut end = start + 1;
            let mut bytes = items[start].weight;
            while end < items.len() {
                let same_group = items[end].group == items[end - 1].group;
                if bytes + items[end].weight > MAX_UNIT_BYTES {
                    one_by_one |= same_group;
                    break;
                }
                if end - start >= self.batch && !same_group {
                    break;
                }
                bytes += items[end].weight;
                end += 1;
            }
            units.push(items[start..end].to_vec());
            start = end;
        }
        let store = self.store;
        let mut results = stream::iter(units.into_iter().map(|unit| async move {
            let outcome = run_unit(store, unit.clone()).await;
            (unit, outcome)
        }))
        .buffered(if one_by_one { 1 } else { CONCURRENT_UNITS });
        let mut landed = HashSet::new();
        while let Some((unit, outcome)) = results.next().await {
            match outcome {
                Ok(outcomes) => {
                    for (item, outcome) in unit.iter().zip(outcomes) {
                        self.account(report_kind, item, outcome, &mut landed);
                    }
                }
                Err(error) if is_fatal(&error) => return Err(error.into()),
                Err(error) => {
                    // One record spoiled the unit: write them one by one to find it.
                    tracing::warn!(%error, "a unit of the import failed; retrying record by record");
                    for item in unit {
                        match run_unit(store, vec![Arc::clone(&item)]).await {
                            Ok(outcomes) => {
                                for outcome in outcomes {
                                    self.account(report_kind, &item, outcome, &mut landed);
                                }
                            }
                            Err(error) if is_fatal(&error) => return Err(error.into()),
                            Err(error) => {
                                let reason = format!("Helpline refused it: {error}");
                                for &hidden in item.earlier() {
                                    self.kind(report_kind).skip(
                                        hidden,
                                        format!(
                                            "the entry that replaces it ({}) was not imported: \
                                             {reason}",
                                            item.source_id
                                        ),
                                    );
                                }
                                self.kind(report_kind).skip(item.source_id, reason);
                            }
                        }
                    }
                }
            }
        }
        Ok(landed)
    }

    fn account(
        &mut self,
        report_kind: &str,
        item: &Item,
        outcome: Outcome,
        landed: &mut HashSet<i64>,
    ) {
        match outcome {
            Outcome::Written(target) => {
                self.kind(report_kind).written += 1;
                // An edited entry's earlier versions count as matched onto it.
                self.kind(report_kind).matched += item.earlier().len() as u64;
                let map = self.maps.entry(item.kind).or_default();
                map.insert(item.source_id, target);
                for &hidden in item.earlier() {
                    map.insert(hidden, target);
                }
                landed.insert(item.source_id);
                landed.extend(item.earlier());
            }
            Outcome::Matched(target) => {
                self.kind(report_kind).matched += 1;
                self.maps
                    .entry(item.kind)
                    .or_default()
                    .insert(item.source_id, target);
                landed.insert(item.source_id);
            }
            Outcome::Refused(reason) => {
                for &hidden in item.earlier() {
                    self.kind(report_kind).skip(
                        hidden,
                        format!(
                            "the entry that replaces it ({}) was not imported: {reason}",
                            item.source_id
                        ),
                    );
                }
                self.kind(report_kind).skip(item.source_id, reason);
            }
            Outcome::Refreshed(changed) => {
                if changed {
                    self.kind(report_kind).refreshed += 1;
                }
            }
        }
    }

    // ---------------------------------------------------------------------------------------
    // Catalogue
    // ---------------------------------------------------------------------------------------

    /// Writes one catalogue kind: each source record not imported before is matched by name
    /// onto what Helpline has (`existing`: name and id), or written as `new` makes it with the
    /// name it may take.
    async fn catalogue<R>(
        &mut self,
        (kind, label): (LegacyKind, &str),
        existing: Vec<(String, i64)>,
        rows: &[R],
        record: impl Fn(&R) -> (i64, String),
        new: impl Fn(&R, String) -> Write,
    ) -> Result<(), ImportError> {
        self.progress.phase(label, rows.len() as u64);
        self.load_map(kind).await?;
        let report = kind.as_str();
        let mut names = Names::new(existing);
        let mut items = Vec::new();
        for row in rows {
            let (id, name) = record(row);
            self.kind(report).read += 1;
            if self.done(kind, id) {
                self.kind(report).resumed += 1;
                continue;
            }
            let write = match names.claim(&name, id) {
                Claim::Existing(target) => Write::Map(target),
                Claim::New(name) => new(row, name),
            };
            items.push(Item::new(kind, id, write));
        }
        self.write_items(report, items).await?;
        self.progress.advance(rows.len() as u64);
        Ok(())
    }

    async fn departments(&mut self, source: &mut Source) -> Result<(), ImportError> {
        let rows = source.departments().await?;
        let existing = self.store.reader().await?.departments().await?;
        let by_id: HashMap<i64, (i64, String)> = rows
            .iter()
            .map(|r| (r.id, (r.pid, r.name.clone())))
            .collect();
        self.catalogue(
            (LegacyKind::Department, "departments"),
            existing.into_iter().map(|d| (d.name, d.id.0)).collect(),
            &rows,
            // osTicket shows a sub-department as "Parent / Child".
            |row| {
                let name = full_name(row.id, &by_id, &format!("Department {}", row.id));
                (row.id, name)
            },
            |row, name| {
                Write::Department(
                    NewDepartment { name },
                    at(row.created).unwrap_or_else(helpline_core::now),
                )
            },
        )
        .await
    }

    async fn topics(&mut self, source: &mut Source) -> Result<(), ImportError> {
        let kind = LegacyKind::Topic;
        let rows = source.topics().await?;
        self.progress.phase("help topics", rows.len() as u64);
        self.load_map(kind).await?;
        let existing: Vec<(String, i64)> = self
            .store
            .reader()
            .await?
            .topics()
            .await?
            .into_iter()
            .map(|t| (t.name, t.id.0))
            .collect();
        let mut names = Names::new(existing);
        let by_id: HashMap<i64, (i64, String)> = rows
            .iter()
            .map(|r| (r.id, (r.pid, r.name.clone())))
            .collect();
        let source_default_dept = self.core_id("default_dept_id");
        let mut no_priority = Vec::new();
        // A sub-topic without its own department or priority takes its parent's.
        let inherited = |id: i64, pick: &dyn Fn(&TopicRow) -> i64| {
            let mut current = id;
            for _ in 0..16 {
                let Some(row) = rows.iter().find(|r| r.id == current) else {
                    break;
                };
                if pick(row) > 0 {
                    return pick(row);
                }
                current = row.pid;
            }
            0
        };
        let mut items = Vec::new();
        let mut inactive = Vec::new();
        for row in &rows {
            let dept = inherited(row.id, &|r| r.dept_id);
            let priority = inherited(row.id, &|r| r.priority_id);
            self.topic_defaults.insert(row.id, (dept, priority));
            self.kind("topic").read += 1;
            if self.done(kind, row.id) {
                self.kind("topic").resumed += 1;
                continue;
            }
            if row.flags & 0x2 == 0 || row.flags & 0x4 != 0 {
                inactive.push(row.id);
            }
            let name = full_name(row.id, &by_id, &format!("Topic {}", row.id));
            let write = match names.claim(&name, row.id) {
                Claim::Existing(id) => Write::Map(id),
                Claim::New(name) => {
                    let department_id = self
                        .target(LegacyKind::Department, dept)
                        .or_else(|| self.target(LegacyKind::Department, source_default_dept))
                        .map_or(self.defaults.department_id, DepartmentId);
                    let priority_id = self.target(LegacyKind::Priority, priority).map(PriorityId);
                    if priority > 0 && priority_id.is_none() {
                        no_priority.push(row.id);
                    }
                    Write::Topic(
                        NewTopic {
                            name,
                            department_id,
                            priority_id,
                        },
                        at(row.created).unwrap_or_else(helpline_core::now),
                    )
                }
            };
            items.push(Item::new(kind, row.id, write));
        }
        self.write_items("topic", items).await?;
        if !no_priority.is_empty() {
            self.note(format!(
                "help topics whose priority was not imported, imported without a priority of \
                 their own (tickets keep theirs): {}",
                short_list(&no_priority)
            ));
        }
        if !inactive.is_empty() {
            self.note(format!(
                "help topics inactive or archived in osTicket, imported as active topics: {}",
                short_list(&inactive)
            ));
        }
        self.progress.advance(rows.len() as u64);
        Ok(())
    }

    async fn statuses(&mut self, source: &mut Source) -> Result<(), ImportError> {
        let kind = LegacyKind::Status;
        let rows = source.statuses().await?;
        self.progress.phase("statuses", rows.len() as u64);
        self.load_map(kind).await?;
        let existing = self.store.reader().await?.statuses().await?;
        let mut names = Names::new(existing.iter().map(|s| (s.name.clone(), s.id.0)).collect());
        let mut items = Vec::new();
        for row in &rows {
            self.kind("status").read += 1;
            if self.done(kind, row.id) {
                self.kind("status").resumed += 1;
                continue;
            }
            let state = match row.state.trim().to_ascii_lowercase().as_str() {
                "open" => StatusState::Open,
                "closed" => StatusState::Closed,
                "archived" => StatusState::Archived,
                "deleted" => {
                    self.note(format!(
                        "status {} \"{}\" has osTicket's state 'deleted' (tickets queued for \
                         deletion), which Helpline does not have: imported as archived",
                        row.id, row.name
                    ));
                    StatusState::Archived
                }
                other => {
                    self.kind("status").skip(
                        row.id,
                        format!("unknown state '{other}' (open, closed, archived, deleted)"),
                    );
                    continue;
                }
            };
            let allow_reopen = row
                .properties
                .as_deref()
                .and_then(|p| serde_json::from_str::<serde_json::Value>(p).ok())
                .and_then(|p| p.get("allowreopen").cloned())
                .is_some_and(|v| truthy(&v));
            let name = clean_line(&row.name, 64).unwrap_or_else(|| format!("Status {}", row.id));
            let write = match names.claim(&name, row.id) {
                Claim::Existing(id) => {
                    if let Some(ours) = existing.iter().find(|s| s.id.0 == id)
                        && ours.state != state
                    {
                        self.note(format!(
                            "status {} \"{}\" ({}) was mapped onto Helpline's status of that \
                             name, which is {}",
                            row.id,
                            row.name,
                            state.as_str(),
                            ours.state.as_str()
                        ));
                    }
                    Write::Map(id)
                }
                Claim::New(name) => Write::Status(NewStatus {
                    name,
                    state,
                    allow_reopen,
                }),
            };
            items.push(Item::new(kind, row.id, write));
        }
        self.write_items("status", items).await?;
        self.progress.advance(rows.len() as u64);
        Ok(())
    }

    async fn priorities(&mut self, source: &mut Source) -> Result<(), ImportError> {
        let rows = source.priorities().await?;
        for row in &rows {
            self.priority_names
                .insert(row.key.trim().to_lowercase(), row.id);
            self.priority_names
                .insert(row.desc.trim().to_lowercase(), row.id);
        }
        let existing = self.store.reader().await?.priorities().await?;
        self.catalogue(
            (LegacyKind::Priority, "priorities"),
            existing.into_iter().map(|p| (p.name, p.id.0)).collect(),
            &rows,
            |row| {
                let name = clean_line(&row.desc, 64)
                    .or_else(|| clean_line(&row.key, 64))
                    .unwrap_or_else(|| format!("Priority {}", row.id));
                (row.id, name)
            },
            |row, name| {
                Write::Priority(NewPriority {
                    name,
                    urgency: i32::try_from(row.urgency.clamp(1, 100)).unwrap_or(3),
                })
            },
        )
        .await
    }

    async fn slas(&mut self, source: &mut Source) -> Result<(), ImportError> {
        let rows = source.slas().await?;
        let existing = self.store.reader().await?.slas().await?;
        self.catalogue(
            (LegacyKind::Sla, "SLAs"),
            existing.into_iter().map(|s| (s.name, s.id.0)).collect(),
            &rows,
            |row| {
                let name = clean_line(&row.name, 64).unwrap_or_else(|| format!("SLA {}", row.id));
                (row.id, name)
            },
            |row, name| {
                Write::Sla(
                    NewSla {
                        name,
                        grace_hours: i32::try_from(row.grace_hours.max(0)).unwrap_or(i32::MAX),
                    },
                    at(row.created).unwrap_or_else(helpline_core::now),
                )
            },
        )
        .await
    }

    async fn organizations(&mut self, source: &mut Source) -> Result<(), ImportError> {
        let rows = source.organizations().await?;
        let existing = self.store.reader().await?.organizations().await?;
        self.catalogue(
            (LegacyKind::Organization, "organisations"),
            existing.into_iter().map(|o| (o.name, o.id.0)).collect(),
            &rows,
            |row| {
                let name = clean_line(&row.name, 128)
                    .unwrap_or_else(|| format!("Organisation {}", row.id));
                (row.id, name)
            },
            |row, name| {
                let created = at(row.created).unwrap_or_else(helpline_core::now);
                Write::Organization(NewOrganization {
                    name,
                    domain: row
                        .domain
                        .as_deref()
                        .map(str::trim)
                        .filter(|d| !d.is_empty())
                        .map(str::to_owned),
                    created_at: created,
                    updated_at: at(row.updated).unwrap_or(created),
                })
            },
        )
        .await
    }

    async fn staff(&mut self, source: &mut Source) -> Result<(), ImportError> {
        let kind = LegacyKind::Staff;
        let rows = source.staff().await?;
        self.progress.phase("staff", rows.len() as u64);
        self.load_map(kind).await?;
        let existing = self.store.reader().await?.staff().await?;
        let mut usernames: HashMap<String, i64> = existing
            .iter()
            .map(|s| (s.username.to_lowercase(), s.id.0))
            .collect();
        let mut addresses: HashMap<String, String> = existing
            .iter()
            .map(|s| (s.email.key(), s.username.clone()))
            .collect();
        let source_default_dept = self.core_id("default_dept_id");
        let mut items = Vec::new();
        for row in &rows {
            self.kind("staff").read += 1;
            if self.done(kind, row.id) {
                self.kind("staff").resumed += 1;
                continue;
            }
            let username = row.username.trim().to_owned();
            if username.is_empty() {
                self.kind("staff").skip(row.id, "it has no username");
                continue;
            }
            if let Some(&id) = usernames.get(&username.to_lowercase()) {
                if id > 0 {
                    self.note(format!(
                        "staff {} '{username}' was mapped onto Helpline's staff member of that \
                         username (its osTicket password and details were not carried over)",
                        row.id
                    ));
                    items.push(Item::new(kind, row.id, Write::Map(id)));
                } else {
                    self.kind("staff").skip(
                        row.id,
                        format!("another osTicket staff member is '{username}'"),
                    );
                }
                continue;
            }
            let email = match EmailAddress::parse(&row.email) {
                Ok(email) => email,
                Err(problem) => {
                    self.kind("staff")
                        .skip(row.id, format!("its email address is unusable: {problem}"));
                    continue;
                }
            };
            if let Some(holder) = addresses.get(&email.key()) {
                self.kind("staff").skip(
                    row.id,
                    format!("its address {email} already belongs to staff member '{holder}'"),
                );
                continue;
            }
            usernames.insert(username.to_lowercase(), 0);
            addresses.insert(email.key(), username.clone());
            let name = clean_line(
                &format!("{} {}", row.firstname.trim(), row.lastname.trim()),
                128,
            )
            .unwrap_or_else(|| username.clone());
            let department_id = self
                .target(LegacyKind::Department, row.dept_id)
                .or_else(|| self.target(LegacyKind::Department, source_default_dept))
                .map_or(self.defaults.department_id, DepartmentId);
            let write = Write::Staff(ImportedStaff {
                staff: NewStaff {
                    username,
                    name,
                    email,
                    department_id,
                },
                active: row.active,
                password_hash: row
                    .passwd
                    .as_deref()
                    .map(str::trim)
                    .filter(|p| !p.is_empty())
                    .map(str::to_owned),
                created_at: at(row.created).unwrap_or_else(helpline_core::now),
            });
            items.push(Item::new(kind, row.id, write));
        }
        self.write_items("staff", items).await?;
        self.progress.advance(rows.len() as u64);
        Ok(())
    }

    async fn users(&mut self, source: &mut Source) -> Result<(), ImportError> {
        let kind = LegacyKind::User;
        let rows = source.users().await?;
        let emails = source.user_emails().await?;
        self.progress.phase("users", rows.len() as u64);
        self.load_map(kind).await?;

        // Every address Helpline already has, and whose it is.
        let mut known: HashMap<String, Holder> = HashMap::new();
        {
            let mut reader = self.store.reader().await?;
            let mut after = None;
            loop {
                let page = reader.users(after, 1000).await?;
                let Some(last) = page.last() else { break };
                after = Some(last.id);
                for user in &page {
                    for email in &user.emails {
                        known.insert(email.key(), Holder::Helpline(user.id.0));
                    }
                }
            }
        }
        let mut own: HashMap<i64, Vec<&UserEmailRow>> = HashMap::new();
        let mut by_email_id: HashMap<i64, &UserEmailRow> = HashMap::new();
        for email in &emails {
            own.entry(email.user_id).or_default().push(email);
            by_email_id.insert(email.id, email);
        }

        let mut items = Vec::new();
        let mut later: Vec<(i64, i64, String)> = Vec::new();
        let mut invalid = Vec::new();
        for row in &rows {
            self.kind("user").read += 1;
            if self.done(kind, row.id) {
                self.kind("user").resumed += 1;
                continue;
            }
            let mut mine = own.get(&row.id).cloned().unwrap_or_default();
            // The default address first, then the others in the order they were added.
            mine.sort_by_key(|e| (e.id != row.default_email_id, e.id));
            if mine.is_empty()
                && let Some(shared) = by_email_id.get(&row.default_email_id)
                && shared.user_id != row.id
            {
                // osTicket's duplicate-user quirk: same customer, made twice.
                later.push((row.id, shared.user_id, shared.address.clone()));
                continue;
            }
            let mut addresses = Vec::new();
            for email in &mine {
                match EmailAddress::parse(&email.address) {
                    Ok(address) => addresses.push(address),
                    Err(_) => invalid.push(format!("{} (user {})", email.address, row.id)),
                }
            }
            if let Some((address, holder)) = addresses
                .iter()
                .find_map(|a| known.get(&a.key()).map(|h| (a.to_string(), *h)))
            {
                match holder {
                    Holder::Helpline(id) => {
                        items.push(Item::new(kind, row.id, Write::Map(id)));
                    }
                    Holder::Source(owner) => later.push((row.id, owner, address)),
                }
                continue;
            }
            for address in &addresses {
                known.insert(address.key(), Holder::Source(row.id));
            }
            let created = at(row.created).unwrap_or_else(helpline_core::now);
            let name = clean_line(&row.name, helpline_core::user::MAX_NAME_LEN)
                .or_else(|| addresses.first().map(ToString::to_string))
                .unwrap_or_else(|| format!("osTicket user {}", row.id));
            let write = Write::User(ImportedUser {
                name,
                emails: addresses,
                phone: row.phone.as_deref().and_then(|p| clean_text(p, 64)),
                notes: row.notes.as_deref().and_then(|n| clean_text(n, 10_000)),
                organization_id: self
                    .target(LegacyKind::Organization, row.org_id)
                    .map(OrganizationId),
                created_at: created,
                updated_at: at(row.updated).unwrap_or(created),
            });
            items.push(Item::new(kind, row.id, write));
        }
        self.write_items("user", items).await?;

        // The duplicates, onto the users whose address they share (now imported).
        let mut items = Vec::new();
        for (duplicate, owner, address) in later {
            match self.target(kind, owner) {
                Some(target) => {
                    self.report.duplicate_users.push(DuplicateUser {
                        source_id: duplicate,
                        same_as: owner,
                        address,
                    });
                    items.push(Item::new(kind, duplicate, Write::Map(target)));
                }
                None => self.kind("user").skip(
                    duplicate,
                    format!(
                        "it shares the address {address} with user {owner}, which was not \
                         imported"
                    ),
                ),
            }
        }
        self.write_items("user", items).await?;
        if !invalid.is_empty() {
            self.note(format!(
                "addresses osTicket accepted but Helpline cannot use, left off their users: {}",
                invalid.join(", ")
            ));
        }
        self.progress.advance(rows.len() as u64);
        Ok(())
    }

    // ---------------------------------------------------------------------------------------
    // Tickets and their threads
    // ---------------------------------------------------------------------------------------

    async fn tickets(&mut self, source: &mut Source, ids: &[i64]) -> Result<(), ImportError> {
        let kind = LegacyKind::Ticket;
        self.progress.phase("tickets", ids.len() as u64);
        self.load_map(kind).await?;
        let source_default_priority = self.core_id("default_priority_id");
        for chunk in ids.chunks(self.read_chunk()) {
            let todo: Vec<i64> = chunk
                .iter()
                .copied()
                .filter(|&id| !self.done(kind, id))
                .collect();
            let report = self.kind("ticket");
            report.read += chunk.len() as u64;
            report.resumed += (chunk.len() - todo.len()) as u64;
            let mut items = Vec::with_capacity(chunk.len());
            // Tickets an earlier run imported: brought up to date where osTicket changed them
            // since (a status, an assignee, a closing), unless Helpline changed them later.
            let imported: Vec<i64> = chunk
                .iter()
                .copied()
                .filter(|&id| self.done(kind, id))
                .collect();
            for row in source.tickets(&imported).await? {
                if let Some(target) = self.target(kind, row.id) {
                    let state = self.ticket_state(&row, source_default_priority);
                    items.push(Item::new(
                        kind,
                        row.id,
                        Write::TicketRefresh(TicketId(target), Box::new(state)),
                    ));
                }
            }
            let rows = source.tickets(&todo).await?;
            for row in rows {
                let Some(owner) = self.target(LegacyKind::User, row.user_id) else {
                    self.kind("ticket").skip(
                        row.id,
                        format!("its owner, user {}, was not imported", row.user_id),
                    );
                    continue;
                };
                let number = match TicketNumber::parse(&row.number) {
                    Ok(number) => number,
                    Err(_) => {
                        let replaced: String = row
                            .number
                            .trim()
                            .chars()
                            .map(|c| {
                                if c.is_ascii_alphanumeric() || c == '-' || c == '_' {
                                    c
                                } else {
                                    '-'
                                }
                            })
                            .take(20)
                            .collect();
                        let replaced = if replaced.is_empty() {
                            row.id.to_string()
                        } else {
                            replaced
                        };
                        match TicketNumber::parse(&replaced) {
                            Ok(number) => {
                                self.renumbered.push((row.number.clone(), replaced));
                                number
                            }
                            Err(problem) => {
                                self.kind("ticket").skip(row.id, problem);
                                continue;
                            }
                        }
                    }
                };
                let subject = match row.subject.as_deref() {
                    Some(raw) => Subject::parse(raw).or_else(|_| {
                        let cut: String = raw
                            .chars()
                            .map(|c| if c.is_control() { ' ' } else { c })
                            .take(helpline_core::ticket::MAX_SUBJECT_LEN)
                            .collect();
                        Subject::parse(&cut)
                    }),
                    None => Err(String::new()),
                };
                let subject = match subject {
                    Ok(subject) => subject,
                    Err(_) => {
                        self.no_subject.push(row.id);
                        Subject::from_stored("(no subject)".to_owned())
                    }
                };
                let state = self.ticket_state(&row, source_default_priority);
                let draft = TicketDraft {
                    number,
                    subject,
                    user_id: UserId(owner),
                    department_id: state.department_id,
                    topic_id: state.topic_id,
                    status_id: state.status_id,
                    priority_id: state.priority_id,
                    source: row
                        .source
                        .as_deref()
                        .and_then(Channel::parse)
                        .unwrap_or(Channel::Other),
                    ip: parse_ip(row.ip_address.as_deref()),
                    created_at: ticket_created(&row),
                };
                let write = TicketWrite { draft, state };
                items.push(Item::new(kind, row.id, Write::Ticket(Box::new(write))));
            }
            self.write_items("ticket", items).await?;
            self.progress.advance(chunk.len() as u64);
        }
        let refreshed = self.kind("ticket").refreshed;
        if refreshed > 0 {
            self.note(format!(
                "{refreshed} tickets imported by an earlier run had changed in osTicket since \
                 (status, assignee, department, times…) and were brought up to date"
            ));
        }
        Ok(())
    }

    /// A ticket's changeable fields from its source row.
    fn ticket_state(&self, row: &TicketRow, source_default_priority: i64) -> TicketState {
        let (topic_dept, topic_priority) = self
            .topic_defaults
            .get(&row.topic_id)
            .copied()
            .unwrap_or((0, 0));
        let priority_source = row
            .priority
            .or_else(|| {
                row.priority_name
                    .as_deref()
                    .and_then(|n| self.priority_names.get(&n.trim().to_lowercase()))
                    .copied()
            })
            .filter(|&p| self.target(LegacyKind::Priority, p).is_some())
            .unwrap_or(if topic_priority > 0 {
                topic_priority
            } else {
                source_default_priority
            });
        TicketState {
            department_id: self
                .target(LegacyKind::Department, row.dept_id)
                .or_else(|| self.target(LegacyKind::Department, topic_dept))
                .map_or(self.defaults.department_id, DepartmentId),
            topic_id: self.target(LegacyKind::Topic, row.topic_id).map(TopicId),
            status_id: self
                .target(LegacyKind::Status, row.status_id)
                .map_or(self.defaults.status_id, StatusId),
            priority_id: self
                .target(LegacyKind::Priority, priority_source)
                .map_or(self.defaults.priority_id, PriorityId),
            assignee: self.target(LegacyKind::Staff, row.staff_id).map(StaffId),
            is_answered: row.is_answered,
            due_at: at(row.duedate).or(at(row.est_duedate)),
            updated_at: [at(row.updated), at(row.lastupdate)]
                .into_iter()
                .flatten()
                .max()
                .unwrap_or_else(|| ticket_created(row)),
            last_message_at: at(row.lastmessage),
            last_response_at: at(row.lastresponse),
            closed_at: at(row.closed),
            reopened_at: at(row.reopened),
        }
    }

    async fn entries(
        &mut self,
        source: &mut Source,
        tickets: &[i64],
        total: u64,
    ) -> Result<(), ImportError> {
        let kind = LegacyKind::Entry;
        self.progress.phase("thread entries", total);
        self.load_map(kind).await?;
        // Entries are read a few tickets at a time (most threads are short).
        for chunk in tickets.chunks(self.read_chunk()) {
            let rows = source.entries(chunk).await?;
            let todo: Vec<i64> = rows
                .iter()
                .map(|r| r.id)
                .filter(|&id| !self.done(kind, id))
                .collect();
            let mut attachments: HashMap<i64, Vec<AttachmentRow>> = HashMap::new();
            for attachment in source.attachments(&todo).await? {
                attachments
                    .entry(attachment.entry_id)
                    .or_default()
                    .push(attachment);
            }
            // An edited entry's earlier versions are hidden in osTicket: each goes with the
            // visible entry that replaced it.
            let replaced_by = replacements(&rows);
            let mut versions: HashMap<i64, Vec<&EntryRow>> = HashMap::new();
            for row in &rows {
                if let Some(visible) = replaced_by.get(&row.id) {
                    versions.entry(*visible).or_default().push(row);
                }
            }
            let mut items = Vec::new();
            let mut pending_bytes = 0;
            // Attachment ids carried by each entry item, counted once the entry landed.
            let mut carried: HashMap<i64, Vec<i64>> = HashMap::new();
            for row in &rows {
                self.kind("entry").read += 1;
                if self.done(kind, row.id) {
                    self.kind("entry").resumed += 1;
                    continue;
                }
                let files = attachments.remove(&row.id).unwrap_or_default();
                self.kind("attachment").read += files.len() as u64;
                if row.flags & source::ENTRY_HIDDEN != 0 {
                    self.edited_versions.push(row.id);
                    let reason = format!(
                        "its thread entry {} is an earlier version of an edited entry, hidden \
                         in osTicket, and was not imported",
                        row.id
                    );
                    for file in &files {
                        self.kind("attachment").skip(file.id, reason.clone());
                    }
                    match replaced_by.get(&row.id) {
                        None => self.kind("entry").skip(
                            row.id,
                            "hidden in osTicket (an earlier version of an edited entry) and no \
                             visible entry replaces it",
                        ),
                        // Otherwise it is mapped with the visible entry's item.
                        Some(visible) if todo.contains(visible) => {}
                        // Imported before: map onto it now.
                        Some(&visible) => {
                            if let Some(target) = self.target(kind, visible) {
                                items.push(
                                    Item::new(kind, row.id, Write::Map(target))
                                        .in_group(row.ticket_id),
                                );
                            }
                        }
                    }
                    continue;
                }
                // Its hidden earlier versions, oldest first, and those still to map.
                let mut earlier = versions.remove(&row.id).unwrap_or_default();
                earlier.sort_by_key(|r| r.id);
                let unmapped: Vec<i64> = earlier
                    .iter()
                    .map(|r| r.id)
                    .filter(|&id| !self.done(kind, id))
                    .collect();
                let skip_earlier = |run: &mut Self, reason: &str| {
                    for &hidden in &unmapped {
                        run.kind("entry").skip(
                            hidden,
                            format!(
                                "the entry that replaces it ({}) was not imported: {reason}",
                                row.id
                            ),
                        );
                    }
                };
                let Some(ticket) = self.target(LegacyKind::Ticket, row.ticket_id) else {
                    let reason = format!("its ticket {} was not imported", row.ticket_id);
                    for file in &files {
                        self.kind("attachment").skip(file.id, reason.clone());
                    }
                    skip_earlier(self, &reason);
                    self.kind("entry").skip(row.id, reason);
                    continue;
                };
                let Some(entry_kind) = entry_kind(&row.kind) else {
                    let reason = format!("unknown entry type '{}' (M, R, N)", row.kind);
                    for file in &files {
                        self.kind("attachment").skip(file.id, reason.clone());
                    }
                    skip_earlier(self, &reason);
                    self.kind("entry").skip(row.id, reason);
                    continue;
                };
                // osTicket stores no Message-ID for an edit: replies to the original mail
                // thread through the earlier version's.
                let with_mail;
                let row = match earlier.iter().find(|r| r.mid.is_some()) {
                    Some(original) if row.mid.is_none() => {
                        with_mail = EntryRow {
                            mid: original.mid.clone(),
                            headers: row.headers.clone().or_else(|| original.headers.clone()),
                            ..row.clone()
                        };
                        &with_mail
                    }
                    _ => row,
                };
                let mut new_files = Vec::new();
                let mut ids = Vec::new();
                let mut weight = 0;
                for file in files {
                    if let Some(attachment) = self.attachment(source, row, &file).await? {
                        weight += attachment.content.len();
                        new_files.push(attachment);
                        ids.push(file.id);
                    }
                }
                let entry = self.entry(row, entry_kind, new_files);
                let created = at(row.created).unwrap_or_else(helpline_core::now);
                carried.insert(row.id, ids);
                items.push(Item {
                    kind,
                    source_id: row.id,
                    write: Write::Entry {
                        ticket: TicketId(ticket),
                        entry: Box::new(entry),
                        at: created,
                        earlier: unmapped,
                    },
                    weight,
                    group: row.ticket_id,
                });
                pending_bytes += weight;
                if pending_bytes > MAX_UNIT_BYTES {
                    let landed = self
                        .write_items("entry", std::mem::take(&mut items))
                        .await?;
                    self.count_attachments(&mut carried, &landed);
                    pending_bytes = 0;
                }
            }
            let landed = self.write_items("entry", items).await?;
            self.count_attachments(&mut carried, &landed);
            self.progress.advance(rows.len() as u64);
        }
        Ok(())
    }

    fn count_attachments(&mut self, carried: &mut HashMap<i64, Vec<i64>>, landed: &HashSet<i64>) {
        for (entry, files) in carried.drain() {
            if landed.contains(&entry) {
                self.kind("attachment").written += files.len() as u64;
            } else {
                for file in files {
                    self.kind("attachment")
                        .skip(file, format!("its thread entry {entry} was not imported"));
                }
            }
        }
    }

    /// An attachment's file, read from the database; `None` (and a skip) when it cannot be.
    async fn attachment(
        &mut self,
        source: &mut Source,
        entry: &EntryRow,
        file: &AttachmentRow,
    ) -> Result<Option<NewAttachment>, ImportError> {
        if !file.file_found {
            let reason = format!(
                "its file {} is missing from {}file",
                file.file_id, self.prefix
            );
            self.kind("attachment").skip(file.id, reason);
            return Ok(None);
        }
        let name = file
            .name
            .as_deref()
            .map(str::trim)
            .filter(|n| !n.is_empty())
            .unwrap_or(&file.file_name)
            .to_owned();
        if file.backend != "D" {
            let plugin = match file.backend.as_str() {
                "F" => "the filesystem storage plugin (storage-fs)".to_owned(),
                "S" | "3" => "the S3 storage plugin".to_owned(),
                other => format!("storage backend '{other}'"),
            };
            self.kind("attachment").skip(
                file.id,
                format!(
                    "'{name}' (ticket {}, entry {}, file {}) is kept outside the database by \
                     {plugin}, and the import reads files stored in the database only: move \
                     the files into the database before importing (osTicket's `php manage.php \
                     file migrate --backend={} --to=D`), or attach this one by hand (an entry \
                     already imported does not take attachments on a --resume)",
                    entry.number, entry.id, file.file_id, file.backend
                ),
            );
            return Ok(None);
        }
        let (content, chunks) = source.file_content(file.file_id).await?;
        if chunks == 0 && file.size > 0 {
            let reason = format!(
                "file {} '{name}' has no data in {}file_chunk",
                file.file_id, self.prefix
            );
            self.kind("attachment").skip(file.id, reason);
            return Ok(None);
        }
        if i64::try_from(content.len()).ok() != Some(file.size) {
            self.size_mismatches.push(format!(
                "attachment {} '{name}': {} bytes, the record says {}",
                file.id,
                content.len(),
                file.size
            ));
        }
        let content_type = if file.content_type.trim().is_empty() {
            "application/octet-stream"
        } else {
            file.content_type.as_str()
        };
        let attachment = NewAttachment::new(&name, content_type, content.clone(), usize::MAX)
            .or_else(|_| {
                NewAttachment::new(
                    &format!("attachment-{}", file.id),
                    "application/octet-stream",
                    content,
                    usize::MAX,
                )
            });
        match attachment {
            // osTicket's HTML refers to inline images as `cid:` + the file's key.
            Ok(attachment) => Ok(Some(
                attachment.with_content_id(file.key.clone().filter(|_| file.inline)),
            )),
            Err(problem) => {
                self.kind("attachment").skip(file.id, problem);
                Ok(None)
            }
        }
    }

    fn entry(
        &mut self,
        row: &EntryRow,
        kind: EntryKind,
        attachments: Vec<NewAttachment>,
    ) -> NewEntry {
        let user = self.target(LegacyKind::User, row.user_id).map(UserId);
        let staff = self.target(LegacyKind::Staff, row.staff_id).map(StaffId);
        let author = match kind {
            EntryKind::Message => user
                .map(Author::User)
                .or(staff.map(Author::Staff))
                .unwrap_or(Author::System),
            EntryKind::Response | EntryKind::Note => staff
                .map(Author::Staff)
                .or(user.map(Author::User))
                .unwrap_or(Author::System),
        };
        let display_name = row
            .poster
            .as_deref()
            .and_then(|p| clean_line(p, helpline_core::user::MAX_NAME_LEN))
            .unwrap_or_else(|| "osTicket".to_owned());
        let format = match row.format.as_deref().map(str::trim) {
            Some(f) if f.eq_ignore_ascii_case("html") => BodyFormat::Html,
            _ => BodyFormat::Text,
        };
        let raw = row.body.as_deref().unwrap_or_default();
        let body = if raw.trim().is_empty() || raw.trim() == "-" {
            None
        } else {
            // HTML is sanitised by the same constructor every other way in uses.
            MessageBody::parse(raw, format).ok()
        };
        let body = body.unwrap_or_else(|| {
            self.empty_bodies.push(row.id);
            MessageBody::from_stored(EMPTY_BODY.to_owned(), BodyFormat::Text)
        });
        let source = match row.source.as_deref().and_then(Channel::parse) {
            Some(source) => source,
            // osTicket leaves the source empty for what staff post in its panel.
            None if kind != EntryKind::Message => Channel::Web,
            None => Channel::Other,
        };
        let headers = row.headers.as_deref().unwrap_or_default();
        let in_reply_to = header_ids(headers, "In-Reply-To");
        let references = header_ids(headers, "References");
        for id in in_reply_to.iter().chain(&references) {
            if osticket_id::has_shape(id) {
                self.signed_ids_seen += 1;
                if let Some(installation) = &self.installation
                    && installation.decode(id).is_some()
                {
                    self.signed_ids_verified += 1;
                }
            }
        }
        NewEntry {
            kind,
            author,
            display_name,
            title: row.title.as_deref().and_then(|t| clean_line(t, 255)),
            body,
            source,
            ip: parse_ip(row.ip_address.as_deref()),
            api_key_id: None,
            mail: MailIds {
                message_id: row.mid.as_deref().and_then(normalize_message_id),
                in_reply_to: in_reply_to.first().cloned(),
                references: (!references.is_empty()).then(|| references.join(" ")),
            },
            flags: EntryFlags::default(),
            attachments,
        }
    }

    async fn collaborators(
        &mut self,
        source: &mut Source,
        tickets: &[i64],
        total: u64,
    ) -> Result<(), ImportError> {
        let kind = LegacyKind::Collaborator;
        self.progress.phase("collaborators", total);
        self.load_map(kind).await?;
        for chunk in tickets.chunks(self.read_chunk()) {
            let rows = source.collaborators(chunk).await?;
            let mut items = Vec::new();
            for row in &rows {
                self.kind("collaborator").read += 1;
                if self.done(kind, row.id) {
                    self.kind("collaborator").resumed += 1;
                    continue;
                }
                // osTicket adds people Cc'd on mail inactive until staff approve them: they
                // get no replies and may not post.
                if row.flags & source::COLLABORATOR_ACTIVE == 0 {
                    self.kind("collaborator")
                        .skip(row.id, "inactive in osTicket (not approved by staff)");
                    continue;
                }
                let Some(ticket) = self.target(LegacyKind::Ticket, row.ticket_id) else {
                    self.kind("collaborator").skip(
                        row.id,
                        format!("its ticket {} was not imported", row.ticket_id),
                    );
                    continue;
                };
                let Some(user) = self.target(LegacyKind::User, row.user_id) else {
                    self.kind("collaborator")
                        .skip(row.id, format!("its user {} was not imported", row.user_id));
                    continue;
                };
                items.push(
                    Item::new(
                        kind,
                        row.id,
                        Write::Collaborator {
                            ticket: TicketId(ticket),
                            user: UserId(user),
                            at: at(row.created).unwrap_or_else(helpline_core::now),
                        },
                    )
                    .in_group(row.ticket_id),
                );
            }
            self.write_items("collaborator", items).await?;
            self.progress.advance(rows.len() as u64);
        }
        Ok(())
    }

    async fn events(
        &mut self,
        source: &mut Source,
        tickets: &[i64],
        total: u64,
    ) -> Result<(), ImportError> {
        let kind = LegacyKind::Event;
        self.progress.phase("events", total);
        self.load_map(kind).await?;
        for chunk in tickets.chunks(self.read_chunk()) {
            let rows = source.events(chunk).await?;
            let mut items = Vec::new();
            for row in &rows {
                self.kind("event").read += 1;
                if self.done(kind, row.id) {
                    self.kind("event").resumed += 1;
                    continue;
                }
                let Some(ticket) = self.target(LegacyKind::Ticket, row.ticket_id) else {
                    self.kind("event").skip(
                        row.id,
                        format!("its ticket {} was not imported", row.ticket_id),
                    );
                    continue;
                };
                let event_kind = match row.name.as_str() {
                    "created" => EventKind::TicketCreated,
                    "closed" => EventKind::Closed,
                    "reopened" => EventKind::Reopened,
                    "collab" => EventKind::Collaborator,
                    "message" => EventKind::MessagePosted,
                    "note" => EventKind::NotePosted,
                    _ => EventKind::Imported,
                };
                let actor = match row.uid_type.as_str() {
                    "U" => Actor {
                        user_id: self.target(LegacyKind::User, row.uid).map(UserId),
                        ..Actor::system()
                    },
                    _ => Actor {
                        staff_id: self
                            .target(LegacyKind::Staff, row.uid)
                            .or_else(|| self.target(LegacyKind::Staff, row.staff_id))
                            .map(StaffId),
                        ..Actor::system()
                    },
                };
                let original = row.data.as_deref().map(|d| {
                    serde_json::from_str::<serde_json::Value>(d)
                        .unwrap_or_else(|_| serde_json::Value::String(d.to_owned()))
                });
                let mut data = serde_json::json!({
                    "osticket_event": row.name,
                    "data": original,
                    "username": row.username,
                });
                if row.annulled
                    && let Some(object) = data.as_object_mut()
                {
                    object.insert("annulled".into(), serde_json::Value::Bool(true));
                }
                items.push(
                    Item::new(
                        kind,
                        row.id,
                        Write::Event(
                            NewEvent {
                                ticket_id: Some(TicketId(ticket)),
                                kind: event_kind,
                                actor,
                                data: data.to_string(),
                            },
                            at(row.timestamp).unwrap_or_else(helpline_core::now),
                        ),
                    )
                    .in_group(row.ticket_id),
                );
            }
            self.write_items("event", items).await?;
            self.progress.advance(rows.len() as u64);
        }
        Ok(())
    }

    async fn api_keys(&mut self, source: &mut Source) -> Result<(), ImportError> {
        let kind = LegacyKind::ApiKey;
        let rows = source.api_keys().await?;
        self.progress.phase("API keys", rows.len() as u64);
        self.load_map(kind).await?;
        let mut items = Vec::new();
        for row in &rows {
            self.kind("api_key").read += 1;
            if self.done(kind, row.id) {
                self.kind("api_key").resumed += 1;
                continue;
            }
            let secret = match KeySecret::parse(&row.key) {
                Ok(secret) => secret,
                Err(problem) => {
                    self.kind("api_key")
                        .skip(row.id, format!("its key is unusable: it {problem}"));
                    continue;
                }
            };
            let rule: IpRule = match row.ipaddr.parse() {
                Ok(rule) => rule,
                Err(problem) => {
                    self.kind("api_key")
                        .skip(row.id, format!("its address is unusable: {problem}"));
                    continue;
                }
            };
            let existing = self
                .store
                .reader()
                .await?
                .api_key_by_hash(&secret.hash())
                .await?;
            if let Some(existing) = existing {
                self.note(format!(
                    "API key {} is already in Helpline (key {}); mapped onto it unchanged",
                    row.id, existing.id
                ));
                items.push(Item::new(kind, row.id, Write::Map(existing.id.0)));
                continue;
            }
            let mut scopes = Vec::new();
            if row.can_create_tickets {
                scopes.push(Scope::TicketsCreate);
            }
            if row.can_exec_cron {
                scopes.push(Scope::CronRun);
            }
            let created = at(row.created).unwrap_or_else(helpline_core::now);
            items.push(Item::new(
                kind,
                row.id,
                Write::ApiKey {
                    key: NewApiKey {
                        secret,
                        ip_rules: vec![rule],
                        scopes,
                        note: row.notes.as_deref().and_then(|n| clean_text(n, 1000)),
                    },
                    at: created,
                    revoked: (!row.active)
                        .then(|| at(row.updated).unwrap_or_else(helpline_core::now)),
                },
            ));
        }
        self.write_items("api_key", items).await?;
        self.progress.advance(rows.len() as u64);
        Ok(())
    }

    /// A `core` setting of the source that holds an id (`default_dept_id`, …); 0 when unset.
    fn core_id(&self, key: &str) -> i64 {
        self.info
            .core
            .get(key)
            .and_then(|v| v.trim().parse().ok())
            .unwrap_or(0)
    }
}

/// Whose an address already is.
#[derive(Debug, Clone, Copy)]
enum Holder {
    /// A Helpline customer's (made before, or by an earlier run).
    Helpline(i64),
    /// A source user's imported in this run.
    Source(i64),
}

/// Names already taken in a catalogue (case-insensitively, as the stores compare them).
struct Names {
    existing: HashMap<String, i64>,
    claimed: HashSet<String>,
}

enum Claim {
    /// Helpline has a record of that name: map onto it.
    Existing(i64),
    /// Create one with this name.
    New(String),
}

impl Names {
    fn new(existing: Vec<(String, i64)>) -> Self {
        Self {
            existing: existing
                .into_iter()
                .map(|(name, id)| (name.to_lowercase(), id))
                .collect(),
            claimed: HashSet::new(),
        }
    }

    /// The record `name` maps onto, or the name to create it under (two source records of one
    /// name, e.g. same-named sub-departments, get their source id appended).
    fn claim(&mut self, name: &str, source_id: i64) -> Claim {
        let key = name.to_lowercase();
        if let Some(&id) = self.existing.get(&key) {
            return Claim::Existing(id);
        }
        if self.claimed.insert(key) {
            return Claim::New(name.to_owned());
        }
        let renamed = format!("{name} ({source_id})");
        self.claimed.insert(renamed.to_lowercase());
        Claim::New(renamed)
    }
}

/// osTicket's full name of a nested record: "Parent / Child".
fn full_name(id: i64, by_id: &HashMap<i64, (i64, String)>, fallback: &str) -> String {
    let mut parts = Vec::new();
    let mut current = id;
    for _ in 0..16 {
        let Some((parent, name)) = by_id.get(&current) else {
            break;
        };
        parts.push(name.trim().to_owned());
        if *parent <= 0 || *parent == current {
            break;
        }
        current = *parent;
    }
    parts.reverse();
    clean_line(&parts.join(" / "), 128).unwrap_or_else(|| fallback.to_owned())
}

/// One line of text: control characters folded to spaces, trimmed, at most `max` characters;
/// `None` when nothing is left.
fn clean_line(raw: &str, max: usize) -> Option<String> {
    let line: String = raw
        .chars()
        .map(|c| if c.is_control() { ' ' } else { c })
        .collect::<String>()
        .split_whitespace()
        .collect::<Vec<_>>()
        .join(" ")
        .chars()
        .take(max)
        .collect();
    (!line.is_empty()).then_some(line)
}

/// Free text: control characters other than line breaks and tabs dropped, trimmed, at most
/// `max` characters.
fn clean_text(raw: &str, max: usize) -> Option<String> {
    let text: String = raw
        .chars()
        .filter(|&c| !c.is_control() || c == '\n' || c == '\t')
        .take(max)
        .collect();
    let text = text.trim();
    (!text.is_empty()).then(|| text.to_owned())
}

fn truthy(value: &serde_json::Value) -> bool {
    match value {
        serde_json::Value::Bool(b) => *b,
        serde_json::Value::Number(n) => n.as_i64().is_some_and(|n| n != 0),
        serde_json::Value::String(s) => matches!(s.trim(), "1" | "true" | "on" | "yes"),
        _ => false,
    }
}

/// A unix time from the source; `None` for NULL and zero dates.
/// When a ticket was opened (its last update when osTicket recorded no creation time).
fn ticket_created(row: &TicketRow) -> OffsetDateTime {
    at(row.created)
        .or(at(row.lastupdate))
        .unwrap_or_else(helpline_core::now)
}

fn at(seconds: Option<i64>) -> Option<OffsetDateTime> {
    seconds
        .filter(|&s| s > 0)
        .and_then(|s| OffsetDateTime::from_unix_timestamp(s).ok())
}

fn parse_ip(raw: Option<&str>) -> Option<IpAddr> {
    raw.map(str::trim)
        .filter(|s| !s.is_empty())
        .and_then(|s| s.parse().ok())
}

/// Each hidden entry's replacement: the visible entry that is, after one edit or several, the
/// edited version of it (osTicket gives an edit `pid` = the entry it edits and `FLAG_EDITED`, and
/// hides the entry edited; an edit replacing the same staff member's edit takes the original's
/// id as `pid`). Hidden entries no visible edit replaces are not in the map.
fn replacements(rows: &[EntryRow]) -> HashMap<i64, i64> {
    let hidden = |row: &EntryRow| row.flags & source::ENTRY_HIDDEN != 0;
    let by_id: HashMap<i64, &EntryRow> = rows.iter().map(|row| (row.id, row)).collect();
    // The edit of each entry: a visible one before a hidden one, then the newest.
    let mut edit_of: HashMap<i64, &EntryRow> = HashMap::new();
    for row in rows {
        let Some(parent) = by_id.get(&row.pid) else {
            continue;
        };
        if row.flags & source::ENTRY_EDITED == 0
            || row.pid == row.id
            || parent.ticket_id != row.ticket_id
        {
            continue;
        }
        let better = |old: &EntryRow| (!hidden(row), row.id) > (!hidden(old), old.id);
        match edit_of.get(&row.pid) {
            Some(old) if !better(old) => {}
            _ => {
                edit_of.insert(row.pid, row);
            }
        }
    }
    let mut replaced_by = HashMap::new();
    for row in rows.iter().filter(|row| hidden(row)) {
        let mut seen = HashSet::from([row.id]);
        let mut at = row.id;
        while let Some(edit) = edit_of.get(&at) {
            if !seen.insert(edit.id) {
                break;
            }
            if !hidden(edit) {
                replaced_by.insert(row.id, edit.id);
                break;
            }
            at = edit.id;
        }
    }
    replaced_by
}

fn entry_kind(raw: &str) -> Option<EntryKind> {
    match raw.trim() {
        "M" => Some(EntryKind::Message),
        "R" => Some(EntryKind::Response),
        "N" => Some(EntryKind::Note),
        _ => None,
    }
}

/// A Message-ID in the form mail intake stores and looks up: `<id>`, brackets added when
/// missing, surrounding space and control characters dropped, case kept (intake compares ids
/// exactly).
pub fn normalize_message_id(raw: &str) -> Option<String> {
    let id: String = raw
        .trim()
        .trim_matches(['<', '>'])
        .trim()
        .chars()
        .filter(|c| !c.is_control())
        .collect();
    (!id.is_empty()).then(|| format!("<{id}>"))
}

/// The Message-IDs in a header of a raw header block (unfolded), normalised.
fn header_ids(headers: &str, name: &str) -> Vec<String> {
    let mut value: Option<String> = None;
    for line in headers.lines() {
        if let Some(current) = value.as_mut() {
            if line.starts_with([' ', '\t']) {
                current.push(' ');
                current.push_str(line.trim());
                continue;
            }
            break;
        }
        if let Some((field, rest)) = line.split_once(':')
            && field.trim().eq_ignore_ascii_case(name)
        {
            value = Some(rest.trim().to_owned());
        }
    }
    let Some(value) = value else {
        return Vec::new();
    };
    value
        .split('<')
        .skip(1)
        .filter_map(|part| part.split_once('>').map(|(id, _)| id))
        .filter_map(normalize_message_id)
        .collect()
}

fn short_list(ids: &[i64]) -> String {
    let shown: Vec<String> = ids.iter().take(20).map(ToString::to_string).collect();
    if ids.len() > 20 {
        format!("{}, … ({} in all)", shown.join(", "), ids.len())
    } else {
        shown.join(", ")
    }
}

/// Errors after which nothing more can be written (the database is gone).
fn is_fatal(error: &Error) -> bool {
    matches!(error, Error::Store(StoreError::Unavailable(_)))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn message_ids_take_intakes_form() {
        assert_eq!(
            normalize_message_id(" <Peer-Test-0001@Example.org> ").as_deref(),
            Some("<Peer-Test-0001@Example.org>")
        );
        assert_eq!(
            normalize_message_id("abc@example.com").as_deref(),
            Some("<abc@example.com>")
        );
        assert_eq!(normalize_message_id("<>"), None);
    }

    #[test]
    fn threading_headers_are_unfolded() {
        let headers = "From: a@example.com\r\nIn-Reply-To: <one@example.com>\r\n\
                       References: <zero@example.com>\r\n <one@example.com>\r\nSubject: x\r\n";
        assert_eq!(header_ids(headers, "in-reply-to"), ["<one@example.com>"]);
        assert_eq!(
            header_ids(headers, "References"),
            ["<zero@example.com>", "<one@example.com>"]
        );
        assert!(header_ids(headers, "Message-ID").is_empty());
    }

    #[test]
    fn nested_names_and_clashes() {
        let by_id = HashMap::from([
            (1, (0, "Support".to_owned())),
            (2, (1, " Level 2 ".to_owned())),
        ]);
        assert_eq!(full_name(2, &by_id, "x"), "Support / Level 2");
        let mut names = Names::new(vec![("support".into(), 7)]);
        assert!(matches!(names.claim("SUPPORT", 1), Claim::Existing(7)));
        assert!(matches!(names.claim("Sales", 2), Claim::New(n) if n == "Sales"));
        assert!(matches!(names.claim("sales", 3), Claim::New(n) if n == "sales (3)"));
    }

    #[test]
    fn zero_dates_are_none() {
        assert_eq!(at(Some(0)), None);
        assert_eq!(at(None), None);
        assert_eq!(
            at(Some(1_700_000_000)).map(OffsetDateTime::unix_timestamp),
            Some(1_700_000_000)
        );
    }
}
