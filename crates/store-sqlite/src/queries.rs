//! The [`Reader`] and [`Writer`] implementations: every SQL statement of the SQLite store.

use crate::catalog_copy::CatalogStamp;
use crate::convert::{db, ip, micros, opt_time, parsed, time};
use crate::readers::ConnectionRole;
use crate::sql::{QueryBuilder, Row, query};
use async_trait::async_trait;
use helpline_core::StoreError;
use helpline_core::apikey::{
    ApiKey, NewApiKey, ip_rules_from_text, ip_rules_to_text, scopes_from_text, scopes_to_text,
};
use helpline_core::attachment::Attachment;
use helpline_core::body::{BodyFormat, MessageBody};
use helpline_core::catalog::{
    Department, HelpTopic, NewDepartment, NewPriority, NewSla, NewStaff, NewStatus, NewTopic,
    Priority, Sla, Staff, StatusState, TicketStatus,
};
use helpline_core::email::EmailAddress;
use helpline_core::event::{Actor, Event, NewEvent};
use helpline_core::ids::{
    ApiKeyId, AttachmentId, DepartmentId, EntryId, EventId, FileId, JobId, OrganizationId,
    PriorityId, SlaId, StaffId, StatusId, TicketId, TopicId, UserId, WebhookId,
};
use helpline_core::inbound::{InboundId, InboundOutcome, InboundRecord, InboundStatus, NewInbound};
use helpline_core::legacy::{ImportedStaff, ImportedUser, LegacyKind};
use helpline_core::mailbox::{AfterFetch, Mailbox, MailboxAddress, MailboxId, NewMailbox};
use helpline_core::outbox::{Job, JobKind, JobQuery, JobResult, NewJob, NewWebhook, Webhook};
use helpline_core::service::idempotency::{IdempotencyKey, IdempotencyRecord, StoredResponse};
use helpline_core::store::{
    CatalogLists, NewTicketDefaults, Reader, RowCounts, TicketDraft, TicketQuery, Writer,
    catalog_lists,
};
use helpline_core::thread::{Author, EntryFlags, EntryKind, MailIds, NewEntry, ThreadEntry};
use helpline_core::ticket::{Collaborator, Source, Subject, Ticket, TicketNumber};
use helpline_core::user::{CustomerContact, NewOrganization, Organization, User};
use rusqlite::Connection;
use std::collections::BTreeMap;
use std::ops::DerefMut;
use time::OffsetDateTime;

/// A connection (pooled reader, or the writer inside a transaction) seen as a store reader/writer.
pub(crate) struct Conn<C>(pub(crate) C);

impl<C: DerefMut<Target = Connection> + ConnectionRole + Send> Conn<C> {
    fn conn(&mut self) -> &mut Connection {
        &mut self.0
    }

    /// The `catalog_version` row (migration 0015) as this transaction sees it.
    async fn catalog_stamp(&mut self) -> Result<CatalogStamp, StoreError> {
        let row = query("select version, stamp from catalog_version where only_row = 1")
            .fetch_one(self.conn())
            .await
            .map_err(db)?;
        Ok(CatalogStamp {
            version: row.try_get(0).map_err(db)?,
            stamp: row.try_get(1).map_err(db)?,
        })
    }

    /// The writer's catalogue copy as of the `catalog_version` row this transaction sees: the
    /// tables are read again only when the row moved. `None` on a connection without a copy (a
    /// pooled reader), which reads the tables itself.
    async fn up_to_date_catalog_copy(&mut self) -> Result<Option<&CatalogLists>, StoreError> {
        if self.0.catalog_copy().is_none() {
            return Ok(None);
        }
        let stamp = self.catalog_stamp().await?;
        if self
            .0
            .catalog_copy()
            .is_some_and(|copy| copy.at(&stamp).is_some())
        {
            return Ok(self.0.catalog_copy().and_then(|copy| copy.at(&stamp)));
        }
        let lists = catalog_lists(self).await?;
        Ok(self.0.catalog_copy().map(|copy| copy.keep(stamp, lists)))
    }

    /// Has every entry queued for full-text indexing indexed, so that a search finds every entry
    /// committed before it. The writer indexes them in its transaction; a reader outside a
    /// transaction asks the committer and waits for that commit when any are queued. (A reader
    /// already inside a transaction cannot see a later commit: there are none such.)
    async fn catch_up_search_index(&mut self) -> Result<(), StoreError> {
        let Some(indexer) = self.0.search_indexer().cloned() else {
            return crate::group_commit::index_pending(self.conn()).map_err(db);
        };
        if !self.conn().is_autocommit() {
            return Ok(());
        }
        let queued: bool = self
            .conn()
            .prepare_cached("select exists (select 1 from fts_pending)")
            .and_then(|mut statement| statement.query_row([], |row| row.get(0)))
            .map_err(db)?;
        if queued {
            indexer.index_queued().await.map_err(|error| match error {
                helpline_core::Error::Store(error) => error,
                other => StoreError::Other(Box::new(other)),
            })?;
        }
        Ok(())
    }

    /// A search (`text` as [`fts5_query`] made it), newest first: exactly the page one
    /// statement over every entry gives, at a cost that follows how far back the page reaches
    /// rather than how many entries hold the words.
    ///
    /// The one statement reads every matching entry (the index, then each entry's ticket) and
    /// keeps the newest tickets: cheap for a rare word, but a walk over all the entries of a
    /// common one (2.4 s at a million tickets for a word in one entry in six). So the index is
    /// first read for the newest [`FIRST_REACH`] entries only, then for [`REACH_GROWTH`] times
    /// as many, up to [`LAST_REACH`]. A window settles the page when it fills it and no ticket
    /// newer than the page's last one (and older than the cursor) has an entry before the
    /// window: each of those tickets then had all its entries in the window, so none that
    /// matches can be missing. Checking that reads the index entries of those tickets, so a
    /// page reaching back more than [`SETTLE_DEPTH`] tickets goes to the one statement instead:
    /// words that sparse have few entries. So do pages no window fills, and, as soon as a window
    /// finds too few to expect the longest one to fill the page, rare words. The caller holds
    /// one snapshot for all the statements.
    async fn search(
        &mut self,
        filter: &TicketQuery,
        text: String,
    ) -> Result<Vec<Ticket>, StoreError> {
        let row = query(
            "select coalesce(max(ticket_id), 0) + 1, \
             (select coalesce(max(entry_id), 0) from thread_entry) from ticket",
        )
        .fetch_one(self.conn())
        .await
        .map_err(db)?;
        let top = match filter.before {
            Some(before) => before.0,
            None => row.try_get(0).map_err(db)?,
        };
        let newest: i64 = row.try_get(1).map_err(db)?;
        let page = usize::try_from(filter.limit).unwrap_or(usize::MAX);
        let mut reach = FIRST_REACH;
        // A window from the first entry on is the whole index: that is the one statement.
        while let Some(from) = newest
            .checked_sub(reach)
            .filter(|&from| from > 1 && reach <= LAST_REACH)
        {
            let rows = ticket_statement(filter, Some((&text, Some(from))), filter.limit)
                .build()
                .fetch_all(self.conn())
                .await
                .map_err(db)?;
            let Some(last) = rows.last().filter(|_| rows.len() == page) else {
                // Would the longest window fill the page, at this rate? If not, the words are
                // sparse: straight to the one statement.
                let rate = i64::try_from(rows.len()).unwrap_or(i64::MAX);
                if rate.saturating_mul(LAST_REACH / reach) < i64::from(filter.limit) {
                    break;
                }
                reach = reach.saturating_mul(REACH_GROWTH);
                continue;
            };
            reach = reach.saturating_mul(REACH_GROWTH);
            let last: i64 = last.try_get("ticket_id").map_err(db)?;
            if top.saturating_sub(last) > SETTLE_DEPTH {
                break;
            }
            // `+ 0`: the ticket index must answer this, not a walk of the entries by id.
            let mut older =
                QueryBuilder::new("select exists (select 1 from thread_entry where ticket_id > ");
            older.push_bind(last);
            if let Some(before) = filter.before {
                older.push(" and ticket_id < ").push_bind(before.0);
            }
            older.push(" and entry_id + 0 < ").push_bind(from).push(")");
            let unsettled: bool = older
                .build()
                .fetch_one(self.conn())
                .await
                .map_err(db)?
                .try_get(0)
                .map_err(db)?;
            if !unsettled {
                return map_rows(&rows, ticket_row);
            }
        }
        let rows = ticket_statement(filter, Some((&text, None)), filter.limit)
            .build()
            .fetch_all(self.conn())
            .await
            .map_err(db)?;
        map_rows(&rows, ticket_row)
    }
}

macro_rules! ticket_select {
    () => {
        "select ticket_id, number, subject, user_id, department_id, topic_id, status_id, \
         priority_id, source, ip, assignee_id, is_answered, due_at, created_at, updated_at, \
         last_message_at, last_response_at, closed_at, reopened_at from ticket "
    };
}

macro_rules! entry_select {
    () => {
        "select entry_id, ticket_id, kind, user_id, staff_id, display_name, title, body, format, \
         source, ip, api_key_id, mail_message_id, mail_in_reply_to, mail_references, flags, \
         created_at from thread_entry "
    };
}

macro_rules! inbound_columns {
    () => {
        "inbound_id, source, mailbox, source_uid, size, status, class, rule, message_id, \
         ticket_id, entry_id, attempts, received_at, processed_at "
    };
}

macro_rules! mailbox_select {
    () => {
        "select mailbox_id, protocol, host, port, username, password, folder, after_fetch, \
         poll_seconds, created_at, last_fetch_at, last_error from mailbox "
    };
}

macro_rules! key_select {
    () => {
        "select api_key_id, prefix, ip_rules, scopes, note, created_at, revoked_at from api_key "
    };
}

macro_rules! topic_select {
    () => {
        "select topic_id, name, department_id, priority_id, active, created_at from help_topic "
    };
}

macro_rules! staff_select {
    () => {
        "select staff_id, username, name, email, department_id, active, created_at from staff "
    };
}

macro_rules! department_select {
    () => {
        "select department_id, name, is_default, created_at from department "
    };
}

macro_rules! status_select {
    () => {
        "select status_id, name, state, allow_reopen, is_default from ticket_status "
    };
}

macro_rules! priority_select {
    () => {
        "select priority_id, name, urgency, is_default from priority "
    };
}

macro_rules! event_select {
    () => {
        "select event_id, ticket_id, kind, actor_user_id, actor_staff_id, api_key_id, data, \
         created_at from event "
    };
}

fn ticket_row(row: &Row) -> Result<Ticket, StoreError> {
    Ok(Ticket {
        id: TicketId(row.try_get("ticket_id").map_err(db)?),
        number: TicketNumber::from_stored(row.try_get("number").map_err(db)?),
        subject: Subject::from_stored(row.try_get("subject").map_err(db)?),
        user_id: UserId(row.try_get("user_id").map_err(db)?),
        department_id: DepartmentId(row.try_get("department_id").map_err(db)?),
        topic_id: row
            .try_get::<Option<i64>, _>("topic_id")
            .map_err(db)?
            .map(TopicId),
        status_id: StatusId(row.try_get("status_id").map_err(db)?),
        priority_id: PriorityId(row.try_get("priority_id").map_err(db)?),
        source: parsed("source", row.try_get("source").map_err(db)?, Source::parse)?,
        ip: ip(row.try_get("ip").map_err(db)?)?,
        assignee_id: row
            .try_get::<Option<i64>, _>("assignee_id")
            .map_err(db)?
            .map(StaffId),
        is_answered: row.try_get("is_answered").map_err(db)?,
        due_at: opt_time(row.try_get("due_at").map_err(db)?)?,
        created_at: time(row.try_get("created_at").map_err(db)?)?,
        updated_at: time(row.try_get("updated_at").map_err(db)?)?,
        last_message_at: opt_time(row.try_get("last_message_at").map_err(db)?)?,
        last_response_at: opt_time(row.try_get("last_response_at").map_err(db)?)?,
        closed_at: opt_time(row.try_get("closed_at").map_err(db)?)?,
        reopened_at: opt_time(row.try_get("reopened_at").map_err(db)?)?,
    })
}

fn entry_row(row: &Row) -> Result<ThreadEntry, StoreError> {
    let user_id: Option<i64> = row.try_get("user_id").map_err(db)?;
    let staff_id: Option<i64> = row.try_get("staff_id").map_err(db)?;
    let author = match (user_id, staff_id) {
        (Some(user), _) => Author::User(UserId(user)),
        (None, Some(staff)) => Author::Staff(StaffId(staff)),
        (None, None) => Author::System,
    };
    let format = parsed(
        "format",
        row.try_get("format").map_err(db)?,
        BodyFormat::parse,
    )?;
    Ok(ThreadEntry {
        id: EntryId(row.try_get("entry_id").map_err(db)?),
        ticket_id: TicketId(row.try_get("ticket_id").map_err(db)?),
        kind: parsed(
            "entry kind",
            row.try_get("kind").map_err(db)?,
            EntryKind::parse,
        )?,
        author,
        display_name: row.try_get("display_name").map_err(db)?,
        title: row.try_get("title").map_err(db)?,
        body: MessageBody::from_stored(row.try_get("body").map_err(db)?, format),
        source: parsed("source", row.try_get("source").map_err(db)?, Source::parse)?,
        ip: ip(row.try_get("ip").map_err(db)?)?,
        api_key_id: row
            .try_get::<Option<i64>, _>("api_key_id")
            .map_err(db)?
            .map(ApiKeyId),
        mail: MailIds {
            message_id: row.try_get("mail_message_id").map_err(db)?,
            in_reply_to: row.try_get("mail_in_reply_to").map_err(db)?,
            references: row.try_get("mail_references").map_err(db)?,
        },
        flags: EntryFlags::from_bits(row.try_get("flags").map_err(db)?),
        created_at: time(row.try_get("created_at").map_err(db)?)?,
        attachments: Vec::new(),
    })
}

fn inbound_row(row: &Row) -> Result<InboundRecord, StoreError> {
    Ok(InboundRecord {
        id: InboundId(row.try_get("inbound_id").map_err(db)?),
        source: row.try_get("source").map_err(db)?,
        mailbox: row.try_get("mailbox").map_err(db)?,
        source_uid: row.try_get("source_uid").map_err(db)?,
        size: row.try_get("size").map_err(db)?,
        status: parsed(
            "inbound status",
            row.try_get("status").map_err(db)?,
            InboundStatus::parse,
        )?,
        class: row.try_get("class").map_err(db)?,
        rule: row.try_get("rule").map_err(db)?,
        message_id: row.try_get("message_id").map_err(db)?,
        ticket_id: row
            .try_get::<Option<i64>, _>("ticket_id")
            .map_err(db)?
            .map(TicketId),
        entry_id: row
            .try_get::<Option<i64>, _>("entry_id")
            .map_err(db)?
            .map(EntryId),
        attempts: row.try_get("attempts").map_err(db)?,
        received_at: time(row.try_get("received_at").map_err(db)?)?,
        processed_at: opt_time(row.try_get("processed_at").map_err(db)?)?,
    })
}

/// A mailbox row back. The address is rebuilt from its columns (never re-parsed from a URL, so a
/// password or folder holding URL syntax comes back as stored).
fn mailbox_row(row: &Row) -> Result<Mailbox, StoreError> {
    let protocol: String = row.try_get("protocol").map_err(db)?;
    let port: i64 = row.try_get("port").map_err(db)?;
    let after_fetch: String = row.try_get("after_fetch").map_err(db)?;
    let poll_seconds: i64 = row.try_get("poll_seconds").map_err(db)?;
    Ok(Mailbox {
        id: MailboxId(row.try_get("mailbox_id").map_err(db)?),
        address: MailboxAddress {
            protocol: parsed("mailbox protocol", &protocol, |p| p.parse().ok())?,
            host: row.try_get("host").map_err(db)?,
            port: u16::try_from(port)
                .map_err(|_| StoreError::Corrupt(format!("mailbox port {port}")))?,
            user: row.try_get("username").map_err(db)?,
            password: row.try_get("password").map_err(db)?,
            folder: row.try_get("folder").map_err(db)?,
        },
        after_fetch: parsed("after-fetch action", &after_fetch, AfterFetch::from_stored)?,
        poll_seconds: u32::try_from(poll_seconds)
            .map_err(|_| StoreError::Corrupt(format!("mailbox poll interval {poll_seconds}")))?,
        created_at: time(row.try_get("created_at").map_err(db)?)?,
        last_fetch_at: opt_time(row.try_get("last_fetch_at").map_err(db)?)?,
        last_error: row.try_get("last_error").map_err(db)?,
    })
}

fn attachment_row(row: &Row) -> Result<Attachment, StoreError> {
    Ok(Attachment {
        id: AttachmentId(row.try_get("attachment_id").map_err(db)?),
        entry_id: EntryId(row.try_get("entry_id").map_err(db)?),
        file_id: FileId(row.try_get("file_id").map_err(db)?),
        filename: row.try_get("filename").map_err(db)?,
        content_type: row.try_get("content_type").map_err(db)?,
        content_id: row.try_get("content_id").map_err(db)?,
        size: row.try_get("size").map_err(db)?,
        sha256: row.try_get("sha256").map_err(db)?,
    })
}

fn key_row(row: &Row) -> Result<ApiKey, StoreError> {
    let ip_rules: String = row.try_get("ip_rules").map_err(db)?;
    let scopes: String = row.try_get("scopes").map_err(db)?;
    Ok(ApiKey {
        id: ApiKeyId(row.try_get("api_key_id").map_err(db)?),
        prefix: row.try_get("prefix").map_err(db)?,
        ip_rules: ip_rules_from_text(&ip_rules).map_err(StoreError::Corrupt)?,
        scopes: scopes_from_text(&scopes).map_err(StoreError::Corrupt)?,
        note: row.try_get("note").map_err(db)?,
        created_at: time(row.try_get("created_at").map_err(db)?)?,
        revoked_at: opt_time(row.try_get("revoked_at").map_err(db)?)?,
    })
}

fn topic_row(row: &Row) -> Result<HelpTopic, StoreError> {
    Ok(HelpTopic {
        id: TopicId(row.try_get("topic_id").map_err(db)?),
        name: row.try_get("name").map_err(db)?,
        department_id: DepartmentId(row.try_get("department_id").map_err(db)?),
        priority_id: row
            .try_get::<Option<i64>, _>("priority_id")
            .map_err(db)?
            .map(PriorityId),
        active: row.try_get("active").map_err(db)?,
        created_at: time(row.try_get("created_at").map_err(db)?)?,
    })
}

fn staff_row(row: &Row) -> Result<Staff, StoreError> {
    let email: String = row.try_get("email").map_err(db)?;
    Ok(Staff {
        id: StaffId(row.try_get("staff_id").map_err(db)?),
        username: row.try_get("username").map_err(db)?,
        name: row.try_get("name").map_err(db)?,
        email: EmailAddress::parse(&email).map_err(StoreError::Corrupt)?,
        department_id: DepartmentId(row.try_get("department_id").map_err(db)?),
        active: row.try_get("active").map_err(db)?,
        created_at: time(row.try_get("created_at").map_err(db)?)?,
    })
}

fn department_row(row: &Row) -> Result<Department, StoreError> {
    Ok(Department {
        id: DepartmentId(row.try_get("department_id").map_err(db)?),
        name: row.try_get("name").map_err(db)?,
        is_default: row.try_get("is_default").map_err(db)?,
        created_at: time(row.try_get("created_at").map_err(db)?)?,
    })
}

fn status_row(row: &Row) -> Result<TicketStatus, StoreError> {
    Ok(TicketStatus {
        id: StatusId(row.try_get("status_id").map_err(db)?),
        name: row.try_get("name").map_err(db)?,
        state: parsed(
            "state",
            row.try_get("state").map_err(db)?,
            StatusState::parse,
        )?,
        allow_reopen: row.try_get("allow_reopen").map_err(db)?,
        is_default: row.try_get("is_default").map_err(db)?,
    })
}

fn priority_row(row: &Row) -> Result<Priority, StoreError> {
    Ok(Priority {
        id: PriorityId(row.try_get("priority_id").map_err(db)?),
        name: row.try_get("name").map_err(db)?,
        urgency: row.try_get("urgency").map_err(db)?,
        is_default: row.try_get("is_default").map_err(db)?,
    })
}

fn event_row(row: &Row) -> Result<Event, StoreError> {
    Ok(Event {
        id: EventId(row.try_get("event_id").map_err(db)?),
        ticket_id: row
            .try_get::<Option<i64>, _>("ticket_id")
            .map_err(db)?
            .map(TicketId),
        kind: row.try_get("kind").map_err(db)?,
        actor: Actor {
            user_id: row
                .try_get::<Option<i64>, _>("actor_user_id")
                .map_err(db)?
                .map(UserId),
            staff_id: row
                .try_get::<Option<i64>, _>("actor_staff_id")
                .map_err(db)?
                .map(StaffId),
            api_key_id: row
                .try_get::<Option<i64>, _>("api_key_id")
                .map_err(db)?
                .map(ApiKeyId),
        },
        data: row.try_get("data").map_err(db)?,
        created_at: time(row.try_get("created_at").map_err(db)?)?,
    })
}

/// Groups `(user row, address)` join rows into users with all their addresses. A customer
/// without an address (an imported one can be) comes as one row with a null address.
fn users_from_rows(rows: &[Row]) -> Result<Vec<User>, StoreError> {
    let mut users: Vec<User> = Vec::new();
    for row in rows {
        let id = UserId(row.try_get("user_id").map_err(db)?);
        let address: Option<String> = row.try_get("address").map_err(db)?;
        let email = address
            .map(|address| EmailAddress::parse(&address).map_err(StoreError::Corrupt))
            .transpose()?;
        match users.last_mut() {
            Some(user) if user.id == id => user.emails.extend(email),
            _ => users.push(User {
                id,
                name: row.try_get("name").map_err(db)?,
                emails: email.into_iter().collect(),
                phone: row.try_get("phone").map_err(db)?,
                notes: row.try_get("notes").map_err(db)?,
                organization_id: row
                    .try_get::<Option<i64>, _>("organization_id")
                    .map_err(db)?
                    .map(OrganizationId),
                created_at: time(row.try_get("created_at").map_err(db)?)?,
                updated_at: time(row.try_get("updated_at").map_err(db)?)?,
            }),
        }
    }
    Ok(users)
}

/// Customers with their addresses, one row per address in the order they were added (the
/// statement orders by `user_email_id`). A left join: imported customers may have none.
macro_rules! user_select {
    () => {
        "select u.user_id, u.name, u.phone, u.notes, u.organization_id, u.created_at, \
         u.updated_at, e.address \
         from users u left join user_email e on e.user_id = u.user_id "
    };
}

fn organization_row(row: &Row) -> Result<Organization, StoreError> {
    Ok(Organization {
        id: OrganizationId(row.try_get("organization_id").map_err(db)?),
        name: row.try_get("name").map_err(db)?,
        domain: row.try_get("domain").map_err(db)?,
        created_at: time(row.try_get("created_at").map_err(db)?)?,
        updated_at: time(row.try_get("updated_at").map_err(db)?)?,
    })
}

fn sla_row(row: &Row) -> Result<Sla, StoreError> {
    Ok(Sla {
        id: SlaId(row.try_get("sla_id").map_err(db)?),
        name: row.try_get("name").map_err(db)?,
        grace_hours: row.try_get("grace_hours").map_err(db)?,
        created_at: time(row.try_get("created_at").map_err(db)?)?,
    })
}

fn map_rows<T>(
    rows: &[Row],
    convert: fn(&Row) -> Result<T, StoreError>,
) -> Result<Vec<T>, StoreError> {
    rows.iter().map(convert).collect()
}

fn map_optional<T>(
    row: Option<Row>,
    convert: fn(&Row) -> Result<T, StoreError>,
) -> Result<Option<T>, StoreError> {
    row.as_ref().map(convert).transpose()
}

fn required<T>(what: &str, value: Option<T>) -> Result<T, StoreError> {
    value.ok_or_else(|| StoreError::Corrupt(format!("no {what} is configured")))
}

/// The stored states a listing's `state` filter admits: closed includes archived.
fn states_matching(state: StatusState) -> &'static [StatusState] {
    match state {
        StatusState::Open => &[StatusState::Open],
        StatusState::Closed => &[StatusState::Closed, StatusState::Archived],
        StatusState::Archived => &[StatusState::Archived],
    }
}

/// Search text as an FTS5 query meaning "every one of these words". Each whitespace-separated
/// word becomes an FTS5 string (`"` doubled inside), so nothing a user types is FTS5 syntax:
/// `OR`, `NOT`, `NEAR(…)`, `*`, `-`, `^` and `column:` are just text, and punctuation inside a
/// word only separates tokens, as the tokenizer does for indexed text. Strings side by side are
/// ANDed. `None` when there is no word, meaning no text filter.
///
/// Control characters separate words too: the tokenizer never indexes them, and FTS5 reads
/// its query as a C string, so a NUL inside a quoted word would end the query mid-string
/// ("unterminated string").
fn fts5_query(text: &str) -> Option<String> {
    let words: Vec<String> = text
        .split(|c: char| c.is_whitespace() || c.is_control())
        .filter(|word| !word.is_empty())
        .map(|word| format!("\"{}\"", word.replace('"', "\"\"")))
        .collect();
    (!words.is_empty()).then(|| words.join(" "))
}

/// How many of the newest entries a search reads the index for first: a word in one entry of
/// [`FIRST_REACH`] / page size usually fills the page there.
#[cfg(not(test))]
const FIRST_REACH: i64 = 2_000;
/// How much longer each further window of a search is.
#[cfg(not(test))]
const REACH_GROWTH: i64 = 8;
/// The longest window: a page that needs more entries reaches back further than
/// [`SETTLE_DEPTH`] anyway.
#[cfg(not(test))]
const LAST_REACH: i64 = 128_000;
/// How far back (in tickets) a page found in a window may reach and still be checked.
#[cfg(not(test))]
const SETTLE_DEPTH: i64 = 20_000;

// Small in unit tests, so that a handful of entries spans every path.
#[cfg(test)]
const FIRST_REACH: i64 = 2;
#[cfg(test)]
const REACH_GROWTH: i64 = 2;
#[cfg(test)]
const LAST_REACH: i64 = 16;
#[cfg(test)]
const SETTLE_DEPTH: i64 = 12;

/// The listing statement: `filter`'s conditions and the search `text` (an [`fts5_query`]) —
/// looking only at entries from id `from` on when given — newest first, at most `limit` rows.
/// Every value goes in as a bind parameter; only fixed SQL fragments are pushed.
fn ticket_statement(
    filter: &TicketQuery,
    text: Option<(&str, Option<i64>)>,
    limit: u32,
) -> QueryBuilder<'static> {
    let mut sql = QueryBuilder::new(concat!(ticket_select!(), "where true"));
    if let Some(status) = filter.status {
        sql.push(" and status_id = ").push_bind(status.0);
    }
    if let Some(state) = filter.state {
        sql.push(" and status_id in (select status_id from ticket_status where state in (");
        let mut states = sql.separated(", ");
        for state in states_matching(state) {
            states.push_bind(state.as_str());
        }
        sql.push("))");
    }
    if let Some(customer) = filter.customer {
        sql.push(" and user_id = ").push_bind(customer.0);
    }
    if let Some(department) = filter.department {
        sql.push(" and department_id = ").push_bind(department.0);
    }
    if let Some(assignee) = filter.assignee {
        sql.push(" and assignee_id = ").push_bind(assignee.0);
    }
    if let Some(topic) = filter.topic {
        sql.push(" and topic_id = ").push_bind(topic.0);
    }
    if let Some(since) = filter.updated_since {
        sql.push(" and updated_at >= ").push_bind(micros(since));
    }
    if let Some((text, from)) = text {
        // A ticket matches when one of its entries holds every word (its first entry's title
        // is the subject).
        sql.push(
            " and ticket_id in (select e.ticket_id from thread_entry_fts \
             join thread_entry e on e.entry_id = thread_entry_fts.rowid \
             where thread_entry_fts match ",
        )
        .push_bind(text.to_owned());
        if let Some(from) = from {
            // FTS5 starts reading each word's entry list at this id.
            sql.push(" and thread_entry_fts.rowid >= ").push_bind(from);
        }
        sql.push(")");
    }
    if let Some(before) = filter.before {
        sql.push(" and ticket_id < ").push_bind(before.0);
    }
    sql.push(" order by ticket_id desc limit ")
        .push_bind(i64::from(limit));
    sql
}

/// How many Message-IDs one statement looks up at most: a References header can list any number,
/// and a statement takes a bounded number of bind parameters.
const MESSAGE_ID_BATCH: usize = 500;

/// The new-ticket defaults among the catalogues: the same rule as the statement in
/// `new_ticket_defaults`, the first (lowest id) default of each.
fn defaults_in(lists: &CatalogLists) -> Result<NewTicketDefaults, StoreError> {
    Ok(NewTicketDefaults {
        department_id: required(
            "default department",
            lists
                .departments
                .iter()
                .find(|d| d.is_default)
                .map(|d| d.id),
        )?,
        status_id: required(
            "default open status",
            lists
                .statuses
                .iter()
                .find(|s| s.is_default && s.state == StatusState::Open)
                .map(|s| s.id),
        )?,
        priority_id: required(
            "default priority",
            lists.priorities.iter().find(|p| p.is_default).map(|p| p.id),
        )?,
    })
}

/// An idempotency record read back.
fn idempotency_row(row: &Row) -> Result<IdempotencyRecord, StoreError> {
    let status: i64 = row.try_get("status").map_err(db)?;
    Ok(IdempotencyRecord {
        request_hash: row.try_get("request_hash").map_err(db)?,
        response: StoredResponse {
            status: u16::try_from(status)
                .map_err(|_| StoreError::Corrupt(format!("stored HTTP status {status}")))?,
            body: row.try_get("body").map_err(db)?,
        },
    })
}

#[async_trait]
impl<C: DerefMut<Target = Connection> + ConnectionRole + Send> Reader for Conn<C> {
    async fn job(&mut self, id: JobId) -> Result<Option<Job>, StoreError> {
        crate::outbox::job(self.conn(), id).await
    }

    async fn jobs(&mut self, query: &JobQuery) -> Result<Vec<Job>, StoreError> {
        crate::outbox::jobs(self.conn(), query).await
    }

    async fn count_jobs_since(
        &mut self,
        topic: &str,
        since: OffsetDateTime,
    ) -> Result<u64, StoreError> {
        crate::outbox::count_jobs_since(self.conn(), topic, since).await
    }

    async fn next_job_due(&mut self) -> Result<Option<OffsetDateTime>, StoreError> {
        crate::outbox::next_job_due(self.conn()).await
    }

    async fn job_claim_holders(&mut self) -> Result<Vec<String>, StoreError> {
        crate::outbox::job_claim_holders(self.conn()).await
    }

    async fn webhooks(&mut self) -> Result<Vec<Webhook>, StoreError> {
        crate::outbox::webhooks(self.conn()).await
    }

    async fn webhook(&mut self, id: WebhookId) -> Result<Option<Webhook>, StoreError> {
        crate::outbox::webhook(self.conn(), id).await
    }
    async fn row_counts(&mut self) -> Result<RowCounts, StoreError> {
        let row = query(
            "select (select count(*) from ticket) as tickets, \
             (select count(*) from thread_entry) as entries, \
             (select count(*) from users) as users, \
             (select count(*) from file) as files, \
             (select count(*) from attachment) as attachments, \
             (select count(*) from collaborator) as collaborators, \
             (select count(*) from event) as events, \
             (select count(*) from idempotency_key) as idempotency_keys, \
             (select count(*) from inbound_mail) as inbound, \
             (select count(*) from outbox_job) as jobs",
        )
        .fetch_one(self.conn())
        .await
        .map_err(db)?;
        let count = |name: &str| row.try_get::<i64, _>(name).map_err(db);
        Ok(RowCounts {
            tickets: count("tickets")?,
            entries: count("entries")?,
            users: count("users")?,
            files: count("files")?,
            attachments: count("attachments")?,
            collaborators: count("collaborators")?,
            events: count("events")?,
            idempotency_keys: count("idempotency_keys")?,
            inbound: count("inbound")?,
            jobs: count("jobs")?,
        })
    }

    async fn inbound(
        &mut self,
        id: InboundId,
    ) -> Result<Option<(InboundRecord, Vec<u8>)>, StoreError> {
        let row = query(concat!(
            "select ",
            inbound_columns!(),
            ", raw from inbound_mail where inbound_id = $1"
        ))
        .bind(id.0)
        .fetch_optional(self.conn())
        .await
        .map_err(db)?;
        row.map(|row| Ok((inbound_row(&row)?, row.try_get("raw").map_err(db)?)))
            .transpose()
    }

    async fn inbound_list(
        &mut self,
        status: InboundStatus,
        after: Option<InboundId>,
        limit: u32,
    ) -> Result<Vec<InboundRecord>, StoreError> {
        let rows = query(concat!(
            "select ",
            inbound_columns!(),
            "from inbound_mail where status = $1 and inbound_id > $2 \
             order by inbound_id limit $3"
        ))
        .bind(status.as_str())
        .bind(after.map_or(0, |id| id.0))
        .bind(i64::from(limit))
        .fetch_all(self.conn())
        .await
        .map_err(db)?;
        map_rows(&rows, inbound_row)
    }

    async fn entry_by_message_id(
        &mut self,
        message_ids: &[String],
    ) -> Result<Option<(TicketId, EntryId)>, StoreError> {
        let mut newest: Option<(TicketId, EntryId)> = None;
        for batch in message_ids.chunks(MESSAGE_ID_BATCH) {
            // Exact comparison: the column has SQLite's default binary collation.
            let mut sql = QueryBuilder::new(
                "select ticket_id, entry_id from thread_entry where mail_message_id in (",
            );
            let mut ids = sql.separated(", ");
            for id in batch {
                ids.push_bind(id.as_str());
            }
            sql.push(") order by entry_id desc limit 1");
            let row = sql.build().fetch_optional(self.conn()).await.map_err(db)?;
            if let Some(row) = row {
                let found = (
                    TicketId(row.try_get("ticket_id").map_err(db)?),
                    EntryId(row.try_get("entry_id").map_err(db)?),
                );
                if newest.is_none_or(|(_, entry)| found.1 > entry) {
                    newest = Some(found);
                }
            }
        }
        Ok(newest)
    }

    async fn entry_ticket(&mut self, entry: EntryId) -> Result<Option<TicketId>, StoreError> {
        query("select ticket_id from thread_entry where entry_id = $1")
            .bind(entry.0)
            .fetch_optional(self.conn())
            .await
            .map_err(db)?
            .map(|row| row.try_get("ticket_id").map(TicketId))
            .transpose()
            .map_err(db)
    }

    async fn mailboxes(&mut self) -> Result<Vec<Mailbox>, StoreError> {
        let rows = query(concat!(mailbox_select!(), "order by mailbox_id"))
            .fetch_all(self.conn())
            .await
            .map_err(db)?;
        map_rows(&rows, mailbox_row)
    }

    async fn mailbox(&mut self, id: MailboxId) -> Result<Option<Mailbox>, StoreError> {
        let row = query(concat!(mailbox_select!(), "where mailbox_id = $1"))
            .bind(id.0)
            .fetch_optional(self.conn())
            .await
            .map_err(db)?;
        map_optional(row, mailbox_row)
    }

    async fn setting(&mut self, name: &str) -> Result<Option<String>, StoreError> {
        query("select value from setting where name = $1")
            .bind(name)
            .fetch_optional(self.conn())
            .await
            .map_err(db)?
            .map(|row| row.try_get(0))
            .transpose()
            .map_err(db)
    }

    async fn ticket_by_number(
        &mut self,
        number: &TicketNumber,
    ) -> Result<Option<Ticket>, StoreError> {
        let row = query(concat!(ticket_select!(), "where number = $1"))
            .bind(number.as_str())
            .fetch_optional(self.conn())
            .await
            .map_err(db)?;
        map_optional(row, ticket_row)
    }

    async fn ticket(&mut self, id: TicketId) -> Result<Option<Ticket>, StoreError> {
        let row = query(concat!(ticket_select!(), "where ticket_id = $1"))
            .bind(id.0)
            .fetch_optional(self.conn())
            .await
            .map_err(db)?;
        map_optional(row, ticket_row)
    }

    async fn tickets(&mut self, filter: &TicketQuery) -> Result<Vec<Ticket>, StoreError> {
        let Some(text) = filter.text.as_deref().and_then(fts5_query) else {
            let rows = ticket_statement(filter, None, filter.limit)
                .build()
                .fetch_all(self.conn())
                .await
                .map_err(db)?;
            return map_rows(&rows, ticket_row);
        };
        self.catch_up_search_index().await?;
        // A search runs several statements: inside a read transaction of its own (unless the
        // caller's transaction already holds one) they all read the same snapshot.
        let own_transaction = self.conn().is_autocommit();
        if own_transaction {
            query("begin").execute(self.conn()).await.map_err(db)?;
        }
        let found = self.search(filter, text).await;
        if own_transaction {
            let end = query(if found.is_ok() { "commit" } else { "rollback" })
                .execute(self.conn())
                .await
                .map_err(db);
            if found.is_ok() {
                end?;
            }
        }
        found
    }

    async fn entries(&mut self, ticket: TicketId) -> Result<Vec<ThreadEntry>, StoreError> {
        let rows = query(concat!(
            entry_select!(),
            "where ticket_id = $1 order by entry_id"
        ))
        .bind(ticket.0)
        .fetch_all(self.conn())
        .await
        .map_err(db)?;
        let mut entries = map_rows(&rows, entry_row)?;
        let rows = query(
            "select a.attachment_id, a.entry_id, a.file_id, a.filename, a.content_type, a.content_id, f.size, \
             f.sha256 from attachment a join file f on f.file_id = a.file_id \
             join thread_entry e on e.entry_id = a.entry_id \
             where e.ticket_id = $1 order by a.attachment_id",
        )
        .bind(ticket.0)
        .fetch_all(self.conn())
        .await
        .map_err(db)?;
        let mut by_entry: BTreeMap<EntryId, Vec<Attachment>> = BTreeMap::new();
        for attachment in map_rows(&rows, attachment_row)? {
            by_entry
                .entry(attachment.entry_id)
                .or_default()
                .push(attachment);
        }
        for entry in &mut entries {
            entry.attachments = by_entry.remove(&entry.id).unwrap_or_default();
        }
        Ok(entries)
    }

    async fn collaborators(&mut self, ticket: TicketId) -> Result<Vec<Collaborator>, StoreError> {
        let rows = query(
            "select ticket_id, user_id, created_at from collaborator where ticket_id = $1 \
             order by created_at, user_id",
        )
        .bind(ticket.0)
        .fetch_all(self.conn())
        .await
        .map_err(db)?;
        rows.iter()
            .map(|row| {
                Ok(Collaborator {
                    ticket_id: TicketId(row.try_get("ticket_id").map_err(db)?),
                    user_id: UserId(row.try_get("user_id").map_err(db)?),
                    created_at: time(row.try_get("created_at").map_err(db)?)?,
                })
            })
            .collect()
    }

    async fn ticket_events(&mut self, ticket: TicketId) -> Result<Vec<Event>, StoreError> {
        let rows = query(concat!(
            event_select!(),
            "where ticket_id = $1 order by event_id"
        ))
        .bind(ticket.0)
        .fetch_all(self.conn())
        .await
        .map_err(db)?;
        map_rows(&rows, event_row)
    }

    async fn system_events(&mut self) -> Result<Vec<Event>, StoreError> {
        let rows = query(concat!(
            event_select!(),
            "where ticket_id is null order by event_id"
        ))
        .fetch_all(self.conn())
        .await
        .map_err(db)?;
        map_rows(&rows, event_row)
    }

    async fn attachment(
        &mut self,
        id: AttachmentId,
    ) -> Result<Option<(Attachment, Vec<u8>)>, StoreError> {
        let row = query(
            "select a.attachment_id, a.entry_id, a.file_id, a.filename, a.content_type, a.content_id, f.size, \
             f.sha256, f.content from attachment a join file f on f.file_id = a.file_id \
             where a.attachment_id = $1",
        )
        .bind(id.0)
        .fetch_optional(self.conn())
        .await
        .map_err(db)?;
        row.map(|row| Ok((attachment_row(&row)?, row.try_get("content").map_err(db)?)))
            .transpose()
    }

    async fn user_by_email(&mut self, email: &EmailAddress) -> Result<Option<User>, StoreError> {
        let rows = query(concat!(
            user_select!(),
            "where u.user_id = (select user_id from user_email where address_key = $1) \
             order by e.user_email_id"
        ))
        .bind(email.key())
        .fetch_all(self.conn())
        .await
        .map_err(db)?;
        Ok(users_from_rows(&rows)?.into_iter().next())
    }

    async fn user(&mut self, id: UserId) -> Result<Option<User>, StoreError> {
        let rows = query(concat!(
            user_select!(),
            "where u.user_id = $1 order by e.user_email_id"
        ))
        .bind(id.0)
        .fetch_all(self.conn())
        .await
        .map_err(db)?;
        Ok(users_from_rows(&rows)?.into_iter().next())
    }

    async fn users(&mut self, after: Option<UserId>, limit: u32) -> Result<Vec<User>, StoreError> {
        let rows = query(concat!(
            user_select!(),
            "where u.user_id in (select user_id from users where user_id > $1 \
             order by user_id limit $2) order by u.user_id, e.user_email_id"
        ))
        .bind(after.map_or(0, |id| id.0))
        .bind(i64::from(limit))
        .fetch_all(self.conn())
        .await
        .map_err(db)?;
        users_from_rows(&rows)
    }

    async fn api_key_by_hash(&mut self, hash: &str) -> Result<Option<ApiKey>, StoreError> {
        let row = query(concat!(key_select!(), "where key_hash = $1"))
            .bind(hash)
            .fetch_optional(self.conn())
            .await
            .map_err(db)?;
        map_optional(row, key_row)
    }

    async fn api_key(&mut self, id: ApiKeyId) -> Result<Option<ApiKey>, StoreError> {
        let row = query(concat!(key_select!(), "where api_key_id = $1"))
            .bind(id.0)
            .fetch_optional(self.conn())
            .await
            .map_err(db)?;
        map_optional(row, key_row)
    }

    async fn api_keys(&mut self) -> Result<Vec<ApiKey>, StoreError> {
        let rows = query(concat!(key_select!(), "order by api_key_id"))
            .fetch_all(self.conn())
            .await
            .map_err(db)?;
        map_rows(&rows, key_row)
    }

    async fn departments(&mut self) -> Result<Vec<Department>, StoreError> {
        let rows = query(concat!(department_select!(), "order by department_id"))
            .fetch_all(self.conn())
            .await
            .map_err(db)?;
        map_rows(&rows, department_row)
    }

    async fn topics(&mut self) -> Result<Vec<HelpTopic>, StoreError> {
        let rows = query(concat!(topic_select!(), "order by topic_id"))
            .fetch_all(self.conn())
            .await
            .map_err(db)?;
        map_rows(&rows, topic_row)
    }

    async fn staff(&mut self) -> Result<Vec<Staff>, StoreError> {
        let rows = query(concat!(staff_select!(), "order by staff_id"))
            .fetch_all(self.conn())
            .await
            .map_err(db)?;
        map_rows(&rows, staff_row)
    }

    async fn statuses(&mut self) -> Result<Vec<TicketStatus>, StoreError> {
        let rows = query(concat!(status_select!(), "order by status_id"))
            .fetch_all(self.conn())
            .await
            .map_err(db)?;
        map_rows(&rows, status_row)
    }

    async fn priorities(&mut self) -> Result<Vec<Priority>, StoreError> {
        let rows = query(concat!(priority_select!(), "order by priority_id"))
            .fetch_all(self.conn())
            .await
            .map_err(db)?;
        map_rows(&rows, priority_row)
    }

    async fn topic(&mut self, id: TopicId) -> Result<Option<HelpTopic>, StoreError> {
        let row = query(concat!(topic_select!(), "where topic_id = $1"))
            .bind(id.0)
            .fetch_optional(self.conn())
            .await
            .map_err(db)?;
        map_optional(row, topic_row)
    }

    async fn priority(&mut self, id: PriorityId) -> Result<Option<Priority>, StoreError> {
        let row = query(concat!(priority_select!(), "where priority_id = $1"))
            .bind(id.0)
            .fetch_optional(self.conn())
            .await
            .map_err(db)?;
        map_optional(row, priority_row)
    }

    async fn department(&mut self, id: DepartmentId) -> Result<Option<Department>, StoreError> {
        let row = query(concat!(department_select!(), "where department_id = $1"))
            .bind(id.0)
            .fetch_optional(self.conn())
            .await
            .map_err(db)?;
        map_optional(row, department_row)
    }

    async fn status(&mut self, id: StatusId) -> Result<Option<TicketStatus>, StoreError> {
        let row = query(concat!(status_select!(), "where status_id = $1"))
            .bind(id.0)
            .fetch_optional(self.conn())
            .await
            .map_err(db)?;
        map_optional(row, status_row)
    }

    async fn staff_member(&mut self, id: StaffId) -> Result<Option<Staff>, StoreError> {
        let row = query(concat!(staff_select!(), "where staff_id = $1"))
            .bind(id.0)
            .fetch_optional(self.conn())
            .await
            .map_err(db)?;
        map_optional(row, staff_row)
    }

    async fn default_department(&mut self) -> Result<Department, StoreError> {
        let row = query(concat!(
            department_select!(),
            "where is_default = 1 order by department_id limit 1"
        ))
        .fetch_optional(self.conn())
        .await
        .map_err(db)?;
        required("default department", map_optional(row, department_row)?)
    }

    async fn default_status(&mut self) -> Result<TicketStatus, StoreError> {
        let row = query(concat!(
            status_select!(),
            "where is_default = 1 and state = 'open' order by status_id limit 1"
        ))
        .fetch_optional(self.conn())
        .await
        .map_err(db)?;
        required("default open status", map_optional(row, status_row)?)
    }

    async fn default_priority(&mut self) -> Result<Priority, StoreError> {
        let row = query(concat!(
            priority_select!(),
            "where is_default = 1 order by priority_id limit 1"
        ))
        .fetch_optional(self.conn())
        .await
        .map_err(db)?;
        required("default priority", map_optional(row, priority_row)?)
    }

    async fn catalog(&mut self) -> Result<CatalogLists, StoreError> {
        if let Some(lists) = self.up_to_date_catalog_copy().await? {
            return Ok(lists.clone());
        }
        catalog_lists(self).await
    }

    async fn new_ticket_defaults(&mut self) -> Result<NewTicketDefaults, StoreError> {
        // The writer's copy answers without reading the three tables or copying the lists.
        if let Some(lists) = self.up_to_date_catalog_copy().await? {
            return defaults_in(lists);
        }
        let row = query(
            "select \
             (select department_id from department where is_default \
              order by department_id limit 1), \
             (select status_id from ticket_status where is_default and state = 'open' \
              order by status_id limit 1), \
             (select priority_id from priority where is_default \
              order by priority_id limit 1)",
        )
        .fetch_one(self.conn())
        .await
        .map_err(db)?;
        let id = |index: usize| row.try_get::<Option<i64>, _>(index).map_err(db);
        Ok(NewTicketDefaults {
            department_id: DepartmentId(required("default department", id(0)?)?),
            status_id: StatusId(required("default open status", id(1)?)?),
            priority_id: PriorityId(required("default priority", id(2)?)?),
        })
    }

    async fn organizations(&mut self) -> Result<Vec<Organization>, StoreError> {
        let rows = query(
            "select organization_id, name, domain, created_at, updated_at from organization \
             order by organization_id",
        )
        .fetch_all(self.conn())
        .await
        .map_err(db)?;
        map_rows(&rows, organization_row)
    }

    async fn slas(&mut self) -> Result<Vec<Sla>, StoreError> {
        let rows = query("select sla_id, name, grace_hours, created_at from sla order by sla_id")
            .fetch_all(self.conn())
            .await
            .map_err(db)?;
        map_rows(&rows, sla_row)
    }

    async fn staff_password_hash(&mut self, id: StaffId) -> Result<Option<String>, StoreError> {
        let row = query("select password_hash from staff where staff_id = $1")
            .bind(id.0)
            .fetch_optional(self.conn())
            .await
            .map_err(db)?;
        Ok(row
            .map(|row| row.try_get::<Option<String>, _>("password_hash"))
            .transpose()
            .map_err(db)?
            .flatten())
    }

    async fn legacy_id(
        &mut self,
        kind: LegacyKind,
        source_id: i64,
    ) -> Result<Option<i64>, StoreError> {
        query("select target_id from legacy_id where kind = $1 and source_id = $2")
            .bind(kind.as_str())
            .bind(source_id)
            .fetch_optional(self.conn())
            .await
            .map_err(db)?
            .map(|row| row.try_get("target_id"))
            .transpose()
            .map_err(db)
    }

    async fn legacy_ids(&mut self, kind: LegacyKind) -> Result<Vec<(i64, i64)>, StoreError> {
        let rows =
            query("select source_id, target_id from legacy_id where kind = $1 order by source_id")
                .bind(kind.as_str())
                .fetch_all(self.conn())
                .await
                .map_err(db)?;
        rows.iter()
            .map(|row| {
                Ok((
                    row.try_get("source_id").map_err(db)?,
                    row.try_get("target_id").map_err(db)?,
                ))
            })
            .collect()
    }
}

#[async_trait]
impl<C: DerefMut<Target = Connection> + ConnectionRole + Send> Writer for Conn<C> {
    async fn insert_job(&mut self, job: &NewJob, now: OffsetDateTime) -> Result<JobId, StoreError> {
        crate::outbox::insert_job(self.conn(), job, now).await
    }

    async fn claim_jobs(
        &mut self,
        kinds: &[JobKind],
        holder: &str,
        now: OffsetDateTime,
        until: OffsetDateTime,
        limit: u32,
    ) -> Result<Vec<Job>, StoreError> {
        crate::outbox::claim_jobs(self.conn(), kinds, holder, now, until, limit).await
    }

    async fn finish_job(
        &mut self,
        id: JobId,
        attempt: u32,
        result: &JobResult,
        now: OffsetDateTime,
    ) -> Result<bool, StoreError> {
        crate::outbox::finish_job(self.conn(), id, attempt, result, now).await
    }

    async fn release_jobs(&mut self, holder: &str, now: OffsetDateTime) -> Result<u64, StoreError> {
        crate::outbox::release_jobs(self.conn(), holder, now).await
    }

    async fn requeue_job(&mut self, id: JobId, now: OffsetDateTime) -> Result<bool, StoreError> {
        crate::outbox::requeue_job(self.conn(), id, now).await
    }

    async fn purge_jobs(&mut self, before: OffsetDateTime) -> Result<u64, StoreError> {
        crate::outbox::purge_jobs(self.conn(), before).await
    }

    async fn insert_webhook(
        &mut self,
        webhook: &NewWebhook,
        now: OffsetDateTime,
    ) -> Result<Webhook, StoreError> {
        crate::outbox::insert_webhook(self.conn(), webhook, now).await
    }

    async fn delete_webhook(&mut self, id: WebhookId) -> Result<bool, StoreError> {
        crate::outbox::delete_webhook(self.conn(), id).await
    }
    async fn find_or_create_user(
        &mut self,
        contact: &CustomerContact,
        now: OffsetDateTime,
    ) -> Result<(User, bool), StoreError> {
        // The writer holds SQLite's only write lock (BEGIN IMMEDIATE), so nobody can insert
        // the address between this lookup and the insert below.
        if let Some(user) = self.user_by_email(&contact.email).await? {
            return Ok((user, false));
        }
        let name = contact.name_or_local_part();
        let user_id: i64 = query(
            "insert into users (name, phone, notes, created_at, updated_at) \
             values ($1, $2, $3, $4, $4)",
        )
        .bind(&name)
        .bind(&contact.phone)
        .bind(&contact.notes)
        .bind(micros(now))
        .insert(self.conn())
        .await
        .map_err(db)?;
        insert_address(self.conn(), user_id, &contact.email, now).await?;
        Ok((
            User {
                id: UserId(user_id),
                name,
                emails: vec![contact.email.clone()],
                phone: contact.phone.clone(),
                notes: contact.notes.clone(),
                organization_id: None,
                created_at: now,
                updated_at: now,
            },
            true,
        ))
    }

    async fn lock_ticket(&mut self, number: &TicketNumber) -> Result<Option<Ticket>, StoreError> {
        // No row lock needed: this transaction holds SQLite's only write lock (BEGIN IMMEDIATE),
        // so no other writer can change the ticket before it ends.
        self.ticket_by_number(number).await
    }

    async fn update_ticket(&mut self, ticket: &Ticket) -> Result<(), StoreError> {
        let updated = query(
            "update ticket set status_id = $2, priority_id = $3, department_id = $4, \
             topic_id = $5, assignee_id = $6, is_answered = $7, due_at = $8, updated_at = $9, \
             last_message_at = $10, last_response_at = $11, closed_at = $12, reopened_at = $13 \
             where ticket_id = $1",
        )
        .bind(ticket.id.0)
        .bind(ticket.status_id.0)
        .bind(ticket.priority_id.0)
        .bind(ticket.department_id.0)
        .bind(ticket.topic_id.map(|id| id.0))
        .bind(ticket.assignee_id.map(|id| id.0))
        .bind(ticket.is_answered)
        .bind(ticket.due_at.map(micros))
        .bind(micros(ticket.updated_at))
        .bind(ticket.last_message_at.map(micros))
        .bind(ticket.last_response_at.map(micros))
        .bind(ticket.closed_at.map(micros))
        .bind(ticket.reopened_at.map(micros))
        .execute(self.conn())
        .await
        .map_err(db)?
        .rows_affected();
        // Callers update a ticket they just read in this transaction; losing the write
        // silently would hide a bug.
        if updated == 0 {
            return Err(StoreError::Other(
                format!("ticket {} cannot be updated: it does not exist", ticket.id).into(),
            ));
        }
        Ok(())
    }

    async fn claim_idempotency_key(
        &mut self,
        key: &IdempotencyKey,
        expired_before: OffsetDateTime,
        now: OffsetDateTime,
    ) -> Result<Option<IdempotencyRecord>, StoreError> {
        // This transaction holds SQLite's only write lock, so no other claim, completion or
        // purge runs between these statements: a concurrent repeat waits for the whole unit of
        // work, then finds its committed answer.
        let inserted = query(
            "insert into idempotency_key (api_key_id, key, request_hash, status, body, \
             created_at) values ($1, $2, $3, 0, '', $4) \
             on conflict (api_key_id, key) do nothing",
        )
        .bind(key.api_key_id.0)
        .bind(&key.key)
        .bind(&key.request_hash)
        .bind(micros(now))
        .execute(self.conn())
        .await
        .map_err(db)?
        .rows_affected();
        if inserted == 1 {
            return Ok(None);
        }
        // A record past retention may linger until the next purge; it no longer counts.
        let replaced = query(
            "update idempotency_key set request_hash = $3, status = 0, body = '', \
             created_at = $4 where api_key_id = $1 and key = $2 and created_at < $5",
        )
        .bind(key.api_key_id.0)
        .bind(&key.key)
        .bind(&key.request_hash)
        .bind(micros(now))
        .bind(micros(expired_before))
        .execute(self.conn())
        .await
        .map_err(db)?
        .rows_affected();
        if replaced == 1 {
            return Ok(None);
        }
        let row = query(
            "select request_hash, status, body from idempotency_key \
             where api_key_id = $1 and key = $2",
        )
        .bind(key.api_key_id.0)
        .bind(&key.key)
        .fetch_optional(self.conn())
        .await
        .map_err(db)?;
        match row {
            Some(row) => idempotency_row(&row).map(Some),
            None => Err(StoreError::Other(
                format!(
                    "idempotency key '{}' was neither inserted nor found",
                    key.key
                )
                .into(),
            )),
        }
    }

    async fn complete_idempotency_key(
        &mut self,
        key: &IdempotencyKey,
        response: &StoredResponse,
    ) -> Result<(), StoreError> {
        let updated = query(
            "update idempotency_key set status = $3, body = $4 \
             where api_key_id = $1 and key = $2",
        )
        .bind(key.api_key_id.0)
        .bind(&key.key)
        .bind(i64::from(response.status))
        .bind(&response.body)
        .execute(self.conn())
        .await
        .map_err(db)?
        .rows_affected();
        // Completing a key this transaction did not claim is a caller bug; the answer would
        // otherwise be lost without a trace.
        if updated == 0 {
            return Err(StoreError::Other(
                format!("idempotency key '{}' was not claimed", key.key).into(),
            ));
        }
        Ok(())
    }

    async fn purge_idempotency_keys(&mut self, before: OffsetDateTime) -> Result<u64, StoreError> {
        Ok(query("delete from idempotency_key where created_at < $1")
            .bind(micros(before))
            .execute(self.conn())
            .await
            .map_err(db)?
            .rows_affected())
    }

    async fn insert_ticket(&mut self, draft: &TicketDraft) -> Result<Option<Ticket>, StoreError> {
        let ticket_id = query(
            "insert into ticket (number, subject, user_id, department_id, topic_id, status_id, \
             priority_id, source, ip, is_answered, created_at, updated_at, last_message_at) \
             values ($1, $2, $3, $4, $5, $6, $7, $8, $9, 0, $10, $10, $10) \
             on conflict (number) do nothing",
        )
        .bind(draft.number.as_str())
        .bind(draft.subject.as_str())
        .bind(draft.user_id.0)
        .bind(draft.department_id.0)
        .bind(draft.topic_id.map(|t| t.0))
        .bind(draft.status_id.0)
        .bind(draft.priority_id.0)
        .bind(draft.source.as_str())
        .bind(draft.ip.map(|ip| ip.to_string()))
        .bind(micros(draft.created_at))
        .insert_optional(self.conn())
        .await
        .map_err(db)?;
        let Some(ticket_id) = ticket_id else {
            return Ok(None);
        };
        Ok(Some(Ticket {
            id: TicketId(ticket_id),
            number: draft.number.clone(),
            subject: draft.subject.clone(),
            user_id: draft.user_id,
            department_id: draft.department_id,
            topic_id: draft.topic_id,
            status_id: draft.status_id,
            priority_id: draft.priority_id,
            source: draft.source,
            ip: draft.ip,
            assignee_id: None,
            is_answered: false,
            due_at: None,
            created_at: draft.created_at,
            updated_at: draft.created_at,
            last_message_at: Some(draft.created_at),
            last_response_at: None,
            closed_at: None,
            reopened_at: None,
        }))
    }

    async fn next_sequence(&mut self, name: &str) -> Result<u64, StoreError> {
        let value: i64 = query(
            "insert into counter (name, next_value) values ($1, 2) \
             on conflict (name) do update set next_value = next_value + 1 \
             returning next_value - 1",
        )
        .bind(name)
        .fetch_one(self.conn())
        .await
        .map_err(db)?
        .try_get(0)
        .map_err(db)?;
        u64::try_from(value).map_err(|_| StoreError::Corrupt(format!("counter {name} is {value}")))
    }

    async fn insert_entry(
        &mut self,
        ticket: TicketId,
        entry: &NewEntry,
        now: OffsetDateTime,
    ) -> Result<ThreadEntry, StoreError> {
        let (user_id, staff_id) = match entry.author {
            Author::User(id) => (Some(id.0), None),
            Author::Staff(id) => (None, Some(id.0)),
            Author::System => (None, None),
        };
        let entry_id: i64 = query(
            "insert into thread_entry (ticket_id, kind, user_id, staff_id, display_name, title, \
             body, format, source, ip, api_key_id, mail_message_id, mail_in_reply_to, \
             mail_references, flags, created_at) \
             values ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16)",
        )
        .bind(ticket.0)
        .bind(entry.kind.as_str())
        .bind(user_id)
        .bind(staff_id)
        .bind(&entry.display_name)
        .bind(&entry.title)
        .bind(entry.body.as_str())
        .bind(entry.body.format().as_str())
        .bind(entry.source.as_str())
        .bind(entry.ip.map(|ip| ip.to_string()))
        .bind(entry.api_key_id.map(|id| id.0))
        .bind(&entry.mail.message_id)
        .bind(&entry.mail.in_reply_to)
        .bind(&entry.mail.references)
        .bind(entry.flags.bits())
        .bind(micros(now))
        .insert(self.conn())
        .await
        .map_err(db)?;

        let mut attachments = Vec::with_capacity(entry.attachments.len());
        for file in &entry.attachments {
            let sha256 = file.sha256();
            let size = i64::try_from(file.content.len()).unwrap_or(i64::MAX);
            let existing: Option<i64> = query("select file_id from file where sha256 = $1")
                .bind(&sha256)
                .fetch_optional(self.conn())
                .await
                .map_err(db)?
                .map(|row| row.try_get(0))
                .transpose()
                .map_err(db)?;
            let file_id = match existing {
                Some(id) => id,
                None => query(
                    "insert into file (sha256, size, content, created_at) values ($1, $2, $3, $4)",
                )
                .bind(&sha256)
                .bind(size)
                .bind(&file.content)
                .bind(micros(now))
                .insert(self.conn())
                .await
                .map_err(db)?,
            };
            let attachment_id: i64 = query(
                "insert into attachment (entry_id, file_id, filename, content_type, content_id) \
                 values ($1, $2, $3, $4, $5)",
            )
            .bind(entry_id)
            .bind(file_id)
            .bind(&file.filename)
            .bind(&file.content_type)
            .bind(&file.content_id)
            .insert(self.conn())
            .await
            .map_err(db)?;
            attachments.push(Attachment {
                id: AttachmentId(attachment_id),
                entry_id: EntryId(entry_id),
                file_id: FileId(file_id),
                filename: file.filename.clone(),
                content_type: file.content_type.clone(),
                size,
                sha256,
                content_id: file.content_id.clone(),
            });
        }

        Ok(ThreadEntry {
            id: EntryId(entry_id),
            ticket_id: ticket,
            kind: entry.kind,
            author: entry.author,
            display_name: entry.display_name.clone(),
            title: entry.title.clone(),
            body: entry.body.clone(),
            source: entry.source,
            ip: entry.ip,
            api_key_id: entry.api_key_id,
            mail: entry.mail.clone(),
            flags: entry.flags,
            created_at: now,
            attachments,
        })
    }

    async fn add_collaborator(
        &mut self,
        ticket: TicketId,
        user: UserId,
        now: OffsetDateTime,
    ) -> Result<bool, StoreError> {
        let added = query(
            "insert into collaborator (ticket_id, user_id, created_at) values ($1, $2, $3) \
             on conflict (ticket_id, user_id) do nothing",
        )
        .bind(ticket.0)
        .bind(user.0)
        .bind(micros(now))
        .execute(self.conn())
        .await
        .map_err(db)?
        .rows_affected();
        Ok(added == 1)
    }

    async fn remove_collaborator(
        &mut self,
        ticket: TicketId,
        user: UserId,
    ) -> Result<bool, StoreError> {
        let removed = query("delete from collaborator where ticket_id = $1 and user_id = $2")
            .bind(ticket.0)
            .bind(user.0)
            .execute(self.conn())
            .await
            .map_err(db)?
            .rows_affected();
        Ok(removed == 1)
    }

    async fn insert_event(
        &mut self,
        event: &NewEvent,
        now: OffsetDateTime,
    ) -> Result<EventId, StoreError> {
        let id: i64 = query(
            "insert into event (ticket_id, kind, actor_user_id, actor_staff_id, api_key_id, data, \
             created_at) values ($1, $2, $3, $4, $5, $6, $7)",
        )
        .bind(event.ticket_id.map(|id| id.0))
        .bind(event.kind.as_str())
        .bind(event.actor.user_id.map(|id| id.0))
        .bind(event.actor.staff_id.map(|id| id.0))
        .bind(event.actor.api_key_id.map(|id| id.0))
        .bind(&event.data)
        .bind(micros(now))
        .insert(self.conn())
        .await
        .map_err(db)?;
        Ok(EventId(id))
    }

    async fn insert_api_key(
        &mut self,
        key: &NewApiKey,
        now: OffsetDateTime,
    ) -> Result<ApiKey, StoreError> {
        let id: i64 = query(
            "insert into api_key (key_hash, prefix, ip_rules, scopes, note, created_at) \
             values ($1, $2, $3, $4, $5, $6)",
        )
        .bind(key.secret.hash())
        .bind(key.secret.prefix())
        .bind(ip_rules_to_text(&key.ip_rules))
        .bind(scopes_to_text(&key.scopes))
        .bind(&key.note)
        .bind(micros(now))
        .insert(self.conn())
        .await
        .map_err(db)?;
        Ok(ApiKey {
            id: ApiKeyId(id),
            prefix: key.secret.prefix(),
            ip_rules: key.ip_rules.clone(),
            scopes: key.scopes.clone(),
            note: key.note.clone(),
            created_at: now,
            revoked_at: None,
        })
    }

    async fn revoke_api_key(
        &mut self,
        id: ApiKeyId,
        now: OffsetDateTime,
    ) -> Result<Option<ApiKey>, StoreError> {
        query("update api_key set revoked_at = coalesce(revoked_at, $2) where api_key_id = $1")
            .bind(id.0)
            .bind(micros(now))
            .execute(self.conn())
            .await
            .map_err(db)?;
        self.api_key(id).await
    }

    async fn insert_inbound(
        &mut self,
        message: &NewInbound,
        now: OffsetDateTime,
    ) -> Result<(InboundRecord, bool), StoreError> {
        // The conflict target names the partial unique index, so only a repeated
        // (mailbox, source_uid) is skipped; a message without a uid is always stored.
        let inserted = query(concat!(
            "insert into inbound_mail (source, mailbox, source_uid, raw, size, received_at) \
             values ($1, $2, $3, $4, $5, $6) \
             on conflict (coalesce(mailbox, ''), source_uid) where source_uid is not null \
             do nothing returning ",
            inbound_columns!()
        ))
        .bind(&message.source)
        .bind(&message.mailbox)
        .bind(&message.source_uid)
        .bind(&message.raw)
        .bind(i64::try_from(message.raw.len()).unwrap_or(i64::MAX))
        .bind(micros(now))
        .fetch_optional(self.conn())
        .await
        .map_err(db)?;
        if let Some(row) = inserted {
            return Ok((inbound_row(&row)?, true));
        }
        let existing = query(concat!(
            "select ",
            inbound_columns!(),
            "from inbound_mail where coalesce(mailbox, '') = coalesce($1, '') \
             and source_uid = $2"
        ))
        .bind(&message.mailbox)
        .bind(&message.source_uid)
        .fetch_optional(self.conn())
        .await
        .map_err(db)?;
        match existing {
            Some(row) => Ok((inbound_row(&row)?, false)),
            None => Err(StoreError::Other(
                format!(
                    "inbound message {:?} in mailbox {:?} was neither inserted nor found",
                    message.source_uid, message.mailbox
                )
                .into(),
            )),
        }
    }

    async fn lock_key(&mut self, key: &str) -> Result<(), StoreError> {
        // The writer holds SQLite's only write lock for the whole transaction.
        let _ = key;
        Ok(())
    }

    async fn lock_inbound(&mut self, id: InboundId) -> Result<Option<InboundStatus>, StoreError> {
        let row = query("select status from inbound_mail where inbound_id = $1")
            .bind(id.0)
            .fetch_optional(self.conn())
            .await
            .map_err(db)?;
        row.map(|row| {
            let status: String = row.try_get("status").map_err(db)?;
            InboundStatus::parse(&status)
                .ok_or_else(|| StoreError::Corrupt(format!("unknown inbound status '{status}'")))
        })
        .transpose()
    }

    async fn requeue_inbound(&mut self, id: InboundId) -> Result<bool, StoreError> {
        let changed = query(
            "update inbound_mail set status = 'pending' \
             where inbound_id = $1 and status = 'quarantined'",
        )
        .bind(id.0)
        .execute(self.conn())
        .await
        .map_err(db)?
        .rows_affected();
        Ok(changed == 1)
    }

    async fn insert_finished_inbound(
        &mut self,
        message: &NewInbound,
        outcome: &InboundOutcome,
        now: OffsetDateTime,
    ) -> Result<InboundId, StoreError> {
        let id = query(
            "insert into inbound_mail (source, mailbox, source_uid, raw, size, received_at, \
             status, class, rule, message_id, ticket_id, entry_id, processed_at, attempts) \
             values ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $6, 1)",
        )
        .bind(&message.source)
        .bind(&message.mailbox)
        .bind(&message.source_uid)
        .bind(&message.raw)
        .bind(i64::try_from(message.raw.len()).unwrap_or(i64::MAX))
        .bind(micros(now))
        .bind(outcome.status.as_str())
        .bind(&outcome.class)
        .bind(&outcome.rule)
        .bind(&outcome.message_id)
        .bind(outcome.ticket_id.map(|id| id.0))
        .bind(outcome.entry_id.map(|id| id.0))
        .insert(self.conn())
        .await
        .map_err(db)?;
        Ok(InboundId(id))
    }

    async fn finish_inbound(
        &mut self,
        id: InboundId,
        outcome: &InboundOutcome,
        now: OffsetDateTime,
    ) -> Result<(), StoreError> {
        let updated = query(
            "update inbound_mail set status = $2, class = $3, rule = $4, message_id = $5, \
             ticket_id = $6, entry_id = $7, processed_at = $8, attempts = attempts + 1 \
             where inbound_id = $1",
        )
        .bind(id.0)
        .bind(outcome.status.as_str())
        .bind(&outcome.class)
        .bind(&outcome.rule)
        .bind(&outcome.message_id)
        .bind(outcome.ticket_id.map(|id| id.0))
        .bind(outcome.entry_id.map(|id| id.0))
        .bind(micros(now))
        .execute(self.conn())
        .await
        .map_err(db)?
        .rows_affected();
        if updated == 0 {
            return Err(StoreError::Other(
                format!("inbound message {id} cannot be finished: it does not exist").into(),
            ));
        }
        Ok(())
    }

    async fn init_setting(&mut self, name: &str, value: &str) -> Result<String, StoreError> {
        query("insert into setting (name, value) values ($1, $2) on conflict (name) do nothing")
            .bind(name)
            .bind(value)
            .execute(self.conn())
            .await
            .map_err(db)?;
        self.setting(name).await?.ok_or_else(|| {
            StoreError::Other(format!("setting '{name}' was neither inserted nor found").into())
        })
    }

    async fn put_setting(&mut self, name: &str, value: &str) -> Result<(), StoreError> {
        query(
            "insert into setting (name, value) values ($1, $2) \
             on conflict (name) do update set value = excluded.value",
        )
        .bind(name)
        .bind(value)
        .execute(self.conn())
        .await
        .map_err(db)?;
        Ok(())
    }

    async fn insert_mailbox(
        &mut self,
        mailbox: &NewMailbox,
        now: OffsetDateTime,
    ) -> Result<Mailbox, StoreError> {
        // Both stores keep the interval in a 32-bit column's range (PostgreSQL's `integer`).
        let poll_seconds = i32::try_from(mailbox.poll_seconds).map_err(|_| {
            StoreError::Other(
                format!(
                    "a poll interval of {} seconds is too long to store",
                    mailbox.poll_seconds
                )
                .into(),
            )
        })?;
        let address = &mailbox.address;
        let id: i64 = query(
            "insert into mailbox (protocol, host, port, username, password, folder, \
             after_fetch, poll_seconds, created_at) values ($1, $2, $3, $4, $5, $6, $7, $8, $9)",
        )
        .bind(address.protocol.as_str())
        .bind(&address.host)
        .bind(i64::from(address.port))
        .bind(&address.user)
        .bind(&address.password)
        .bind(&address.folder)
        .bind(mailbox.after_fetch.to_stored())
        .bind(poll_seconds)
        .bind(micros(now))
        .insert(self.conn())
        .await
        .map_err(db)?;
        Ok(Mailbox {
            id: MailboxId(id),
            address: address.clone(),
            after_fetch: mailbox.after_fetch.clone(),
            poll_seconds: mailbox.poll_seconds,
            created_at: now,
            last_fetch_at: None,
            last_error: None,
        })
    }

    async fn delete_mailbox(&mut self, id: MailboxId) -> Result<bool, StoreError> {
        // `inbound_mail.mailbox` is free text, not a reference: fetched messages stay.
        let deleted = query("delete from mailbox where mailbox_id = $1")
            .bind(id.0)
            .execute(self.conn())
            .await
            .map_err(db)?
            .rows_affected();
        Ok(deleted == 1)
    }

    async fn lease_mailbox(
        &mut self,
        id: MailboxId,
        holder: &str,
        now: OffsetDateTime,
        until: OffsetDateTime,
    ) -> Result<bool, StoreError> {
        // One statement decides: the lease is taken only when it is free, expired or already
        // this holder's. (This transaction also holds SQLite's only write lock.)
        let taken = query(
            "update mailbox set lease_holder = $2, lease_until = $4 \
             where mailbox_id = $1 \
             and (lease_until is null or lease_until < $3 or lease_holder = $2)",
        )
        .bind(id.0)
        .bind(holder)
        .bind(micros(now))
        .bind(micros(until))
        .execute(self.conn())
        .await
        .map_err(db)?
        .rows_affected();
        Ok(taken == 1)
    }

    async fn mailbox_fetched(
        &mut self,
        id: MailboxId,
        error: Option<&str>,
        now: OffsetDateTime,
    ) -> Result<(), StoreError> {
        // The error often quotes the mail server; PostgreSQL text cannot hold NUL, so both
        // stores record it as U+FFFD rather than lose the whole message.
        let error = error.map(|text| text.replace('\0', "\u{fffd}"));
        let updated =
            query("update mailbox set last_fetch_at = $2, last_error = $3 where mailbox_id = $1")
                .bind(id.0)
                .bind(micros(now))
                .bind(error.as_deref())
                .execute(self.conn())
                .await
                .map_err(db)?
                .rows_affected();
        if updated == 0 {
            return Err(StoreError::Other(
                format!("mailbox {id} cannot record a fetch: it does not exist").into(),
            ));
        }
        Ok(())
    }

    async fn insert_department(
        &mut self,
        department: &NewDepartment,
        now: OffsetDateTime,
    ) -> Result<Department, StoreError> {
        let id: i64 =
            query("insert into department (name, is_default, created_at) values ($1, 0, $2)")
                .bind(&department.name)
                .bind(micros(now))
                .insert(self.conn())
                .await
                .map_err(db)?;
        Ok(Department {
            id: DepartmentId(id),
            name: department.name.clone(),
            is_default: false,
            created_at: now,
        })
    }

    async fn insert_topic(
        &mut self,
        topic: &NewTopic,
        now: OffsetDateTime,
    ) -> Result<HelpTopic, StoreError> {
        let id: i64 = query(
            "insert into help_topic (name, department_id, priority_id, active, created_at) \
             values ($1, $2, $3, 1, $4)",
        )
        .bind(&topic.name)
        .bind(topic.department_id.0)
        .bind(topic.priority_id.map(|p| p.0))
        .bind(micros(now))
        .insert(self.conn())
        .await
        .map_err(db)?;
        Ok(HelpTopic {
            id: TopicId(id),
            name: topic.name.clone(),
            department_id: topic.department_id,
            priority_id: topic.priority_id,
            active: true,
            created_at: now,
        })
    }

    async fn insert_staff(
        &mut self,
        staff: &NewStaff,
        now: OffsetDateTime,
    ) -> Result<Staff, StoreError> {
        self.import_staff(&ImportedStaff {
            staff: staff.clone(),
            active: true,
            password_hash: None,
            created_at: now,
        })
        .await
    }

    async fn record_legacy_id(
        &mut self,
        kind: LegacyKind,
        source_id: i64,
        target_id: i64,
    ) -> Result<(), StoreError> {
        query("insert into legacy_id (kind, source_id, target_id) values ($1, $2, $3)")
            .bind(kind.as_str())
            .bind(source_id)
            .bind(target_id)
            .execute(self.conn())
            .await
            .map_err(db)?;
        Ok(())
    }

    async fn insert_organization(
        &mut self,
        organization: &NewOrganization,
    ) -> Result<Organization, StoreError> {
        let id: i64 = query(
            "insert into organization (name, domain, created_at, updated_at) \
             values ($1, $2, $3, $4)",
        )
        .bind(&organization.name)
        .bind(&organization.domain)
        .bind(micros(organization.created_at))
        .bind(micros(organization.updated_at))
        .insert(self.conn())
        .await
        .map_err(db)?;
        Ok(Organization {
            id: OrganizationId(id),
            name: organization.name.clone(),
            domain: organization.domain.clone(),
            created_at: organization.created_at,
            updated_at: organization.updated_at,
        })
    }

    async fn insert_sla(&mut self, sla: &NewSla, now: OffsetDateTime) -> Result<Sla, StoreError> {
        let id: i64 = query("insert into sla (name, grace_hours, created_at) values ($1, $2, $3)")
            .bind(&sla.name)
            .bind(sla.grace_hours)
            .bind(micros(now))
            .insert(self.conn())
            .await
            .map_err(db)?;
        Ok(Sla {
            id: SlaId(id),
            name: sla.name.clone(),
            grace_hours: sla.grace_hours,
            created_at: now,
        })
    }

    async fn insert_status(&mut self, status: &NewStatus) -> Result<TicketStatus, StoreError> {
        let id: i64 = query(
            "insert into ticket_status (name, state, allow_reopen, is_default) \
             values ($1, $2, $3, 0)",
        )
        .bind(&status.name)
        .bind(status.state.as_str())
        .bind(status.allow_reopen)
        .insert(self.conn())
        .await
        .map_err(db)?;
        Ok(TicketStatus {
            id: StatusId(id),
            name: status.name.clone(),
            state: status.state,
            allow_reopen: status.allow_reopen,
            is_default: false,
        })
    }

    async fn insert_priority(&mut self, priority: &NewPriority) -> Result<Priority, StoreError> {
        let id: i64 = query("insert into priority (name, urgency, is_default) values ($1, $2, 0)")
            .bind(&priority.name)
            .bind(priority.urgency)
            .insert(self.conn())
            .await
            .map_err(db)?;
        Ok(Priority {
            id: PriorityId(id),
            name: priority.name.clone(),
            urgency: priority.urgency,
            is_default: false,
        })
    }

    async fn import_user(&mut self, user: &ImportedUser) -> Result<User, StoreError> {
        let user_id: i64 = query(
            "insert into users (name, phone, notes, organization_id, created_at, updated_at) \
             values ($1, $2, $3, $4, $5, $6)",
        )
        .bind(&user.name)
        .bind(&user.phone)
        .bind(&user.notes)
        .bind(user.organization_id.map(|id| id.0))
        .bind(micros(user.created_at))
        .bind(micros(user.updated_at))
        .insert(self.conn())
        .await
        .map_err(db)?;
        // One at a time, primary first: the readers list addresses by row id.
        for email in &user.emails {
            insert_address(self.conn(), user_id, email, user.created_at).await?;
        }
        Ok(User {
            id: UserId(user_id),
            name: user.name.clone(),
            emails: user.emails.clone(),
            phone: user.phone.clone(),
            notes: user.notes.clone(),
            organization_id: user.organization_id,
            created_at: user.created_at,
            updated_at: user.updated_at,
        })
    }

    async fn import_staff(&mut self, imported: &ImportedStaff) -> Result<Staff, StoreError> {
        let staff = &imported.staff;
        let id: i64 = query(
            "insert into staff (username, name, email, email_key, department_id, active, \
             password_hash, created_at) values ($1, $2, $3, $4, $5, $6, $7, $8)",
        )
        .bind(&staff.username)
        .bind(&staff.name)
        .bind(staff.email.as_str())
        .bind(staff.email.key())
        .bind(staff.department_id.0)
        .bind(imported.active)
        .bind(&imported.password_hash)
        .bind(micros(imported.created_at))
        .insert(self.conn())
        .await
        .map_err(db)?;
        Ok(Staff {
            id: StaffId(id),
            username: staff.username.clone(),
            name: staff.name.clone(),
            email: staff.email.clone(),
            department_id: staff.department_id,
            active: imported.active,
            created_at: imported.created_at,
        })
    }
}

/// Adds one address to a customer. Identity is the address's key ([`EmailAddress::key`]), which
/// the unique `address_key` enforces: an address another customer has is a
/// [`StoreError::Constraint`].
async fn insert_address(
    conn: &mut Connection,
    user_id: i64,
    email: &EmailAddress,
    at: OffsetDateTime,
) -> Result<(), StoreError> {
    query(
        "insert into user_email (user_id, address, address_key, created_at) \
         values ($1, $2, $3, $4)",
    )
    .bind(user_id)
    .bind(email.as_str())
    .bind(email.key())
    .bind(micros(at))
    .execute(conn)
    .await
    .map_err(db)?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::{FIRST_REACH, fts5_query};
    use crate::SqliteStore;
    use helpline_core::body::{BodyFormat, MessageBody};
    use helpline_core::email::EmailAddress;
    use helpline_core::event::Actor;
    use helpline_core::ids::{TicketId, UserId};
    use helpline_core::service::DeskSettings;
    use helpline_core::service::tickets::open_ticket;
    use helpline_core::store::{Store, TicketQuery};
    use helpline_core::thread::{Author, EntryFlags, EntryKind, MailIds, NewEntry};
    use helpline_core::ticket::{NewTicket, NotifyOptions, Source, Subject};
    use helpline_core::user::CustomerContact;

    /// The words of a text as the tokenizer sees them (ASCII test texts).
    fn words(text: &str) -> Vec<String> {
        text.split(|c: char| !c.is_ascii_alphanumeric())
            .filter(|w| !w.is_empty())
            .map(str::to_ascii_lowercase)
            .collect()
    }

    /// A search in steps (windows of the newest entries first, then every entry) answers exactly
    /// what one statement over every entry would: every page size, cursor and customer filter,
    /// for words in many tickets, in few, in entries added to old tickets after newer ones were
    /// opened, and words that are in one ticket but never in one entry together.
    #[tokio::test]
    async fn searches_in_steps_find_what_one_statement_finds() {
        let dir = tempfile::tempdir().expect("temporary directory");
        let url = format!("sqlite://{}", dir.path().join("search.db").display());
        let sqlite = SqliteStore::open(&url).await.expect("open the store");
        let store: &dyn Store = &sqlite;
        let count = 24_i64;
        assert!(
            count > 4 * FIRST_REACH,
            "the entries span several search windows"
        );
        // (ticket, owner, texts of its entries: title and body)
        let mut tickets: Vec<(TicketId, UserId, Vec<String>)> = Vec::new();
        for i in 1..=count {
            let mut message = format!("Ticket {i} of the test");
            for (word, every) in [("alpha", 2), ("beta", 5)] {
                if i % every == 0 {
                    message.push_str(&format!(" {word}"));
                }
            }
            if i == 3 || i == 17 {
                message.push_str(" rare");
            }
            let subject = if i % 7 == 0 {
                format!("Gamma {i}")
            } else {
                format!("Subject {i}")
            };
            let address = if i % 3 == 0 {
                "ann@example.com"
            } else {
                "bob@example.com"
            };
            let new = NewTicket {
                contact: CustomerContact {
                    email: EmailAddress::parse(address).expect("address"),
                    name: None,
                    phone: None,
                    notes: None,
                },
                subject: Subject::parse(&subject).expect("subject"),
                message: MessageBody::parse(&message, BodyFormat::Text).expect("body"),
                topic_id: None,
                priority_id: None,
                source: Source::Api,
                ip: None,
                attachments: vec![],
                notify: NotifyOptions::default(),
                mail: MailIds::default(),
                flags: EntryFlags::default(),
            };
            let opened = open_ticket(store, &DeskSettings::default(), new, Actor::system())
                .await
                .expect("ticket opened");
            tickets.push((
                opened.ticket.id,
                opened.ticket.user_id,
                vec![format!("{subject} {message}")],
            ));
        }
        // Entries added to older tickets after the newer ones were opened.
        for (index, text) in [(1, "latecomer alpha beta"), (8, "latecomer"), (21, "beta")] {
            let ticket = tickets[index].0;
            let body = MessageBody::parse(text, BodyFormat::Text).expect("body");
            store
                .write(move |tx| {
                    Box::pin(async move {
                        tx.insert_entry(
                            ticket,
                            &NewEntry {
                                kind: EntryKind::Response,
                                author: Author::System,
                                display_name: "Agent".into(),
                                title: None,
                                body,
                                source: Source::Api,
                                ip: None,
                                api_key_id: None,
                                mail: MailIds::default(),
                                flags: EntryFlags::default(),
                                attachments: vec![],
                            },
                            helpline_core::now(),
                        )
                        .await?;
                        Ok(())
                    })
                })
                .await
                .expect("entry added");
            tickets[index].2.push(text.to_owned());
        }
        let customer = tickets[2].1;
        let mut checked = 0;
        for text in [
            "alpha",
            "beta",
            "alpha beta",
            "latecomer",
            "rare",
            "gamma",
            "ticket",
            "nothing",
        ] {
            let wanted = words(text);
            let matching: Vec<(TicketId, UserId)> = tickets
                .iter()
                .rev()
                .filter(|(_, _, entries)| {
                    entries.iter().any(|entry| {
                        let have = words(entry);
                        wanted.iter().all(|w| have.contains(w))
                    })
                })
                .map(|(id, owner, _)| (*id, *owner))
                .collect();
            for before in std::iter::once(None).chain((1..=count + 2).map(|id| Some(TicketId(id))))
            {
                for limit in [1, 3, 4, 30] {
                    for only_customer in [false, true] {
                        let expected: Vec<TicketId> = matching
                            .iter()
                            .filter(|(id, owner)| {
                                before.is_none_or(|b| id.0 < b.0)
                                    && (!only_customer || *owner == customer)
                            })
                            .map(|(id, _)| *id)
                            .take(limit as usize)
                            .collect();
                        let query = TicketQuery {
                            text: Some(text.to_owned()),
                            before,
                            limit,
                            customer: only_customer.then_some(customer),
                            ..TicketQuery::default()
                        };
                        let found: Vec<TicketId> = store
                            .reader()
                            .await
                            .expect("reader")
                            .tickets(&query)
                            .await
                            .expect("search")
                            .into_iter()
                            .map(|t| t.id)
                            .collect();
                        assert_eq!(found, expected, "{query:?}");
                        checked += 1;
                    }
                }
            }
        }
        assert!(checked > 1000);
        sqlite.close().await;
    }

    #[test]
    fn search_words_become_quoted_fts5_strings() {
        assert_eq!(fts5_query("  "), None);
        assert_eq!(fts5_query("\0\t\n"), None);
        assert_eq!(
            fts5_query(" printer  On\tfire "),
            Some(r#""printer" "On" "fire""#.into())
        );
        assert_eq!(fts5_query(r#"say "hi""#), Some(r#""say" """hi""""#.into()));
        assert_eq!(
            fts5_query("NEAR(a b) -x *"),
            Some(r#""NEAR(a" "b)" "-x" "*""#.into())
        );
        assert_eq!(fts5_query("a\0b"), Some(r#""a" "b""#.into()));
    }
}
