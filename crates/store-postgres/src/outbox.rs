//! The outbox's statements: jobs and webhook endpoints (as on SQLite, with native times and
//! `SKIP LOCKED` claims).

use crate::convert::{db, parsed};
use helpline_core::StoreError;
use helpline_core::ids::{JobId, WebhookId};
use helpline_core::outbox::{
    Job, JobKind, JobQuery, JobResult, JobState, NewJob, NewWebhook, Webhook, events_from_text,
    events_to_text,
};
use sqlx::postgres::{PgConnection, PgRow};
use sqlx::{Row, query};
use time::OffsetDateTime;

macro_rules! job_columns {
    () => {
        "job_id, kind, state, payload, topic, webhook_id, attempts, next_attempt_at, \
         last_result, claimed_by, created_at, finished_at"
    };
}

fn job_row(row: &PgRow) -> Result<Job, StoreError> {
    let kind: String = row.try_get("kind").map_err(db)?;
    let state: String = row.try_get("state").map_err(db)?;
    let attempts: i32 = row.try_get("attempts").map_err(db)?;
    Ok(Job {
        id: JobId(row.try_get("job_id").map_err(db)?),
        kind: parsed("job kind", &kind, JobKind::from_stored)?,
        state: parsed("job state", &state, JobState::from_stored)?,
        payload: row.try_get("payload").map_err(db)?,
        topic: row.try_get("topic").map_err(db)?,
        webhook_id: row
            .try_get::<Option<i64>, _>("webhook_id")
            .map_err(db)?
            .map(WebhookId),
        attempts: u32::try_from(attempts)
            .map_err(|_| StoreError::Corrupt(format!("job attempts {attempts}")))?,
        next_attempt_at: row.try_get("next_attempt_at").map_err(db)?,
        last_result: row.try_get("last_result").map_err(db)?,
        claimed_by: row.try_get("claimed_by").map_err(db)?,
        created_at: row.try_get("created_at").map_err(db)?,
        finished_at: row.try_get("finished_at").map_err(db)?,
    })
}

fn webhook_row(row: &PgRow) -> Result<Webhook, StoreError> {
    let events: String = row.try_get("events").map_err(db)?;
    Ok(Webhook {
        id: WebhookId(row.try_get("webhook_id").map_err(db)?),
        url: row.try_get("url").map_err(db)?,
        events: parsed("webhook events", &events, events_from_text)?,
        secret: row.try_get("secret").map_err(db)?,
        description: row.try_get("description").map_err(db)?,
        created_at: row.try_get("created_at").map_err(db)?,
    })
}

pub(crate) async fn job(conn: &mut PgConnection, id: JobId) -> Result<Option<Job>, StoreError> {
    let row = query(concat!(
        "select ",
        job_columns!(),
        " from outbox_job where job_id = $1"
    ))
    .bind(id.0)
    .fetch_optional(conn)
    .await
    .map_err(db)?;
    row.as_ref().map(job_row).transpose()
}

pub(crate) async fn jobs(
    conn: &mut PgConnection,
    filter: &JobQuery,
) -> Result<Vec<Job>, StoreError> {
    let rows = query(concat!(
        "select ",
        job_columns!(),
        " from outbox_job \
         where ($1::text is null or state = $1) and ($2::text is null or kind = $2) \
         and ($3::bigint is null or webhook_id = $3) and ($4::bigint is null or job_id < $4) \
         order by job_id desc limit $5"
    ))
    .bind(filter.state.map(JobState::as_str))
    .bind(filter.kind.map(JobKind::as_str))
    .bind(filter.webhook_id.map(|id| id.0))
    .bind(filter.before.map(|id| id.0))
    .bind(i64::from(filter.limit))
    .fetch_all(conn)
    .await
    .map_err(db)?;
    rows.iter().map(job_row).collect()
}

pub(crate) async fn count_jobs_since(
    conn: &mut PgConnection,
    topic: &str,
    since: OffsetDateTime,
) -> Result<u64, StoreError> {
    let count: i64 = query("select count(*) from outbox_job where topic = $1 and created_at >= $2")
        .bind(topic)
        .bind(since)
        .fetch_one(conn)
        .await
        .map_err(db)?
        .try_get(0)
        .map_err(db)?;
    Ok(u64::try_from(count).unwrap_or(0))
}

pub(crate) async fn next_job_due(
    conn: &mut PgConnection,
) -> Result<Option<OffsetDateTime>, StoreError> {
    let due: Option<OffsetDateTime> =
        query("select min(next_attempt_at) from outbox_job where state = 'pending'")
            .fetch_one(conn)
            .await
            .map_err(db)?
            .try_get(0)
            .map_err(db)?;
    Ok(due)
}

pub(crate) async fn job_claim_holders(conn: &mut PgConnection) -> Result<Vec<String>, StoreError> {
    let rows = query(
        "select distinct claimed_by from outbox_job \
         where state = 'pending' and claimed_by is not null order by claimed_by",
    )
    .fetch_all(conn)
    .await
    .map_err(db)?;
    rows.iter().map(|row| row.try_get(0).map_err(db)).collect()
}

pub(crate) async fn webhooks(conn: &mut PgConnection) -> Result<Vec<Webhook>, StoreError> {
    let rows = query(
        "select webhook_id, url, events, secret, description, created_at from webhook \
         order by webhook_id",
    )
    .fetch_all(conn)
    .await
    .map_err(db)?;
    rows.iter().map(webhook_row).collect()
}

pub(crate) async fn webhook(
    conn: &mut PgConnection,
    id: WebhookId,
) -> Result<Option<Webhook>, StoreError> {
    let row = query(
        "select webhook_id, url, events, secret, description, created_at from webhook \
         where webhook_id = $1",
    )
    .bind(id.0)
    .fetch_optional(conn)
    .await
    .map_err(db)?;
    row.as_ref().map(webhook_row).transpose()
}

pub(crate) async fn insert_job(
    conn: &mut PgConnection,
    job: &NewJob,
    now: OffsetDateTime,
) -> Result<JobId, StoreError> {
    let id: i64 = query(
        "insert into outbox_job (kind, state, payload, topic, webhook_id, next_attempt_at, \
         created_at) values ($1, 'pending', $2, $3, $4, $5, $6) returning job_id",
    )
    .bind(job.kind.as_str())
    .bind(&job.payload)
    .bind(job.topic.as_deref())
    .bind(job.webhook_id.map(|id| id.0))
    .bind(job.run_at)
    .bind(now)
    .fetch_one(conn)
    .await
    .map_err(db)?
    .try_get(0)
    .map_err(db)?;
    Ok(JobId(id))
}

pub(crate) async fn claim_jobs(
    conn: &mut PgConnection,
    kinds: &[JobKind],
    holder: &str,
    now: OffsetDateTime,
    until: OffsetDateTime,
    limit: u32,
) -> Result<Vec<Job>, StoreError> {
    if kinds.is_empty() || limit == 0 {
        return Ok(Vec::new());
    }
    // FOR UPDATE SKIP LOCKED: concurrent workers on other nodes each take different rows and
    // never wait for one another.
    let kinds: Vec<&str> = kinds.iter().map(|kind| kind.as_str()).collect();
    let rows = query(concat!(
        "update outbox_job set attempts = attempts + 1, next_attempt_at = $1, claimed_by = $2 \
         where job_id in (select job_id from outbox_job where state = 'pending' \
         and next_attempt_at <= $3 and kind = any($4) order by job_id limit $5 \
         for update skip locked) returning ",
        job_columns!()
    ))
    .bind(until)
    .bind(holder)
    .bind(now)
    .bind(&kinds)
    .bind(i64::from(limit))
    .fetch_all(conn)
    .await
    .map_err(db)?;
    let mut jobs = rows.iter().map(job_row).collect::<Result<Vec<_>, _>>()?;
    jobs.sort_by_key(|job| job.id);
    Ok(jobs)
}

pub(crate) async fn finish_job(
    conn: &mut PgConnection,
    id: JobId,
    attempt: u32,
    result: &JobResult,
    now: OffsetDateTime,
) -> Result<bool, StoreError> {
    let flags = finish_jobs(conn, &[(id, attempt, result.clone())], now).await?;
    Ok(flags.first().copied().unwrap_or(false))
}

/// Records how attempts of several distinct jobs ended, in one statement; one flag per job.
pub(crate) async fn finish_jobs(
    conn: &mut PgConnection,
    finished: &[(JobId, u32, JobResult)],
    now: OffsetDateTime,
) -> Result<Vec<bool>, StoreError> {
    if finished.is_empty() {
        return Ok(Vec::new());
    }
    let mut ids = Vec::with_capacity(finished.len());
    let mut attempts = Vec::with_capacity(finished.len());
    let mut states = Vec::with_capacity(finished.len());
    let mut nexts = Vec::with_capacity(finished.len());
    let mut finisheds = Vec::with_capacity(finished.len());
    let mut notes = Vec::with_capacity(finished.len());
    for (id, attempt, result) in finished {
        let recorded = result.recorded(now);
        ids.push(id.0);
        attempts.push(i32::try_from(*attempt).unwrap_or(i32::MAX));
        states.push(recorded.state.as_str());
        nexts.push(recorded.next_attempt_at);
        finisheds.push(recorded.finished_at);
        notes.push(recorded.note);
    }
    let rows = query(
        "update outbox_job j set state = f.state, \
         next_attempt_at = coalesce(f.next_attempt_at, j.next_attempt_at), \
         finished_at = f.finished_at, last_result = f.note, claimed_by = null \
         from unnest($1::bigint[], $2::integer[], $3::text[], $4::timestamptz[], \
                     $5::timestamptz[], $6::text[]) \
              as f(job_id, attempt, state, next_attempt_at, finished_at, note) \
         where j.job_id = f.job_id and j.attempts = f.attempt and j.state = 'pending' \
         returning j.job_id",
    )
    .bind(&ids)
    .bind(&attempts)
    .bind(&states)
    .bind(&nexts)
    .bind(&finisheds)
    .bind(&notes)
    .fetch_all(conn)
    .await
    .map_err(db)?;
    let updated = rows
        .iter()
        .map(|row| row.try_get::<i64, _>(0))
        .collect::<Result<std::collections::HashSet<_>, _>>()
        .map_err(db)?;
    Ok(ids.iter().map(|id| updated.contains(id)).collect())
}

pub(crate) async fn release_jobs(
    conn: &mut PgConnection,
    holder: &str,
    now: OffsetDateTime,
) -> Result<u64, StoreError> {
    Ok(query(
        "update outbox_job set next_attempt_at = $2, claimed_by = null \
         where state = 'pending' and claimed_by = $1 and next_attempt_at > $2",
    )
    .bind(holder)
    .bind(now)
    .execute(conn)
    .await
    .map_err(db)?
    .rows_affected())
}

pub(crate) async fn requeue_job(
    conn: &mut PgConnection,
    id: JobId,
    now: OffsetDateTime,
) -> Result<bool, StoreError> {
    let updated = query(
        "update outbox_job set state = 'pending', attempts = 0, next_attempt_at = $2, \
         finished_at = null, claimed_by = null \
         where job_id = $1 and state in ('dead', 'done')",
    )
    .bind(id.0)
    .bind(now)
    .execute(conn)
    .await
    .map_err(db)?
    .rows_affected();
    Ok(updated == 1)
}

pub(crate) async fn purge_jobs(
    conn: &mut PgConnection,
    before: OffsetDateTime,
) -> Result<u64, StoreError> {
    Ok(
        query("delete from outbox_job where state = 'done' and finished_at < $1")
            .bind(before)
            .execute(conn)
            .await
            .map_err(db)?
            .rows_affected(),
    )
}

pub(crate) async fn insert_webhook(
    conn: &mut PgConnection,
    webhook: &NewWebhook,
    now: OffsetDateTime,
) -> Result<Webhook, StoreError> {
    let id: i64 = query(
        "insert into webhook (url, events, secret, description, created_at) \
         values ($1, $2, $3, $4, $5) returning webhook_id",
    )
    .bind(&webhook.url)
    .bind(events_to_text(&webhook.events))
    .bind(&webhook.secret)
    .bind(webhook.description.as_deref())
    .bind(now)
    .fetch_one(conn)
    .await
    .map_err(db)?
    .try_get(0)
    .map_err(db)?;
    Ok(Webhook {
        id: WebhookId(id),
        url: webhook.url.clone(),
        events: webhook.events.clone(),
        secret: webhook.secret.clone(),
        description: webhook.description.clone(),
        created_at: now,
    })
}

pub(crate) async fn delete_webhook(
    conn: &mut PgConnection,
    id: WebhookId,
) -> Result<bool, StoreError> {
    let deleted = query("delete from webhook where webhook_id = $1")
        .bind(id.0)
        .execute(conn)
        .await
        .map_err(db)?
        .rows_affected();
    Ok(deleted == 1)
}
