//! The shared conformance suite on PostgreSQL, one fresh database per case.
//!
//! `HELPLINE_TEST_POSTGRES_URL` names a server and an account allowed to create and drop
//! databases (`scripts/test` sets it). Without it the cases are skipped, except on CI, where a
//! silently skipped backend would let it break unnoticed.

use helpline_core::store::Store;
use helpline_store_conformance::{TestStore, conformance_suite};
use helpline_store_postgres::PostgresStore;
use helpline_store_postgres::testing::ScratchDatabase;
use std::collections::HashSet;
use std::sync::Arc;

async fn fresh_store() -> Option<TestStore> {
    let database = ScratchDatabase::from_env().await?;
    let store = PostgresStore::open(database.url())
        .await
        .expect("open PostgreSQL store");
    Some(TestStore {
        store: Box::new(store),
        cleanup: Some(Box::pin(database.drop_database())),
    })
}

conformance_suite!(fresh_store);

/// The shared suite's concurrent cases may finish each transaction before the next begins
/// (the pool opens connections lazily). Here eight transactions are held at a barrier inside
/// their units of work, so they truly overlap on eight connections: find-or-create must still
/// make one customer, and ticket numbers and counters must not collide.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn overlapping_transactions_stay_race_free() {
    let Some(database) = ScratchDatabase::from_env().await else {
        return;
    };
    let postgres = PostgresStore::open(database.url()).await.expect("open");
    let store: &dyn Store = &postgres;
    for round in 0..3 {
        let barrier = Arc::new(tokio::sync::Barrier::new(8));
        let results = futures::future::join_all((0..8).map(|_| {
            let barrier = Arc::clone(&barrier);
            let contact = helpline_core::user::CustomerContact {
                email: helpline_core::email::EmailAddress::parse(&format!("r{round}@example.com"))
                    .expect("address"),
                name: None,
                phone: None,
                notes: None,
            };
            store.write(move |tx| {
                Box::pin(async move {
                    barrier.wait().await;
                    let (user, created) = tx
                        .find_or_create_user(&contact, helpline_core::now())
                        .await?;
                    let counter = tx.next_sequence("race").await?;
                    Ok((user.id, created, counter))
                })
            })
        }))
        .await;
        let results: Vec<_> = results
            .into_iter()
            .map(|r| r.expect("unit of work"))
            .collect();
        let users: HashSet<_> = results.iter().map(|r| r.0).collect();
        assert_eq!(users.len(), 1, "round {round}: one customer, got {users:?}");
        assert_eq!(results.iter().filter(|r| r.1).count(), 1, "created once");
        let counters: HashSet<_> = results.iter().map(|r| r.2).collect();
        assert_eq!(counters.len(), 8, "counter values are unique: {counters:?}");
    }
    postgres.close().await;
    database.drop_database().await;
}

/// Eight transactions claim one idempotency key at the same moment (held at a barrier inside
/// their units of work, on eight connections). The claims must wait for each other on the
/// primary key rather than fail with a unique violation: one is granted and stores its answer,
/// every other gets that answer once the first commits.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn overlapping_idempotency_claims_wait_for_each_other() {
    use helpline_core::service::idempotency::{IdempotencyKey, StoredResponse};
    let Some(database) = ScratchDatabase::from_env().await else {
        return;
    };
    let postgres = PostgresStore::open(database.url()).await.expect("open");
    let store: &dyn Store = &postgres;
    for round in 0..3 {
        let barrier = Arc::new(tokio::sync::Barrier::new(8));
        let key = IdempotencyKey {
            api_key_id: helpline_core::ids::ApiKeyId(1),
            key: format!("round-{round}"),
            request_hash: "hash".into(),
        };
        let results = futures::future::join_all((0..8).map(|i| {
            let barrier = Arc::clone(&barrier);
            let key = key.clone();
            store.write(move |tx| {
                Box::pin(async move {
                    barrier.wait().await;
                    let now = helpline_core::now();
                    let existing = tx
                        .claim_idempotency_key(&key, now - time::Duration::days(1), now)
                        .await?;
                    if existing.is_none() {
                        // Hold the claim a moment so the others are surely waiting on it.
                        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
                        tx.complete_idempotency_key(
                            &key,
                            &StoredResponse {
                                status: 201,
                                body: format!("winner {i}"),
                            },
                        )
                        .await?;
                    }
                    Ok((i, existing))
                })
            })
        }))
        .await;
        let results: Vec<_> = results
            .into_iter()
            .map(|r| r.expect("no claim fails"))
            .collect();
        let winners: Vec<_> = results.iter().filter(|r| r.1.is_none()).collect();
        assert_eq!(winners.len(), 1, "round {round}: one claim is granted");
        let answer = format!("winner {}", winners[0].0);
        for (_, existing) in results.iter().filter(|r| r.1.is_some()) {
            let record = existing.as_ref().expect("filtered");
            assert_eq!(record.response.status, 201);
            assert_eq!(record.response.body, answer, "round {round}");
        }
    }
    postgres.close().await;
    database.drop_database().await;
}

/// Eight transactions store the same fetched message at the same moment (held at a barrier
/// inside their units of work, on eight connections), with and without a mailbox, and set the
/// same setting. The unique index must make them wait for each other rather than fail with a
/// unique violation: one stores the message, every other gets its record; all agree on one
/// setting value.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn overlapping_inbound_inserts_store_one_message() {
    use helpline_core::inbound::NewInbound;
    let Some(database) = ScratchDatabase::from_env().await else {
        return;
    };
    let postgres = PostgresStore::open(database.url()).await.expect("open");
    let store: &dyn Store = &postgres;
    for (round, mailbox) in [Some("INBOX"), None, Some("Support")]
        .into_iter()
        .enumerate()
    {
        let barrier = Arc::new(tokio::sync::Barrier::new(8));
        let results = futures::future::join_all((0..8).map(|i| {
            let barrier = Arc::clone(&barrier);
            let message = NewInbound {
                source: "imap".into(),
                mailbox: mailbox.map(str::to_owned),
                source_uid: Some(format!("1:{round}")),
                raw: format!("copy {i}").into_bytes(),
            };
            store.write(move |tx| {
                Box::pin(async move {
                    barrier.wait().await;
                    let now = helpline_core::now();
                    let (record, created) = tx.insert_inbound(&message, now).await?;
                    let secret = tx.init_setting("secret", &format!("value {i}")).await?;
                    if created {
                        // Hold the row a moment so the others are surely waiting on it.
                        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
                    }
                    Ok((record, created, secret))
                })
            })
        }))
        .await;
        let results: Vec<_> = results
            .into_iter()
            .map(|r| r.expect("no insert fails"))
            .collect();
        assert_eq!(
            results.iter().filter(|r| r.1).count(),
            1,
            "round {round}: stored once"
        );
        let records: HashSet<_> = results.iter().map(|r| r.0.id).collect();
        assert_eq!(records.len(), 1, "round {round}: one record: {records:?}");
        assert!(results.iter().all(|r| r.0 == results[0].0));
        let secrets: HashSet<_> = results.iter().map(|r| r.2.clone()).collect();
        assert_eq!(
            secrets.len(),
            1,
            "round {round}: one setting value: {secrets:?}"
        );
    }
    let counts = store
        .reader()
        .await
        .expect("reader")
        .row_counts()
        .await
        .expect("counts");
    assert_eq!(counts.inbound, 3);
    postgres.close().await;
    database.drop_database().await;
}

/// Eight nodes take the lease on one mailbox at the same moment (held at a barrier inside their
/// units of work, on eight connections): first while it is free, then once it has expired. The
/// one conditional `update` must let exactly one of them have it: the others wait on the row,
/// then find it taken.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn overlapping_mailbox_leases_have_one_winner() {
    use helpline_core::mailbox::{AfterFetch, MailboxAddress, NewMailbox};
    let Some(database) = ScratchDatabase::from_env().await else {
        return;
    };
    let postgres = PostgresStore::open(database.url()).await.expect("open");
    let store: &dyn Store = &postgres;
    let start = helpline_core::now();
    let mailbox = NewMailbox {
        address: MailboxAddress::parse("imaps://desk:secret@mail.example.com").expect("url"),
        after_fetch: AfterFetch::Seen,
        poll_seconds: 60,
    };
    let id = store
        .write(move |tx| Box::pin(async move { Ok(tx.insert_mailbox(&mailbox, start).await?) }))
        .await
        .expect("mailbox")
        .id;
    // Round 0: the lease is free. Round 1: round 0's winner's lease has run out.
    for (round, now) in [start, start + time::Duration::minutes(5)]
        .into_iter()
        .enumerate()
    {
        let barrier = Arc::new(tokio::sync::Barrier::new(8));
        let results = futures::future::join_all((0..8).map(|i| {
            let barrier = Arc::clone(&barrier);
            store.write(move |tx| {
                Box::pin(async move {
                    barrier.wait().await;
                    let holder = format!("node-{round}-{i}");
                    let taken = tx
                        .lease_mailbox(id, &holder, now, now + time::Duration::minutes(1))
                        .await?;
                    if taken {
                        // Hold the row a moment so the others are surely waiting on it.
                        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
                    }
                    Ok((i, taken))
                })
            })
        }))
        .await;
        let winners: Vec<_> = results
            .into_iter()
            .map(|r| r.expect("no lease fails"))
            .filter(|(_, taken)| *taken)
            .collect();
        assert_eq!(winners.len(), 1, "round {round}: one winner: {winners:?}");
        // The winner, and nobody else, may renew.
        let winner = format!("node-{round}-{}", winners[0].0);
        let loser = format!("node-{round}-{}", (winners[0].0 + 1) % 8);
        let renewals = store
            .write(move |tx| {
                Box::pin(async move {
                    let until = now + time::Duration::minutes(2);
                    let soon = now + time::Duration::seconds(30);
                    Ok((
                        tx.lease_mailbox(id, &loser, soon, until).await?,
                        tx.lease_mailbox(id, &winner, soon, until).await?,
                    ))
                })
            })
            .await
            .expect("renewals");
        assert_eq!(renewals, (false, true), "round {round}");
    }
    postgres.close().await;
    database.drop_database().await;
}

/// The pool pings only connections that sat idle (not on every acquire: that round trip cost a
/// tenth of the throughput). Connections the server cut while idle — a restart, a failover, an
/// administrator's `pg_terminate_backend` — must still be noticed and replaced, not handed to a
/// request that would then fail.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn connections_cut_while_idle_are_replaced() {
    use sqlx::Connection;
    let Some(database) = ScratchDatabase::from_env().await else {
        return;
    };
    let postgres = PostgresStore::open(database.url()).await.expect("open");
    let store: &dyn Store = &postgres;
    // Several connections open at once, all returned to the pool idle.
    let readers = futures::future::join_all((0..4).map(|_| async {
        let mut reader = store.reader().await.expect("reader");
        reader.departments().await.expect("read");
        reader
    }))
    .await;
    drop(readers);

    let mut admin = sqlx::PgConnection::connect(database.url())
        .await
        .expect("admin connection");
    let cut: i64 = sqlx::query_scalar(
        "select count(*) from (select pg_terminate_backend(pid) from pg_stat_activity \
         where datname = current_database() and pid <> pg_backend_pid()) as terminated",
    )
    .fetch_one(&mut admin)
    .await
    .expect("terminate the pool's connections");
    assert!(
        cut >= 1,
        "the pool's connections were open, so some were cut"
    );
    admin.close().await.expect("close admin connection");

    tokio::time::sleep(std::time::Duration::from_millis(1_200)).await;
    for _ in 0..8 {
        let departments = store
            .reader()
            .await
            .expect("reader")
            .departments()
            .await
            .expect("a cut connection is replaced before use");
        assert!(!departments.is_empty());
        let written = store
            .write(|tx| Box::pin(async move { Ok(tx.next_sequence("after-cut").await?) }))
            .await
            .expect("a write after the cut");
        assert!(written >= 1);
    }
    postgres.close().await;
    database.drop_database().await;
}

/// Each server keeps the catalogues between requests (migration 0013's counter says when its copy
/// is out of date): a change made through another server on the same database is in this
/// server's next ticket view. And the copy is what answers: with the counter's trigger disabled,
/// a rename goes unseen by the server holding a copy, and is seen by one without.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn catalogue_copies_follow_changes_made_by_another_server() {
    use helpline_core::catalog::NewDepartment;
    use helpline_core::event::Actor;
    use helpline_core::service::DeskSettings;
    use helpline_core::service::tickets::open_ticket;
    use helpline_core::store::CatalogLists;
    use helpline_core::ticket::TicketNumber;
    use sqlx::Connection;

    let Some(database) = ScratchDatabase::from_env().await else {
        return;
    };
    let first = PostgresStore::open(database.url()).await.expect("open");
    let second = PostgresStore::open(database.url()).await.expect("open");
    let number = open_ticket(
        &first,
        &DeskSettings::default(),
        helpline_store_conformance::cases::sample_ticket("two-servers@example.com"),
        Actor::system(),
    )
    .await
    .expect("ticket opened")
    .ticket
    .number;
    async fn view(store: &PostgresStore, number: &TicketNumber) -> CatalogLists {
        let mut reader = store.reader().await.expect("reader");
        reader
            .ticket_with_customer(number)
            .await
            .expect("ticket")
            .expect("ticket exists");
        reader.catalog().await.expect("catalogues")
    }
    let names = |lists: &CatalogLists| -> Vec<String> {
        lists.departments.iter().map(|d| d.name.clone()).collect()
    };
    let before = view(&first, &number).await;

    let night = (&second as &dyn Store)
        .write(|tx| {
            Box::pin(async move {
                Ok(tx
                    .insert_department(
                        &NewDepartment {
                            name: "Night shift".into(),
                        },
                        helpline_core::now(),
                    )
                    .await?)
            })
        })
        .await
        .expect("department added on the other server");
    let after = view(&first, &number).await;
    assert_eq!(after.departments.len(), before.departments.len() + 1);
    assert!(after.departments.contains(&night));

    let mut raw = sqlx::PgConnection::connect(database.url())
        .await
        .expect("raw connection");
    sqlx::raw_sql(
        "alter table department disable trigger department_bumps_catalog_version; \
         update department set name = 'Renamed quietly' where name = 'Night shift'; \
         alter table department enable trigger department_bumps_catalog_version;",
    )
    .execute(&mut raw)
    .await
    .expect("rename without moving the counter");
    assert!(
        names(&view(&first, &number).await).contains(&"Night shift".to_owned()),
        "the kept copy answers while the counter stands still"
    );
    let fresh = PostgresStore::open(database.url()).await.expect("open");
    assert!(names(&view(&fresh, &number).await).contains(&"Renamed quietly".to_owned()));
    // A database rewound to an earlier point counts the same numbers again with other
    // catalogues; the stamp drawn at each change tells them apart.
    sqlx::raw_sql("update catalog_version set stamp = gen_random_uuid()")
        .execute(&mut raw)
        .await
        .expect("same number, new stamp");
    assert!(names(&view(&first, &number).await).contains(&"Renamed quietly".to_owned()));
    raw.close().await.expect("close");
    first.close().await;
    second.close().await;
    fresh.close().await;
    database.drop_database().await;
}
