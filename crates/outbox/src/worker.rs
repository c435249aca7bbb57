//! The outbox worker: claims due jobs, expands announcements, sends mail and webhook
//! deliveries, and records each outcome — retried with exponential backoff, parked as dead
//! after `max_attempts`. Several nodes may run it on one database: claims never overlap, and a
//! node that dies loses its claims when they run out.

use crate::dispatch::{self, customer_visible};
use crate::jobs::MailJob;
use crate::webhook::{WebhookClient, WebhookRequest, WebhookSecret, is_success};
use futures::StreamExt;
use helpline_core::Error;
use helpline_core::ids::JobId;
use helpline_core::notices::{NoticeKind, NoticeSettings};
use helpline_core::outbox::{Announcement, Job, JobKind, JobResult};
use helpline_core::store::Store;
use helpline_core::thread::Author;
use helpline_mail::message_id::MailSecret;
use helpline_mail::outbound::{
    Address, AutoSubmitted, EntryContext, MailTransport, Notice, NoticeContext, OutgoingAttachment,
    OutgoingMail, PersonContext, Templates, TicketContext, render,
};
use std::sync::Arc;
use std::time::Duration;
use time::OffsetDateTime;

/// How the worker runs.
#[derive(Debug, Clone)]
pub struct OutboxSettings {
    /// This process's name in claims: `HOST:PID` (see [`process_holder`]), so that two
    /// processes on one host never take each other's claims, while a restarted process can
    /// recognise and take back the claims of a dead one on its host.
    pub holder: String,
    /// Attempts before a job is parked as dead.
    pub max_attempts: u32,
    /// The wait after the first failure; doubled after each further one.
    pub retry_base: Duration,
    /// The longest wait between attempts.
    pub retry_max: Duration,
    /// How long a claim lasts; a job still unfinished then is taken over.
    pub claim_lease: Duration,
    /// Announcements expanded per round (in one transaction; no IO).
    pub batch: u32,
    /// Mails and deliveries in flight at once.
    pub concurrency: usize,
    /// The longest an idle worker sleeps before looking for due jobs again.
    pub idle_poll: Duration,
    /// After a round that found fewer jobs than a batch, how long to let more gather.
    pub gather: Duration,
    /// Done jobs (and so the delivery log) are kept this long.
    pub keep_done: Duration,
}

impl Default for OutboxSettings {
    fn default() -> Self {
        Self {
            holder: process_holder("helpline"),
            max_attempts: 8,
            retry_base: Duration::from_secs(30),
            retry_max: Duration::from_secs(6 * 3600),
            // Mails and deliveries are claimed `concurrency` at a time, each bounded by its
            // timeout (30 s per SMTP step, at most 60 s per webhook): five minutes is ample.
            claim_lease: Duration::from_secs(300),
            batch: 64,
            concurrency: 16,
            idle_poll: Duration::from_millis(500),
            gather: Duration::from_millis(100),
            keep_done: Duration::from_secs(7 * 24 * 3600),
        }
    }
}

/// Everything sending mail needs.
pub struct MailSetup {
    /// Who is mailed about what.
    pub notices: NoticeSettings,
    /// The way out; `None` when no mail server is configured (then no mail job is made).
    pub transport: Option<Arc<MailTransport>>,
    /// The notices' words.
    pub templates: Arc<Templates>,
    /// Signs our Message-IDs.
    pub secret: MailSecret,
    /// The desk's name, shown in mail.
    pub desk_name: String,
}

/// What one round did.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct RoundReport {
    /// Announcements expanded.
    pub dispatched: usize,
    /// Mails sent.
    pub mails_sent: usize,
    /// Webhook deliveries answered with 2xx.
    pub delivered: usize,
    /// Attempts that failed (retried later or parked).
    pub failed: usize,
    /// Jobs claimed in all.
    pub claimed: usize,
    /// Some claim came back full: more jobs are probably waiting.
    pub full_batch: bool,
}

/// The worker.
pub struct Outbox {
    store: Arc<dyn Store>,
    settings: OutboxSettings,
    mail: Arc<MailSetup>,
    webhooks: WebhookClient,
}

impl Outbox {
    /// A worker on `store`.
    pub fn new(
        store: Arc<dyn Store>,
        settings: OutboxSettings,
        mail: MailSetup,
        webhooks: WebhookClient,
    ) -> Self {
        Self {
            store,
            settings,
            mail: Arc::new(mail),
            webhooks,
        }
    }

    /// Makes the claims of dead processes on this host due now (a restarted server takes its
    /// predecessor's unfinished work back at once instead of waiting for the claims to run
    /// out): call once at start-up. Claims of live processes and of other hosts are left alone.
    pub async fn release_dead_claims(&self) -> Result<u64, Error> {
        let holders = self.store.reader().await?.job_claim_holders().await?;
        let dead: Vec<String> = holders
            .into_iter()
            .filter(|holder| holder_is_dead_here(holder, &self.settings.holder))
            .collect();
        if dead.is_empty() {
            return Ok(0);
        }
        self.store
            .write(move |tx| {
                Box::pin(async move {
                    let now = helpline_core::now();
                    let mut released = 0;
                    for holder in &dead {
                        released += tx.release_jobs(holder, now).await?;
                    }
                    Ok(released)
                })
            })
            .await
    }

    /// Runs rounds until `shutdown` resolves: busy while jobs are due, otherwise sleeping until
    /// the next one is due (at most `idle_poll`).
    pub async fn run(self: Arc<Self>, shutdown: impl std::future::Future<Output = ()>) {
        match self.release_dead_claims().await {
            Ok(0) => {}
            Ok(released) => tracing::info!(
                released,
                "outbox: took back the claims of a stopped process"
            ),
            Err(error) => {
                tracing::warn!(%error, "outbox: could not look for stopped processes' claims")
            }
        }
        let mut last_purge = std::time::Instant::now();
        tokio::pin!(shutdown);
        loop {
            // Claims are writes: look first (a read) whether anything is due at all, so an idle
            // worker never competes with requests for the database's write lock.
            let pause = match self.due_in().await {
                Ok(Some(wait)) if wait.is_zero() => match self.run_round().await {
                    Ok(report) if report.full_batch => Duration::ZERO,
                    // A trickle: let jobs gather for a moment, so that under a steady stream of
                    // changes each round (two commits) serves many of them, not one or two.
                    Ok(report) if report.claimed > 0 => self.settings.gather,
                    Ok(_) => self.settings.idle_poll.min(Duration::from_millis(100)),
                    Err(error) => {
                        tracing::warn!(%error, "outbox round failed");
                        Duration::from_secs(1)
                    }
                },
                Ok(Some(wait)) => wait.min(self.settings.idle_poll),
                Ok(None) => self.settings.idle_poll,
                Err(error) => {
                    tracing::warn!(%error, "outbox: cannot read the queue");
                    Duration::from_secs(1)
                }
            };
            if last_purge.elapsed() > Duration::from_secs(3600) {
                last_purge = std::time::Instant::now();
                if let Err(error) = self.purge().await {
                    tracing::warn!(%error, "outbox: purging old done jobs failed");
                }
            }
            if pause.is_zero() {
                // Busy with a backlog: still stop promptly when asked.
                if futures::FutureExt::now_or_never(&mut shutdown).is_some() {
                    return;
                }
                tokio::task::yield_now().await;
                continue;
            }
            tokio::select! {
                () = &mut shutdown => return,
                () = tokio::time::sleep(pause) => {}
            }
        }
    }

    /// How long until the next job is due (zero: now); `None` when the queue is empty.
    async fn due_in(&self) -> Result<Option<Duration>, Error> {
        let due = self.store.reader().await?.next_job_due().await?;
        Ok(due.map(|at| {
            let wait = at - helpline_core::now();
            if wait.is_positive() {
                Duration::try_from(wait).unwrap_or(Duration::ZERO)
            } else {
                Duration::ZERO
            }
        }))
    }

    /// Deletes done jobs older than `keep_done`; returns how many.
    pub async fn purge(&self) -> Result<u64, Error> {
        let keep =
            time::Duration::try_from(self.settings.keep_done).unwrap_or(time::Duration::days(7));
        self.store
            .write(move |tx| {
                Box::pin(async move { Ok(tx.purge_jobs(helpline_core::now() - keep).await?) })
            })
            .await
    }

    /// One round: expand due announcements, then send due mail and webhook deliveries.
    pub async fn run_round(&self) -> Result<RoundReport, Error> {
        // Expanding and sending touch different jobs: on PostgreSQL they overlap (on SQLite
        // their writes queue for the one writer anyway).
        let (mut expanded, mut sent) = (RoundReport::default(), RoundReport::default());
        let (dispatched, delivered) = tokio::join!(
            self.dispatch_round(&mut expanded),
            self.send_round(&mut sent)
        );
        dispatched?;
        delivered?;
        Ok(RoundReport {
            dispatched: expanded.dispatched,
            mails_sent: sent.mails_sent,
            delivered: sent.delivered,
            failed: expanded.failed + sent.failed,
            claimed: expanded.claimed + sent.claimed,
            full_batch: expanded.full_batch || sent.full_batch,
        })
    }

    /// How long a claim lasts.
    fn lease(&self) -> time::Duration {
        time::Duration::try_from(self.settings.claim_lease).unwrap_or(time::Duration::minutes(5))
    }

    async fn claim(&self, kinds: &[JobKind], batch: u32) -> Result<Vec<Job>, Error> {
        let kinds = kinds.to_vec();
        let holder = self.settings.holder.clone();
        let lease = self.lease();
        self.store
            .write(move |tx| {
                Box::pin(async move {
                    let now = helpline_core::now();
                    Ok(tx
                        .claim_jobs(&kinds, &holder, now, now + lease, batch)
                        .await?)
                })
            })
            .await
    }

    async fn dispatch_round(&self, report: &mut RoundReport) -> Result<(), Error> {
        // Claim, expand and finish a batch in one transaction: one commit for all of it, and
        // nothing half done if it fails. When it fails, claim again and go one by one, so a
        // single bad announcement (whose attempts are then counted) cannot hold the others back.
        let mail = self.mail.clone();
        let holder = self.settings.holder.clone();
        let lease = self.lease();
        let batch = self.settings.batch;
        let together = self
            .store
            .write(move |tx| {
                Box::pin(async move {
                    let now = helpline_core::now();
                    let claimed = tx
                        .claim_jobs(&[JobKind::Dispatch], &holder, now, now + lease, batch)
                        .await?;
                    let webhooks = if claimed.is_empty() {
                        Vec::new()
                    } else {
                        tx.webhooks().await?
                    };
                    let mut expanded = Vec::with_capacity(claimed.len());
                    for job in &claimed {
                        let announcement = parse_announcement(job)?;
                        let expansion = dispatch::expand(
                            &mut *tx,
                            job.id,
                            &announcement,
                            &mail,
                            &webhooks,
                            now,
                        )
                        .await?;
                        expanded.push(expansion_done(job, &expansion));
                    }
                    finish_expansions(&mut *tx, &expanded, now).await?;
                    Ok(claimed.len())
                })
            })
            .await;
        let error = match together {
            Ok(count) => {
                report.claimed += count;
                report.dispatched += count;
                report.full_batch |= count >= batch as usize;
                return Ok(());
            }
            Err(error) => error,
        };
        let claimed = self
            .claim(&[JobKind::Dispatch], self.settings.batch)
            .await?;
        report.claimed += claimed.len();
        report.dispatched += claimed.len();
        tracing::warn!(%error, "outbox: expanding a batch failed; expanding one by one");
        for job in claimed {
            let mail = self.mail.clone();
            let single = job.clone();
            let alone = self
                .store
                .write(move |tx| {
                    Box::pin(async move {
                        let now = helpline_core::now();
                        let announcement = parse_announcement(&single)?;
                        let webhooks = tx.webhooks().await?;
                        let expansion = dispatch::expand(
                            &mut *tx,
                            single.id,
                            &announcement,
                            &mail,
                            &webhooks,
                            now,
                        )
                        .await?;
                        finish_expansions(&mut *tx, &[expansion_done(&single, &expansion)], now)
                            .await?;
                        Ok(())
                    })
                })
                .await;
            if let Err(error) = alone {
                report.dispatched -= 1;
                if matches!(&error, Error::Conflict(reason) if reason == TAKEN_OVER) {
                    // Another worker owns it now; what this one wrote was rolled back.
                    continue;
                }
                report.failed += 1;
                let permanent = matches!(
                    error,
                    Error::Validation(_) | Error::Store(helpline_core::StoreError::Corrupt(_))
                );
                self.finish_all(vec![(
                    job.id,
                    job.attempts,
                    self.failure(&job, error.to_string(), permanent),
                )])
                .await?;
            }
        }
        Ok(())
    }

    async fn send_round(&self, report: &mut RoundReport) -> Result<(), Error> {
        // As many as are sent at once: a claim then covers one wave of sends, never a queue
        // of them that could outlast it, and a crash repeats at most that many.
        let wave = u32::try_from(self.settings.concurrency.max(1)).unwrap_or(8);
        let claimed = self.claim(&[JobKind::Mail, JobKind::Webhook], wave).await?;
        if claimed.is_empty() {
            return Ok(());
        }
        report.claimed += claimed.len();
        report.full_batch |= claimed.len() >= wave as usize;
        let wave_started = std::time::Instant::now();
        let wave_size = claimed.len();
        let outcomes: Vec<(Job, Outcome)> = futures::stream::iter(claimed)
            .map(|job| async move {
                let outcome = match job.kind {
                    JobKind::Mail => self.send_mail(&job).await,
                    JobKind::Webhook => self.deliver(&job).await,
                    JobKind::Dispatch => Outcome::Permanent("not a delivery job".into()),
                };
                (job, outcome)
            })
            .buffer_unordered(self.settings.concurrency.max(1))
            .collect()
            .await;
        let mut results = Vec::with_capacity(outcomes.len());
        for (job, outcome) in outcomes {
            let result = match outcome {
                Outcome::Done(note) => {
                    match job.kind {
                        JobKind::Mail => report.mails_sent += 1,
                        _ => report.delivered += 1,
                    }
                    JobResult::Done(Some(note))
                }
                Outcome::Transient(error) => {
                    report.failed += 1;
                    self.failure(&job, error, false)
                }
                Outcome::Permanent(error) => {
                    report.failed += 1;
                    self.failure(&job, error, true)
                }
            };
            results.push((job.id, job.attempts, result));
        }
        let sent_after = wave_started.elapsed();
        self.finish_all(results).await?;
        tracing::debug!(
            jobs = wave_size,
            send_ms = sent_after.as_millis() as u64,
            total_ms = wave_started.elapsed().as_millis() as u64,
            "outbox: a wave of mails and deliveries finished"
        );
        Ok(())
    }

    /// Retry with backoff, or dead when the failure is permanent or the attempts are used up.
    fn failure(&self, job: &Job, error: String, permanent: bool) -> JobResult {
        if permanent {
            return JobResult::Dead(error);
        }
        if job.attempts >= self.settings.max_attempts {
            return JobResult::Dead(format!("gave up after {} attempts: {error}", job.attempts));
        }
        JobResult::Retry {
            at: helpline_core::now() + backoff(&self.settings, job.attempts),
            error,
        }
    }

    /// Records every outcome of a round in one transaction.
    async fn finish_all(&self, results: Vec<(JobId, u32, JobResult)>) -> Result<(), Error> {
        self.store
            .write(move |tx| {
                Box::pin(async move {
                    let now = helpline_core::now();
                    let flags = tx.finish_jobs(&results, now).await?;
                    for ((id, _, _), finished) in results.iter().zip(flags) {
                        if !finished {
                            tracing::info!(job = %id, "outbox: a job was taken over before it finished");
                        }
                    }
                    Ok(())
                })
            })
            .await
    }

    async fn deliver(&self, job: &Job) -> Outcome {
        let Some(webhook_id) = job.webhook_id else {
            return Outcome::Permanent("a webhook job without an endpoint".into());
        };
        let hook = match self.store.reader().await {
            Ok(mut reader) => match reader.webhook(webhook_id).await {
                Ok(Some(hook)) => hook,
                Ok(None) => return Outcome::Permanent("the endpoint was removed".into()),
                Err(error) => return Outcome::Transient(error.to_string()),
            },
            Err(error) => return Outcome::Transient(error.to_string()),
        };
        let secret = match WebhookSecret::parse(&hook.secret) {
            Ok(secret) => secret,
            Err(error) => return Outcome::Permanent(format!("the endpoint's secret: {error}")),
        };
        let msg_id = message_id(job.id);
        let request = WebhookRequest {
            url: &hook.url,
            msg_id: &msg_id,
            timestamp: OffsetDateTime::now_utc().unix_timestamp(),
            body: job.payload.as_bytes(),
            secret: &secret,
        };
        match self.webhooks.deliver(&request).await {
            Ok(response) if is_success(response.status) => Outcome::Done(format!(
                "HTTP {} in {} ms",
                response.status, response.duration_ms
            )),
            Ok(response) => Outcome::Transient(format!(
                "HTTP {}: {}",
                response.status,
                response.body_excerpt.chars().take(200).collect::<String>()
            )),
            Err(crate::webhook::DeliveryError::InvalidUrl(reason)) => {
                Outcome::Permanent(format!("invalid URL: {reason}"))
            }
            Err(error) => Outcome::Transient(error.to_string()),
        }
    }

    async fn send_mail(&self, job: &Job) -> Outcome {
        let Some(transport) = self.mail.transport.clone() else {
            return Outcome::Transient("no mail server is configured (smtp_url)".into());
        };
        let mail_job: MailJob = match serde_json::from_str(&job.payload) {
            Ok(mail_job) => mail_job,
            Err(error) => return Outcome::Permanent(format!("unreadable mail job: {error}")),
        };
        let message = match self.compose(&mail_job).await {
            Ok(Some(message)) => message,
            Ok(None) => return Outcome::Done("the ticket or entry is gone; nothing sent".into()),
            Err(outcome) => return outcome,
        };
        let raw = match render(&message) {
            Ok(raw) => raw,
            Err(error) => return Outcome::Permanent(format!("cannot compose: {error}")),
        };
        // RFC 3834 §3.3: an automatic response goes out with the null return path, so that if
        // it bounces (a forged sender, say), no bounce comes back to be answered in turn.
        let envelope_from = if mail_job.notice == NoticeKind::Autoresponse {
            ""
        } else {
            mail_job.from.as_str()
        };
        match transport
            .send(
                envelope_from,
                std::slice::from_ref(&mail_job.to_email),
                &raw,
            )
            .await
        {
            Ok(()) => Outcome::Done(format!("sent to {}", mail_job.to_email)),
            Err(error) if error.is_permanent() => Outcome::Permanent(error.to_string()),
            Err(error) => Outcome::Transient(error.to_string()),
        }
    }

    /// The mail for a job, from the ticket as it is now.
    async fn compose(&self, job: &MailJob) -> Result<Option<OutgoingMail>, Outcome> {
        let transient = |error: helpline_core::StoreError| Outcome::Transient(error.to_string());
        let mut reader = self.store.reader().await.map_err(transient)?;
        let Some(ticket) = reader.ticket(job.ticket_id).await.map_err(transient)? else {
            return Ok(None);
        };
        let entries = reader.entries(ticket.id).await.map_err(transient)?;
        let Some(entry) = entries.iter().find(|e| e.id == job.entry_id) else {
            return Ok(None);
        };
        let department = reader
            .department(ticket.department_id)
            .await
            .map_err(transient)?;
        let department_name = department.map(|d| d.name).unwrap_or_default();
        let status = reader.status(ticket.status_id).await.map_err(transient)?;
        let priority = reader
            .priority(ticket.priority_id)
            .await
            .map_err(transient)?;
        let owner = reader.user(ticket.user_id).await.map_err(transient)?;
        let (text, html) = match entry.body.format() {
            helpline_core::body::BodyFormat::Html => (
                html2text::from_read(entry.body.as_str().as_bytes(), 78)
                    .unwrap_or_else(|_| entry.body.as_str().to_owned()),
                Some(entry.body.as_str().to_owned()),
            ),
            helpline_core::body::BodyFormat::Text => (entry.body.as_str().to_owned(), None),
        };
        let context = NoticeContext {
            desk_name: self.mail.desk_name.clone(),
            ticket: TicketContext {
                number: ticket.number.to_string(),
                subject: ticket.subject.as_str().to_owned(),
                status: status.map(|s| s.name).unwrap_or_default(),
                department: department_name.clone(),
                priority: priority.map(|p| p.name).unwrap_or_default(),
            },
            customer: PersonContext {
                name: owner.as_ref().map(|o| o.name.clone()).unwrap_or_default(),
                email: owner
                    .as_ref()
                    .and_then(|o| o.primary_email())
                    .map(ToString::to_string)
                    .unwrap_or_default(),
            },
            recipient: PersonContext {
                name: job.to_name.clone(),
                email: job.to_email.clone(),
            },
            entry: Some(EntryContext {
                author: entry.display_name.clone(),
                title: entry.title.clone(),
                text,
                html,
            }),
            reply_marker: helpline_mail::strip::REPLY_MARKER.to_owned(),
        };
        let notice = match job.notice {
            NoticeKind::Autoresponse => Notice::Autoresponse,
            NoticeKind::StaffReply => Notice::StaffReply,
            NoticeKind::NewTicketAlert => Notice::NewTicketAlert,
            NoticeKind::NewMessageAlert => Notice::NewMessageAlert,
            NoticeKind::NoteAlert => Notice::NoteAlert,
        };
        let rendered = self
            .mail
            .templates
            .render(notice, &context)
            .map_err(|e| Outcome::Permanent(format!("template: {e}")))?;

        // Threading: the customer's own Message-IDs where their mail started or continued
        // the thread, else the ticket's stable root id.
        let first = entries.first();
        let root = first
            .and_then(|e| e.mail.message_id.clone())
            .filter(|id| is_plain_message_id(id))
            .unwrap_or_else(|| {
                let domain = job
                    .from
                    .rsplit_once('@')
                    .map_or("helpline.invalid", |(_, d)| d);
                helpline_mail::message_id::thread_root(
                    &self.mail.secret,
                    ticket.id,
                    first.map_or(entry.id, |e| e.id),
                    domain,
                )
            });
        let last_customer_mail = entries
            .iter()
            .rev()
            .filter(|e| e.id <= entry.id && matches!(e.author, Author::User(_)))
            .find_map(|e| {
                e.mail
                    .message_id
                    .clone()
                    .filter(|id| is_plain_message_id(id))
            });
        let mut references = vec![root.clone()];
        if let Some(last) = &last_customer_mail
            && *last != root
        {
            references.push(last.clone());
        }
        let in_reply_to = last_customer_mail.or(Some(root));

        let mut attachments = Vec::new();
        if job.notice == NoticeKind::StaffReply && customer_visible(entry.kind) {
            for attachment in &entry.attachments {
                if let Some((meta, bytes)) =
                    reader.attachment(attachment.id).await.map_err(transient)?
                {
                    attachments.push(OutgoingAttachment {
                        filename: meta.filename,
                        content_type: meta.content_type,
                        bytes,
                    });
                }
            }
        }
        let sender = Address::named(self.sender_name(&department_name), job.from.clone());
        Ok(Some(OutgoingMail {
            from: sender.clone(),
            reply_to: Some(sender),
            to: vec![Address::named(job.to_name.clone(), job.to_email.clone())],
            subject: rendered.subject,
            text: rendered.text,
            html: Some(rendered.html),
            message_id: job.message_id.clone(),
            in_reply_to,
            references,
            auto_submitted: match job.notice.auto_submitted() {
                Some("auto-replied") => Some(AutoSubmitted::AutoReplied),
                Some(_) => Some(AutoSubmitted::AutoGenerated),
                None => None,
            },
            extra_headers: vec![("X-Helpline-Ticket".to_owned(), ticket.number.to_string())],
            attachments,
        }))
    }

    fn sender_name(&self, department: &str) -> String {
        if department.is_empty() {
            self.mail.desk_name.clone()
        } else {
            format!("{} {}", self.mail.desk_name, department)
        }
    }
}

/// Whether a stored Message-ID can go into our `In-Reply-To`/`References` as it is: customers'
/// mail programs write all sorts; one we cannot repeat is left out rather than failing the mail.
fn is_plain_message_id(id: &str) -> bool {
    id.len() <= 250
        && id.starts_with('<')
        && id.ends_with('>')
        && id.contains('@')
        && id.bytes().all(|b| b.is_ascii_graphic())
}

/// The `webhook-id` of a delivery: the same on every attempt and redelivery.
pub fn message_id(job: JobId) -> String {
    format!("msg_{}", job.0)
}

enum Outcome {
    Done(String),
    Transient(String),
    Permanent(String),
}

/// Why an expansion was rolled back: the claim ran out and another worker took the job.
const TAKEN_OVER: &str = "the announcement was taken over by another worker";

/// What finishing an expanded announcement records: done, with what it made.
fn expansion_done(job: &Job, expansion: &dispatch::Expansion) -> (JobId, u32, JobResult) {
    (
        job.id,
        job.attempts,
        JobResult::Done(Some(describe(expansion))),
    )
}

/// Marks announcements expanded — in the expansions' transaction, and only while this
/// worker's claims hold: when another worker took one over meanwhile, the whole expansion rolls
/// back, so its mails and deliveries are made once.
async fn finish_expansions(
    tx: &mut dyn helpline_core::store::Writer,
    finished: &[(JobId, u32, JobResult)],
    now: OffsetDateTime,
) -> Result<(), Error> {
    let flags = tx.finish_jobs(finished, now).await?;
    if flags.len() == finished.len() && flags.iter().all(|finished| *finished) {
        Ok(())
    } else {
        Err(Error::Conflict(TAKEN_OVER.into()))
    }
}

/// This process's claim name: `HOST:PID`.
pub fn process_holder(host: &str) -> String {
    format!("{host}:{}", std::process::id())
}

/// Whether `holder` names a process of this host (same `HOST:` as `me`) that no longer runs.
/// Only decided where `/proc` exists (Linux); elsewhere nothing counts as dead.
fn holder_is_dead_here(holder: &str, me: &str) -> bool {
    let (Some((host, pid)), Some((my_host, my_pid))) =
        (holder.rsplit_once(':'), me.rsplit_once(':'))
    else {
        return false;
    };
    if host != my_host || pid == my_pid || pid.parse::<u32>().is_err() {
        return false;
    }
    let proc_root = std::path::Path::new("/proc");
    proc_root.join("self").exists() && !proc_root.join(pid).exists()
}

fn parse_announcement(job: &Job) -> Result<Announcement, Error> {
    serde_json::from_str(&job.payload).map_err(|e| {
        Error::Store(helpline_core::StoreError::Corrupt(format!(
            "dispatch job {} holds no announcement: {e}",
            job.id
        )))
    })
}

fn describe(expansion: &dispatch::Expansion) -> String {
    format!(
        "{} mail(s), {} webhook delivery(ies), {} autoresponse(s) over the limit",
        expansion.mails, expansion.deliveries, expansion.rate_limited
    )
}

/// The wait before attempt `attempts + 1`: `retry_base` doubled per failure, at most
/// `retry_max`, with ±20 % jitter so many failed jobs do not return at one instant.
fn backoff(settings: &OutboxSettings, attempts: u32) -> time::Duration {
    use rand::Rng;
    let exponent = attempts.saturating_sub(1).min(30);
    let base = settings.retry_base.as_secs_f64() * f64::from(1u32 << exponent.min(20));
    let capped = base.min(settings.retry_max.as_secs_f64());
    let jitter = rand::rng().random_range(0.8..1.2);
    time::Duration::seconds_f64(capped * jitter)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_dead_processes_of_this_host_lose_their_claims() {
        let me = process_holder("desk-1");
        assert!(!holder_is_dead_here(&me, &me), "not itself");
        assert!(!holder_is_dead_here("desk-2:1", &me), "another host");
        assert!(!holder_is_dead_here("desk-1:1", &me), "pid 1 runs");
        assert!(!holder_is_dead_here("desk-1", &me), "not a HOST:PID name");
        if std::path::Path::new("/proc/self").exists() {
            assert!(
                holder_is_dead_here("desk-1:4194999", &me),
                "no such process"
            );
        }
    }

    #[test]
    fn odd_message_ids_are_left_out_of_threading_headers() {
        assert!(is_plain_message_id("<abc.1@example.com>"));
        for odd in [
            "abc@example.com",
            "<a b@example.com>",
            "<ü@example.com>",
            "<nodomain>",
        ] {
            assert!(!is_plain_message_id(odd), "{odd}");
        }
    }

    #[test]
    fn backoff_doubles_and_is_capped() {
        let settings = OutboxSettings {
            retry_base: Duration::from_secs(10),
            retry_max: Duration::from_secs(60),
            ..OutboxSettings::default()
        };
        let first = backoff(&settings, 1).as_seconds_f64();
        let second = backoff(&settings, 2).as_seconds_f64();
        let late = backoff(&settings, 12).as_seconds_f64();
        assert!((8.0..12.0).contains(&first), "{first}");
        assert!((16.0..24.0).contains(&second), "{second}");
        assert!((48.0..72.0).contains(&late), "{late}");
    }
}
