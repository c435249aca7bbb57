//! A SQLite VFS that writes each commit's WAL frames in one system call.
//!
//! SQLite appends a WAL frame with two `pwrite`s, its 24-byte header and then the page, so a
//! commit of 27 pages costs 54 system calls. The kernel serves each of them page by page, and a
//! frame straddles two pages of the file. In the store's single writer these writes were about
//! a quarter of its time (`perf`, docs/benchmarks.md). This VFS wraps the default one ("unix")
//! and changes one thing. For WAL files only, it gathers the frames a transaction appends and
//! writes them out in one call. SQLite still makes every call it made before; nothing is
//! reordered past a point where SQLite or another connection could look at the file.
//!
//! When the gathered bytes go out:
//! - **With the commit frame.** The last frame of a commit carries the database size in its
//!   header, the other frames zero. The write of that frame's page writes everything gathered,
//!   and its result is the write's result. So a failed write fails the `COMMIT`, as it did
//!   before.
//! - **Before any other operation on the WAL** by the same connection: a write that does not
//!   append a frame (the WAL header, a frame rewritten in place, checksums rewritten), a read, a
//!   sync, a size, a truncation, a file control, the close. SQLite therefore reads back what it
//!   wrote, in the order it wrote it.
//! - **Before the commit is published** to other connections. SQLite publishes a commit by
//!   rewriting the WAL index header in shared memory, with a memory barrier (`xShmBarrier`) in
//!   between. The barrier writes whatever is still gathered; under the rules above nothing
//!   should be. This call cannot return an error. A failed write there would let readers see
//!   frames that are not in the file, so the process aborts instead: a restart recovers the WAL
//!   up to the last complete commit, and no caller was told that this one succeeded.
//! - **In runs of at most one write's size** while a large transaction spills pages early, so
//!   memory stays bounded.
//!
//! A write that fails keeps its frames gathered, and every later use of the WAL tries them
//! again first and fails while the write does: no commit can be published over frames missing
//! from the file. Frames still gathered when the connection releases the WAL write lock belong
//! to a transaction that rolled back; they are forgotten before the lock goes, since another
//! connection may then append where they were.
//!
//! Durability is unchanged: gathered frames are in the file (in the page cache) when `COMMIT`
//! returns, exactly as before, and whoever syncs the WAL afterwards syncs them.
//!
//! Only byte runs that look exactly like appended frames are gathered: a 24-byte header at the
//! append position, then a page right after it. Anything else is written through, so a SQLite
//! that wrote frames differently would only lose the speed-up.

use rusqlite::ffi;
use std::ffi::{CStr, c_char, c_int, c_void};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Mutex, OnceLock};

/// The name the VFS is registered under; pass it when opening a connection.
pub const VFS_NAME: &str = "helpline-wal-batch";
const VFS_NAME_C: &CStr = c"helpline-wal-batch";

/// A WAL frame's header: page number, database size after a commit (0 otherwise), salts and
/// checksums.
const FRAME_HEADER_BYTES: usize = 24;
/// The WAL file's own header, written at offset 0 when a new generation of the WAL begins.
const WAL_HEADER_BYTES: i64 = 32;
/// The unix VFS writes at most 0x1ffff bytes per `xWrite`; larger runs go out in pieces.
const MAX_WRITE_BYTES: usize = 0x1f000;

/// Write calls this VFS has passed to the wrapped one for WAL files, in this process: a count
/// for tests and diagnostics (a commit's frames should cost one).
pub fn wal_write_calls() -> u64 {
    WAL_WRITE_CALLS.load(Ordering::Relaxed)
}

static WAL_WRITE_CALLS: AtomicU64 = AtomicU64::new(0);

/// Registering the VFS failed: SQLite has no default VFS, or refused the registration.
#[derive(Debug, Clone)]
pub struct RegisterError(String);

impl std::fmt::Display for RegisterError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "registering the SQLite VFS {VFS_NAME}: {}", self.0)
    }
}

impl std::error::Error for RegisterError {}

/// Registers the VFS with SQLite (once per process; not as the default) and returns its name,
/// for `Connection::open_with_flags_and_vfs`.
pub fn register() -> Result<&'static str, RegisterError> {
    static REGISTERED: OnceLock<Result<(), RegisterError>> = OnceLock::new();
    REGISTERED
        .get_or_init(register_once)
        .clone()
        .map(|()| VFS_NAME)
}

fn register_once() -> Result<(), RegisterError> {
    // SAFETY: sqlite3_vfs_find with a null name returns the default VFS (or null); SQLite
    // initialises itself first.
    let real = unsafe { ffi::sqlite3_vfs_find(std::ptr::null()) };
    if real.is_null() {
        return Err(RegisterError("SQLite has no default VFS".into()));
    }
    // SAFETY: `real` is a registered VFS, which SQLite keeps for the life of the process.
    let real_ref = unsafe { &*real };
    let file_bytes = usize::try_from(real_ref.szOsFile)
        .map_err(|_| RegisterError("the default VFS reports a negative file size".into()))?;
    let vfs = ffi::sqlite3_vfs {
        iVersion: 2,
        szOsFile: c_int::try_from(REAL_FILE_OFFSET + file_bytes)
            .map_err(|_| RegisterError("file structure too large".into()))?,
        mxPathname: real_ref.mxPathname,
        pNext: std::ptr::null_mut(),
        zName: VFS_NAME_C.as_ptr(),
        pAppData: real.cast(),
        xOpen: Some(vfs_open),
        xDelete: Some(vfs_delete),
        xAccess: Some(vfs_access),
        xFullPathname: Some(vfs_full_pathname),
        xDlOpen: Some(vfs_dl_open),
        xDlError: Some(vfs_dl_error),
        xDlSym: Some(vfs_dl_sym),
        xDlClose: Some(vfs_dl_close),
        xRandomness: Some(vfs_randomness),
        xSleep: Some(vfs_sleep),
        xCurrentTime: Some(vfs_current_time),
        xGetLastError: Some(vfs_get_last_error),
        xCurrentTimeInt64: Some(vfs_current_time_int64),
        xSetSystemCall: None,
        xGetSystemCall: None,
        xNextSystemCall: None,
    };
    // SQLite keeps the pointer for the life of the process: leaked on purpose, once.
    let vfs = Box::leak(Box::new(vfs));
    // SAFETY: `vfs` is a complete sqlite3_vfs that lives forever; not made the default.
    let rc = unsafe { ffi::sqlite3_vfs_register(vfs, 0) };
    if rc != ffi::SQLITE_OK {
        return Err(RegisterError(format!("sqlite3_vfs_register returned {rc}")));
    }
    Ok(())
}

/// The VFS this one wraps, kept in `pAppData`.
///
/// # Safety
/// `vfs` must be the VFS registered by `register_once`.
unsafe fn real_vfs(vfs: *mut ffi::sqlite3_vfs) -> *mut ffi::sqlite3_vfs {
    // SAFETY: the caller passes our VFS, whose pAppData is the default VFS.
    unsafe { (*vfs).pAppData.cast() }
}

/// Calls method `$method` of the wrapped VFS with the same arguments.
macro_rules! forward_vfs {
    ($name:ident, $method:ident, ($($arg:ident: $ty:ty),*) -> $ret:ty, $missing:expr) => {
        unsafe extern "C" fn $name(vfs: *mut ffi::sqlite3_vfs, $($arg: $ty),*) -> $ret {
            // SAFETY: SQLite calls this with our VFS; the default VFS's method takes the same
            // arguments.
            unsafe {
                let real = real_vfs(vfs);
                match (*real).$method {
                    Some(method) => method(real, $($arg),*),
                    None => $missing,
                }
            }
        }
    };
}

forward_vfs!(vfs_delete, xDelete, (name: *const c_char, sync_dir: c_int) -> c_int, ffi::SQLITE_IOERR_DELETE);
forward_vfs!(vfs_access, xAccess, (name: *const c_char, flags: c_int, out: *mut c_int) -> c_int, ffi::SQLITE_IOERR_ACCESS);
forward_vfs!(vfs_full_pathname, xFullPathname, (name: *const c_char, n: c_int, out: *mut c_char) -> c_int, ffi::SQLITE_CANTOPEN);
forward_vfs!(vfs_dl_open, xDlOpen, (name: *const c_char) -> *mut c_void, std::ptr::null_mut());
forward_vfs!(vfs_dl_error, xDlError, (n: c_int, out: *mut c_char) -> (), ());
forward_vfs!(vfs_dl_sym, xDlSym, (handle: *mut c_void, symbol: *const c_char) -> Option<unsafe extern "C" fn(*mut ffi::sqlite3_vfs, *mut c_void, *const c_char)>, None);
forward_vfs!(vfs_dl_close, xDlClose, (handle: *mut c_void) -> (), ());
forward_vfs!(vfs_randomness, xRandomness, (n: c_int, out: *mut c_char) -> c_int, 0);
forward_vfs!(vfs_sleep, xSleep, (micros: c_int) -> c_int, 0);
forward_vfs!(vfs_current_time, xCurrentTime, (out: *mut f64) -> c_int, ffi::SQLITE_ERROR);
forward_vfs!(vfs_get_last_error, xGetLastError, (n: c_int, out: *mut c_char) -> c_int, 0);
forward_vfs!(vfs_current_time_int64, xCurrentTimeInt64, (out: *mut ffi::sqlite3_int64) -> c_int, ffi::SQLITE_ERROR);

/// An open file of this VFS: SQLite's `sqlite3_file` header, then what this VFS keeps, then
/// (at `REAL_FILE_OFFSET`) the wrapped VFS's own file structure, all in the one allocation
/// SQLite makes of `szOsFile` bytes.
#[repr(C)]
struct File {
    base: ffi::sqlite3_file,
    real: *mut ffi::sqlite3_file,
    role: Role,
}

const REAL_FILE_OFFSET: usize = std::mem::size_of::<File>().next_multiple_of(16);

enum Role {
    /// A main database file, the WAL its connection has open (null when none), and whether
    /// the connection holds the WAL's write lock.
    Database {
        name: usize,
        wal: *mut File,
        write_locked: bool,
    },
    /// A WAL file, the database file of the same connection (null when not found), and the
    /// frames gathered so far.
    Wal {
        database: *mut File,
        gathered: Gathered,
    },
    /// Anything else (temporary files, rollback journals): passed through.
    Other,
}

/// Frames appended to a WAL and not written yet.
#[derive(Default)]
struct Gathered {
    bytes: Vec<u8>,
    /// The file offset of `bytes[0]`.
    start: i64,
    /// Where the next appended frame goes; `None` until a write has shown it.
    append_at: Option<i64>,
    /// A frame header was just gathered and its page is expected next: whether it marks a
    /// commit.
    header_commits: Option<bool>,
}

/// Main database files open through this VFS, by the address of their name, so that a WAL
/// opened later finds the database file of its connection (`sqlite3_filename_database`).
static DATABASES: Mutex<Vec<(usize, usize)>> = Mutex::new(Vec::new());

fn databases() -> std::sync::MutexGuard<'static, Vec<(usize, usize)>> {
    DATABASES
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner())
}

static METHODS: ffi::sqlite3_io_methods = ffi::sqlite3_io_methods {
    iVersion: 3,
    xClose: Some(file_close),
    xRead: Some(file_read),
    xWrite: Some(file_write),
    xTruncate: Some(file_truncate),
    xSync: Some(file_sync),
    xFileSize: Some(file_size),
    xLock: Some(file_lock),
    xUnlock: Some(file_unlock),
    xCheckReservedLock: Some(file_check_reserved_lock),
    xFileControl: Some(file_control),
    xSectorSize: Some(file_sector_size),
    xDeviceCharacteristics: Some(file_device_characteristics),
    xShmMap: Some(file_shm_map),
    xShmLock: Some(file_shm_lock),
    xShmBarrier: Some(file_shm_barrier),
    xShmUnmap: Some(file_shm_unmap),
    xFetch: Some(file_fetch),
    xUnfetch: Some(file_unfetch),
};

unsafe extern "C" fn vfs_open(
    vfs: *mut ffi::sqlite3_vfs,
    name: ffi::sqlite3_filename,
    file: *mut ffi::sqlite3_file,
    flags: c_int,
    out_flags: *mut c_int,
) -> c_int {
    // SAFETY: SQLite gives us `szOsFile` bytes at `file`, enough for `File` and, after
    // `REAL_FILE_OFFSET`, the default VFS's structure, which that VFS's xOpen fills in.
    unsafe {
        let real_vfs = real_vfs(vfs);
        let real = file
            .cast::<u8>()
            .add(REAL_FILE_OFFSET)
            .cast::<ffi::sqlite3_file>();
        (*real).pMethods = std::ptr::null();
        (*file).pMethods = std::ptr::null();
        let Some(open) = (*real_vfs).xOpen else {
            return ffi::SQLITE_CANTOPEN;
        };
        let rc = open(real_vfs, name, real, flags, out_flags);
        if rc != ffi::SQLITE_OK || (*real).pMethods.is_null() {
            // Our pMethods stays null, so SQLite calls nothing on this file, not even xClose:
            // close the wrapped file here if its VFS asked for that.
            if let Some(close) = (*real).pMethods.as_ref().and_then(|methods| methods.xClose) {
                close(real);
            }
            return if rc == ffi::SQLITE_OK {
                ffi::SQLITE_CANTOPEN
            } else {
                rc
            };
        }
        let this = file.cast::<File>();
        let role = if flags & ffi::SQLITE_OPEN_MAIN_DB != 0 && !name.is_null() {
            databases().push((name as usize, this as usize));
            Role::Database {
                name: name as usize,
                wal: std::ptr::null_mut(),
                write_locked: false,
            }
        } else if flags & ffi::SQLITE_OPEN_WAL != 0 && !name.is_null() {
            let database_name = ffi::sqlite3_filename_database(name) as usize;
            let database = databases()
                .iter()
                .find(|(name, _)| *name == database_name)
                .map_or(std::ptr::null_mut(), |(_, file)| *file as *mut File);
            if let Some(Role::Database { wal, .. }) = database.as_mut().map(|db| &mut db.role) {
                *wal = this;
            }
            Role::Wal {
                database,
                gathered: Gathered::default(),
            }
        } else {
            Role::Other
        };
        std::ptr::write(
            this,
            File {
                base: ffi::sqlite3_file { pMethods: &METHODS },
                real,
                role,
            },
        );
        ffi::SQLITE_OK
    }
}

impl File {
    /// # Safety
    /// `file` must be a file this VFS opened and has not closed.
    unsafe fn from<'a>(file: *mut ffi::sqlite3_file) -> &'a mut File {
        // SAFETY: vfs_open wrote a `File` at this address, and SQLite serialises the calls on a
        // connection's files.
        unsafe { &mut *file.cast::<File>() }
    }

    fn methods(&self) -> &'static ffi::sqlite3_io_methods {
        // SAFETY: the wrapped file was opened successfully (vfs_open), so its pMethods points
        // at the default VFS's static method table.
        unsafe { &*(*self.real).pMethods }
    }

    /// Writes `data` at `offset` through the wrapped file, in pieces the unix VFS accepts.
    fn write_through(&self, data: &[u8], mut offset: i64) -> c_int {
        let Some(write) = self.methods().xWrite else {
            return ffi::SQLITE_IOERR_WRITE;
        };
        let is_wal = matches!(self.role, Role::Wal { .. });
        for piece in data.chunks(MAX_WRITE_BYTES) {
            if is_wal {
                WAL_WRITE_CALLS.fetch_add(1, Ordering::Relaxed);
            }
            // SAFETY: `piece` is valid for its length; the length fits a c_int.
            let rc = unsafe {
                write(
                    self.real,
                    piece.as_ptr().cast(),
                    piece.len() as c_int,
                    offset,
                )
            };
            if rc != ffi::SQLITE_OK {
                return rc;
            }
            offset += piece.len() as i64;
        }
        ffi::SQLITE_OK
    }

    /// Writes out whatever frames are gathered. What failed to be written is dropped: the
    /// error fails the transaction that wrote the frames.
    fn flush(&mut self) -> c_int {
        let Role::Wal { gathered, .. } = &mut self.role else {
            return ffi::SQLITE_OK;
        };
        gathered.header_commits = None;
        if gathered.bytes.is_empty() {
            return ffi::SQLITE_OK;
        }
        let bytes = std::mem::take(&mut gathered.bytes);
        let start = gathered.start;
        let rc = self.write_through(&bytes, start);
        if let Role::Wal { gathered, .. } = &mut self.role {
            // Keep the allocation for the next frames. What failed to go out stays gathered:
            // every later use of the WAL tries again first and fails while the write does, so
            // no commit can be published over frames missing from the file.
            gathered.bytes = bytes;
            if rc == ffi::SQLITE_OK {
                gathered.bytes.clear();
            }
        }
        rc
    }

    /// Forgets the gathered frames: they belong to a transaction that ended without
    /// committing them (a commit writes its frames before it ends), and the WAL lock that
    /// made their place in the file this connection's is about to be released.
    fn discard(&mut self) {
        if let Role::Wal { gathered, .. } = &mut self.role {
            gathered.header_commits = None;
            if !gathered.bytes.is_empty() {
                gathered.bytes.clear();
                // The next transaction's frames go where the WAL index says, before these.
                // (The append position only decides what is gathered, never where anything
                // is written: SQLite gives every offset.)
                gathered.append_at = None;
            }
        }
    }

    /// A write to a WAL: gathered when it appends a frame, otherwise written through after
    /// what is gathered.
    fn write_wal(&mut self, data: &[u8], offset: i64) -> c_int {
        let Role::Wal { gathered, .. } = &mut self.role else {
            return self.write_through(data, offset);
        };
        let appends = gathered.append_at == Some(offset);
        let end = offset + data.len() as i64;
        match gathered.header_commits {
            None if appends && data.len() == FRAME_HEADER_BYTES => {
                if gathered.bytes.is_empty() {
                    gathered.start = offset;
                }
                gathered.bytes.extend_from_slice(data);
                gathered.append_at = Some(end);
                gathered.header_commits = Some(data[4..8] != [0; 4]);
                ffi::SQLITE_OK
            }
            Some(commits) if appends => {
                gathered.bytes.extend_from_slice(data);
                gathered.append_at = Some(end);
                gathered.header_commits = None;
                // Frames spilled before a large commit go out in runs as large as one write
                // takes: no more is saved by holding them, and memory stays bounded.
                if commits || gathered.bytes.len() >= MAX_WRITE_BYTES {
                    self.flush()
                } else {
                    ffi::SQLITE_OK
                }
            }
            _ => {
                let rc = self.flush();
                if rc != ffi::SQLITE_OK {
                    return rc;
                }
                let rc = self.write_through(data, offset);
                if rc == ffi::SQLITE_OK
                    && let Role::Wal { gathered, .. } = &mut self.role
                {
                    gathered.append_at = if offset == 0 && end == WAL_HEADER_BYTES {
                        // A new generation of the WAL: its frames follow the header.
                        Some(end)
                    } else {
                        // A frame rewritten in place leaves the append position; anything
                        // past it moves it.
                        Some(gathered.append_at.map_or(end, |at| at.max(end)))
                    };
                }
                rc
            }
        }
    }
}

/// Calls the wrapped file's `$method`, after writing out gathered frames when `$flush`.
macro_rules! forward_file {
    ($name:ident, $method:ident, flush: $flush:expr, ($($arg:ident: $ty:ty),*) -> c_int, $missing:expr) => {
        unsafe extern "C" fn $name(file: *mut ffi::sqlite3_file, $($arg: $ty),*) -> c_int {
            // SAFETY: SQLite calls this with a file this VFS opened; the wrapped method takes the
            // same arguments.
            unsafe {
                let this = File::from(file);
                if $flush {
                    let rc = this.flush();
                    if rc != ffi::SQLITE_OK {
                        return rc;
                    }
                }
                match this.methods().$method {
                    Some(method) => method(this.real, $($arg),*),
                    None => $missing,
                }
            }
        }
    };
}

forward_file!(file_read, xRead, flush: true, (buf: *mut c_void, amount: c_int, offset: ffi::sqlite3_int64) -> c_int, ffi::SQLITE_IOERR_READ);
forward_file!(file_truncate, xTruncate, flush: true, (size: ffi::sqlite3_int64) -> c_int, ffi::SQLITE_IOERR_TRUNCATE);
forward_file!(file_sync, xSync, flush: true, (flags: c_int) -> c_int, ffi::SQLITE_IOERR_FSYNC);
forward_file!(file_size, xFileSize, flush: true, (size: *mut ffi::sqlite3_int64) -> c_int, ffi::SQLITE_IOERR_FSTAT);
forward_file!(file_lock, xLock, flush: true, (level: c_int) -> c_int, ffi::SQLITE_IOERR_LOCK);
forward_file!(file_unlock, xUnlock, flush: true, (level: c_int) -> c_int, ffi::SQLITE_IOERR_UNLOCK);
forward_file!(file_check_reserved_lock, xCheckReservedLock, flush: true, (out: *mut c_int) -> c_int, ffi::SQLITE_IOERR_CHECKRESERVEDLOCK);
forward_file!(file_control, xFileControl, flush: true, (op: c_int, arg: *mut c_void) -> c_int, ffi::SQLITE_NOTFOUND);
forward_file!(file_sector_size, xSectorSize, flush: false, () -> c_int, 4096);
forward_file!(file_device_characteristics, xDeviceCharacteristics, flush: false, () -> c_int, 0);
forward_file!(file_shm_map, xShmMap, flush: false, (region: c_int, size: c_int, extend: c_int, out: *mut *mut c_void) -> c_int, ffi::SQLITE_IOERR_SHMMAP);
forward_file!(file_shm_unmap, xShmUnmap, flush: false, (delete: c_int) -> c_int, ffi::SQLITE_OK);
forward_file!(file_fetch, xFetch, flush: true, (offset: ffi::sqlite3_int64, amount: c_int, out: *mut *mut c_void) -> c_int, { *out = std::ptr::null_mut(); ffi::SQLITE_OK });
forward_file!(file_unfetch, xUnfetch, flush: false, (offset: ffi::sqlite3_int64, page: *mut c_void) -> c_int, ffi::SQLITE_OK);

unsafe extern "C" fn file_write(
    file: *mut ffi::sqlite3_file,
    data: *const c_void,
    amount: c_int,
    offset: ffi::sqlite3_int64,
) -> c_int {
    let Ok(len) = usize::try_from(amount) else {
        return ffi::SQLITE_IOERR_WRITE;
    };
    // SAFETY: SQLite calls this with a file this VFS opened and `amount` readable bytes at
    // `data`.
    unsafe {
        let this = File::from(file);
        let data = std::slice::from_raw_parts(data.cast::<u8>(), len);
        this.write_wal(data, offset)
    }
}

/// The WAL write lock: the first of the shared-memory locks (`WAL_WRITE_LOCK` in sqlite3.c).
const WAL_WRITE_LOCK: c_int = 0;

/// Shared-memory locks. Releasing the WAL write lock ends a write transaction: frames still
/// gathered then were never committed, and once the lock is released another connection may
/// append where they would go, so they are forgotten first.
unsafe extern "C" fn file_shm_lock(
    file: *mut ffi::sqlite3_file,
    offset: c_int,
    n: c_int,
    flags: c_int,
) -> c_int {
    const EXCLUSIVE_LOCK: c_int = ffi::SQLITE_SHM_LOCK | ffi::SQLITE_SHM_EXCLUSIVE;
    const EXCLUSIVE_UNLOCK: c_int = ffi::SQLITE_SHM_UNLOCK | ffi::SQLITE_SHM_EXCLUSIVE;
    // SAFETY: SQLite calls this with a file this VFS opened; its linked WAL (if any) belongs to
    // the same connection, whose calls SQLite serialises, and unlinks itself when closed.
    unsafe {
        let this = File::from(file);
        let write_lock = offset == WAL_WRITE_LOCK && n >= 1;
        if write_lock
            && flags == EXCLUSIVE_UNLOCK
            && let Role::Database {
                wal, write_locked, ..
            } = &mut this.role
        {
            *write_locked = false;
            if let Some(wal) = wal.as_mut() {
                wal.discard();
            }
        }
        let Some(lock) = this.methods().xShmLock else {
            return ffi::SQLITE_IOERR_SHMLOCK;
        };
        let rc = lock(this.real, offset, n, flags);
        if write_lock
            && flags == EXCLUSIVE_LOCK
            && rc == ffi::SQLITE_OK
            && let Role::Database { write_locked, .. } = &mut this.role
        {
            *write_locked = true;
        }
        rc
    }
}

/// SQLite publishes a commit to other connections across this barrier (the WAL index header is
/// written twice, the barrier between). No frame may still be gathered then.
unsafe extern "C" fn file_shm_barrier(file: *mut ffi::sqlite3_file) {
    // SAFETY: SQLite calls this with a file this VFS opened; its linked WAL (if any) belongs to
    // the same connection, whose calls SQLite serialises, and unlinks itself when closed.
    unsafe {
        let this = File::from(file);
        if let Role::Database {
            wal, write_locked, ..
        } = this.role
            && write_locked
            && let Some(wal) = wal.as_mut()
            && wal.flush() != ffi::SQLITE_OK
        {
            eprintln!(
                "helpline: writing WAL frames failed as their commit was published; aborting so \
                 that no reader sees frames missing from the file (a restart recovers the WAL)"
            );
            std::process::abort();
        }
        if let Some(barrier) = this.methods().xShmBarrier {
            barrier(this.real);
        }
    }
}

unsafe extern "C" fn file_close(file: *mut ffi::sqlite3_file) -> c_int {
    // SAFETY: SQLite calls this once per opened file, last; the `File` is dropped in place and
    // the memory is SQLite's to free. Links to and from it are removed first.
    unsafe {
        let this = File::from(file);
        let flushed = this.flush();
        match &this.role {
            Role::Database { name, wal, .. } => {
                databases().retain(|(n, _)| n != name);
                if let Some(Role::Wal { database, .. }) = wal.as_mut().map(|w| &mut w.role) {
                    *database = std::ptr::null_mut();
                }
            }
            Role::Wal { database, .. } => {
                if let Some(Role::Database { wal, .. }) = database.as_mut().map(|d| &mut d.role) {
                    *wal = std::ptr::null_mut();
                }
            }
            Role::Other => {}
        }
        let closed = match this.methods().xClose {
            Some(close) => close(this.real),
            None => ffi::SQLITE_OK,
        };
        std::ptr::drop_in_place(file.cast::<File>());
        if flushed != ffi::SQLITE_OK {
            flushed
        } else {
            closed
        }
    }
}
