//! The VFS against real SQLite connections on real files: every commit readable by another
//! connection at once, recoverable from the files alone (as after a crash), and written in one
//! call.

use rusqlite::{Connection, OpenFlags, params};
use std::path::{Path, PathBuf};
use std::sync::Mutex;

/// The write counter is per process: tests that read it run one at a time.
static SERIAL: Mutex<()> = Mutex::new(());

fn serial() -> std::sync::MutexGuard<'static, ()> {
    SERIAL
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner())
}

/// A writer as the store opens it: this VFS, WAL, commits not synced by SQLite, no automatic
/// checkpoint.
fn writer(path: &Path) -> Connection {
    let vfs = helpline_sqlite_wal_vfs::register().expect("register the VFS");
    let conn = Connection::open_with_flags_and_vfs(
        path,
        OpenFlags::SQLITE_OPEN_READ_WRITE | OpenFlags::SQLITE_OPEN_CREATE,
        vfs,
    )
    .expect("open the writer");
    conn.execute_batch(
        "pragma journal_mode = wal; pragma synchronous = normal; pragma wal_autocheckpoint = 0;
         create table if not exists item (id integer primary key, body text not null unique);
         create index if not exists item_by_length on item (length(body), id);",
    )
    .expect("set the writer up");
    conn
}

/// A reader through SQLite's default VFS, as the store's readers are.
fn reader(path: &Path) -> Connection {
    Connection::open_with_flags(path, OpenFlags::SQLITE_OPEN_READ_ONLY).expect("open a reader")
}

fn count(conn: &Connection) -> i64 {
    conn.query_row("select count(*) from item", [], |row| row.get(0))
        .expect("count the items")
}

fn body(n: i64) -> String {
    // Distinct, a few hundred bytes, in no particular order: inserts touch many pages.
    format!(
        "{:016x}-{}",
        n.wrapping_mul(0x9E37_79B9_7F4A_7C15_u64 as i64),
        "x".repeat(300)
    )
}

fn insert_batch(conn: &mut Connection, from: i64, rows: i64) {
    let tx = conn.transaction().expect("begin");
    for n in from..from + rows {
        tx.execute(
            "insert into item (id, body) values (?1, ?2)",
            params![n, body(n)],
        )
        .expect("insert");
    }
    tx.commit().expect("commit");
}

/// The database and its WAL copied as they are on disk, the writer still open: what a crash at
/// this moment would leave. Opening the copy runs SQLite's WAL recovery, which keeps frames only
/// up to the last commit whose checksums all hold.
fn copy_as_after_a_crash(dir: &Path, path: &Path) -> PathBuf {
    let copy = dir.join("copy.db");
    std::fs::copy(path, &copy).expect("copy the database file");
    let wal = PathBuf::from(format!("{}-wal", path.display()));
    std::fs::copy(&wal, dir.join("copy.db-wal")).expect("copy the WAL");
    copy
}

fn assert_intact(conn: &Connection) {
    let check: String = conn
        .query_row("pragma integrity_check", [], |row| row.get(0))
        .expect("integrity check");
    assert_eq!(check, "ok");
}

#[test]
fn every_commit_is_read_by_other_connections_and_recovered_from_the_files() {
    let _serial = serial();
    let dir = tempfile::tempdir().expect("temporary directory");
    let path = dir.path().join("h.db");
    let mut writer = writer(&path);
    let reader = reader(&path);

    let mut rows = 0;
    for batch in 0..150 {
        let size = 1 + batch % 13;
        insert_batch(&mut writer, rows, size);
        rows += size;
        assert_eq!(count(&reader), rows, "after batch {batch}");
        let last: String = reader
            .query_row("select body from item where id = ?1", [rows - 1], |row| {
                row.get(0)
            })
            .expect("read the newest row");
        assert_eq!(last, body(rows - 1));
    }

    let copy = copy_as_after_a_crash(dir.path(), &path);
    let recovered = Connection::open(&copy).expect("open the copy");
    assert_eq!(count(&recovered), rows, "every commit is in the files");
    assert_intact(&recovered);
}

#[test]
fn a_commit_reaches_the_wal_in_one_write() {
    let _serial = serial();
    let dir = tempfile::tempdir().expect("temporary directory");
    let path = dir.path().join("h.db");
    let mut writer = writer(&path);
    insert_batch(&mut writer, 0, 50);

    let pages_before: i64 = writer
        .query_row("pragma page_count", [], |row| row.get(0))
        .expect("page count");
    let before = helpline_sqlite_wal_vfs::wal_write_calls();
    insert_batch(&mut writer, 50, 20);
    let writes = helpline_sqlite_wal_vfs::wal_write_calls() - before;
    let pages_after: i64 = writer
        .query_row("pragma page_count", [], |row| row.get(0))
        .expect("page count");

    // 20 rows of 300 bytes in a table and two indexes dirty several pages: without the VFS
    // that is two writes per page.
    assert!(pages_after > pages_before, "the commit wrote new pages");
    assert_eq!(writes, 1, "one write for the commit's frames");
}

#[test]
fn a_new_generation_of_the_wal_is_gathered_too() {
    let _serial = serial();
    let dir = tempfile::tempdir().expect("temporary directory");
    let path = dir.path().join("h.db");
    let mut writer = writer(&path);
    insert_batch(&mut writer, 0, 40);

    // Another connection checkpoints everything, so the writer's next commit starts the WAL
    // over from its header, as the store's checkpoint thread makes it do.
    let checkpointer = Connection::open(&path).expect("open a checkpointer");
    checkpointer
        .query_row("pragma wal_checkpoint(restart)", [], |_| Ok(()))
        .expect("checkpoint");

    let before = helpline_sqlite_wal_vfs::wal_write_calls();
    insert_batch(&mut writer, 40, 10);
    let restart_writes = helpline_sqlite_wal_vfs::wal_write_calls() - before;
    let before = helpline_sqlite_wal_vfs::wal_write_calls();
    insert_batch(&mut writer, 50, 10);
    let next_writes = helpline_sqlite_wal_vfs::wal_write_calls() - before;

    assert_eq!(restart_writes, 2, "the WAL header, then the frames");
    assert_eq!(next_writes, 1);
    assert_eq!(count(&reader(&path)), 60);
    let copy = copy_as_after_a_crash(dir.path(), &path);
    let recovered = Connection::open(&copy).expect("open the copy");
    assert_eq!(count(&recovered), 60);
    assert_intact(&recovered);
}

#[test]
fn transactions_larger_than_the_cache_spill_rewrite_and_roll_back_correctly() {
    let _serial = serial();
    let dir = tempfile::tempdir().expect("temporary directory");
    let path = dir.path().join("h.db");
    let mut writer = writer(&path);
    // A tiny page cache: SQLite writes dirty pages to the WAL before the commit (spills), then
    // rewrites those frames in place when the pages change again, and rewrites the checksums
    // of every frame after the first one changed.
    writer
        .execute_batch("pragma cache_size = 8;")
        .expect("shrink the cache");
    insert_batch(&mut writer, 0, 100);

    let tx = writer.transaction().expect("begin");
    for n in 100..1_100 {
        tx.execute(
            "insert into item (id, body) values (?1, ?2)",
            params![n, body(n)],
        )
        .expect("insert");
    }
    tx.execute("update item set body = body || 'y' where id % 3 = 0", [])
        .expect("update");
    tx.commit().expect("commit");

    let tx = writer.transaction().expect("begin");
    for n in 1_100..2_000 {
        tx.execute(
            "insert into item (id, body) values (?1, ?2)",
            params![n, body(n)],
        )
        .expect("insert");
    }
    tx.rollback().expect("roll back");

    let read = reader(&path);
    assert_eq!(count(&read), 1_100);
    let updated: i64 = read
        .query_row(
            "select count(*) from item where body like '%y'",
            [],
            |row| row.get(0),
        )
        .expect("count the updated rows");
    assert_eq!(updated, (0..1_100).filter(|n| n % 3 == 0).count() as i64);

    let copy = copy_as_after_a_crash(dir.path(), &path);
    let recovered = Connection::open(&copy).expect("open the copy");
    assert_eq!(
        count(&recovered),
        1_100,
        "the rolled-back rows are not recovered"
    );
    let updated_recovered: i64 = recovered
        .query_row(
            "select count(*) from item where body like '%y'",
            [],
            |row| row.get(0),
        )
        .expect("count the updated rows");
    assert_eq!(updated_recovered, updated);
    assert_intact(&recovered);
}

#[test]
fn the_wal_survives_closing_and_reopening_through_the_vfs() {
    let _serial = serial();
    let dir = tempfile::tempdir().expect("temporary directory");
    let path = dir.path().join("h.db");
    {
        let mut writer = writer(&path);
        insert_batch(&mut writer, 0, 30);
        // Keep the WAL when this connection closes, so the next one opens it with frames.
        writer
            .execute_batch("pragma wal_checkpoint(passive);")
            .expect("checkpoint");
        insert_batch(&mut writer, 30, 30);
    }
    let mut writer = writer(&path);
    assert_eq!(count(&writer), 60);
    insert_batch(&mut writer, 60, 30);
    assert_eq!(count(&reader(&path)), 90);
    assert_intact(&writer);
}
