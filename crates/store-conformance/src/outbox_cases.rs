//! The outbox's cases: jobs, claims, retries, webhook endpoints, and announcements written with
//! the change they announce.

use futures::future::join_all;
use helpline_core::Error;
use helpline_core::event::Actor;
use helpline_core::ids::{JobId, WebhookId};
use helpline_core::outbox::{
    Announcement, EventType, Job, JobKind, JobQuery, JobResult, JobState, NewJob, NewWebhook,
    Webhook,
};
use helpline_core::service::DeskSettings;
use helpline_core::service::posting::{
    CustomerMessage, CustomerRef, InternalNote, NoteAuthor, post_customer_message,
    post_internal_note,
};
use helpline_core::service::tickets::{OpenedTicket, open_ticket, open_ticket_work};
use helpline_core::store::Store;
use helpline_core::thread::{EntryFlags, MailIds};
use helpline_core::ticket::Source;
use std::collections::HashSet;
use time::{Duration, OffsetDateTime};

fn job(kind: JobKind, payload: &str, run_at: OffsetDateTime) -> NewJob {
    NewJob {
        kind,
        payload: payload.to_owned(),
        topic: None,
        webhook_id: None,
        run_at,
    }
}

async fn add(store: &dyn Store, new: NewJob) -> JobId {
    store
        .write(move |tx| {
            Box::pin(async move { Ok(tx.insert_job(&new, helpline_core::now()).await?) })
        })
        .await
        .expect("job added")
}

/// Every announcement written (the payloads of the dispatch jobs), newest first.
async fn announcements(store: &dyn Store) -> Vec<Announcement> {
    let jobs = store
        .reader()
        .await
        .expect("reader")
        .jobs(&JobQuery {
            kind: Some(JobKind::Dispatch),
            limit: 100,
            ..JobQuery::default()
        })
        .await
        .expect("jobs");
    jobs.iter()
        .map(|job| serde_json::from_str(&job.payload).expect("announcement payload"))
        .collect()
}

async fn add_webhook(
    store: &dyn Store,
    url: &str,
    events: Vec<EventType>,
    description: Option<&str>,
) -> Webhook {
    let new = NewWebhook {
        url: url.to_owned(),
        events,
        secret: "whsec_c2VjcmV0c2VjcmV0c2VjcmV0c2VjcmV0".into(),
        description: description.map(str::to_owned),
    };
    store
        .write(move |tx| {
            Box::pin(async move { Ok(tx.insert_webhook(&new, helpline_core::now()).await?) })
        })
        .await
        .expect("webhook added")
}

async fn claim(
    store: &dyn Store,
    kinds: &[JobKind],
    holder: &str,
    now: OffsetDateTime,
    lease: Duration,
    limit: u32,
) -> Vec<Job> {
    let kinds = kinds.to_vec();
    let holder = holder.to_owned();
    store
        .write(move |tx| {
            Box::pin(async move {
                Ok(tx
                    .claim_jobs(&kinds, &holder, now, now + lease, limit)
                    .await?)
            })
        })
        .await
        .expect("claim")
}

async fn finish(store: &dyn Store, id: JobId, attempt: u32, result: JobResult) -> bool {
    store
        .write(move |tx| {
            Box::pin(async move {
                Ok(tx
                    .finish_job(id, attempt, &result, helpline_core::now())
                    .await?)
            })
        })
        .await
        .expect("finish")
}

async fn stored(store: &dyn Store, id: JobId) -> Job {
    store
        .reader()
        .await
        .expect("reader")
        .job(id)
        .await
        .expect("job read")
        .expect("job exists")
}

/// A job round-trips; a claim counts the attempt and hides the job until the claim runs out;
/// done keeps its note.
pub async fn jobs_insert_claim_and_finish(store: &dyn Store) {
    let now = helpline_core::now();
    let mut new = job(JobKind::Mail, r#"{"to":"ann@example.com"}"#, now);
    new.topic = Some("autoresponse:ann@example.com".into());
    let id = add(store, new).await;
    let fresh = stored(store, id).await;
    assert_eq!(
        (
            fresh.kind,
            fresh.state,
            fresh.attempts,
            fresh.payload.as_str(),
            fresh.topic.as_deref(),
            fresh.finished_at
        ),
        (
            JobKind::Mail,
            JobState::Pending,
            0,
            r#"{"to":"ann@example.com"}"#,
            Some("autoresponse:ann@example.com"),
            None
        )
    );

    let claimed = claim(
        store,
        &[JobKind::Mail],
        "node-a",
        now,
        Duration::minutes(5),
        10,
    )
    .await;
    assert_eq!(claimed.len(), 1);
    assert_eq!((claimed[0].id, claimed[0].attempts), (id, 1));
    assert_eq!(claimed[0].next_attempt_at, now + Duration::minutes(5));
    assert!(
        claim(
            store,
            &[JobKind::Mail],
            "node-b",
            now,
            Duration::minutes(5),
            10
        )
        .await
        .is_empty(),
        "a claimed job is not claimed again while the claim lasts"
    );

    assert!(finish(store, id, 1, JobResult::Done(Some("250 OK".into()))).await);
    let done = stored(store, id).await;
    assert_eq!(done.state, JobState::Done);
    assert_eq!(done.last_result.as_deref(), Some("250 OK"));
    assert!(done.finished_at.is_some());
    assert!(
        !finish(store, id, 1, JobResult::Dead("late".into())).await,
        "a finished job stays finished"
    );
}

/// Claims take only due jobs of the asked kinds, oldest first, up to the limit.
pub async fn claims_skip_jobs_not_due_or_of_other_kinds(store: &dyn Store) {
    let now = helpline_core::now();
    let later = add(store, job(JobKind::Webhook, "{}", now + Duration::hours(1))).await;
    let first = add(store, job(JobKind::Webhook, "{}", now)).await;
    let dispatch = add(store, job(JobKind::Dispatch, "{}", now)).await;
    let second = add(store, job(JobKind::Webhook, "{}", now)).await;
    let third = add(store, job(JobKind::Webhook, "{}", now)).await;

    let claimed = claim(
        store,
        &[JobKind::Webhook],
        "n",
        now,
        Duration::minutes(1),
        2,
    )
    .await;
    assert_eq!(
        claimed.iter().map(|j| j.id).collect::<Vec<_>>(),
        vec![first, second],
        "oldest due first, at most the limit"
    );
    let rest = claim(
        store,
        &[JobKind::Webhook, JobKind::Dispatch],
        "n",
        now,
        Duration::minutes(1),
        10,
    )
    .await;
    assert_eq!(
        rest.iter().map(|j| j.id).collect::<Vec<_>>(),
        vec![dispatch, third]
    );
    let at_later = claim(
        store,
        &JobKind::ALL,
        "n",
        now + Duration::hours(2),
        Duration::minutes(1),
        10,
    )
    .await;
    assert!(
        at_later.iter().any(|j| j.id == later),
        "the delayed job is due later"
    );
    assert!(
        claim(store, &[], "n", now, Duration::minutes(1), 10)
            .await
            .is_empty()
    );
}

/// A worker whose claim ran out and was taken over cannot finish the job any more; retry and
/// dead record the error and the next time.
pub async fn stale_attempts_cannot_finish_a_job(store: &dyn Store) {
    let now = helpline_core::now();
    let id = add(store, job(JobKind::Mail, "{}", now)).await;
    claim(store, &[JobKind::Mail], "a", now, Duration::seconds(1), 1).await;
    let taken = claim(
        store,
        &[JobKind::Mail],
        "b",
        now + Duration::seconds(2),
        Duration::minutes(1),
        1,
    )
    .await;
    assert_eq!(taken.len(), 1, "the run-out claim is taken over");
    assert_eq!(taken[0].attempts, 2);
    assert!(
        !finish(store, id, 1, JobResult::Done(None)).await,
        "the first worker's attempt is stale"
    );
    let retry_at = now + Duration::minutes(10);
    assert!(
        finish(
            store,
            id,
            2,
            JobResult::Retry {
                at: retry_at,
                error: "connection refused\0!".into()
            }
        )
        .await
    );
    let waiting = stored(store, id).await;
    assert_eq!(waiting.state, JobState::Pending);
    assert_eq!(waiting.next_attempt_at, retry_at);
    assert_eq!(
        waiting.last_result.as_deref(),
        Some("connection refused\u{fffd}!")
    );
    let again = claim(
        store,
        &[JobKind::Mail],
        "b",
        retry_at,
        Duration::minutes(1),
        1,
    )
    .await;
    assert_eq!(again[0].attempts, 3);
    assert!(finish(store, id, 3, JobResult::Dead("550 no such user".into())).await);
    let dead = stored(store, id).await;
    assert_eq!(dead.state, JobState::Dead);
    assert!(
        claim(
            store,
            &JobKind::ALL,
            "b",
            retry_at + Duration::days(1),
            Duration::minutes(1),
            10
        )
        .await
        .is_empty(),
        "dead jobs are never claimed"
    );
}

/// Several attempts recorded at once end as each would alone, and a stale one changes nothing.
pub async fn several_jobs_finish_in_one_call(store: &dyn Store) {
    let now = helpline_core::now();
    let mut ids = Vec::new();
    for payload in ["1", "2", "3", "4"] {
        ids.push(add(store, job(JobKind::Mail, payload, now)).await);
    }
    let claimed = claim(store, &[JobKind::Mail], "a", now, Duration::minutes(1), 10).await;
    assert_eq!(claimed.len(), 4);
    let retry_at = now + Duration::minutes(10);
    let results = vec![
        (ids[3], 7, JobResult::Done(None)),
        (ids[0], 1, JobResult::Done(Some("250 OK".into()))),
        (
            ids[1],
            1,
            JobResult::Retry {
                at: retry_at,
                error: "refused\0!".into(),
            },
        ),
        (ids[2], 1, JobResult::Dead("550 no such user".into())),
    ];
    let flags = store
        .write(move |tx| {
            Box::pin(async move { Ok(tx.finish_jobs(&results, helpline_core::now()).await?) })
        })
        .await
        .expect("finish several");
    assert_eq!(
        flags,
        vec![false, true, true, true],
        "one flag per job, in order"
    );
    let done = stored(store, ids[0]).await;
    assert_eq!(
        (done.state, done.last_result.as_deref()),
        (JobState::Done, Some("250 OK"))
    );
    assert!(done.finished_at.is_some());
    let waiting = stored(store, ids[1]).await;
    assert_eq!(
        (
            waiting.state,
            waiting.next_attempt_at,
            waiting.last_result.as_deref(),
            waiting.finished_at
        ),
        (JobState::Pending, retry_at, Some("refused\u{fffd}!"), None)
    );
    let dead = stored(store, ids[2]).await;
    assert_eq!(
        (dead.state, dead.last_result.as_deref()),
        (JobState::Dead, Some("550 no such user"))
    );
    let stale = stored(store, ids[3]).await;
    assert_eq!(
        (stale.state, stale.attempts, stale.last_result),
        (JobState::Pending, 1, None),
        "a stale attempt changes nothing"
    );
    let none = store
        .write(|tx| Box::pin(async move { Ok(tx.finish_jobs(&[], helpline_core::now()).await?) }))
        .await
        .expect("finish none");
    assert!(none.is_empty());
}

/// Claims that run out are taken over; a restarted node releases its own at once.
pub async fn expired_claims_are_taken_over_and_released_claims_return_at_once(store: &dyn Store) {
    let now = helpline_core::now();
    let mine = add(store, job(JobKind::Webhook, "{}", now)).await;
    let theirs = add(store, job(JobKind::Webhook, "{}", now)).await;
    claim(
        store,
        &[JobKind::Webhook],
        "host-1",
        now,
        Duration::hours(1),
        1,
    )
    .await;
    claim(
        store,
        &[JobKind::Webhook],
        "host-2",
        now,
        Duration::hours(1),
        1,
    )
    .await;
    let released = store
        .write(move |tx| Box::pin(async move { Ok(tx.release_jobs("host-1", now).await?) }))
        .await
        .expect("release");
    assert_eq!(released, 1);
    let back = claim(
        store,
        &[JobKind::Webhook],
        "host-1",
        now,
        Duration::hours(1),
        10,
    )
    .await;
    assert_eq!(
        back.iter().map(|j| j.id).collect::<Vec<_>>(),
        vec![mine],
        "only the releasing node's claim returns; the other node's stays claimed"
    );
    assert_ne!(mine, theirs);
}

/// Dead and done jobs are put back to pending with their attempts reset; pending ones are not.
pub async fn dead_and_done_jobs_are_requeued(store: &dyn Store) {
    let now = helpline_core::now();
    let id = add(store, job(JobKind::Webhook, "{}", now)).await;
    let requeue = |id: JobId| async move {
        store
            .write(move |tx| {
                Box::pin(async move { Ok(tx.requeue_job(id, helpline_core::now()).await?) })
            })
            .await
            .expect("requeue")
    };
    assert!(!requeue(id).await, "a pending job is not requeued");
    assert!(!requeue(JobId(987_654)).await, "no such job");
    claim(
        store,
        &[JobKind::Webhook],
        "n",
        now,
        Duration::minutes(1),
        1,
    )
    .await;
    assert!(finish(store, id, 1, JobResult::Dead("gave up".into())).await);
    assert!(requeue(id).await);
    let revived = stored(store, id).await;
    assert_eq!(
        (revived.state, revived.attempts, revived.finished_at),
        (JobState::Pending, 0, None)
    );
    let claimed = claim(
        store,
        &[JobKind::Webhook],
        "n",
        helpline_core::now(),
        Duration::minutes(1),
        1,
    )
    .await;
    assert_eq!(claimed.len(), 1);
    assert!(finish(store, id, 1, JobResult::Done(None)).await);
    assert!(
        requeue(id).await,
        "a done job can be sent again (redelivery)"
    );
}

/// Done jobs older than the horizon are deleted, others kept; topics count recent jobs.
pub async fn done_jobs_are_purged_and_topics_counted(store: &dyn Store) {
    let now = helpline_core::now();
    let mut ids = Vec::new();
    for _ in 0..3 {
        let mut new = job(JobKind::Mail, "{}", now);
        new.topic = Some("autoresponse:bob@example.com".into());
        ids.push(add(store, new).await);
    }
    let count = |since: OffsetDateTime| async move {
        store
            .reader()
            .await
            .expect("reader")
            .count_jobs_since("autoresponse:bob@example.com", since)
            .await
            .expect("count")
    };
    assert_eq!(count(now - Duration::hours(3)).await, 3);
    assert_eq!(count(now + Duration::hours(1)).await, 0);
    claim(store, &[JobKind::Mail], "n", now, Duration::minutes(1), 2).await;
    assert!(finish(store, ids[0], 1, JobResult::Done(None)).await);
    assert!(finish(store, ids[1], 1, JobResult::Dead("x".into())).await);
    let purge = |before: OffsetDateTime| async move {
        store
            .write(move |tx| Box::pin(async move { Ok(tx.purge_jobs(before).await?) }))
            .await
            .expect("purge")
    };
    assert_eq!(purge(now - Duration::hours(1)).await, 0, "too recent");
    assert_eq!(
        purge(now + Duration::hours(1)).await,
        1,
        "only the done one"
    );
    let left = store
        .reader()
        .await
        .expect("reader")
        .jobs(&JobQuery {
            limit: 10,
            ..JobQuery::default()
        })
        .await
        .expect("jobs");
    assert_eq!(
        left.iter().map(|j| j.id).collect::<Vec<_>>(),
        vec![ids[2], ids[1]],
        "newest first; dead and pending jobs stay"
    );
    let dead = store
        .reader()
        .await
        .expect("reader")
        .jobs(&JobQuery {
            state: Some(JobState::Dead),
            kind: Some(JobKind::Mail),
            limit: 10,
            ..JobQuery::default()
        })
        .await
        .expect("jobs");
    assert_eq!(dead.iter().map(|j| j.id).collect::<Vec<_>>(), vec![ids[1]]);
    let page = store
        .reader()
        .await
        .expect("reader")
        .jobs(&JobQuery {
            before: Some(ids[2]),
            limit: 10,
            ..JobQuery::default()
        })
        .await
        .expect("jobs");
    assert_eq!(page.iter().map(|j| j.id).collect::<Vec<_>>(), vec![ids[1]]);
}

/// Eight workers claiming at once from 200 jobs never get the same job twice, and between
/// them take every job.
pub async fn concurrent_claims_never_share_a_job(store: &dyn Store) {
    let now = helpline_core::now();
    let jobs: Vec<NewJob> = (0..200)
        .map(|i| job(JobKind::Webhook, &format!("{{\"n\":{i}}}"), now))
        .collect();
    store
        .write(move |tx| {
            Box::pin(async move {
                for new in &jobs {
                    tx.insert_job(new, now).await?;
                }
                Ok(())
            })
        })
        .await
        .expect("jobs added");
    let rounds = (0..8).map(|worker| async move {
        let mut mine = Vec::new();
        loop {
            let got = claim(
                store,
                &[JobKind::Webhook],
                &format!("worker-{worker}"),
                now,
                Duration::minutes(5),
                7,
            )
            .await;
            if got.is_empty() {
                break;
            }
            mine.extend(got.into_iter().map(|j| j.id));
        }
        mine
    });
    let all: Vec<JobId> = join_all(rounds).await.into_iter().flatten().collect();
    let distinct: HashSet<JobId> = all.iter().copied().collect();
    assert_eq!(all.len(), 200, "every job claimed exactly once");
    assert_eq!(distinct.len(), 200);
}

/// Endpoints round-trip with their events and secret; removing one removes its deliveries.
pub async fn webhooks_round_trip_and_take_their_deliveries_along(store: &dyn Store) {
    let hook = add_webhook(
        store,
        "https://hooks.example.com/helpline",
        vec![EventType::TicketCreated, EventType::StatusChanged],
        Some("CRM"),
    )
    .await;
    let mut reader = store.reader().await.expect("reader");
    assert_eq!(
        reader.webhook(hook.id).await.expect("read"),
        Some(hook.clone())
    );
    assert_eq!(reader.webhooks().await.expect("list"), vec![hook.clone()]);
    assert_eq!(
        reader
            .webhook(WebhookId(hook.id.0 + 1))
            .await
            .expect("read"),
        None
    );
    drop(reader);

    let now = helpline_core::now();
    let mut delivery = job(JobKind::Webhook, "{}", now);
    delivery.webhook_id = Some(hook.id);
    let delivery = add(store, delivery).await;
    let other = add(store, job(JobKind::Webhook, "{}", now)).await;
    let listed = store
        .reader()
        .await
        .expect("reader")
        .jobs(&JobQuery {
            webhook_id: Some(hook.id),
            limit: 10,
            ..JobQuery::default()
        })
        .await
        .expect("deliveries");
    assert_eq!(
        listed.iter().map(|j| j.id).collect::<Vec<_>>(),
        vec![delivery]
    );

    let id = hook.id;
    let removed = store
        .write(move |tx| Box::pin(async move { Ok(tx.delete_webhook(id).await?) }))
        .await
        .expect("delete");
    assert!(removed);
    let mut reader = store.reader().await.expect("reader");
    assert!(reader.webhooks().await.expect("list").is_empty());
    assert!(
        reader.job(delivery).await.expect("read").is_none(),
        "its delivery went too"
    );
    assert!(reader.job(other).await.expect("read").is_some());
    drop(reader);
    let again = store
        .write(move |tx| Box::pin(async move { Ok(tx.delete_webhook(id).await?) }))
        .await
        .expect("delete");
    assert!(!again);
}

/// Opening a ticket writes its announcement in the same transaction: when the work fails
/// after it, neither the ticket nor the announcement is left.
pub async fn changes_are_announced_in_their_own_transaction(store: &dyn Store) {
    let opened = open_ticket(
        store,
        &DeskSettings::default(),
        crate::cases::sample_ticket("announce@example.com"),
        Actor::system(),
    )
    .await
    .expect("ticket");
    let written = announcements(store).await;
    assert_eq!(written.len(), 1);
    let announced = &written[0];
    assert_eq!(announced.event, EventType::TicketCreated);
    assert_eq!(announced.ticket_id, opened.ticket.id);
    assert_eq!(announced.entry_id, Some(opened.first_entry.id));
    assert!(announced.notices.alert && announced.notices.customer);

    let work = open_ticket_work(
        &DeskSettings::default(),
        crate::cases::sample_ticket("rolled-back@example.com"),
        Actor::system(),
    );
    let failed = store
        .write(move |tx| {
            Box::pin(async move {
                work(&mut *tx).await?;
                Err::<(), _>(Error::Conflict("fail after the change".into()))
            })
        })
        .await;
    assert!(matches!(failed, Err(Error::Conflict(_))));
    let counts = store
        .reader()
        .await
        .expect("reader")
        .row_counts()
        .await
        .expect("counts");
    assert_eq!(
        (counts.tickets, counts.jobs),
        (1, 1),
        "nothing of the failed work is left"
    );
}

/// A change is announced only when something can hear it: a mail it asks for (on a server that
/// sends mail) or a webhook subscribed to its event. Otherwise its dispatch would add nothing,
/// so no job is written.
pub async fn changes_nobody_can_hear_are_not_announced(store: &dyn Store) {
    let dispatches = || async move {
        announcements(store)
            .await
            .iter()
            .map(|announced| announced.event)
            .collect::<Vec<_>>()
    };
    let no_mail = DeskSettings {
        sends_mail: false,
        ..DeskSettings::default()
    };
    let open = |settings: DeskSettings, address: &'static str| async move {
        open_ticket(
            store,
            &settings,
            crate::cases::sample_ticket(address),
            Actor::system(),
        )
        .await
        .expect("ticket")
    };
    let message = |settings: DeskSettings, opened: &OpenedTicket| {
        let work = post_customer_message(
            &settings,
            opened.ticket.number.clone(),
            CustomerMessage {
                poster: CustomerRef::Id(opened.ticket.user_id),
                body: crate::cases::text("Any news?"),
                attachments: Vec::new(),
                ip: None,
                source: Source::Api,
                mail: MailIds::default(),
                may_reopen: true,
                flags: EntryFlags::default(),
                notify: true,
            },
            Actor::system(),
        );
        async move { store.write(work).await.expect("message posted") }
    };
    let note = |settings: DeskSettings, opened: &OpenedTicket| {
        let work = post_internal_note(
            &settings,
            opened.ticket.number.clone(),
            InternalNote {
                author: NoteAuthor::Named("Monitoring".into()),
                title: None,
                body: crate::cases::text("Disk full again."),
                mail: MailIds::default(),
                flags: EntryFlags::default(),
                notify: true,
            },
            Actor::system(),
        );
        async move { store.write(work).await.expect("note posted") }
    };

    // No mail server, no webhook: the ticket and the message are stored, nothing is announced.
    let quiet = open(no_mail.clone(), "quiet@example.com").await;
    message(no_mail.clone(), &quiet).await;
    note(no_mail.clone(), &quiet).await;
    assert_eq!(dispatches().await, vec![]);

    // A server that sends mail announces them all: they ask for mail.
    let mailed = open(DeskSettings::default(), "mailed@example.com").await;
    message(DeskSettings::default(), &mailed).await;
    note(DeskSettings::default(), &mailed).await;
    assert_eq!(
        dispatches().await,
        vec![
            EventType::NoteCreated,
            EventType::MessageCreated,
            EventType::TicketCreated
        ]
    );

    // Without a mail server, a webhook subscribed to new tickets (only) makes those announced,
    // asking for no mail.
    add_webhook(
        store,
        "https://hooks.example.com/new-tickets",
        vec![EventType::TicketCreated],
        None,
    )
    .await;
    let hooked = open(no_mail.clone(), "hooked@example.com").await;
    message(no_mail, &hooked).await;
    let written = announcements(store).await;
    let newest = &written[0];
    assert_eq!(
        (newest.event, newest.ticket_id),
        (EventType::TicketCreated, hooked.ticket.id),
        "the message, which no webhook hears, is not announced"
    );
    assert_eq!(
        (newest.notices.alert, newest.notices.customer),
        (false, false),
        "a server without mail asks for none"
    );
    assert_eq!(written.len(), 4);
}

/// The earliest due time of pending jobs, for idle workers.
pub async fn next_job_due_is_the_earliest_pending(store: &dyn Store) {
    let due = || async move {
        store
            .reader()
            .await
            .expect("reader")
            .next_job_due()
            .await
            .expect("due")
    };
    assert_eq!(due().await, None);
    let now = helpline_core::now();
    add(store, job(JobKind::Mail, "{}", now + Duration::minutes(3))).await;
    let soon = add(store, job(JobKind::Mail, "{}", now + Duration::minutes(1))).await;
    assert_eq!(due().await, Some(now + Duration::minutes(1)));
    let claimed = claim(
        store,
        &[JobKind::Mail],
        "n",
        now + Duration::minutes(2),
        Duration::minutes(5),
        1,
    )
    .await;
    assert_eq!(claimed[0].id, soon);
    assert!(finish(store, soon, 1, JobResult::Done(None)).await);
    assert_eq!(due().await, Some(now + Duration::minutes(3)));
}
