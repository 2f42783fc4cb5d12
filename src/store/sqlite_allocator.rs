//! SQLite's memory allocator: mimalloc instead of the C library's `malloc`,
//! and SQLite's memory statistics off.
//!
//! SQLite allocates for every statement it prepares and runs (parse trees,
//! VDBE programs, cursors, records). Under the mixed ingest load glibc's
//! `malloc` and `free` family were 6.9 % of lim's samples on the SQLite
//! threads (a seventh of those threads' samples) and mutexes another
//! 3.3 %; with this, mimalloc's and glibc's together 3.9 % and mutexes
//! 1.0 % (BENCHMARKS.md, fifth session). Only SQLite's allocations move:
//! lim's own stay on the system allocator, under which 100,000 live
//! incidents take less memory (mimalloc as the global allocator took them
//! from 926 to 1,008 MiB, past the 1 GB budget of issue 8).
//!
//! SQLite takes its allocator only before it is initialised in the process
//! (`sqlite3_initialize`, which its first connection and several other
//! calls run; `sqlite3_config` answers `SQLITE_MISUSE` after that), so
//! [`install`] runs once, from `SqliteStore::open`, and a process that used
//! SQLite another way first keeps SQLite's default, which is only slower.
//! `sqlite3_config` itself is not safe against another thread initialising
//! SQLite at the same moment: in lim the first store opens before anything
//! else touches SQLite.

use std::ffi::{c_int, c_void};
use std::sync::Once;

use libsqlite3_sys as ffi;

unsafe extern "C" fn malloc(n: c_int) -> *mut c_void {
    // SQLite never asks for less than 1 byte or a negative size (it rounds
    // through `roundup` first), but a negative `c_int` must not become a
    // huge `usize`.
    match usize::try_from(n) {
        Ok(n) => unsafe { libmimalloc_sys::mi_malloc(n) },
        Err(_) => std::ptr::null_mut(),
    }
}

unsafe extern "C" fn free(p: *mut c_void) {
    unsafe { libmimalloc_sys::mi_free(p) }
}

unsafe extern "C" fn realloc(p: *mut c_void, n: c_int) -> *mut c_void {
    match usize::try_from(n) {
        Ok(n) => unsafe { libmimalloc_sys::mi_realloc(p, n) },
        Err(_) => std::ptr::null_mut(),
    }
}

unsafe extern "C" fn size(p: *mut c_void) -> c_int {
    let n = unsafe { libmimalloc_sys::mi_usable_size(p) };
    c_int::try_from(n).unwrap_or(c_int::MAX)
}

unsafe extern "C" fn roundup(n: c_int) -> c_int {
    match usize::try_from(n) {
        Ok(n) => {
            let good = unsafe { libmimalloc_sys::mi_good_size(n) };
            // Past c_int (never, for SQLite's sizes), the size as asked.
            c_int::try_from(good).unwrap_or(c_int::MAX)
        }
        Err(_) => n,
    }
}

unsafe extern "C" fn init(_: *mut c_void) -> c_int {
    ffi::SQLITE_OK
}

unsafe extern "C" fn shutdown(_: *mut c_void) {}

/// SQLite copies the structure when it is configured.
const METHODS: ffi::sqlite3_mem_methods = ffi::sqlite3_mem_methods {
    xMalloc: Some(malloc),
    xFree: Some(free),
    xRealloc: Some(realloc),
    xSize: Some(size),
    xRoundup: Some(roundup),
    xInit: Some(init),
    xShutdown: Some(shutdown),
    pAppData: std::ptr::null_mut(),
};

static INSTALL: Once = Once::new();

/// Installs the allocator, once per process, before SQLite's first
/// connection. Whether it took is logged, never an error: SQLite works the
/// same on its default allocator.
pub(crate) fn install() {
    INSTALL.call_once(|| {
        // SAFETY: `sqlite3_config` is called before any other SQLite call of
        // this process that could run concurrently (the first store opens
        // its pool after this returns; `Once` keeps a second caller
        // waiting); the methods structure is valid for the call, which
        // copies it, and its functions are valid for the process.
        let (allocator, statistics) = unsafe {
            (
                ffi::sqlite3_config(
                    ffi::SQLITE_CONFIG_MALLOC,
                    &METHODS as *const ffi::sqlite3_mem_methods,
                ),
                ffi::sqlite3_config(ffi::SQLITE_CONFIG_MEMSTATUS, 0 as c_int),
            )
        };
        if allocator == ffi::SQLITE_OK && statistics == ffi::SQLITE_OK {
            tracing::debug!("SQLite allocates through mimalloc");
        } else {
            // SQLITE_MISUSE: SQLite was already in use in this process.
            tracing::info!(
                allocator,
                statistics,
                "SQLite keeps its default allocator (it was in use before the store opened)"
            );
        }
    });
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sizes_round_trip_through_mimalloc() {
        unsafe {
            let p = malloc(100);
            assert!(!p.is_null());
            assert!(size(p) >= 100);
            assert!(roundup(100) >= 100);
            let q = realloc(p, 5000);
            assert!(!q.is_null());
            assert!(size(q) >= 5000);
            free(q);
            assert!(malloc(-1).is_null());
        }
    }
}
