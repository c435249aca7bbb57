//! The VFS against real SQLite connections on real files: every commit readable by another
//! connection at once, recoverable from the files alone (as after a crash), and written in one
//! call.

use rusqlite::{Connection, OpenFlags, params};
use std::path::{Path, PathBuf};
use std::sync::{Mutex, MutexGuard};
use tempfile::TempDir;

/// The write counter is per process: tests that read it run one at a time.
static SERIAL: Mutex<()> = Mutex::new(());

/// A test's turn (see `SERIAL`), its directory (removed when dropped) and its database's path.
fn scratch() -> (MutexGuard<'static, ()>, TempDir, PathBuf) {
    let serial = SERIAL
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner());
    let dir = tempfile::tempdir().expect("temporary directory");
    let path = dir.path().join("h.db");
    (serial, dir, path)
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

/// A second read-write connection through this VFS, with no set-up.
fn second_connection(path: &Path) -> Connection {
    let vfs = helpline_sqlite_wal_vfs::register().expect("register the VFS");
    Connection::open_with_flags_and_vfs(path, OpenFlags::SQLITE_OPEN_READ_WRITE, vfs)
        .expect("open a second connection")
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

fn insert_rows(conn: &Connection, ids: std::ops::Range<i64>) {
    for n in ids {
        conn.execute(
            "insert into item (id, body) values (?1, ?2)",
            params![n, body(n)],
        )
        .expect("insert");
    }
}

fn count_where(conn: &Connection, condition: &str) -> i64 {
    conn.query_row(
        &format!("select count(*) from item where {condition}"),
        [],
        |row| row.get(0),
    )
    .expect("count the items")
}

fn insert_batch(conn: &mut Connection, from: i64, rows: i64) {
    let tx = conn.transaction().expect("begin");
    insert_rows(&tx, from..from + rows);
    tx.commit().expect("commit");
}

/// The database and its WAL copied as they are on disk, the writer still open (what a crash at
/// this moment would leave), opened, and checked intact. Opening the copy runs SQLite's WAL
/// recovery, which keeps frames only up to the last commit whose checksums all hold.
fn recovered_after_a_crash(dir: &Path, path: &Path) -> Connection {
    let copy = dir.join("copy.db");
    std::fs::copy(path, &copy).expect("copy the database file");
    let wal = PathBuf::from(format!("{}-wal", path.display()));
    std::fs::copy(&wal, dir.join("copy.db-wal")).expect("copy the WAL");
    let recovered = Connection::open(&copy).expect("open the copy");
    assert_intact(&recovered);
    recovered
}

fn assert_intact(conn: &Connection) {
    let check: String = conn
        .query_row("pragma integrity_check", [], |row| row.get(0))
        .expect("integrity check");
    assert_eq!(check, "ok");
}

#[test]
fn every_commit_is_read_by_other_connections_and_recovered_from_the_files() {
    let (_serial, dir, path) = scratch();
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

    let recovered = recovered_after_a_crash(dir.path(), &path);
    assert_eq!(count(&recovered), rows, "every commit is in the files");
}

#[test]
fn a_commit_reaches_the_wal_in_one_write() {
    let (_serial, _dir, path) = scratch();
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
    let (_serial, dir, path) = scratch();
    let mut writer = writer(&path);
    insert_batch(&mut writer, 0, 40);

    // Another connection, through this VFS too as the store's checkpoint thread is,
    // checkpoints everything, so the writer's next commit starts the WAL over from its header.
    let checkpointer = second_connection(&path);
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
    let recovered = recovered_after_a_crash(dir.path(), &path);
    assert_eq!(count(&recovered), 60);
}

#[test]
fn transactions_larger_than_the_cache_spill_rewrite_and_roll_back_correctly() {
    let (_serial, dir, path) = scratch();
    let mut writer = writer(&path);
    // A tiny page cache: SQLite writes dirty pages to the WAL before the commit (spills), then
    // rewrites those frames in place when the pages change again, and rewrites the checksums
    // of every frame after the first one changed.
    writer
        .execute_batch("pragma cache_size = 8;")
        .expect("shrink the cache");
    insert_batch(&mut writer, 0, 100);

    let tx = writer.transaction().expect("begin");
    insert_rows(&tx, 100..1_100);
    tx.execute("update item set body = body || 'y' where id % 3 = 0", [])
        .expect("update");
    tx.commit().expect("commit");

    let tx = writer.transaction().expect("begin");
    insert_rows(&tx, 1_100..2_000);
    tx.rollback().expect("roll back");

    // The store's pattern: each unit in a savepoint, a failed one rolled back to it, the rest
    // committed together.
    let tx = writer.transaction().expect("begin");
    tx.execute_batch("savepoint unit").expect("savepoint");
    insert_rows(&tx, 1_100..1_150);
    tx.execute_batch("release unit; savepoint unit")
        .expect("the next savepoint");
    insert_rows(&tx, 5_000..5_800);
    tx.execute_batch("rollback to unit; release unit")
        .expect("roll the unit back");
    tx.commit().expect("commit");

    let updated_ids = (0..1_100).filter(|n| n % 3 == 0).count() as i64;
    let read = reader(&path);
    assert_eq!(count(&read), 1_150);
    assert_eq!(count_where(&read, "body like '%y'"), updated_ids);
    assert_intact(&read);

    let recovered = recovered_after_a_crash(dir.path(), &path);
    assert_eq!(count(&recovered), 1_150, "exactly the committed rows");
    assert_eq!(count_where(&recovered, "body like '%y'"), updated_ids);
}

#[test]
fn a_writer_reopened_on_a_wal_with_frames_appends_after_them() {
    let (_serial, dir, path) = scratch();
    std::fs::File::create(&path).expect("create the database file");
    // A reader open across the writer's close keeps the WAL and its frames: the next writer
    // does not know where they end until SQLite writes.
    let keeper = reader(&path);
    {
        let mut writer = writer(&path);
        insert_batch(&mut writer, 0, 30);
        assert_eq!(count(&keeper), 30);
        insert_batch(&mut writer, 30, 30);
    }
    let wal = PathBuf::from(format!("{}-wal", path.display()));
    let wal_bytes = std::fs::metadata(&wal).map(|m| m.len()).unwrap_or(0);
    assert!(wal_bytes > 0, "the WAL was kept with its frames");
    let mut writer = writer(&path);
    assert_eq!(count(&writer), 60);
    for batch in 0..5 {
        insert_batch(&mut writer, 60 + batch * 10, 10);
    }
    assert_eq!(count(&keeper), 110);
    let recovered = recovered_after_a_crash(dir.path(), &path);
    assert_eq!(count(&recovered), 110);
}

#[test]
fn frames_of_a_rolled_back_transaction_never_overwrite_another_writers_commit() {
    let (_serial, dir, path) = scratch();
    let mut writer = writer(&path);
    writer
        .execute_batch("pragma cache_size = 8;")
        .expect("shrink the cache");
    insert_batch(&mut writer, 0, 20);

    // A transaction spills frames, then rolls back. Another connection (the default VFS, as
    // another process would be) then commits into the WAL where those frames were. (Whether
    // any of them is still gathered at the rollback depends on SQLite's page cache; the VFS
    // forgets such frames when the write lock is released.)
    let tx = writer.transaction().expect("begin");
    insert_rows(&tx, 100..400);
    // Large rows as well: more pages spilled, some of them never read back before the end.
    for n in 400..420 {
        tx.execute(
            "insert into item (id, body) values (?1, ?2)",
            params![n, format!("{n}{}", "z".repeat(3_000))],
        )
        .expect("insert a large row");
    }
    tx.rollback().expect("roll back");
    let other = Connection::open(&path).expect("open another writer");
    other
        .execute_batch("pragma busy_timeout = 5000;")
        .expect("busy timeout");
    insert_rows(&other, 1_000..1_040);

    // The first writer reads (a new read transaction crosses the barrier) and writes again.
    assert_eq!(count(&writer), 60);
    insert_batch(&mut writer, 2_000, 10);

    let read = reader(&path);
    assert_eq!(count(&read), 70);
    assert_eq!(count_where(&read, "id between 1000 and 1039"), 40);
    assert_intact(&read);
    let recovered = recovered_after_a_crash(dir.path(), &path);
    assert_eq!(count(&recovered), 70);
    assert_eq!(count_where(&recovered, "id between 1000 and 1039"), 40);
}
