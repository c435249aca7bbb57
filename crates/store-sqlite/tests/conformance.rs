//! The shared conformance suite on SQLite, one fresh database file per case.

use helpline_store_conformance::{TestStore, conformance_suite};
use helpline_store_sqlite::SqliteStore;

async fn fresh_store() -> Option<TestStore> {
    let dir = tempfile::tempdir().expect("temporary directory");
    let url = format!("sqlite://{}", dir.path().join("helpline.db").display());
    let store = SqliteStore::open(&url).await.expect("open SQLite store");
    Some(TestStore {
        store: Box::new(store),
        cleanup: Some(Box::pin(async move { drop(dir) })),
    })
}

conformance_suite!(fresh_store);

/// A scratch directory (removed when dropped) and the path of a database file in it.
fn scratch_database() -> (tempfile::TempDir, std::path::PathBuf) {
    let dir = tempfile::tempdir().expect("temporary directory");
    let path = dir.path().join("helpline.db");
    (dir, path)
}

/// The store on the database file at `path`.
async fn open_at(path: &std::path::Path) -> SqliteStore {
    SqliteStore::open(&format!("sqlite://{}", path.display()))
        .await
        .expect("open SQLite store")
}

/// Full-text indexing is deferred (migration 0008 queues entries; the writer indexes the queue in
/// every sixteenth commit, or in the next one when a search asks): a search finds every entry
/// committed before it, the queue is empty afterwards, and edits made outside the store — of
/// indexed entries and of entries still queued — keep the external-content index consistent.
mod deferred_indexing {
    use super::{open_at, scratch_database};
    use helpline_core::event::Actor;
    use helpline_core::service::DeskSettings;
    use helpline_core::service::tickets::open_ticket;
    use helpline_core::store::{Store, TicketQuery};
    use helpline_store_conformance::cases::sample_ticket;
    use rusqlite::Connection;

    fn matches(conn: &Connection, word: &str) -> Vec<i64> {
        let mut statement = conn
            .prepare(
                "select rowid from thread_entry_fts where thread_entry_fts match ?1 order by rowid",
            )
            .expect("prepare search");
        statement
            .query_map([word], |row| row.get(0))
            .expect("search")
            .collect::<Result<_, _>>()
            .expect("rows")
    }

    /// FTS5's check against the stored bodies: it holds for text entries only (HTML ones are
    /// indexed by their rendering, migration 0012), which is all this module writes.
    fn integrity_check(conn: &Connection) {
        conn.execute(
            "insert into thread_entry_fts (thread_entry_fts, rank) values ('integrity-check', 1)",
            [],
        )
        .expect("the full-text index matches thread_entry");
    }

    fn queued(conn: &Connection) -> i64 {
        conn.query_row("select count(*) from fts_pending", [], |row| row.get(0))
            .expect("count queue")
    }

    fn search(words: &str) -> TicketQuery {
        TicketQuery {
            text: Some(words.to_owned()),
            limit: 10,
            ..TicketQuery::default()
        }
    }

    async fn open_with_text(store: &dyn Store, i: usize, text: &str) -> i64 {
        let mut new = sample_ticket(&format!("customer{i}@example.com"));
        new.message =
            helpline_core::body::MessageBody::parse(text, helpline_core::body::BodyFormat::Text)
                .expect("body");
        open_ticket(store, &DeskSettings::default(), new, Actor::system())
            .await
            .expect("ticket opened")
            .ticket
            .id
            .0
    }

    /// Entries wait in the queue, unindexed, until a search (by a reader, or inside a unit of
    /// work) or the sixteenth commit since the last indexing; the search finds them all.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn entries_are_indexed_for_a_search_or_every_sixteenth_commit() {
        let (_dir, path) = scratch_database();
        let store = open_at(&path).await;
        let store: &dyn Store = &store;
        let conn = Connection::open(&path).expect("second connection");

        // One at a time: three commits, none of them indexing.
        let mut tickets = Vec::new();
        for i in 0..3 {
            tickets.push(open_with_text(store, i, &format!("alpaca{i} grazing")).await);
        }
        assert_eq!(queued(&conn), 3);
        assert!(matches(&conn, "grazing").is_empty(), "not indexed yet");

        let found: Vec<i64> = store
            .reader()
            .await
            .expect("reader")
            .tickets(&search("alpaca1"))
            .await
            .expect("search")
            .iter()
            .map(|ticket| ticket.id.0)
            .collect();
        assert_eq!(found, vec![tickets[1]]);
        assert_eq!(queued(&conn), 0, "the search had the queue indexed");
        assert_eq!(matches(&conn, "grazing").len(), 3);

        // Sixteen commits after that indexing, the queue is indexed in the commit itself.
        for i in 3..18 {
            open_with_text(store, i, &format!("llama{i}")).await;
        }
        assert_eq!(queued(&conn), 15);
        open_with_text(store, 18, "llama18").await;
        assert_eq!(queued(&conn), 0, "the sixteenth commit indexed the queue");
        let newest = open_with_text(store, 19, "vicuna in the queue").await;
        assert_eq!(queued(&conn), 1);

        // A unit of work searching finds what earlier commits left queued.
        let found: Vec<i64> = store
            .write(|tx| {
                Box::pin(async move {
                    Ok(tx
                        .tickets(&search("vicuna"))
                        .await?
                        .iter()
                        .map(|ticket| ticket.id.0)
                        .collect())
                })
            })
            .await
            .expect("search in a unit of work");
        assert_eq!(found, vec![newest]);
        assert_eq!(queued(&conn), 0);
        integrity_check(&conn);
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn entries_are_indexed_before_a_search_and_edits_stay_consistent() {
        let (_dir, path) = scratch_database();
        let store = open_at(&path).await;
        let store: &dyn Store = &store;

        // Forty tickets at once: the writer commits them in shared transactions.
        let opened = futures::future::join_all((0..40).map(|i| {
            let mut new = sample_ticket(&format!("customer{i}@example.com"));
            new.message = helpline_core::body::MessageBody::parse(
                &format!("word{i} appears in ticket number {i} only"),
                helpline_core::body::BodyFormat::Text,
            )
            .expect("body");
            async move {
                open_ticket(store, &DeskSettings::default(), new, Actor::system())
                    .await
                    .expect("ticket opened")
            }
        }))
        .await;

        let conn = Connection::open(&path).expect("second connection");
        conn.busy_timeout(std::time::Duration::from_secs(10))
            .expect("busy timeout");
        helpline_store_sqlite::register_search_text(&conn).expect("search_text");
        let found = store
            .reader()
            .await
            .expect("reader")
            .tickets(&search("word7"))
            .await
            .expect("search");
        assert_eq!(
            found.iter().map(|ticket| ticket.id).collect::<Vec<_>>(),
            vec![opened[7].ticket.id]
        );
        assert_eq!(queued(&conn), 0, "nothing stays queued after a search");
        for (i, ticket) in opened.iter().enumerate() {
            assert_eq!(
                matches(&conn, &format!("word{i}")),
                vec![ticket.first_entry.id.0]
            );
        }
        integrity_check(&conn);

        // An indexed entry edited: its old words go, its new ones come.
        let first = opened[0].first_entry.id.0;
        conn.execute(
            "update thread_entry set body = 'replacement text' where entry_id = ?1",
            [first],
        )
        .expect("edit an indexed entry");
        assert!(matches(&conn, "word0").is_empty());
        assert_eq!(matches(&conn, "replacement"), vec![first]);
        integrity_check(&conn);

        // An entry queued and edited (and another queued and deleted) before the indexing step:
        // the index gets the edited text and nothing of the deleted one.
        conn.execute_batch(
            "begin immediate;
             insert into thread_entry (ticket_id, kind, user_id, staff_id, display_name, title,
                 body, format, source, ip, api_key_id, mail_message_id, mail_in_reply_to,
                 mail_references, flags, created_at)
             select ticket_id, kind, user_id, staff_id, display_name, null, 'queued original',
                 format, source, ip, api_key_id, null, null, null, flags, created_at
             from thread_entry where entry_id = (select min(entry_id) from thread_entry);
             update thread_entry set body = 'queued edited'
                 where entry_id = (select max(entry_id) from thread_entry);
             insert into thread_entry (ticket_id, kind, user_id, staff_id, display_name, title,
                 body, format, source, ip, api_key_id, mail_message_id, mail_in_reply_to,
                 mail_references, flags, created_at)
             select ticket_id, kind, user_id, staff_id, display_name, null, 'queued deleted',
                 format, source, ip, api_key_id, null, null, null, flags, created_at
             from thread_entry where entry_id = (select min(entry_id) from thread_entry);
             delete from thread_entry where entry_id = (select max(entry_id) from thread_entry);
             insert into thread_entry_fts (rowid, title, body)
                 select e.entry_id, e.title, search_text(e.body, e.format) from fts_pending p
                 join thread_entry e on e.entry_id = p.entry_id;
             delete from fts_pending;
             commit;",
        )
        .expect("raw writes with the documented indexing step");
        let edited: i64 = conn
            .query_row("select max(entry_id) from thread_entry", [], |row| {
                row.get(0)
            })
            .expect("newest entry");
        assert_eq!(matches(&conn, "edited"), vec![edited]);
        assert!(matches(&conn, "original").is_empty());
        assert!(matches(&conn, "deleted").is_empty());
        integrity_check(&conn);
    }

    /// FTS5's automatic merge is off (migration 0014) and the writer merges a slice of the
    /// segments after each indexing instead: one indexing after another, the segments a search
    /// reads stay few. Without the writer's merging they would pile up to sixteen on one level,
    /// where FTS5's crisis merge starts.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn the_writer_merges_the_index_segments_after_each_indexing() {
        let (_dir, path) = scratch_database();
        let store = open_at(&path).await;
        let store: &dyn Store = &store;
        let conn = Connection::open(&path).expect("second connection");
        let automerge: i64 = conn
            .query_row(
                "select v from thread_entry_fts_config where k = 'automerge'",
                [],
                |row| row.get(0),
            )
            .expect("automerge is set");
        assert_eq!(automerge, 0);
        let segments = || -> i64 {
            conn.query_row(
                "select count(distinct segid) from thread_entry_fts_idx",
                [],
                |row| row.get(0),
            )
            .expect("count segments")
        };

        let mut most = 0;
        for i in 0..40 {
            open_with_text(store, i, &format!("guanaco{i} on the hill")).await;
            // Each search has the queue indexed: one new segment each time.
            let found = store
                .reader()
                .await
                .expect("reader")
                .tickets(&search(&format!("guanaco{i}")))
                .await
                .expect("search");
            assert_eq!(found.len(), 1);
            most = most.max(segments());
        }
        assert!(
            most <= 8,
            "at most {most} segments, expected no more than 8"
        );
        assert_eq!(matches(&conn, "hill").len(), 40);
        integrity_check(&conn);
    }
}

/// HTML entries are indexed by their text, also when the index is made again at opening (as
/// migration 0012 has it made: emptied, every entry queued).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn html_entries_are_indexed_by_their_text_also_when_reindexed_at_opening() {
    use helpline_core::body::{BodyFormat, MessageBody};
    use helpline_core::event::Actor;
    use helpline_core::service::DeskSettings;
    use helpline_core::service::tickets::open_ticket;
    use rusqlite::Connection;

    let dir = tempfile::tempdir().expect("temporary directory");
    let path = dir.path().join("helpline.db");
    let url = format!("sqlite://{}", path.display());
    let store = SqliteStore::open(&url).await.expect("open SQLite store");
    let mut new = helpline_store_conformance::cases::sample_ticket("html@example.com");
    new.message = MessageBody::parse(
        r#"<p class="intro">Printer <a href="https://example.com/m">manual</a></p>"#,
        BodyFormat::Html,
    )
    .expect("html body");
    let entry = open_ticket(&store, &DeskSettings::default(), new, Actor::system())
        .await
        .expect("ticket opened")
        .first_entry
        .id
        .0;
    let matches = |conn: &Connection, word: &str| -> Vec<i64> {
        conn.prepare("select rowid from thread_entry_fts where thread_entry_fts match ?1")
            .expect("prepare search")
            .query_map([word], |row| row.get(0))
            .expect("search")
            .collect::<Result<_, _>>()
            .expect("rows")
    };
    // A search has the queued entry indexed.
    let found = helpline_core::store::Store::reader(&store)
        .await
        .expect("reader")
        .tickets(&helpline_core::store::TicketQuery {
            text: Some("manual".to_owned()),
            limit: 10,
            ..Default::default()
        })
        .await
        .expect("search");
    assert_eq!(found.len(), 1);
    let conn = Connection::open(&path).expect("second connection");
    conn.busy_timeout(std::time::Duration::from_secs(10))
        .expect("busy timeout");
    assert_eq!(matches(&conn, "manual"), vec![entry]);
    assert!(matches(&conn, "intro").is_empty());
    assert!(matches(&conn, "href").is_empty());

    store.close().await;
    conn.execute_batch(
        "insert into thread_entry_fts (thread_entry_fts) values ('delete-all');
         insert into fts_pending (entry_id) select entry_id from thread_entry;",
    )
    .expect("index emptied, entries queued");
    assert!(matches(&conn, "manual").is_empty());
    let store = SqliteStore::open(&url).await.expect("open again");
    let queued: i64 = conn
        .query_row("select count(*) from fts_pending", [], |row| row.get(0))
        .expect("count queue");
    assert_eq!(queued, 0, "opening indexes what is queued");
    assert_eq!(matches(&conn, "manual"), vec![entry]);
    assert_eq!(matches(&conn, "printer"), vec![entry]);
    assert!(matches(&conn, "intro").is_empty());
    assert!(matches(&conn, "https").is_empty());
    store.close().await;
}

/// The WAL is checkpointed (by a thread of its own, finished by the writer between batches), so
/// the WAL file starts over instead of growing with every commit under a steady load.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_wal_stays_small_under_steady_writes() {
    use helpline_core::event::Actor;
    use helpline_core::service::DeskSettings;
    use helpline_core::service::tickets::open_ticket;
    use helpline_core::store::Store;
    use helpline_store_conformance::cases::sample_ticket;

    let (dir, path) = scratch_database();
    let store = open_at(&path).await;
    let store: &dyn Store = &store;
    // One ticket at a time: every commit writes its own few dozen pages.
    for i in 0..2_000 {
        open_ticket(
            store,
            &DeskSettings::default(),
            sample_ticket(&format!("customer{i}@example.com")),
            Actor::system(),
        )
        .await
        .expect("ticket opened");
    }
    let wal = std::fs::metadata(dir.path().join("helpline.db-wal"))
        .expect("WAL file")
        .len();
    // 2,000 commits write about 175 MB of WAL frames in all; checkpointed every 8,000 frames
    // (33 MB) the file is reused from its start, again and again: a WAL that started over only
    // once would be several times this bound.
    assert!(wal < 45 * 1024 * 1024, "WAL file of {wal} bytes");
}

/// Under continuous concurrent writes of large entries, checkpoint passes run alongside the
/// commits and the writer finishes each between two batches, so the WAL starts over instead of
/// growing with the load (without the writer's part it reached 78 MB with 1,200 tickets). That
/// the writer finishes after a bounded number of passes even when every pass falls behind is a
/// unit test of the checkpointer.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_wal_starts_over_under_heavy_concurrent_writes() {
    use helpline_core::event::Actor;
    use helpline_core::service::DeskSettings;
    use helpline_core::service::tickets::open_ticket;
    use helpline_core::store::Store;
    use helpline_store_conformance::cases::sample_ticket;

    let (dir, path) = scratch_database();
    let store = open_at(&path).await;
    let store: &dyn Store = &store;
    let paragraph = "The order form fails again after the update, with the same error. ";
    // Forty-eight writers without a pause: the writer always has a full batch waiting.
    futures::future::join_all((0..48).map(|writer| async move {
        for round in 0..63 {
            let mut new = sample_ticket(&format!("heavy{writer}x{round}@example.com"));
            new.message = helpline_core::body::MessageBody::parse(
                &format!("{writer} {round} {}", paragraph.repeat(400)),
                helpline_core::body::BodyFormat::Text,
            )
            .expect("body");
            open_ticket(store, &DeskSettings::default(), new, Actor::system())
                .await
                .expect("ticket opened");
        }
    }))
    .await;
    // The file keeps the size it once reached.
    let largest = std::fs::metadata(dir.path().join("helpline.db-wal"))
        .expect("WAL file")
        .len();
    // 3,024 tickets of 27 KB write some 225 MB of WAL frames in all; a checkpoint starts at
    // 33 MB, so a WAL that started over only once or twice would exceed this bound.
    assert!(largest < 60 * 1024 * 1024, "WAL file of {largest} bytes");
}

/// More units than one batch may hold (256) arriving at once: the writer commits full batches
/// while the syncer is still busy, and every unit is committed and answered exactly once.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_burst_larger_than_a_batch_commits_every_unit() {
    use helpline_core::event::Actor;
    use helpline_core::service::DeskSettings;
    use helpline_core::service::tickets::open_ticket;
    use helpline_core::store::Store;
    use helpline_store_conformance::cases::sample_ticket;
    use std::sync::Arc;

    let dir = tempfile::tempdir().expect("temporary directory");
    let path = dir.path().join("helpline.db");
    let store: Arc<dyn Store> = Arc::new(
        SqliteStore::open(&format!("sqlite://{}", path.display()))
            .await
            .expect("open SQLite store"),
    );
    let burst: Vec<_> = (0..700)
        .map(|i| {
            let store = Arc::clone(&store);
            tokio::spawn(async move {
                open_ticket(
                    &*store,
                    &DeskSettings::default(),
                    sample_ticket(&format!("burst{i}@example.com")),
                    Actor::system(),
                )
                .await
                .map(|opened| opened.ticket.id)
            })
        })
        .collect();
    let mut ids = Vec::new();
    for task in burst {
        ids.push(task.await.expect("task").expect("ticket opened"));
    }
    ids.sort();
    ids.dedup();
    assert_eq!(ids.len(), 700, "every unit got a ticket of its own");
    let conn = rusqlite::Connection::open(&path).expect("open database");
    let stored: i64 = conn
        .query_row(
            "select count(*) from ticket t join users u on u.user_id = t.user_id \
             join user_email e on e.user_id = u.user_id where e.address like 'burst%'",
            [],
            |row| row.get(0),
        )
        .expect("count");
    assert_eq!(stored, 700);
}

/// The writer keeps the catalogues between units of work (migration 0015 says when its copy is
/// out of date): a unit sees every change — its own, an earlier unit's, another connection's —
/// and none that was rolled back, in the catalogues and in the defaults new tickets get.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_writers_catalogue_copy_follows_every_change() {
    use helpline_core::Error;
    use helpline_core::catalog::NewDepartment;
    use helpline_core::store::Store;

    async fn department_names(store: &dyn Store) -> Vec<String> {
        store
            .write(|tx| {
                Box::pin(async move {
                    Ok(tx
                        .catalog()
                        .await?
                        .departments
                        .into_iter()
                        .map(|d| d.name)
                        .collect::<Vec<_>>())
                })
            })
            .await
            .expect("catalogue read in a unit of work")
    }

    async fn add_department(store: &dyn Store, name: &'static str, then_fail: bool) -> Vec<String> {
        let outcome = store
            .write(move |tx| {
                Box::pin(async move {
                    tx.insert_department(
                        &NewDepartment {
                            name: name.to_owned(),
                        },
                        helpline_core::now(),
                    )
                    .await?;
                    let seen: Vec<String> = tx
                        .catalog()
                        .await?
                        .departments
                        .into_iter()
                        .map(|d| d.name)
                        .collect();
                    if then_fail {
                        return Err(Error::Conflict(format!("fails after reading {seen:?}")));
                    }
                    Ok(seen)
                })
            })
            .await;
        match outcome {
            Ok(seen) => seen,
            Err(Error::Conflict(message)) if then_fail => vec![message],
            Err(other) => panic!("unexpected outcome: {other}"),
        }
    }

    let (_dir, path) = scratch_database();
    let sqlite = open_at(&path).await;
    let store: &dyn Store = &sqlite;
    let conn = rusqlite::Connection::open(&path).expect("second connection");
    conn.busy_timeout(std::time::Duration::from_secs(10))
        .expect("busy timeout");

    let before = department_names(store).await;
    assert!(!before.contains(&"Billing".to_owned()));

    // The unit's own change, and the next unit's view of it.
    assert!(
        add_department(store, "Billing", false)
            .await
            .contains(&"Billing".to_owned())
    );
    assert!(
        department_names(store)
            .await
            .contains(&"Billing".to_owned())
    );

    // A unit that read its own change and then failed: the change is gone, and so is what the
    // copy held of it — also once another change (here another connection's) has brought the
    // version number to where the failed unit had taken it.
    let failed = add_department(store, "Ghost", true).await;
    assert!(failed[0].contains("Ghost"), "{failed:?}");
    conn.execute(
        "update department set name = 'Accounts' where name = 'Billing'",
        [],
    )
    .expect("rename outside the store");
    let names = department_names(store).await;
    assert!(!names.contains(&"Ghost".to_owned()), "{names:?}");
    assert!(names.contains(&"Accounts".to_owned()) && !names.contains(&"Billing".to_owned()));
    assert!(!department_names(store).await.contains(&"Ghost".to_owned()));

    // The defaults a new ticket gets come from the same copy.
    conn.execute("update department set is_default = (name = 'Accounts')", [])
        .expect("new default outside the store");
    let accounts: i64 = conn
        .query_row(
            "select department_id from department where name = 'Accounts'",
            [],
            |row| row.get(0),
        )
        .expect("department id");
    let defaults = store
        .write(|tx| Box::pin(async move { Ok(tx.new_ticket_defaults().await?) }))
        .await
        .expect("defaults");
    assert_eq!(defaults.department_id.0, accounts);
    sqlite.close().await;
}
