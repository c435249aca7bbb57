//! The [`Reader`] and [`Writer`] implementations: every SQL statement of the PostgreSQL store.
//!
//! Writes run under READ COMMITTED with other writers alongside, so nothing here may rely on
//! being the only writer (as the SQLite store can): every find-or-insert goes through the unique
//! constraint that decides it, with `on conflict`, and never lets a collision abort the
//! transaction.

use crate::catalog_cache::CatalogCopy;
use crate::convert::{db, ip, parsed};
use async_trait::async_trait;
use helpline_core::StoreError;
use helpline_core::apikey::{
    ApiKey, NewApiKey, ip_rules_from_text, ip_rules_to_text, scopes_from_text, scopes_to_text,
};
use helpline_core::attachment::{Attachment, NewAttachment};
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
};
use helpline_core::thread::{Author, EntryFlags, EntryKind, MailIds, NewEntry, ThreadEntry};
use helpline_core::ticket::{Collaborator, Source, Subject, Ticket, TicketNumber};
use helpline_core::user::{CustomerContact, NewOrganization, Organization, User};
use sqlx::postgres::{PgConnection, PgRow};
use sqlx::{Connection, Postgres, QueryBuilder, Row, query};
use std::collections::BTreeMap;
use std::ops::DerefMut;
use time::OffsetDateTime;

/// A connection (pooled reader, or the writer inside a transaction) seen as a store reader/writer.
pub(crate) struct Conn<C>(pub(crate) C);

impl<C: DerefMut<Target = PgConnection> + CatalogCopy + Send> Conn<C> {
    fn conn(&mut self) -> &mut PgConnection {
        &mut self.0
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

macro_rules! key_columns {
    () => {
        "api_key_id, prefix, ip_rules, scopes, note, created_at, revoked_at "
    };
}

macro_rules! key_select {
    () => {
        concat!("select ", key_columns!(), "from api_key ")
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

/// The five catalogues in one statement (one round trip instead of five): every table's rows
/// with the columns its own row reader takes, the others null, told apart by `kind` and each in
/// id order.
/// The catalogue counter (migration 0013) as a column: `<number>:<stamp>`.
macro_rules! catalog_version_column {
    () => {
        "(select version || ':' || stamp from catalog_version) as catalog_version"
    };
}

/// The five catalogues and the counter they were read at, on every row.
const CATALOG_SELECT: &str = concat!(
    "select c.*, ",
    catalog_version_column!(),
    " from (\
    select 'department' as kind, department_id as id, null::bigint as status_id, \
        null::bigint as priority_id, department_id, null::bigint as topic_id, \
        null::bigint as staff_id, name, null::text as state, null::boolean as allow_reopen, \
        is_default, null::integer as urgency, null::boolean as active, created_at, \
        null::text as username, null::text as email from department \
    union all select 'priority', priority_id, null, priority_id, null, null, null, name, null, \
        null, is_default, urgency, null, null, null, null from priority \
    union all select 'staff', staff_id, null, null, department_id, null, staff_id, name, null, \
        null, null, null, active, created_at, username, email from staff \
    union all select 'status', status_id, status_id, null, null, null, null, name, state, \
        allow_reopen, is_default, null, null, null, null, null from ticket_status \
    union all select 'topic', topic_id, null, priority_id, department_id, topic_id, null, name, \
        null, null, null, null, active, created_at, null, null from help_topic) c \
    order by kind, id"
);

macro_rules! event_select {
    () => {
        "select event_id, ticket_id, kind, actor_user_id, actor_staff_id, api_key_id, data, \
         created_at from event "
    };
}

fn ticket_row(row: &PgRow) -> Result<Ticket, StoreError> {
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
        due_at: row.try_get("due_at").map_err(db)?,
        created_at: row.try_get("created_at").map_err(db)?,
        updated_at: row.try_get("updated_at").map_err(db)?,
        last_message_at: row.try_get("last_message_at").map_err(db)?,
        last_response_at: row.try_get("last_response_at").map_err(db)?,
        closed_at: row.try_get("closed_at").map_err(db)?,
        reopened_at: row.try_get("reopened_at").map_err(db)?,
    })
}

fn entry_row(row: &PgRow) -> Result<ThreadEntry, StoreError> {
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
        created_at: row.try_get("created_at").map_err(db)?,
        attachments: Vec::new(),
    })
}

fn inbound_row(row: &PgRow) -> Result<InboundRecord, StoreError> {
    let attempts: i32 = row.try_get("attempts").map_err(db)?;
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
        attempts: i64::from(attempts),
        received_at: row.try_get("received_at").map_err(db)?,
        processed_at: row.try_get("processed_at").map_err(db)?,
    })
}

/// A mailbox row back. The address is rebuilt from its columns (never re-parsed from a URL, so a
/// password or folder holding URL syntax comes back as stored).
fn mailbox_row(row: &PgRow) -> Result<Mailbox, StoreError> {
    let protocol: String = row.try_get("protocol").map_err(db)?;
    let port: i32 = row.try_get("port").map_err(db)?;
    let after_fetch: String = row.try_get("after_fetch").map_err(db)?;
    let poll_seconds: i32 = row.try_get("poll_seconds").map_err(db)?;
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
        created_at: row.try_get("created_at").map_err(db)?,
        last_fetch_at: row.try_get("last_fetch_at").map_err(db)?,
        last_error: row.try_get("last_error").map_err(db)?,
    })
}

fn attachment_row(row: &PgRow) -> Result<Attachment, StoreError> {
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

fn key_row(row: &PgRow) -> Result<ApiKey, StoreError> {
    let ip_rules: String = row.try_get("ip_rules").map_err(db)?;
    let scopes: String = row.try_get("scopes").map_err(db)?;
    Ok(ApiKey {
        id: ApiKeyId(row.try_get("api_key_id").map_err(db)?),
        prefix: row.try_get("prefix").map_err(db)?,
        ip_rules: ip_rules_from_text(&ip_rules).map_err(StoreError::Corrupt)?,
        scopes: scopes_from_text(&scopes).map_err(StoreError::Corrupt)?,
        note: row.try_get("note").map_err(db)?,
        created_at: row.try_get("created_at").map_err(db)?,
        revoked_at: row.try_get("revoked_at").map_err(db)?,
    })
}

fn topic_row(row: &PgRow) -> Result<HelpTopic, StoreError> {
    Ok(HelpTopic {
        id: TopicId(row.try_get("topic_id").map_err(db)?),
        name: row.try_get("name").map_err(db)?,
        department_id: DepartmentId(row.try_get("department_id").map_err(db)?),
        priority_id: row
            .try_get::<Option<i64>, _>("priority_id")
            .map_err(db)?
            .map(PriorityId),
        active: row.try_get("active").map_err(db)?,
        created_at: row.try_get("created_at").map_err(db)?,
    })
}

fn staff_row(row: &PgRow) -> Result<Staff, StoreError> {
    let email: String = row.try_get("email").map_err(db)?;
    Ok(Staff {
        id: StaffId(row.try_get("staff_id").map_err(db)?),
        username: row.try_get("username").map_err(db)?,
        name: row.try_get("name").map_err(db)?,
        email: EmailAddress::parse(&email).map_err(StoreError::Corrupt)?,
        department_id: DepartmentId(row.try_get("department_id").map_err(db)?),
        active: row.try_get("active").map_err(db)?,
        created_at: row.try_get("created_at").map_err(db)?,
    })
}

fn department_row(row: &PgRow) -> Result<Department, StoreError> {
    Ok(Department {
        id: DepartmentId(row.try_get("department_id").map_err(db)?),
        name: row.try_get("name").map_err(db)?,
        is_default: row.try_get("is_default").map_err(db)?,
        created_at: row.try_get("created_at").map_err(db)?,
    })
}

fn status_row(row: &PgRow) -> Result<TicketStatus, StoreError> {
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

fn priority_row(row: &PgRow) -> Result<Priority, StoreError> {
    Ok(Priority {
        id: PriorityId(row.try_get("priority_id").map_err(db)?),
        name: row.try_get("name").map_err(db)?,
        urgency: row.try_get("urgency").map_err(db)?,
        is_default: row.try_get("is_default").map_err(db)?,
    })
}

fn event_row(row: &PgRow) -> Result<Event, StoreError> {
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
        created_at: row.try_get("created_at").map_err(db)?,
    })
}

/// Groups `(user row, address)` join rows into users with all their addresses. A customer
/// without an address (an imported one can be) comes as one row with a null address.
fn users_from_rows(rows: &[PgRow]) -> Result<Vec<User>, StoreError> {
    let mut users: Vec<User> = Vec::new();
    for row in rows {
        let id = UserId(row.try_get("user_id").map_err(db)?);
        let address: Option<String> = row.try_get("address").map_err(db)?;
        let email = address
            .map(|address| EmailAddress::parse(&address).map_err(StoreError::Corrupt))
            .transpose()?;
        match users.last_mut() {
            Some(user) if user.id == id => user.emails.extend(email),
            _ => users.push(user_row(
                row,
                &USER_COLUMNS,
                id,
                email.into_iter().collect(),
            )?),
        }
    }
    Ok(users)
}

/// The customer in a row of `ticket_with_customer`: its `customer_*` columns, `None` when the
/// join found no customer.
fn customer_row(row: &PgRow) -> Result<Option<User>, StoreError> {
    let Some(id) = row.try_get::<Option<i64>, _>("customer_id").map_err(db)? else {
        return Ok(None);
    };
    let addresses: Vec<String> = row.try_get("customer_addresses").map_err(db)?;
    let emails = addresses
        .iter()
        .map(|address| EmailAddress::parse(address).map_err(StoreError::Corrupt))
        .collect::<Result<_, _>>()?;
    user_row(row, &CUSTOMER_COLUMNS, UserId(id), emails).map(Some)
}

/// The names a statement gives a customer's columns.
struct UserColumns {
    name: &'static str,
    phone: &'static str,
    notes: &'static str,
    organization_id: &'static str,
    created_at: &'static str,
    updated_at: &'static str,
}

/// As [`user_select`] names them.
const USER_COLUMNS: UserColumns = UserColumns {
    name: "name",
    phone: "phone",
    notes: "notes",
    organization_id: "organization_id",
    created_at: "created_at",
    updated_at: "updated_at",
};

/// As `ticket_with_customer` names them, beside the ticket's own.
const CUSTOMER_COLUMNS: UserColumns = UserColumns {
    name: "customer_name",
    phone: "customer_phone",
    notes: "customer_notes",
    organization_id: "customer_organization_id",
    created_at: "customer_created_at",
    updated_at: "customer_updated_at",
};

/// A customer from `row`'s `columns`, with the id and addresses read already.
fn user_row(
    row: &PgRow,
    columns: &UserColumns,
    id: UserId,
    emails: Vec<EmailAddress>,
) -> Result<User, StoreError> {
    Ok(User {
        id,
        name: row.try_get(columns.name).map_err(db)?,
        emails,
        phone: row.try_get(columns.phone).map_err(db)?,
        notes: row.try_get(columns.notes).map_err(db)?,
        organization_id: row
            .try_get::<Option<i64>, _>(columns.organization_id)
            .map_err(db)?
            .map(OrganizationId),
        created_at: row.try_get(columns.created_at).map_err(db)?,
        updated_at: row.try_get(columns.updated_at).map_err(db)?,
    })
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

fn organization_row(row: &PgRow) -> Result<Organization, StoreError> {
    Ok(Organization {
        id: OrganizationId(row.try_get("organization_id").map_err(db)?),
        name: row.try_get("name").map_err(db)?,
        domain: row.try_get("domain").map_err(db)?,
        created_at: row.try_get("created_at").map_err(db)?,
        updated_at: row.try_get("updated_at").map_err(db)?,
    })
}

fn sla_row(row: &PgRow) -> Result<Sla, StoreError> {
    Ok(Sla {
        id: SlaId(row.try_get("sla_id").map_err(db)?),
        name: row.try_get("name").map_err(db)?,
        grace_hours: row.try_get("grace_hours").map_err(db)?,
        created_at: row.try_get("created_at").map_err(db)?,
    })
}

fn map_rows<T>(
    rows: &[PgRow],
    convert: fn(&PgRow) -> Result<T, StoreError>,
) -> Result<Vec<T>, StoreError> {
    rows.iter().map(convert).collect()
}

fn map_optional<T>(
    row: Option<PgRow>,
    convert: fn(&PgRow) -> Result<T, StoreError>,
) -> Result<Option<T>, StoreError> {
    row.as_ref().map(convert).transpose()
}

/// A file's size as stored.
fn content_size(content: &[u8]) -> i64 {
    i64::try_from(content.len()).unwrap_or(i64::MAX)
}

impl<C: DerefMut<Target = PgConnection> + CatalogCopy + Send> Conn<C> {
    /// The id of the content row for `file`, inserted unless equal content is already stored.
    async fn store_file(
        &mut self,
        sha256: &str,
        file: &NewAttachment,
        now: OffsetDateTime,
    ) -> Result<i64, StoreError> {
        // Look first, so content already stored is not sent to the server again.
        if let Some(id) = self.file_id(sha256).await? {
            return Ok(id);
        }
        // A concurrent transaction may insert the same content between the lookup and here;
        // `on conflict` waits for it and then inserts nothing instead of failing, and the second
        // lookup below sees its committed row.
        let inserted = query(
            "insert into file (sha256, size, content, created_at) values ($1, $2, $3, $4) \
             on conflict (sha256) do nothing returning file_id",
        )
        .bind(sha256)
        .bind(content_size(&file.content))
        .bind(&file.content)
        .bind(now)
        .fetch_optional(self.conn())
        .await
        .map_err(db)?;
        match inserted {
            Some(row) => row.try_get(0).map_err(db),
            None => self.file_id(sha256).await?.ok_or_else(|| {
                StoreError::Other(
                    format!("file {sha256} was stored concurrently but cannot be read back").into(),
                )
            }),
        }
    }

    /// The content row with this hash, if any.
    async fn file_id(&mut self, sha256: &str) -> Result<Option<i64>, StoreError> {
        query("select file_id from file where sha256 = $1")
            .bind(sha256)
            .fetch_optional(self.conn())
            .await
            .map_err(db)?
            .map(|row| row.try_get(0))
            .transpose()
            .map_err(db)
    }
}

fn required<T>(what: &str, value: Option<T>) -> Result<T, StoreError> {
    value.ok_or_else(|| StoreError::Corrupt(format!("no {what} is configured")))
}

/// A search for `text`, newest first: exactly the page one statement over every ticket gives,
/// at a cost that follows how far back the page reaches or how many entries hold the words,
/// whichever is less.
///
/// Gathering the matching entries first (the GIN index, then each entry's row for its ticket)
/// costs what the words' entries number: little for a rare word, seconds for a common one (8 s
/// at a million tickets for a word in one entry in six). Walking the tickets newest first and
/// probing each one's entries stops as soon as the page is full: instant for a common word, a
/// scan of the whole table for a rare one. Between the two — words each common but seldom in
/// one entry together, thousands of entries — gathering visits every one of those rows to keep
/// 25, and probing walks thousands of tickets; there the index is asked for the matching
/// entries of the newest blocks of ticket ids only (each entry's search vector names its
/// ticket's block, migration 0011), so that only those rows are visited. The planner's
/// estimate of the matching entries picks the [`SearchPlan`]; a misjudged estimate costs one
/// such first step at most, as the older tickets are then gathered in a second. The two steps
/// split the tickets at `lo` (each is in exactly one) and read one snapshot, so the page is the
/// one-statement page.
async fn search(
    conn: &mut PgConnection,
    filter: &TicketQuery,
    text: &str,
) -> Result<Vec<Ticket>, StoreError> {
    let top = match filter.before {
        Some(before) => before.0,
        None => query("select coalesce(max(ticket_id), 0) + 1 from ticket")
            .fetch_one(&mut *conn)
            .await
            .map_err(db)?
            .try_get(0)
            .map_err(db)?,
    };
    let page = usize::try_from(filter.limit).unwrap_or(usize::MAX);
    // Below the first window of newest tickets, gathering everything at once is the plan
    // whatever the words: no estimate is asked for.
    let plan = if top <= 1 + RECENT_TICKETS {
        SearchPlan::GatherAll
    } else {
        SearchPlan::choose(top, estimated_matches(conn, text).await?, page)
    };
    search_with(conn, filter, text, plan).await
}

/// [`search`] by the given plan.
async fn search_with(
    conn: &mut PgConnection,
    filter: &TicketQuery,
    text: &str,
    plan: SearchPlan,
) -> Result<Vec<Ticket>, StoreError> {
    let (first, lo) = match plan {
        SearchPlan::GatherAll => {
            let rows = ticket_statement(filter, Some((text, Span::All)), filter.limit)
                .build()
                .fetch_all(&mut *conn)
                .await
                .map_err(db)?;
            return map_rows(&rows, ticket_row);
        }
        SearchPlan::ProbeFrom(lo) => (Span::From(lo), lo),
        SearchPlan::BlocksFrom { lo, top } => (Span::Blocks { lo, top }, lo),
    };
    // Unnamed statements: planned for the actual words.
    let rows = ticket_statement(filter, Some((text, first)), filter.limit)
        .build()
        .persistent(false)
        .fetch_all(&mut *conn)
        .await
        .map_err(db)?;
    let mut found = map_rows(&rows, ticket_row)?;
    let missing = usize::try_from(filter.limit)
        .unwrap_or(usize::MAX)
        .saturating_sub(found.len());
    if missing > 0 {
        let rest = u32::try_from(missing).unwrap_or(u32::MAX);
        let rows = ticket_statement(filter, Some((text, Span::Below(lo))), rest)
            .build()
            .fetch_all(&mut *conn)
            .await
            .map_err(db)?;
        found.extend(map_rows(&rows, ticket_row)?);
    }
    Ok(found)
}

/// How a search finds its page.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum SearchPlan {
    /// Every matching entry gathered at once: the words are rare.
    GatherAll,
    /// The tickets from this id on probed newest first, then the older ones gathered if the
    /// page is not full: the words are common.
    ProbeFrom(i64),
    /// The matching entries of the blocks from `lo` (a block's first id) to the one holding
    /// `top - 1` gathered through the index, then the older ones if the page is not full.
    BlocksFrom { lo: i64, top: i64 },
}

impl SearchPlan {
    /// The plan for a search below ticket id `top` whose words the planner expects in
    /// `estimate` entries (`None`: no estimate could be read), for a page of `page` tickets.
    fn choose(top: i64, estimate: Option<f64>, page: usize) -> Self {
        let page = page as f64;
        let recent_lo = top.saturating_sub(RECENT_TICKETS);
        let Some(entries) = estimate else {
            return if recent_lo > 1 {
                Self::ProbeFrom(recent_lo)
            } else {
                Self::GatherAll
            };
        };
        // Entries expected among `tickets` tickets, if the words are spread evenly.
        let expected = |tickets: i64| entries * tickets as f64 / top.max(1) as f64;
        if recent_lo > 1 && expected(RECENT_TICKETS) >= page {
            return Self::ProbeFrom(recent_lo);
        }
        if entries <= GATHER_AT_MOST {
            return Self::GatherAll;
        }
        // The newest tickets expected to hold two pages of matches, from the start of the
        // block they begin in.
        let per_ticket = expected(1).max(f64::MIN_POSITIVE);
        let needed = (2.0 * page / per_ticket).ceil().min(i64::MAX as f64) as i64;
        let lo = top.saturating_sub(needed).max(0) / SEARCH_BLOCK * SEARCH_BLOCK;
        let blocks = (top - 1).max(lo) / SEARCH_BLOCK - lo / SEARCH_BLOCK + 1;
        if lo == 0 || blocks > MAX_SEARCH_BLOCKS {
            return Self::GatherAll;
        }
        Self::BlocksFrom { lo, top }
    }
}

/// How many consecutive ticket ids share a block lexeme (`#b<ticket_id / SEARCH_BLOCK>`) in the
/// entries' search vectors: as in migration 0011, which computes the lexemes.
const SEARCH_BLOCK: i64 = 10_000;

/// The most blocks a search asks the index for at once.
const MAX_SEARCH_BLOCKS: i64 = 16;

/// Up to how many matching entries (as the planner expects) a search gathers them all at once.
const GATHER_AT_MOST: f64 = 1_000.0;

/// The tsquery naming the blocks from `lo` to the one holding `top - 1` (`'#b3' | '#b4'`).
fn blocks_query(lo: i64, top: i64) -> String {
    (lo / SEARCH_BLOCK..=(top - 1).max(lo) / SEARCH_BLOCK)
        .map(|block| format!("'#b{block}'"))
        .collect::<Vec<_>>()
        .join(" | ")
}

/// The planner's estimate of how many entries hold every word of `text` (from the lexeme
/// statistics ANALYZE keeps), read off the first line of the plan, `… (cost=… rows=N width=…)`;
/// `None` when that line does not read as expected.
async fn estimated_matches(conn: &mut PgConnection, text: &str) -> Result<Option<f64>, StoreError> {
    let row = query(
        "explain select 1 from thread_entry e \
         where e.search_vector @@ plainto_tsquery('simple', $1)",
    )
    .bind(text)
    .persistent(false)
    .fetch_one(&mut *conn)
    .await
    .map_err(db)?;
    let plan: String = row.try_get(0).map_err(db)?;
    Ok(plan
        .split(" rows=")
        .nth(1)
        .and_then(|rest| rest.split(|c: char| !c.is_ascii_digit()).next())
        .and_then(|rows| rows.parse().ok()))
}

/// How many of the newest tickets (below the cursor) a search probes first, in ticket ids.
#[cfg(not(test))]
const RECENT_TICKETS: i64 = 1000;
/// Small in unit tests, so that a handful of tickets spans both steps of a search.
#[cfg(test)]
const RECENT_TICKETS: i64 = 3;

/// Which tickets a search statement looks at, and how.
#[derive(Debug, Clone, Copy)]
enum Span {
    /// Every ticket: the matching entries are gathered first.
    All,
    /// Tickets from this id on: each one's entries are probed (or gathered, as planned).
    From(i64),
    /// Tickets below this id: the matching entries are gathered first.
    Below(i64),
    /// Tickets from `lo` (a block's first id) on: the matching entries of the blocks from
    /// `lo`'s to `top - 1`'s are gathered first, through the index.
    Blocks { lo: i64, top: i64 },
}

/// The listing statement: `filter`'s conditions, the search `text` over the tickets of a
/// [`Span`], newest first, at most `limit` rows. Every value goes in as a bind parameter; only
/// fixed SQL fragments are pushed.
fn ticket_statement(
    filter: &TicketQuery,
    text: Option<(&str, Span)>,
    limit: u32,
) -> QueryBuilder<Postgres> {
    let mut sql = QueryBuilder::<Postgres>::new(concat!(ticket_select!(), "where true"));
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
        sql.push(" and updated_at >= ").push_bind(since);
    }
    // plainto_tsquery reads the text as plain words, all required, and ignores any operator
    // characters in it; a ticket matches when one of its entries holds every word (its first
    // entry's title is the subject).
    match text {
        None => {}
        Some((text, Span::From(lo))) => {
            sql.push(" and ticket_id >= ")
                .push_bind(lo)
                .push(
                    " and exists (select 1 from thread_entry e \
                     where e.ticket_id = ticket.ticket_id \
                     and e.search_vector @@ plainto_tsquery('simple', ",
                )
                .push_bind(text.to_owned())
                .push("))");
        }
        Some((text, Span::Blocks { lo, top })) => {
            // Both conditions: the words alone keep a text without words matching nothing (its
            // empty query joined to the blocks would match the blocks' every entry); the
            // index reads them in one scan.
            sql.push(" and ticket_id >= ")
                .push_bind(lo)
                .push(
                    " and ticket_id = any(array(select e.ticket_id from thread_entry e \
                     where e.search_vector @@ plainto_tsquery('simple', ",
                )
                .push_bind(text.to_owned())
                .push(") and e.search_vector @@ (plainto_tsquery('simple', ")
                .push_bind(text.to_owned())
                .push(") && ")
                .push_bind(blocks_query(lo, top))
                .push("::tsquery) and e.ticket_id >= ")
                .push_bind(lo)
                .push("))");
        }
        Some((text, span @ (Span::All | Span::Below(_)))) => {
            // The matching ticket ids are gathered first (the GIN index), then looked up.
            // Written as `in (subquery)`, the planner could still choose to walk the tickets
            // newest first, probing each: over every ticket, for a rare word.
            if let Span::Below(lo) = span {
                sql.push(" and ticket_id < ").push_bind(lo);
            }
            sql.push(
                " and ticket_id = any(array(select e.ticket_id from thread_entry e \
                 where e.search_vector @@ plainto_tsquery('simple', ",
            )
            .push_bind(text.to_owned())
            .push(")");
            if let Span::Below(lo) = span {
                sql.push(" and e.ticket_id < ").push_bind(lo);
            }
            sql.push("))");
        }
    }
    if let Some(before) = filter.before {
        sql.push(" and ticket_id < ").push_bind(before.0);
    }
    sql.push(" order by ticket_id desc limit ")
        .push_bind(i64::from(limit));
    sql
}

/// The stored states a listing's `state` filter admits: closed includes archived.
fn states_matching(state: StatusState) -> &'static [StatusState] {
    match state {
        StatusState::Open => &[StatusState::Open],
        StatusState::Closed => &[StatusState::Closed, StatusState::Archived],
        StatusState::Archived => &[StatusState::Archived],
    }
}

/// How often a claim starts over when the record it found vanished (a concurrent purge) before
/// it could be read. One retry always suffices unless purges keep racing the same key.
const CLAIM_ATTEMPTS: usize = 3;

/// How many Message-IDs one statement looks up at most: a References header can list any number,
/// and a statement takes a bounded number of bind parameters.
const MESSAGE_ID_BATCH: usize = 500;

/// An idempotency record read back.
fn idempotency_row(row: &PgRow) -> Result<IdempotencyRecord, StoreError> {
    let status: i32 = row.try_get("status").map_err(db)?;
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
impl<C: DerefMut<Target = PgConnection> + CatalogCopy + Send> Reader for Conn<C> {
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
        // PostgreSQL text cannot hold NUL, so no stored id contains one, and binding such an id
        // would fail the statement: leave those out.
        let message_ids: Vec<&str> = message_ids
            .iter()
            .map(String::as_str)
            .filter(|id| !id.contains('\0'))
            .collect();
        let mut newest: Option<(TicketId, EntryId)> = None;
        for batch in message_ids.chunks(MESSAGE_ID_BATCH) {
            // Exact comparison: `in` compares text by the database collation, which is
            // deterministic (case and accents matter).
            let mut sql = QueryBuilder::<Postgres>::new(
                "select ticket_id, entry_id from thread_entry where mail_message_id in (",
            );
            let mut ids = sql.separated(", ");
            for id in batch {
                ids.push_bind(*id);
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

    async fn ticket_with_customer(
        &mut self,
        number: &TicketNumber,
    ) -> Result<Option<(Ticket, Option<User>)>, StoreError> {
        let row = query(concat!(
            "select t.*, c.user_id as customer_id, c.name as customer_name, \
             c.phone as customer_phone, c.notes as customer_notes, \
             c.organization_id as customer_organization_id, \
             c.created_at as customer_created_at, c.updated_at as customer_updated_at, \
             array(select e.address from user_email e where e.user_id = t.user_id \
                   order by e.user_email_id) as customer_addresses, \
             ",
            catalog_version_column!(),
            " from (",
            ticket_select!(),
            "where number = $1) t left join users c on c.user_id = t.user_id"
        ))
        .bind(number.as_str())
        .fetch_optional(self.conn())
        .await
        .map_err(db)?;
        let Some(row) = row else {
            return Ok(None);
        };
        if let Some((_, seen)) = self.0.catalog_copy() {
            *seen = Some(row.try_get("catalog_version").map_err(db)?);
        }
        Ok(Some((ticket_row(&row)?, customer_row(&row)?)))
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
        // Control characters separate words, as they do for the parser anyway; NUL must go
        // before binding, since PostgreSQL text cannot hold it. Blank text is no filter
        // (plainto_tsquery would make it match nothing).
        let text = filter
            .text
            .as_deref()
            .map(|text| text.replace(|c: char| c.is_control(), " "))
            .filter(|text| !text.trim().is_empty());
        let Some(text) = text else {
            let rows = ticket_statement(filter, None, filter.limit)
                .build()
                .fetch_all(self.conn())
                .await
                .map_err(db)?;
            return map_rows(&rows, ticket_row);
        };
        let conn = self.conn();
        if conn.is_in_transaction() {
            return search(conn, filter, &text).await;
        }
        // A search runs several statements: in one repeatable-read transaction they all read the
        // same snapshot. Just-in-time compilation is off inside it: the planner's cost for a
        // step that usually never runs (the older tickets of a common word) exceeds
        // `jit_above_cost`, and compiling the statement then took 0.4 s to save nothing.
        // Both statements go as one simple query: one round trip.
        let mut tx = conn
            .begin_with("begin isolation level repeatable read, read only; set local jit = off")
            .await
            .map_err(db)?;
        let found = search(&mut tx, filter, &text).await?;
        tx.commit().await.map_err(db)?;
        Ok(found)
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
                    created_at: row.try_get("created_at").map_err(db)?,
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

    async fn users_by_ids(&mut self, ids: &[UserId]) -> Result<Vec<User>, StoreError> {
        let ids: Vec<i64> = ids.iter().map(|id| id.0).collect();
        let rows = query(concat!(
            user_select!(),
            "where u.user_id = any($1) order by u.user_id, e.user_email_id"
        ))
        .bind(ids)
        .fetch_all(self.conn())
        .await
        .map_err(db)?;
        users_from_rows(&rows)
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

    async fn catalog(&mut self) -> Result<CatalogLists, StoreError> {
        if let Some((cache, seen)) = self.0.catalog_copy()
            && let Some(seen) = seen.take()
            && let Some(lists) = cache.at(&seen)
        {
            return Ok(lists);
        }
        let rows = query(CATALOG_SELECT)
            .fetch_all(self.conn())
            .await
            .map_err(db)?;
        let mut lists = CatalogLists::default();
        for row in &rows {
            let kind: &str = row.try_get("kind").map_err(db)?;
            match kind {
                "department" => lists.departments.push(department_row(row)?),
                "priority" => lists.priorities.push(priority_row(row)?),
                "staff" => lists.staff.push(staff_row(row)?),
                "status" => lists.statuses.push(status_row(row)?),
                "topic" => lists.topics.push(topic_row(row)?),
                other => {
                    return Err(StoreError::Corrupt(format!(
                        "the catalogue statement returned a row of kind {other:?}"
                    )));
                }
            }
        }
        let version = rows
            .first()
            .map(|row| row.try_get::<String, _>("catalog_version"))
            .transpose()
            .map_err(db)?;
        if let (Some((cache, _)), Some(version)) = (self.0.catalog_copy(), version) {
            cache.keep(&version, &lists);
        }
        Ok(lists)
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
            "where is_default order by department_id limit 1"
        ))
        .fetch_optional(self.conn())
        .await
        .map_err(db)?;
        required("default department", map_optional(row, department_row)?)
    }

    async fn default_status(&mut self) -> Result<TicketStatus, StoreError> {
        let row = query(concat!(
            status_select!(),
            "where is_default and state = 'open' order by status_id limit 1"
        ))
        .fetch_optional(self.conn())
        .await
        .map_err(db)?;
        required("default open status", map_optional(row, status_row)?)
    }

    async fn default_priority(&mut self) -> Result<Priority, StoreError> {
        let row = query(concat!(
            priority_select!(),
            "where is_default order by priority_id limit 1"
        ))
        .fetch_optional(self.conn())
        .await
        .map_err(db)?;
        required("default priority", map_optional(row, priority_row)?)
    }

    async fn new_ticket_defaults(&mut self) -> Result<NewTicketDefaults, StoreError> {
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
impl<C: DerefMut<Target = PgConnection> + CatalogCopy + Send> Writer for Conn<C> {
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

    async fn finish_jobs(
        &mut self,
        finished: &[(JobId, u32, JobResult)],
        now: OffsetDateTime,
    ) -> Result<Vec<bool>, StoreError> {
        crate::outbox::finish_jobs(self.conn(), finished, now).await
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
        // The common case, an address already stored, costs one read and writes nothing.
        if let Some(user) = self.user_by_email(&contact.email).await? {
            return Ok((user, false));
        }
        let name = contact.name_or_local_part();
        let user_id: i64 = query(
            "insert into users (name, phone, notes, created_at, updated_at) \
             values ($1, $2, $3, $4, $4) returning user_id",
        )
        .bind(&name)
        .bind(&contact.phone)
        .bind(&contact.notes)
        .bind(now)
        .fetch_one(self.conn())
        .await
        .map_err(db)?
        .try_get(0)
        .map_err(db)?;
        // Another transaction may be creating the same address right now. The unique
        // `address_key` decides who wins: this insert waits for a concurrent one to commit or roll
        // back, and inserts nothing if the address is then taken — without the unique violation
        // that would abort the caller's whole transaction.
        let claimed = query(
            "insert into user_email (user_id, address, address_key, created_at) \
             values ($1, $2, $3, $4) on conflict (address_key) do nothing \
             returning user_email_id",
        )
        .bind(user_id)
        .bind(contact.email.as_str())
        .bind(contact.email.key())
        .bind(now)
        .fetch_optional(self.conn())
        .await
        .map_err(db)?;
        if claimed.is_none() {
            // Lost the race: drop the customer row made for nothing and return the winner's.
            // Under READ COMMITTED this new statement sees the row the winner committed.
            query("delete from users where user_id = $1")
                .bind(user_id)
                .execute(self.conn())
                .await
                .map_err(db)?;
            let existing = self.user_by_email(&contact.email).await?;
            return existing.map(|user| (user, false)).ok_or_else(|| {
                StoreError::Other(
                    format!(
                        "the address {} was taken by another customer who cannot be read back",
                        contact.email.as_str()
                    )
                    .into(),
                )
            });
        }
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
        // `for update` makes a concurrent lock of the same ticket wait until this transaction
        // ends, and then read the row as this one committed it, so changes apply one after
        // another instead of overwriting each other.
        let row = query(concat!(ticket_select!(), "where number = $1 for update"))
            .bind(number.as_str())
            .fetch_optional(self.conn())
            .await
            .map_err(db)?;
        map_optional(row, ticket_row)
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
        .bind(ticket.due_at)
        .bind(ticket.updated_at)
        .bind(ticket.last_message_at)
        .bind(ticket.last_response_at)
        .bind(ticket.closed_at)
        .bind(ticket.reopened_at)
        .execute(self.conn())
        .await
        .map_err(db)?
        .rows_affected();
        // Callers update a ticket they just locked in this transaction; losing the write
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
        for _ in 0..CLAIM_ATTEMPTS {
            // The primary key decides between concurrent claims. While another transaction
            // holds an uncommitted claim of this key (or is replacing or purging its record),
            // this insert waits for it to end; then it inserts when the key is free and does
            // nothing when it is taken. It never raises a unique violation, which would abort
            // the caller's whole transaction.
            let inserted = query(
                "insert into idempotency_key (api_key_id, key, request_hash, status, body, \
                 created_at) values ($1, $2, $3, 0, '', $4) \
                 on conflict (api_key_id, key) do nothing",
            )
            .bind(key.api_key_id.0)
            .bind(&key.key)
            .bind(&key.request_hash)
            .bind(now)
            .execute(self.conn())
            .await
            .map_err(db)?
            .rows_affected();
            if inserted == 1 {
                return Ok(None);
            }
            // A record past retention may linger until the next purge; it no longer counts.
            // Two claims replacing it at once: the second waits on the row lock, then finds the
            // first's fresh record no longer expired and updates nothing.
            let replaced = query(
                "update idempotency_key set request_hash = $3, status = 0, body = '', \
                 created_at = $4 where api_key_id = $1 and key = $2 and created_at < $5",
            )
            .bind(key.api_key_id.0)
            .bind(&key.key)
            .bind(&key.request_hash)
            .bind(now)
            .bind(expired_before)
            .execute(self.conn())
            .await
            .map_err(db)?
            .rows_affected();
            if replaced == 1 {
                return Ok(None);
            }
            // READ COMMITTED: this statement sees the record its owner committed, answer
            // included (claim and answer commit together).
            let row = query(
                "select request_hash, status, body from idempotency_key \
                 where api_key_id = $1 and key = $2",
            )
            .bind(key.api_key_id.0)
            .bind(&key.key)
            .fetch_optional(self.conn())
            .await
            .map_err(db)?;
            if let Some(row) = row {
                return idempotency_row(&row).map(Some);
            }
            // A purge deleted the expired record between the statements above: claim again.
        }
        Err(StoreError::Other(
            format!(
                "idempotency key '{}' could not be claimed: its record kept vanishing",
                key.key
            )
            .into(),
        ))
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
        .bind(i32::from(response.status))
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
            .bind(before)
            .execute(self.conn())
            .await
            .map_err(db)?
            .rows_affected())
    }

    async fn insert_ticket(&mut self, draft: &TicketDraft) -> Result<Option<Ticket>, StoreError> {
        let row = query(
            "insert into ticket (number, subject, user_id, department_id, topic_id, status_id, \
             priority_id, source, ip, is_answered, created_at, updated_at, last_message_at) \
             values ($1, $2, $3, $4, $5, $6, $7, $8, $9, false, $10, $10, $10) \
             on conflict (number) do nothing returning ticket_id",
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
        .bind(draft.created_at)
        .fetch_optional(self.conn())
        .await
        .map_err(db)?;
        let Some(row) = row else {
            return Ok(None);
        };
        Ok(Some(Ticket {
            id: TicketId(row.try_get(0).map_err(db)?),
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
             on conflict (name) do update set next_value = counter.next_value + 1 \
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
             values ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16) \
             returning entry_id",
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
        .bind(now)
        .fetch_one(self.conn())
        .await
        .map_err(db)?
        .try_get(0)
        .map_err(db)?;

        // Content rows are claimed in hash order, not attachment order: two transactions storing
        // the same files then wait for each other in one direction only and cannot deadlock.
        let hashes: Vec<String> = entry.attachments.iter().map(|f| f.sha256()).collect();
        let mut by_hash: Vec<usize> = (0..hashes.len()).collect();
        by_hash.sort_by(|&a, &b| hashes[a].cmp(&hashes[b]));
        let mut file_ids = vec![0_i64; hashes.len()];
        for i in by_hash {
            file_ids[i] = self
                .store_file(&hashes[i], &entry.attachments[i], now)
                .await?;
        }

        let mut attachments = Vec::with_capacity(entry.attachments.len());
        for ((file, sha256), file_id) in entry.attachments.iter().zip(hashes).zip(file_ids) {
            let size = content_size(&file.content);
            let attachment_id: i64 = query(
                "insert into attachment (entry_id, file_id, filename, content_type, content_id) \
                 values ($1, $2, $3, $4, $5) returning attachment_id",
            )
            .bind(entry_id)
            .bind(file_id)
            .bind(&file.filename)
            .bind(&file.content_type)
            .bind(&file.content_id)
            .fetch_one(self.conn())
            .await
            .map_err(db)?
            .try_get(0)
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
        .bind(now)
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
             created_at) values ($1, $2, $3, $4, $5, $6, $7) returning event_id",
        )
        .bind(event.ticket_id.map(|id| id.0))
        .bind(event.kind.as_str())
        .bind(event.actor.user_id.map(|id| id.0))
        .bind(event.actor.staff_id.map(|id| id.0))
        .bind(event.actor.api_key_id.map(|id| id.0))
        .bind(&event.data)
        .bind(now)
        .fetch_one(self.conn())
        .await
        .map_err(db)?
        .try_get(0)
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
             values ($1, $2, $3, $4, $5, $6) returning api_key_id",
        )
        .bind(key.secret.hash())
        .bind(key.secret.prefix())
        .bind(ip_rules_to_text(&key.ip_rules))
        .bind(scopes_to_text(&key.scopes))
        .bind(&key.note)
        .bind(now)
        .fetch_one(self.conn())
        .await
        .map_err(db)?
        .try_get(0)
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
        // `coalesce` keeps the first revocation time when a key is revoked again.
        let row = query(concat!(
            "update api_key set revoked_at = coalesce(revoked_at, $2) where api_key_id = $1 \
             returning ",
            key_columns!()
        ))
        .bind(id.0)
        .bind(now)
        .fetch_optional(self.conn())
        .await
        .map_err(db)?;
        map_optional(row, key_row)
    }

    async fn insert_inbound(
        &mut self,
        message: &NewInbound,
        now: OffsetDateTime,
    ) -> Result<(InboundRecord, bool), StoreError> {
        // The conflict target names the partial unique index on (mailbox, uid). When another
        // transaction is storing the same message right now, this insert waits for it to end,
        // then inserts nothing (it committed) or inserts (it rolled back); it never raises the
        // unique violation that would abort the caller's transaction. A message without a uid
        // is not in the index and is always stored.
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
        .bind(content_size(&message.raw))
        .bind(now)
        .fetch_optional(self.conn())
        .await
        .map_err(db)?;
        if let Some(row) = inserted {
            return Ok((inbound_row(&row)?, true));
        }
        // READ COMMITTED: this new statement sees the row the other transaction committed.
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
        let clean: String = key.chars().filter(|c| *c != '\0').collect();
        query("select pg_advisory_xact_lock(hashtextextended($1, 0))")
            .bind(clean)
            .execute(self.conn())
            .await
            .map_err(db)?;
        Ok(())
    }

    async fn lock_inbound(&mut self, id: InboundId) -> Result<Option<InboundStatus>, StoreError> {
        let row = query("select status from inbound_mail where inbound_id = $1 for update")
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
        let row = query(
            "insert into inbound_mail (source, mailbox, source_uid, raw, size, received_at, \
             status, class, rule, message_id, ticket_id, entry_id, processed_at, attempts) \
             values ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $6, 1) \
             returning inbound_id",
        )
        .bind(&message.source)
        .bind(&message.mailbox)
        .bind(&message.source_uid)
        .bind(&message.raw)
        .bind(content_size(&message.raw))
        .bind(now)
        .bind(outcome.status.as_str())
        .bind(&outcome.class)
        .bind(&outcome.rule)
        .bind(&outcome.message_id)
        .bind(outcome.ticket_id.map(|id| id.0))
        .bind(outcome.entry_id.map(|id| id.0))
        .fetch_one(self.conn())
        .await
        .map_err(db)?;
        Ok(InboundId(row.try_get("inbound_id").map_err(db)?))
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
        .bind(now)
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
        // Nodes starting at once: the primary key makes a concurrent insert wait for the first
        // to commit and then insert nothing; the select below then reads the committed value.
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
             after_fetch, poll_seconds, created_at) values ($1, $2, $3, $4, $5, $6, $7, $8, $9) \
             returning mailbox_id",
        )
        .bind(address.protocol.as_str())
        .bind(&address.host)
        .bind(i32::from(address.port))
        .bind(&address.user)
        .bind(&address.password)
        .bind(&address.folder)
        .bind(mailbox.after_fetch.to_stored())
        .bind(poll_seconds)
        .bind(now)
        .fetch_one(self.conn())
        .await
        .map_err(db)?
        .try_get(0)
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
        // One statement decides, race-free under READ COMMITTED: a concurrent update of the same
        // row waits for this transaction to end, then re-checks the `where` clause against the
        // committed row, so of several nodes taking a free lease at once exactly one matches.
        let taken = query(
            "update mailbox set lease_holder = $2, lease_until = $4 \
             where mailbox_id = $1 \
             and (lease_until is null or lease_until < $3 or lease_holder = $2)",
        )
        .bind(id.0)
        .bind(holder)
        .bind(now)
        .bind(until)
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
                .bind(now)
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
        let id: i64 = query(
            "insert into department (name, is_default, created_at) values ($1, false, $2) \
             returning department_id",
        )
        .bind(&department.name)
        .bind(now)
        .fetch_one(self.conn())
        .await
        .map_err(db)?
        .try_get(0)
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
             values ($1, $2, $3, true, $4) returning topic_id",
        )
        .bind(&topic.name)
        .bind(topic.department_id.0)
        .bind(topic.priority_id.map(|p| p.0))
        .bind(now)
        .fetch_one(self.conn())
        .await
        .map_err(db)?
        .try_get(0)
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
             values ($1, $2, $3, $4) returning organization_id",
        )
        .bind(&organization.name)
        .bind(&organization.domain)
        .bind(organization.created_at)
        .bind(organization.updated_at)
        .fetch_one(self.conn())
        .await
        .map_err(db)?
        .try_get(0)
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
        let id: i64 = query(
            "insert into sla (name, grace_hours, created_at) values ($1, $2, $3) \
             returning sla_id",
        )
        .bind(&sla.name)
        .bind(sla.grace_hours)
        .bind(now)
        .fetch_one(self.conn())
        .await
        .map_err(db)?
        .try_get(0)
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
             values ($1, $2, $3, false) returning status_id",
        )
        .bind(&status.name)
        .bind(status.state.as_str())
        .bind(status.allow_reopen)
        .fetch_one(self.conn())
        .await
        .map_err(db)?
        .try_get(0)
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
        let id: i64 = query(
            "insert into priority (name, urgency, is_default) values ($1, $2, false) \
             returning priority_id",
        )
        .bind(&priority.name)
        .bind(priority.urgency)
        .fetch_one(self.conn())
        .await
        .map_err(db)?
        .try_get(0)
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
             values ($1, $2, $3, $4, $5, $6) returning user_id",
        )
        .bind(&user.name)
        .bind(&user.phone)
        .bind(&user.notes)
        .bind(user.organization_id.map(|id| id.0))
        .bind(user.created_at)
        .bind(user.updated_at)
        .fetch_one(self.conn())
        .await
        .map_err(db)?
        .try_get(0)
        .map_err(db)?;
        // One at a time, primary first: the readers list addresses by row id. Unlike
        // find-or-create, a taken address is not resolved here (no `on conflict`): it is the
        // caller's error, reported as the unique violation, which aborts the transaction.
        for email in &user.emails {
            query(
                "insert into user_email (user_id, address, address_key, created_at) \
                 values ($1, $2, $3, $4)",
            )
            .bind(user_id)
            .bind(email.as_str())
            .bind(email.key())
            .bind(user.created_at)
            .execute(self.conn())
            .await
            .map_err(db)?;
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
             password_hash, created_at) values ($1, $2, $3, $4, $5, $6, $7, $8) \
             returning staff_id",
        )
        .bind(&staff.username)
        .bind(&staff.name)
        .bind(staff.email.as_str())
        .bind(staff.email.key())
        .bind(staff.department_id.0)
        .bind(imported.active)
        .bind(&imported.password_hash)
        .bind(imported.created_at)
        .fetch_one(self.conn())
        .await
        .map_err(db)?
        .try_get(0)
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

#[cfg(test)]
mod tests {
    use super::RECENT_TICKETS;
    use crate::PostgresStore;
    use crate::testing::ScratchDatabase;
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

    /// Common words are probed among the newest tickets, rare ones gathered at once, and the
    /// ones between gathered from the newest blocks expected to hold two pages.
    #[test]
    fn search_plans_follow_the_estimate() {
        use super::{GATHER_AT_MOST, SearchPlan};
        let top = 1_000_001;
        let common = 2.0 * 26.0 * top as f64 / RECENT_TICKETS as f64;
        assert_eq!(
            SearchPlan::choose(top, Some(common), 26),
            SearchPlan::ProbeFrom(top - RECENT_TICKETS)
        );
        assert_eq!(
            SearchPlan::choose(top, None, 26),
            SearchPlan::ProbeFrom(top - RECENT_TICKETS)
        );
        assert_eq!(
            SearchPlan::choose(top, Some(GATHER_AT_MOST), 26),
            SearchPlan::GatherAll
        );
        // "password reset" at a million tickets: 8,326 entries expected, 52 matches in the
        // newest 6,246 tickets, which begin in block 99.
        assert_eq!(
            SearchPlan::choose(top, Some(8_326.0), 26),
            SearchPlan::BlocksFrom { lo: 990_000, top }
        );
        assert_eq!(
            SearchPlan::choose(top, Some(1_500.0), 26),
            SearchPlan::BlocksFrom { lo: 960_000, top }
        );
        // Below a cursor, the blocks end at the cursor's.
        assert_eq!(
            SearchPlan::choose(500_000, Some(8_326.0), 26),
            SearchPlan::BlocksFrom {
                lo: 490_000,
                top: 500_000
            }
        );
        // A small desk, or blocks too many to name: everything at once.
        assert_eq!(
            SearchPlan::choose(500, Some(1_500.0), 26),
            SearchPlan::GatherAll
        );
        assert_eq!(
            SearchPlan::choose(top, Some(1_001.0), 100),
            SearchPlan::GatherAll
        );
    }

    /// The words of a text as the 'simple' configuration sees them (ASCII test texts).
    fn words(text: &str) -> Vec<String> {
        text.split(|c: char| !c.is_ascii_alphanumeric())
            .filter(|w| !w.is_empty())
            .map(str::to_ascii_lowercase)
            .collect()
    }

    /// A search in steps (the newest tickets, or the newest blocks of ticket ids, first, then
    /// the older ones) answers exactly what one statement over every ticket would, by every
    /// plan and by the plan the store picks: every page size, cursor and customer filter, for
    /// words in many tickets, in few, in entries added to old tickets after newer ones were
    /// opened, words that are in one ticket but never in one entry together, and text without
    /// words. The tickets' ids span three blocks.
    #[tokio::test]
    async fn searches_in_steps_find_what_one_statement_finds() {
        let Some(database) = ScratchDatabase::from_env().await else {
            return;
        };
        let postgres = PostgresStore::open(database.url())
            .await
            .expect("open the store");
        let store: &dyn Store = &postgres;
        let count = 24_i64;
        assert!(
            count > 4 * RECENT_TICKETS,
            "the tickets span several search steps"
        );
        // (ticket, owner, texts of its entries: title and body)
        let mut tickets: Vec<(TicketId, UserId, Vec<String>)> = Vec::new();
        for i in 1..=count {
            if i == count / 2 + 1 {
                // The second half of the tickets from just below the end of block 1 on.
                sqlx::query("alter table ticket alter column ticket_id restart with 19995")
                    .execute(&postgres.pool)
                    .await
                    .expect("ticket ids move on");
            }
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
        let mut conn = postgres.pool.acquire().await.expect("connection");
        let estimate = super::estimated_matches(&mut conn, "alpha")
            .await
            .expect("explain");
        drop(conn);
        assert!(estimate.is_some(), "the plan's row estimate reads");
        let ids: Vec<i64> = tickets.iter().map(|(id, _, _)| id.0).collect();
        assert_eq!(
            ids.iter()
                .map(|id| id / super::SEARCH_BLOCK)
                .collect::<std::collections::BTreeSet<_>>()
                .len(),
            3,
            "the tickets span three blocks: {ids:?}"
        );
        let cursors: Vec<Option<TicketId>> = std::iter::once(None)
            .chain(
                ids.iter()
                    .flat_map(|id| [*id, id + 1])
                    .chain([10_000, 20_000, 30_000])
                    .map(|id| Some(TicketId(id))),
            )
            .collect();
        let customer = tickets[2].1;
        let mut checked = 0;
        let mut conn = postgres.pool.acquire().await.expect("connection");
        for text in [
            "alpha",
            "beta",
            "alpha beta",
            "latecomer",
            "rare",
            "gamma",
            "ticket",
            "nothing",
            "!!",
        ] {
            let wanted = words(text);
            let matching: Vec<(TicketId, UserId)> = tickets
                .iter()
                .rev()
                .filter(|(_, _, entries)| {
                    entries.iter().any(|entry| {
                        // A text without words matches nothing.
                        let have = words(entry);
                        !wanted.is_empty() && wanted.iter().all(|w| have.contains(w))
                    })
                })
                .map(|(id, owner, _)| (*id, *owner))
                .collect();
            for &before in &cursors {
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
                        let top = before.map_or(ids[ids.len() - 1] + 1, |b| b.0);
                        let mut plans = vec![super::SearchPlan::GatherAll];
                        for lo in [top - RECENT_TICKETS, top - 1, ids[count as usize / 2]] {
                            plans.push(super::SearchPlan::ProbeFrom(lo));
                        }
                        for lo in [0, 10_000, 20_000] {
                            if lo < top {
                                plans.push(super::SearchPlan::BlocksFrom { lo, top });
                            }
                        }
                        for plan in plans {
                            let found: Vec<TicketId> =
                                super::search_with(&mut conn, &query, text, plan)
                                    .await
                                    .expect("search by plan")
                                    .into_iter()
                                    .map(|t| t.id)
                                    .collect();
                            assert_eq!(found, expected, "{plan:?} {query:?}");
                            checked += 1;
                        }
                    }
                }
            }
        }
        assert!(checked > 10_000, "{checked} searches");
        drop(conn);
        postgres.close().await;
        database.drop_database().await;
    }
}
