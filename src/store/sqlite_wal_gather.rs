//! A VFS for the SQLite writer connection that gathers a commit's WAL
//! frames into one write.
//!
//! SQLite writes each WAL frame with two calls of its VFS, the 24-byte
//! frame header and then the page, so a group commit of about fifty
//! dirtied pages is a hundred `pwrite`s: under the mixed ingest load that
//! was 32 % of the writer thread's samples (BENCHMARKS.md, twelfth
//! session), and on this kind of machine 50 frames cost about 250-290 µs
//! as 100 `pwrite`s against 78-87 µs as one (copy included). This VFS
//! (`lim-wal-gather`) is the process's default VFS (`unix`) with one
//! change: writes that append to a WAL file are copied into a buffer and
//! handed to the real file as one write, at the latest when the page of a
//! commit frame (a frame header whose "database size after commit" is not
//! zero) is written. That write's result is the commit frame's result, so a
//! failure fails the commit just as an unbuffered write would.
//!
//! Why that is enough for readers and for durability: SQLite publishes a
//! commit to other connections (the wal-index header) only after
//! `walFrames` has written the commit frame, so every frame a reader can
//! be told of is in the file by then; and lim syncs the WAL after a commit
//! returns (`WalFlush`), when its frames are in the file. Everything else
//! sees the file as SQLite left it: the buffer is written first before any
//! read, sync, truncate, size, lock or file-control call on the WAL, before
//! any write that is not an append (a frame rewritten in place, a checksum
//! rewritten at commit, the WAL header when the log starts over), and when
//! it passes [`GATHER_LIMIT`]. A crash with frames still in the buffer
//! loses only frames of a transaction that had not committed, which
//! SQLite's recovery would drop anyway.
//!
//! It relies on SQLite's `synchronous=NORMAL` (or `OFF`), which the
//! writer connection sets: under `FULL`, on a device without powersafe
//! overwrite, SQLite pads a commit with copies of its last frame up to a
//! sector boundary and may split one of them around a sync, and the part
//! after the sync would stay in the buffer while the commit is published.
//! Frames left by a transaction that spilled its cache and rolled back are
//! dropped after each writer job ([`drop_uncommitted`]), never written.
//!
//! Files other than WAL files (the database, temporary files) are the
//! `unix` VFS's own files, untouched: locks and the shared memory are
//! `unix`'s, so the writer and the read pool (on `unix`) share them as
//! before. Only the writer connection opens the database with this VFS
//! (`sqlite_writer`).

use std::ffi::{c_char, c_int, c_void, CStr};
use std::sync::OnceLock;

use libsqlite3_sys as ffi;

/// The VFS's name, for `sqlite3_open_v2`.
pub(super) const NAME: &str = "lim-wal-gather";
const NAME_C: &CStr = c"lim-wal-gather";

/// Past this many buffered bytes the buffer is written even without a
/// commit frame (a large transaction's frames, written as its cache
/// spills or as it commits): 256 frames of 4 KiB pages.
const GATHER_LIMIT: usize = 256 * (4096 + 24);

/// The most the `unix` VFS writes in one call: it keeps the low 17 bits of
/// a write's length (`seekAndWriteFd`), so the buffer goes out in chunks
/// below 128 KiB (a group commit of about fifty frames is two).
const WRITE_CHUNK: usize = 31 * 4096;

/// What a WAL file buffers.
struct Gather {
    /// The file offset of `buf`'s first byte.
    start: i64,
    buf: Vec<u8>,
    /// The end of the WAL as far as this connection wrote it: writes at or
    /// past it append, writes below it overwrite.
    written_end: i64,
    /// Where the page of the commit frame whose header was the last write
    /// starts.
    commit_page_at: Option<i64>,
    /// Writes handed to the real file, and the writes they gathered.
    stats: GatherStats,
}

/// How much a WAL file's writes were gathered (for tests).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub(super) struct GatherStats {
    /// Writes SQLite made to the WAL.
    pub asked: u64,
    /// Writes that reached the file.
    pub written: u64,
}

/// A file of this VFS: its header, then (for a WAL file) what it gathers
/// and the `unix` file it wraps, which lives in the same allocation after
/// this struct. A file that is not a WAL file is the `unix` file itself,
/// opened in place, and never seen as this struct.
#[repr(C)]
struct GatherFile {
    base: ffi::sqlite3_file,
    real: *mut ffi::sqlite3_file,
    gather: *mut Gather,
}

/// Where in a file's allocation the wrapped file starts.
const REAL_OFFSET: usize = std::mem::size_of::<GatherFile>().next_multiple_of(16);

/// The `unix` VFS this one forwards to, found at registration.
struct Base(*mut ffi::sqlite3_vfs);
// SAFETY: SQLite's VFS objects are process-wide and immutable once
// registered; SQLite calls them from any thread.
unsafe impl Send for Base {}
unsafe impl Sync for Base {}

static BASE: OnceLock<Result<Base, String>> = OnceLock::new();

/// Registers the VFS (once per process; not as the default). Fails only if
/// SQLite has no default VFS or refuses the registration.
pub(super) fn register() -> Result<(), String> {
    BASE.get_or_init(|| {
        // SAFETY: `sqlite3_vfs_find(NULL)` returns the default VFS (it
        // initialises SQLite first); the copy made here is leaked, so it
        // outlives every connection, as SQLite requires of a registered VFS.
        unsafe {
            let base = ffi::sqlite3_vfs_find(std::ptr::null());
            if base.is_null() {
                return Err("SQLite has no default VFS".into());
            }
            let mut vfs = *base;
            vfs.zName = NAME_C.as_ptr();
            vfs.pNext = std::ptr::null_mut();
            let real_size = usize::try_from((*base).szOsFile).unwrap_or(0);
            vfs.szOsFile = c_int::try_from(REAL_OFFSET + real_size)
                .map_err(|_| "the default VFS's file is too large".to_string())?;
            vfs.xOpen = Some(open);
            let vfs = Box::into_raw(Box::new(vfs));
            let rc = ffi::sqlite3_vfs_register(vfs, 0);
            if rc != ffi::SQLITE_OK {
                drop(Box::from_raw(vfs));
                return Err(format!("sqlite3_vfs_register answered {rc}"));
            }
            Ok(Base(base))
        }
    })
    .as_ref()
    .map(|_| ())
    .map_err(Clone::clone)
}

fn base() -> *mut ffi::sqlite3_vfs {
    match BASE.get() {
        Some(Ok(b)) => b.0,
        // `open` is only reachable through a registered VFS.
        _ => unreachable!("lim-wal-gather used before it was registered"),
    }
}

unsafe extern "C" fn open(
    _vfs: *mut ffi::sqlite3_vfs,
    name: *const c_char,
    file: *mut ffi::sqlite3_file,
    flags: c_int,
    out_flags: *mut c_int,
) -> c_int {
    let base = base();
    // SAFETY (whole function): SQLite hands `file` as `szOsFile` bytes,
    // enough for the `unix` file in place or for this header followed by it.
    unsafe {
        let Some(real_open) = (*base).xOpen else {
            return ffi::SQLITE_CANTOPEN;
        };
        if flags & ffi::SQLITE_OPEN_WAL == 0 {
            return real_open(base, name, file, flags, out_flags);
        }
        let real = file
            .cast::<u8>()
            .add(REAL_OFFSET)
            .cast::<ffi::sqlite3_file>();
        let wrapper = file.cast::<GatherFile>();
        // SQLite calls `xClose` after a failed open only if `pMethods` is set.
        (*wrapper).base.pMethods = std::ptr::null();
        let rc = real_open(base, name, real, flags, out_flags);
        if rc != ffi::SQLITE_OK {
            return rc;
        }
        let gather = Box::new(Gather {
            start: 0,
            buf: Vec::with_capacity(GATHER_LIMIT),
            written_end: 0,
            commit_page_at: None,
            stats: GatherStats::default(),
        });
        std::ptr::write(
            wrapper,
            GatherFile {
                base: ffi::sqlite3_file { pMethods: &METHODS },
                real,
                gather: Box::into_raw(gather),
            },
        );
        ffi::SQLITE_OK
    }
}

/// The wrapper and its buffer. SQLite calls a file's methods from one
/// thread at a time (the writer connection's), so the exclusive borrow holds.
unsafe fn parts<'a>(file: *mut ffi::sqlite3_file) -> (*mut ffi::sqlite3_file, &'a mut Gather) {
    unsafe {
        let wrapper = file.cast::<GatherFile>();
        ((*wrapper).real, &mut *(*wrapper).gather)
    }
}

unsafe fn real_methods(real: *mut ffi::sqlite3_file) -> &'static ffi::sqlite3_io_methods {
    unsafe { &*(*real).pMethods }
}

/// Writes the buffer to the real file; the buffer is empty afterwards
/// whatever the result (a failed commit is rolled back and rewritten).
unsafe fn flush(real: *mut ffi::sqlite3_file, gather: &mut Gather) -> c_int {
    if gather.buf.is_empty() {
        return ffi::SQLITE_OK;
    }
    let Some(write) = unsafe { real_methods(real) }.xWrite else {
        gather.buf.clear();
        return ffi::SQLITE_IOERR_WRITE;
    };
    let mut offset = gather.start;
    let mut rc = ffi::SQLITE_OK;
    for chunk in gather.buf.chunks(WRITE_CHUNK) {
        gather.stats.written += 1;
        // SAFETY: the chunk is valid for its length (below `c_int::MAX`)
        // during the call.
        rc = unsafe { write(real, chunk.as_ptr().cast(), chunk.len() as c_int, offset) };
        if rc != ffi::SQLITE_OK {
            break;
        }
        offset += chunk.len() as i64;
    }
    gather.buf.clear();
    rc
}

/// Writes `data` to the real file at `offset` at once, the buffer first.
unsafe fn write_through(
    real: *mut ffi::sqlite3_file,
    gather: &mut Gather,
    data: *const c_void,
    amount: c_int,
    offset: i64,
) -> c_int {
    let rc = unsafe { flush(real, gather) };
    if rc != ffi::SQLITE_OK {
        return rc;
    }
    gather.stats.written += 1;
    match unsafe { real_methods(real) }.xWrite {
        Some(write) => unsafe { write(real, data, amount, offset) },
        None => ffi::SQLITE_IOERR_WRITE,
    }
}

/// What a write to the WAL does with its bytes.
#[derive(Debug, PartialEq, Eq)]
enum Placement {
    /// Below what was written: an overwrite, written through.
    Overwrite,
    /// The WAL's header at offset 0: the log starts over, written through.
    Restart,
    /// An append: buffered (after the buffer is written, if it does not
    /// continue it).
    Append { continues: bool },
}

fn place(gather: &Gather, offset: i64) -> Placement {
    if offset == 0 {
        Placement::Restart
    } else if offset < gather.written_end {
        Placement::Overwrite
    } else {
        let end = gather.start + gather.buf.len() as i64;
        Placement::Append {
            continues: !gather.buf.is_empty() && offset == end,
        }
    }
}

/// A frame header (24 bytes) whose bytes 4..8, the database size after the
/// commit, are not zero: the header of a commit frame.
fn is_commit_header(bytes: &[u8]) -> bool {
    bytes.len() == 24 && bytes[4..8] != [0, 0, 0, 0]
}

unsafe extern "C" fn write(
    file: *mut ffi::sqlite3_file,
    data: *const c_void,
    amount: c_int,
    offset: ffi::sqlite3_int64,
) -> c_int {
    let (real, gather) = unsafe { parts(file) };
    gather.stats.asked += 1;
    let Ok(len) = usize::try_from(amount) else {
        return ffi::SQLITE_IOERR_WRITE;
    };
    let end = offset + i64::from(amount);
    match place(gather, offset) {
        Placement::Restart => {
            gather.commit_page_at = None;
            let rc = unsafe { write_through(real, gather, data, amount, offset) };
            gather.written_end = end;
            rc
        }
        Placement::Overwrite => {
            // A commit frame's header rewritten in place is still followed
            // by its page: should that come as an append, it writes the
            // buffer.
            // SAFETY: SQLite's buffer holds `amount` bytes during the call.
            let bytes = unsafe { std::slice::from_raw_parts(data.cast::<u8>(), len) };
            gather.commit_page_at = is_commit_header(bytes).then_some(end);
            let rc = unsafe { write_through(real, gather, data, amount, offset) };
            gather.written_end = gather.written_end.max(end);
            rc
        }
        Placement::Append { continues } => {
            if !continues {
                let rc = unsafe { flush(real, gather) };
                if rc != ffi::SQLITE_OK {
                    return rc;
                }
                gather.start = offset;
            }
            // SAFETY: SQLite's buffer holds `amount` bytes during the call.
            let bytes = unsafe { std::slice::from_raw_parts(data.cast::<u8>(), len) };
            gather.buf.extend_from_slice(bytes);
            gather.written_end = end;
            let commit_page = gather.commit_page_at.take() == Some(offset);
            if is_commit_header(bytes) {
                gather.commit_page_at = Some(end);
            }
            if commit_page || gather.buf.len() >= GATHER_LIMIT {
                unsafe { flush(real, gather) }
            } else {
                ffi::SQLITE_OK
            }
        }
    }
}

/// Drops what the buffer holds, as [`drop_uncommitted`] does: a commit
/// has written its frames by the time it returns, so only frames of a
/// transaction that did not commit can be left.
unsafe extern "C" fn close(file: *mut ffi::sqlite3_file) -> c_int {
    let (real, gather) = unsafe { parts(file) };
    gather.buf.clear();
    // SAFETY: `gather` came from `Box::into_raw` in `open`; the file is not
    // used after `xClose`.
    unsafe { drop(Box::from_raw((*file.cast::<GatherFile>()).gather)) };
    match unsafe { real_methods(real) }.xClose {
        Some(close) => unsafe { close(real) },
        None => ffi::SQLITE_OK,
    }
}

/// Defines a method that writes the buffer and then calls the real file's.
macro_rules! flush_then {
    ($name:ident, $field:ident, ($($arg:ident: $ty:ty),*)) => {
        unsafe extern "C" fn $name(file: *mut ffi::sqlite3_file, $($arg: $ty),*) -> c_int {
            let (real, gather) = unsafe { parts(file) };
            let rc = unsafe { flush(real, gather) };
            if rc != ffi::SQLITE_OK {
                return rc;
            }
            match unsafe { real_methods(real) }.$field {
                Some(method) => unsafe { method(real, $($arg),*) },
                None => ffi::SQLITE_IOERR,
            }
        }
    };
}

flush_then!(read, xRead, (data: *mut c_void, amount: c_int, offset: ffi::sqlite3_int64));
flush_then!(sync, xSync, (flags: c_int));
flush_then!(file_size, xFileSize, (size: *mut ffi::sqlite3_int64));
flush_then!(lock, xLock, (level: c_int));
flush_then!(unlock, xUnlock, (level: c_int));
flush_then!(check_reserved_lock, xCheckReservedLock, (out: *mut c_int));
flush_then!(file_control, xFileControl, (op: c_int, arg: *mut c_void));

unsafe extern "C" fn truncate(file: *mut ffi::sqlite3_file, size: ffi::sqlite3_int64) -> c_int {
    let (real, gather) = unsafe { parts(file) };
    let rc = unsafe { flush(real, gather) };
    if rc != ffi::SQLITE_OK {
        return rc;
    }
    gather.written_end = gather.written_end.min(size);
    match unsafe { real_methods(real) }.xTruncate {
        Some(truncate) => unsafe { truncate(real, size) },
        None => ffi::SQLITE_IOERR_TRUNCATE,
    }
}

unsafe extern "C" fn sector_size(file: *mut ffi::sqlite3_file) -> c_int {
    let (real, _) = unsafe { parts(file) };
    match unsafe { real_methods(real) }.xSectorSize {
        Some(method) => unsafe { method(real) },
        None => 4096,
    }
}

unsafe extern "C" fn device_characteristics(file: *mut ffi::sqlite3_file) -> c_int {
    let (real, _) = unsafe { parts(file) };
    match unsafe { real_methods(real) }.xDeviceCharacteristics {
        Some(method) => unsafe { method(real) },
        None => 0,
    }
}

/// A WAL file's methods. Version 1: SQLite asks a WAL file for no shared
/// memory and no memory map (those are the database file's, which is
/// `unix`'s own).
static METHODS: ffi::sqlite3_io_methods = ffi::sqlite3_io_methods {
    iVersion: 1,
    xClose: Some(close),
    xRead: Some(read),
    xWrite: Some(write),
    xTruncate: Some(truncate),
    xSync: Some(sync),
    xFileSize: Some(file_size),
    xLock: Some(lock),
    xUnlock: Some(unlock),
    xCheckReservedLock: Some(check_reserved_lock),
    xFileControl: Some(file_control),
    xSectorSize: Some(sector_size),
    xDeviceCharacteristics: Some(device_characteristics),
    xShmMap: None,
    xShmLock: None,
    xShmBarrier: None,
    xShmUnmap: None,
    xFetch: None,
    xUnfetch: None,
};

/// The gathering state of the WAL of `conn`'s main database; `None` if it
/// is not open or not this VFS's.
///
/// # Safety
/// The state is the connection's file's: the caller must be the thread
/// using `conn`, between its calls (SQLite is not inside one of the file's
/// methods), and must not use the pointer past them.
unsafe fn gather_of(conn: &rusqlite::Connection) -> Option<*mut Gather> {
    let mut journal: *mut ffi::sqlite3_file = std::ptr::null_mut();
    // SAFETY: SQLITE_FCNTL_JOURNAL_POINTER writes the main database's
    // journal (the WAL in WAL mode) file pointer into `journal`.
    let rc = unsafe {
        ffi::sqlite3_file_control(
            conn.handle(),
            c"main".as_ptr(),
            ffi::SQLITE_FCNTL_JOURNAL_POINTER,
            (&mut journal as *mut *mut ffi::sqlite3_file).cast(),
        )
    };
    // SAFETY: a non-null journal is an open file; it is this VFS's WAL
    // wrapper exactly when its methods are `METHODS`.
    unsafe {
        if rc != ffi::SQLITE_OK || journal.is_null() || !std::ptr::eq((*journal).pMethods, &METHODS)
        {
            return None;
        }
        Some((*journal.cast::<GatherFile>()).gather)
    }
}

/// After a writer job, with no transaction open: drops what the buffer
/// still holds. A commit writes the buffer with its commit frame, so what
/// is left is frames of a transaction that spilled its cache and then
/// rolled back, past the end SQLite now knows of. Written later they would
/// land over frames another connection may have committed there
/// meanwhile (a write through the read pool, the `sqlite3` shell), so
/// they are never written.
pub(super) fn drop_uncommitted(conn: &rusqlite::Connection) {
    if !conn.is_autocommit() {
        return;
    }
    // SAFETY: called by the writer thread between jobs, its connection idle.
    if let Some(gather) = unsafe { gather_of(conn) } {
        // SAFETY: the file's state, not in use by SQLite now (above).
        let gather = unsafe { &mut *gather };
        if !gather.buf.is_empty() {
            gather.written_end = gather.written_end.min(gather.start);
            gather.buf.clear();
        }
        gather.commit_page_at = None;
    }
}

/// How much the WAL of `conn`'s main database was gathered since it was
/// opened; `None` if it is not open or not this VFS's.
#[cfg(test)]
pub(super) fn stats(conn: &rusqlite::Connection) -> Option<GatherStats> {
    // SAFETY: the test's thread owns `conn`, idle here.
    unsafe { gather_of(conn).map(|g| (*g).stats) }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rusqlite::{Connection, OpenFlags};

    fn gather_at(start: i64, len: usize, written_end: i64) -> Gather {
        Gather {
            start,
            buf: vec![0; len],
            written_end,
            commit_page_at: None,
            stats: GatherStats::default(),
        }
    }

    #[test]
    fn a_write_appends_overwrites_or_restarts() {
        let g = gather_at(32, 4120, 32 + 4120);
        assert_eq!(place(&g, 32 + 4120), Placement::Append { continues: true });
        assert_eq!(
            place(&g, 32 + 2 * 4120),
            Placement::Append { continues: false }
        );
        assert_eq!(place(&g, 32), Placement::Overwrite);
        assert_eq!(place(&g, 0), Placement::Restart);
        let empty = gather_at(0, 0, 32);
        assert_eq!(place(&empty, 32), Placement::Append { continues: false });
    }

    #[test]
    fn only_a_frame_header_with_a_database_size_is_a_commit_header() {
        let mut header = [0u8; 24];
        assert!(!is_commit_header(&header));
        header[7] = 3;
        assert!(is_commit_header(&header));
        assert!(!is_commit_header(&[1u8; 4096]));
        assert!(!is_commit_header(&header[..20]));
    }

    fn writer(path: &std::path::Path) -> Connection {
        register().unwrap();
        let flags = OpenFlags::SQLITE_OPEN_READ_WRITE | OpenFlags::SQLITE_OPEN_CREATE;
        let conn = Connection::open_with_flags_and_vfs(path, flags, NAME).unwrap();
        conn.execute_batch(
            "PRAGMA journal_mode = WAL; PRAGMA synchronous = NORMAL; \
             PRAGMA wal_autocheckpoint = 0; \
             CREATE TABLE t (id INTEGER PRIMARY KEY, body TEXT NOT NULL);",
        )
        .unwrap();
        conn
    }

    fn integrity(conn: &Connection) -> String {
        conn.query_row("PRAGMA integrity_check", [], |r| r.get(0))
            .unwrap()
    }

    fn insert(conn: &Connection, from: i64, rows: i64) {
        let tx = conn.unchecked_transaction().unwrap();
        for i in from..from + rows {
            tx.execute(
                "INSERT INTO t (id, body) VALUES (?1, ?2)",
                rusqlite::params![i, "x".repeat(700)],
            )
            .unwrap();
        }
        tx.commit().unwrap();
    }

    #[test]
    fn a_commit_reaches_the_file_in_one_write_and_readers_see_it() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("g.db");
        let conn = writer(&path);
        let reader = Connection::open(&path).unwrap();
        let before = stats(&conn).unwrap();
        // 200 rows of 700 bytes: about 35 pages, 70 writes asked.
        insert(&conn, 0, 200);
        let after = stats(&conn).unwrap();
        let asked = after.asked - before.asked;
        let written = after.written - before.written;
        assert!(asked >= 60, "{asked} writes asked");
        // Its about 145 KB in two chunks.
        assert_eq!(
            written, 2,
            "{asked} writes asked, {written} reached the file"
        );
        let n: i64 = reader
            .query_row("SELECT count(*) FROM t", [], |r| r.get(0))
            .unwrap();
        assert_eq!(n, 200);
    }

    #[test]
    fn a_returned_commit_is_in_the_files_without_a_close() {
        // What a crash right after the commit would leave: the database and
        // its WAL copied while the writer still has them open.
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("g.db");
        let conn = writer(&path);
        for round in 0..20 {
            insert(&conn, round * 50, 50);
        }
        // A checkpoint and the log starting over, then more commits.
        conn.execute_batch("PRAGMA wal_checkpoint(TRUNCATE);")
            .unwrap();
        insert(&conn, 1000, 50);
        // A transaction larger than the buffer, whose frames go out before
        // its commit frame.
        insert(&conn, 2000, 3000);
        let copy = dir.path().join("copy.db");
        std::fs::copy(&path, &copy).unwrap();
        std::fs::copy(dir.path().join("g.db-wal"), dir.path().join("copy.db-wal")).unwrap();
        let copied = Connection::open(&copy).unwrap();
        let (n, sum): (i64, i64) = copied
            .query_row("SELECT count(*), sum(id) FROM t", [], |r| {
                Ok((r.get(0)?, r.get(1)?))
            })
            .unwrap();
        let expected: i64 = (0..1050).sum::<i64>() + (2000..5000).sum::<i64>();
        assert_eq!((n, sum), (4050, expected));
        assert_eq!(integrity(&copied), "ok");
    }

    #[test]
    fn a_rolled_back_spill_leaves_the_database_as_it_was() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("g.db");
        let conn = writer(&path);
        // A cache of 50 pages: the transaction below spills frames to the
        // WAL before it is rolled back. (SQLite's rollback reads back the
        // pages it still holds, page 1 among them, which writes the buffer
        // first, so here nothing is left for `drop_uncommitted`: it covers a
        // rollback that reads nothing from the WAL.)
        conn.execute_batch("PRAGMA cache_size = 50;").unwrap();
        insert(&conn, 0, 100);
        {
            let tx = conn.unchecked_transaction().unwrap();
            tx.execute("UPDATE t SET body = 'z' WHERE id < 50", [])
                .unwrap();
            for i in 100..400 {
                tx.execute(
                    "INSERT INTO t (id, body) VALUES (?1, ?2)",
                    rusqlite::params![i, "y".repeat(700)],
                )
                .unwrap();
            }
            tx.rollback().unwrap();
        }
        // What the writer thread does after each job.
        drop_uncommitted(&conn);
        // Another connection (SQLite's default VFS) commits where the
        // rolled-back frames were, then the writer commits again.
        let other = Connection::open(&path).unwrap();
        other
            .execute("INSERT INTO t (id, body) VALUES (9000, 'other')", [])
            .unwrap();
        insert(&conn, 5000, 10);
        let reader = Connection::open(&path).unwrap();
        let (n, z): (i64, i64) = reader
            .query_row(
                "SELECT count(*), count(*) FILTER (WHERE body = 'z') FROM t",
                [],
                |r| Ok((r.get(0)?, r.get(1)?)),
            )
            .unwrap();
        assert_eq!((n, z), (111, 0));
        assert_eq!(integrity(&reader), "ok");
    }
}
