//! The storage contract. `helpline-store-sqlite` and `helpline-store-postgres` implement it; one
//! conformance suite (`helpline-store-conformance`) holds both to the same behaviour.
//!
//! Reads go through a [`Reader`] borrowed from the store. Every write goes through
//! [`Store::write`]: the caller hands over a unit of work, the store runs it inside one
//! transaction and commits it durably before returning. Because callers never open or commit
//! transactions themselves, a store is free to batch concurrent units into one commit (group
//! commit) without any caller changing.

use crate::Error;
use crate::StoreError;
use crate::apikey::{ApiKey, NewApiKey};
use crate::attachment::Attachment;
use crate::catalog::{
    Department, HelpTopic, NewDepartment, NewPriority, NewSla, NewStaff, NewStatus, NewTopic,
    Priority, Sla, Staff, StatusState, TicketStatus,
};
use crate::email::EmailAddress;
use crate::event::{Event, NewEvent};
use crate::ids::{
    ApiKeyId, AttachmentId, DepartmentId, EntryId, EventId, JobId, PriorityId, StaffId, StatusId,
    TicketId, TopicId, UserId, WebhookId,
};
use crate::inbound::{InboundId, InboundOutcome, InboundRecord, InboundStatus, NewInbound};
use crate::legacy::{ImportedStaff, ImportedUser, LegacyKind};
use crate::mailbox::{Mailbox, MailboxId, NewMailbox};
use crate::outbox::{Job, JobKind, JobQuery, JobResult, NewJob, NewWebhook, Webhook};
use crate::service::idempotency::{IdempotencyKey, IdempotencyRecord, StoredResponse};
use crate::thread::{NewEntry, ThreadEntry};
use crate::ticket::{Collaborator, Source, Subject, Ticket, TicketNumber};
use crate::user::{CustomerContact, NewOrganization, Organization, User};
use std::any::Any;
use std::future::Future;
use std::net::IpAddr;
use std::pin::Pin;
use time::OffsetDateTime;

/// The future a unit of work returns; it may borrow the transaction for `'t`.
pub type TxFuture<'t, T> = Pin<Box<dyn Future<Output = Result<T, Error>> + Send + 't>>;

/// A type-erased unit of work, as [`Store::write_erased`] receives it.
pub type ErasedWork =
    Box<dyn for<'t> FnOnce(&'t mut dyn Writer) -> TxFuture<'t, Box<dyn Any + Send>> + Send>;

/// A database the desk runs on.
#[async_trait::async_trait]
pub trait Store: Send + Sync + 'static {
    /// A short name of the backend (`sqlite`, `postgres`) for logs and health output.
    fn backend(&self) -> &'static str;

    /// Checks that the database answers.
    async fn ping(&self) -> Result<(), StoreError>;

    /// A connection for reading. It sees every write committed before it was taken.
    async fn reader(&self) -> Result<Box<dyn Reader + '_>, StoreError>;

    /// Runs `work` in one transaction: committed durably when it returns `Ok`, rolled back when it
    /// returns `Err` (or panics). Use [`write`](trait.Store.html#method.write) rather than calling
    /// this directly.
    async fn write_erased(&self, work: ErasedWork) -> Result<Box<dyn Any + Send>, Error>;
}

impl dyn Store {
    /// Runs `work` in one write transaction and returns its result once it is committed.
    pub async fn write<T, F>(&self, work: F) -> Result<T, Error>
    where
        T: Send + 'static,
        F: for<'t> FnOnce(&'t mut dyn Writer) -> TxFuture<'t, T> + Send + 'static,
    {
        let erased: ErasedWork = Box::new(move |tx| {
            let future = work(tx);
            Box::pin(async move {
                future
                    .await
                    .map(|value| Box::new(value) as Box<dyn Any + Send>)
            })
        });
        let value = self.write_erased(erased).await?;
        value.downcast::<T>().map(|boxed| *boxed).map_err(|_| {
            Error::Store(StoreError::Corrupt(
                "a store returned a different type from a unit of work".into(),
            ))
        })
    }
}

/// The columns of a new ticket row.
#[derive(Debug, Clone)]
pub struct TicketDraft {
    /// Proposed number; the insert reports a collision instead of failing.
    pub number: TicketNumber,
    /// Subject.
    pub subject: Subject,
    /// Owner.
    pub user_id: UserId,
    /// Department.
    pub department_id: DepartmentId,
    /// Help topic.
    pub topic_id: Option<TopicId>,
    /// Status.
    pub status_id: StatusId,
    /// Priority.
    pub priority_id: PriorityId,
    /// Channel.
    pub source: Source,
    /// Customer's address.
    pub ip: Option<IpAddr>,
    /// Creation time; also the first message's time.
    pub created_at: OffsetDateTime,
}

/// Where a new ticket goes when nothing says otherwise: the default department, open status and
/// priority, read together (see [`Reader::new_ticket_defaults`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct NewTicketDefaults {
    /// [`Reader::default_department`]'s id.
    pub department_id: DepartmentId,
    /// [`Reader::default_status`]'s id.
    pub status_id: StatusId,
    /// [`Reader::default_priority`]'s id.
    pub priority_id: PriorityId,
}

/// The five catalogues read one list after another: [`Reader::catalog`] unless a store does
/// better.
pub async fn catalog_lists<R: Reader + ?Sized>(reader: &mut R) -> Result<CatalogLists, StoreError> {
    Ok(CatalogLists {
        statuses: reader.statuses().await?,
        priorities: reader.priorities().await?,
        departments: reader.departments().await?,
        topics: reader.topics().await?,
        staff: reader.staff().await?,
    })
}

/// The five catalogues a ticket's view names, read together (see [`Reader::catalog`]).
#[derive(Debug, Clone, Default, PartialEq)]
pub struct CatalogLists {
    /// [`Reader::statuses`].
    pub statuses: Vec<TicketStatus>,
    /// [`Reader::priorities`].
    pub priorities: Vec<Priority>,
    /// [`Reader::departments`].
    pub departments: Vec<Department>,
    /// [`Reader::topics`].
    pub topics: Vec<HelpTopic>,
    /// [`Reader::staff`].
    pub staff: Vec<Staff>,
}

/// What [`Reader::tickets`] selects: every given filter must hold. Newest first.
#[derive(Debug, Clone, Default)]
pub struct TicketQuery {
    /// Exact status.
    pub status: Option<StatusId>,
    /// Open, or closed (closed includes archived).
    pub state: Option<StatusState>,
    /// Owner.
    pub customer: Option<UserId>,
    /// Department.
    pub department: Option<DepartmentId>,
    /// Assignee.
    pub assignee: Option<StaffId>,
    /// Help topic.
    pub topic: Option<TopicId>,
    /// Updated at or after.
    pub updated_since: Option<OffsetDateTime>,
    /// Words that must all appear in the ticket's subject or in one of its entries (the
    /// database's own full-text search; plain words, no query syntax).
    pub text: Option<String>,
    /// Only tickets with a smaller id (the paging cursor).
    pub before: Option<TicketId>,
    /// At most this many.
    pub limit: u32,
}

/// How many rows the main tables hold (for operators, and for tests that prove nothing was
/// written).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, serde::Serialize)]
pub struct RowCounts {
    /// Tickets.
    pub tickets: i64,
    /// Thread entries.
    pub entries: i64,
    /// Customers.
    pub users: i64,
    /// Stored file contents.
    pub files: i64,
    /// Attachments.
    pub attachments: i64,
    /// Collaborators.
    pub collaborators: i64,
    /// Audit events.
    pub events: i64,
    /// Idempotency keys.
    pub idempotency_keys: i64,
    /// Inbound messages (any status).
    pub inbound: i64,
    /// Outbox jobs (any state).
    pub jobs: i64,
}

/// Everything that can be read.
#[async_trait::async_trait]
pub trait Reader: Send {
    /// An inbound message with its raw bytes.
    async fn inbound(
        &mut self,
        id: InboundId,
    ) -> Result<Option<(InboundRecord, Vec<u8>)>, StoreError>;
    /// Inbound messages in `status`, oldest first, after `after`, at most `limit` (without bytes).
    async fn inbound_list(
        &mut self,
        status: InboundStatus,
        after: Option<InboundId>,
        limit: u32,
    ) -> Result<Vec<InboundRecord>, StoreError>;
    /// The newest thread entry whose Message-ID is one of `message_ids` (exact match).
    async fn entry_by_message_id(
        &mut self,
        message_ids: &[String],
    ) -> Result<Option<(TicketId, EntryId)>, StoreError>;
    /// The ticket a thread entry is on (`None`: no such entry). Mail intake follows an
    /// imported osTicket entry id to its ticket with it.
    async fn entry_ticket(&mut self, entry: EntryId) -> Result<Option<TicketId>, StoreError>;
    /// Every mailbox, by id.
    async fn mailboxes(&mut self) -> Result<Vec<Mailbox>, StoreError>;
    /// One mailbox.
    async fn mailbox(&mut self, id: MailboxId) -> Result<Option<Mailbox>, StoreError>;
    /// A named server setting (e.g. the secret that signs our Message-IDs).
    async fn setting(&mut self, name: &str) -> Result<Option<String>, StoreError>;
    /// Row counts of the main tables.
    async fn row_counts(&mut self) -> Result<RowCounts, StoreError>;
    /// A ticket by its number.
    async fn ticket_by_number(
        &mut self,
        number: &TicketNumber,
    ) -> Result<Option<Ticket>, StoreError>;
    /// A ticket by its number with its customer (`None` when the customer's row is gone),
    /// read together: every ticket view names the customer, and a store where each statement
    /// is a round trip reads both in one.
    async fn ticket_with_customer(
        &mut self,
        number: &TicketNumber,
    ) -> Result<Option<(Ticket, Option<User>)>, StoreError> {
        let Some(ticket) = self.ticket_by_number(number).await? else {
            return Ok(None);
        };
        let customer = self.user(ticket.user_id).await?;
        Ok(Some((ticket, customer)))
    }
    /// A ticket by row id.
    async fn ticket(&mut self, id: TicketId) -> Result<Option<Ticket>, StoreError>;
    /// Tickets matching `query`, by id descending.
    async fn tickets(&mut self, query: &TicketQuery) -> Result<Vec<Ticket>, StoreError>;
    /// A ticket's entries, oldest first, each with its attachments.
    async fn entries(&mut self, ticket: TicketId) -> Result<Vec<ThreadEntry>, StoreError>;
    /// A ticket's collaborators, in the order they were added.
    async fn collaborators(&mut self, ticket: TicketId) -> Result<Vec<Collaborator>, StoreError>;
    /// A ticket's audit events, oldest first.
    async fn ticket_events(&mut self, ticket: TicketId) -> Result<Vec<Event>, StoreError>;
    /// Events not tied to a ticket (keys, catalogue changes), oldest first.
    async fn system_events(&mut self) -> Result<Vec<Event>, StoreError>;
    /// An attachment's metadata and content.
    async fn attachment(
        &mut self,
        id: AttachmentId,
    ) -> Result<Option<(Attachment, Vec<u8>)>, StoreError>;

    /// A customer by any of their addresses (compared case-insensitively).
    async fn user_by_email(&mut self, email: &EmailAddress) -> Result<Option<User>, StoreError>;
    /// A customer by row id.
    async fn user(&mut self, id: UserId) -> Result<Option<User>, StoreError>;
    /// The customers among `ids` that exist, by id (a listing names every ticket's customer;
    /// a store where each statement is a round trip reads them in one).
    async fn users_by_ids(&mut self, ids: &[UserId]) -> Result<Vec<User>, StoreError> {
        let mut wanted = ids.to_vec();
        wanted.sort_unstable();
        wanted.dedup();
        let mut users = Vec::with_capacity(wanted.len());
        for id in wanted {
            users.extend(self.user(id).await?);
        }
        Ok(users)
    }
    /// Customers with an id above `after`, by id, at most `limit`.
    async fn users(&mut self, after: Option<UserId>, limit: u32) -> Result<Vec<User>, StoreError>;

    /// A key by the hash of its secret (revoked keys included, so callers can say why they fail).
    async fn api_key_by_hash(&mut self, hash: &str) -> Result<Option<ApiKey>, StoreError>;
    /// A key by id.
    async fn api_key(&mut self, id: ApiKeyId) -> Result<Option<ApiKey>, StoreError>;
    /// Every key, by id.
    async fn api_keys(&mut self) -> Result<Vec<ApiKey>, StoreError>;

    /// Every department, by id.
    async fn departments(&mut self) -> Result<Vec<Department>, StoreError>;
    /// Every help topic, by id.
    async fn topics(&mut self) -> Result<Vec<HelpTopic>, StoreError>;
    /// Every staff member, by id.
    async fn staff(&mut self) -> Result<Vec<Staff>, StoreError>;
    /// Every status, by id.
    async fn statuses(&mut self) -> Result<Vec<TicketStatus>, StoreError>;
    /// Every priority, by id.
    async fn priorities(&mut self) -> Result<Vec<Priority>, StoreError>;
    /// The five lists above. Every ticket view reads them; a store where each statement is a
    /// round trip reads them in one, one that keeps a copy answers from it.
    async fn catalog(&mut self) -> Result<CatalogLists, StoreError> {
        catalog_lists(self).await
    }
    /// One help topic.
    async fn topic(&mut self, id: TopicId) -> Result<Option<HelpTopic>, StoreError>;
    /// One priority.
    async fn priority(&mut self, id: PriorityId) -> Result<Option<Priority>, StoreError>;
    /// One department.
    async fn department(&mut self, id: DepartmentId) -> Result<Option<Department>, StoreError>;
    /// One status.
    async fn status(&mut self, id: StatusId) -> Result<Option<TicketStatus>, StoreError>;
    /// One staff member.
    async fn staff_member(&mut self, id: StaffId) -> Result<Option<Staff>, StoreError>;
    /// The department new tickets go to by default.
    async fn default_department(&mut self) -> Result<Department, StoreError>;
    /// The status new tickets get.
    async fn default_status(&mut self) -> Result<TicketStatus, StoreError>;
    /// The priority new tickets get by default.
    async fn default_priority(&mut self) -> Result<Priority, StoreError>;
    /// The ids of the three defaults above, in one statement: every ticket opened reads them,
    /// and on PostgreSQL each statement is a round trip.
    async fn new_ticket_defaults(&mut self) -> Result<NewTicketDefaults, StoreError>;

    /// One outbox job.
    async fn job(&mut self, id: JobId) -> Result<Option<Job>, StoreError>;
    /// Outbox jobs matching `query`, by id descending.
    async fn jobs(&mut self, query: &JobQuery) -> Result<Vec<Job>, StoreError>;
    /// How many jobs with this topic were added at or after `since` (any state).
    async fn count_jobs_since(
        &mut self,
        topic: &str,
        since: OffsetDateTime,
    ) -> Result<u64, StoreError>;
    /// When the earliest pending job is due (claimed ones: when their claim runs out); `None`
    /// when no job is pending. Lets idle workers sleep without polling with writes.
    async fn next_job_due(&mut self) -> Result<Option<OffsetDateTime>, StoreError>;
    /// The nodes holding claims on pending jobs (for a restarted node to find its dead
    /// predecessors' claims).
    async fn job_claim_holders(&mut self) -> Result<Vec<String>, StoreError>;
    /// Every webhook endpoint, by id.
    async fn webhooks(&mut self) -> Result<Vec<Webhook>, StoreError>;
    /// One webhook endpoint.
    async fn webhook(&mut self, id: WebhookId) -> Result<Option<Webhook>, StoreError>;

    /// Every organisation, by id.
    async fn organizations(&mut self) -> Result<Vec<Organization>, StoreError>;
    /// Every SLA, by id.
    async fn slas(&mut self) -> Result<Vec<Sla>, StoreError>;
    /// A staff member's stored password hash (`None`: no password set, or no such staff
    /// member). [`Staff`] leaves it out so that listings never carry it.
    async fn staff_password_hash(&mut self, id: StaffId) -> Result<Option<String>, StoreError>;
    /// Our id for a record imported from a source desk, by the source's id (`None`: not
    /// imported).
    async fn legacy_id(
        &mut self,
        kind: LegacyKind,
        source_id: i64,
    ) -> Result<Option<i64>, StoreError>;
    /// Every `(source id, our id)` pair recorded for a kind, by source id.
    async fn legacy_ids(&mut self, kind: LegacyKind) -> Result<Vec<(i64, i64)>, StoreError>;
}

/// Everything that can be written, inside a transaction. A writer can also read, and sees its
/// own uncommitted writes.
#[async_trait::async_trait]
pub trait Writer: Reader {
    /// The customer with this address, created (with the contact's name, phone and notes) when
    /// none exists. Race-free: concurrent calls for one new address create one customer. Returns
    /// whether it was created.
    async fn find_or_create_user(
        &mut self,
        contact: &CustomerContact,
        now: OffsetDateTime,
    ) -> Result<(User, bool), StoreError>;
    /// A ticket by number, locked against concurrent change until the transaction ends.
    async fn lock_ticket(&mut self, number: &TicketNumber) -> Result<Option<Ticket>, StoreError>;
    /// Writes a ticket's changeable fields (status, priority, department, topic, assignee,
    /// answered flag, due, updated, last message, last response, closed and reopened times).
    async fn update_ticket(&mut self, ticket: &Ticket) -> Result<(), StoreError>;
    /// Claims an idempotency key for this transaction. Returns `None` when the key was free
    /// (or only held by a record created before `expired_before`, which is replaced); otherwise
    /// the record stored for it. Concurrent claims of one key wait for each other.
    async fn claim_idempotency_key(
        &mut self,
        key: &IdempotencyKey,
        expired_before: OffsetDateTime,
        now: OffsetDateTime,
    ) -> Result<Option<IdempotencyRecord>, StoreError>;
    /// Stores the answer for a key claimed in this transaction.
    async fn complete_idempotency_key(
        &mut self,
        key: &IdempotencyKey,
        response: &StoredResponse,
    ) -> Result<(), StoreError>;
    /// Deletes idempotency records created before `before`; returns how many.
    async fn purge_idempotency_keys(&mut self, before: OffsetDateTime) -> Result<u64, StoreError>;
    /// Inserts a ticket, or returns `None` when its number is taken (the caller picks another).
    async fn insert_ticket(&mut self, draft: &TicketDraft) -> Result<Option<Ticket>, StoreError>;
    /// The next value of a named counter, starting at 1.
    async fn next_sequence(&mut self, name: &str) -> Result<u64, StoreError>;
    /// Appends an entry (and its attachments, content stored once per hash) to a thread.
    async fn insert_entry(
        &mut self,
        ticket: TicketId,
        entry: &NewEntry,
        now: OffsetDateTime,
    ) -> Result<ThreadEntry, StoreError>;
    /// Adds a collaborator; `false` when they already were one.
    async fn add_collaborator(
        &mut self,
        ticket: TicketId,
        user: UserId,
        now: OffsetDateTime,
    ) -> Result<bool, StoreError>;
    /// Removes a collaborator; `false` when they were not one.
    async fn remove_collaborator(
        &mut self,
        ticket: TicketId,
        user: UserId,
    ) -> Result<bool, StoreError>;
    /// Records an audit event.
    async fn insert_event(
        &mut self,
        event: &NewEvent,
        now: OffsetDateTime,
    ) -> Result<EventId, StoreError>;
    /// Stores a key (its secret's hash only).
    async fn insert_api_key(
        &mut self,
        key: &NewApiKey,
        now: OffsetDateTime,
    ) -> Result<ApiKey, StoreError>;
    /// Marks a key revoked; `None` when no such key exists.
    async fn revoke_api_key(
        &mut self,
        id: ApiKeyId,
        now: OffsetDateTime,
    ) -> Result<Option<ApiKey>, StoreError>;
    /// Stores a raw inbound message as `pending`. When the same `(mailbox, source_uid)` was stored
    /// before, nothing is added and the existing record is returned (`false`).
    async fn insert_inbound(
        &mut self,
        message: &NewInbound,
        now: OffsetDateTime,
    ) -> Result<(InboundRecord, bool), StoreError>;
    /// Stores a raw inbound message that was processed before it was stored, with its outcome
    /// (one processing attempt): one write instead of [`insert_inbound`](Self::insert_inbound)
    /// then [`finish_inbound`](Self::finish_inbound), which rewrites the record, raw bytes
    /// and all. A message whose `(mailbox, source_uid)` was stored before is refused with
    /// [`StoreError::Constraint`], so the transaction must not go on after an error here.
    async fn insert_finished_inbound(
        &mut self,
        message: &NewInbound,
        outcome: &InboundOutcome,
        now: OffsetDateTime,
    ) -> Result<InboundId, StoreError>;
    /// Serialises transactions on `key` until this one ends (PostgreSQL: an advisory
    /// transaction lock; SQLite's single writer serialises everything already). Used so two
    /// copies of one mail processed at once cannot both be posted.
    async fn lock_key(&mut self, key: &str) -> Result<(), StoreError>;
    /// The status of an inbound message, locked against concurrent processing until the
    /// transaction ends (so two workers never post the same message twice).
    async fn lock_inbound(&mut self, id: InboundId) -> Result<Option<InboundStatus>, StoreError>;
    /// Puts a quarantined message back to pending so it is processed again; `false` when it is
    /// not quarantined (or does not exist).
    async fn requeue_inbound(&mut self, id: InboundId) -> Result<bool, StoreError>;
    /// Records how processing ended (and counts the attempt).
    async fn finish_inbound(
        &mut self,
        id: InboundId,
        outcome: &InboundOutcome,
        now: OffsetDateTime,
    ) -> Result<(), StoreError>;
    /// Sets `name` to `value` unless it is already set; returns the value in force. Several
    /// nodes starting at once agree on one value.
    async fn init_setting(&mut self, name: &str, value: &str) -> Result<String, StoreError>;
    /// Sets `name` to `value`, replacing any value.
    async fn put_setting(&mut self, name: &str, value: &str) -> Result<(), StoreError>;
    /// Adds a mailbox.
    async fn insert_mailbox(
        &mut self,
        mailbox: &NewMailbox,
        now: OffsetDateTime,
    ) -> Result<Mailbox, StoreError>;
    /// Removes a mailbox (its fetched messages stay); `false` when there was none.
    async fn delete_mailbox(&mut self, id: MailboxId) -> Result<bool, StoreError>;
    /// Takes (or renews) the lease on a mailbox for `holder` until `until`, when it is free,
    /// expired, or already `holder`'s: one node at a time fetches each mailbox, and a node that
    /// dies loses it when its lease runs out. Returns whether `holder` now has it.
    async fn lease_mailbox(
        &mut self,
        id: MailboxId,
        holder: &str,
        now: OffsetDateTime,
        until: OffsetDateTime,
    ) -> Result<bool, StoreError>;
    /// Records the end of a fetch round (`error` `None` when it went well).
    async fn mailbox_fetched(
        &mut self,
        id: MailboxId,
        error: Option<&str>,
        now: OffsetDateTime,
    ) -> Result<(), StoreError>;
    /// Adds a department.
    async fn insert_department(
        &mut self,
        department: &NewDepartment,
        now: OffsetDateTime,
    ) -> Result<Department, StoreError>;
    /// Adds a help topic.
    async fn insert_topic(
        &mut self,
        topic: &NewTopic,
        now: OffsetDateTime,
    ) -> Result<HelpTopic, StoreError>;
    /// Adds a staff member.
    async fn insert_staff(
        &mut self,
        staff: &NewStaff,
        now: OffsetDateTime,
    ) -> Result<Staff, StoreError>;

    /// Adds a job to the outbox, pending from `job.run_at`.
    async fn insert_job(&mut self, job: &NewJob, now: OffsetDateTime) -> Result<JobId, StoreError>;
    /// Claims up to `limit` pending jobs of these kinds that are due at `now`, oldest first, for
    /// `holder` until `until`: each claimed job's attempt count goes up by one and it is not due
    /// again before `until`, so a worker that dies loses its claim when that time passes. Jobs
    /// claimed by another worker in a concurrent transaction are skipped, never waited for or
    /// claimed twice.
    async fn claim_jobs(
        &mut self,
        kinds: &[JobKind],
        holder: &str,
        now: OffsetDateTime,
        until: OffsetDateTime,
        limit: u32,
    ) -> Result<Vec<Job>, StoreError>;
    /// Records how attempt `attempt` of a job ended. `false` (and nothing changed) when the job
    /// is no longer pending at that attempt: another worker took it over after the claim ran out.
    async fn finish_job(
        &mut self,
        id: JobId,
        attempt: u32,
        result: &JobResult,
        now: OffsetDateTime,
    ) -> Result<bool, StoreError>;
    /// [`Writer::finish_job`] for several distinct jobs, one flag per job in the order given.
    /// A store where each statement is a round trip records them in one.
    async fn finish_jobs(
        &mut self,
        finished: &[(JobId, u32, JobResult)],
        now: OffsetDateTime,
    ) -> Result<Vec<bool>, StoreError> {
        let mut flags = Vec::with_capacity(finished.len());
        for (id, attempt, result) in finished {
            flags.push(self.finish_job(*id, *attempt, result, now).await?);
        }
        Ok(flags)
    }
    /// Makes every pending job claimed by `holder` due now (a restarted node takes its own work
    /// back at once instead of waiting for its claims to run out); returns how many.
    async fn release_jobs(&mut self, holder: &str, now: OffsetDateTime) -> Result<u64, StoreError>;
    /// Puts a dead or done job back to pending, due now, with its attempts reset; `false` when
    /// it does not exist or is pending already.
    async fn requeue_job(&mut self, id: JobId, now: OffsetDateTime) -> Result<bool, StoreError>;
    /// Deletes done jobs finished before `before`; returns how many.
    async fn purge_jobs(&mut self, before: OffsetDateTime) -> Result<u64, StoreError>;
    /// Adds a webhook endpoint.
    async fn insert_webhook(
        &mut self,
        webhook: &NewWebhook,
        now: OffsetDateTime,
    ) -> Result<Webhook, StoreError>;
    /// Removes a webhook endpoint and its deliveries; `false` when there was none.
    async fn delete_webhook(&mut self, id: WebhookId) -> Result<bool, StoreError>;

    /// Records that the source's record `source_id` of `kind` became our `target_id`. Recording
    /// one source record twice is a [`StoreError::Constraint`], even with the same target. The
    /// target is not checked against its table: the kind says which table that is.
    async fn record_legacy_id(
        &mut self,
        kind: LegacyKind,
        source_id: i64,
        target_id: i64,
    ) -> Result<(), StoreError>;
    /// Adds an organisation (a taken name is a [`StoreError::Constraint`]).
    async fn insert_organization(
        &mut self,
        organization: &NewOrganization,
    ) -> Result<Organization, StoreError>;
    /// Adds an SLA (a taken name is a [`StoreError::Constraint`]).
    async fn insert_sla(&mut self, sla: &NewSla, now: OffsetDateTime) -> Result<Sla, StoreError>;
    /// Adds a ticket status, not the default (a taken name is a [`StoreError::Constraint`]).
    async fn insert_status(&mut self, status: &NewStatus) -> Result<TicketStatus, StoreError>;
    /// Adds a priority, not the default (a taken name is a [`StoreError::Constraint`]).
    async fn insert_priority(&mut self, priority: &NewPriority) -> Result<Priority, StoreError>;
    /// Adds a customer with every address, organisation and timestamps as given (microsecond
    /// precision, as every stored time); its addresses come back in the order given. No
    /// addresses is allowed. An address another customer has — or one given twice, compared
    /// case-insensitively as [`EmailAddress::key`] does — is a [`StoreError::Constraint`], as is
    /// an organisation that does not exist. Like every constraint error it ends the unit of
    /// work: return it, and the unit is rolled back (on PostgreSQL the transaction is aborted,
    /// so nothing more can be done in it).
    async fn import_user(&mut self, user: &ImportedUser) -> Result<User, StoreError>;
    /// Adds a staff member with state, password hash and creation time as given. A taken user
    /// name or address is a [`StoreError::Constraint`], as for
    /// [`insert_staff`](Writer::insert_staff).
    async fn import_staff(&mut self, staff: &ImportedStaff) -> Result<Staff, StoreError>;
}
