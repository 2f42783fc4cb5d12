//! The proof, after a WAL flush, that the file system had not failed under
//! it: a change the file system must journal, made after the flush
//! returned.
//!
//! Why a flush alone proves too little: when ext4 hits an error on a mount
//! with `errors=remount-ro`, it first aborts its journal and only then,
//! after writing its superblock, marks itself read-only. An `fdatasync`
//! that falls in between, for a file whose last block allocation or size
//! change was in the transaction the abort threw away, finds that
//! transaction no longer running and returns success: the data blocks are
//! written, but the size and the extents that make them part of the file
//! are not, and after the repair (fsck replays the journal) the file ends
//! where the last committed transaction left it. `tests/fault_store.rs`
//! caught SQLite commits acknowledged so and gone after the repair (the
//! WAL grows by appends, each one an allocation). Linux 6.x marks that state
//! `emergency_ro` inside ext4, where `statvfs` does not see it, so the
//! earlier check of `ST_RDONLY` missed it.
//!
//! The abort is for good, and ext4 refuses to start a journal handle once
//! its journal is aborted (`-EROFS`). So a size change of a file of lim's
//! own (`<database>-sync`, one byte or none, never synced: its content is
//! nothing) after the flush returned proves that the journal was alive
//! then, hence that the flush's transaction had committed rather than been
//! thrown away. It costs one system call that starts and ends a journal
//! handle, no wait for a commit. On file systems without a journal the
//! change simply succeeds and proves nothing more than the flush did.
//!
//! Not covered: SQLite's own checkpoint inside a commit (past
//! `WAL_AUTOCHECKPOINT_PAGES`, when the checkpoint task falls behind) has
//! no probe right after it; the commit's flush, probed, comes after it and
//! refuses that commit, but the commit after, already on its way, may have
//! started the WAL over. A loss needs that checkpoint's sync answered
//! falsely, the database file grown by it, and the WAL's overwritten first
//! pages written back by the kernel, all in the moment before ext4 turns
//! read-only.

use std::fs::File;
use std::path::{Path, PathBuf};

#[derive(Debug)]
pub(super) struct JournalProbe {
    path: PathBuf,
    file: File,
    /// The probe's length now: 0 or 1, flipped by each check.
    long: bool,
}

impl JournalProbe {
    /// Opens (creating if missing) `<database>-sync` beside the database.
    pub fn open(database: &Path) -> std::io::Result<JournalProbe> {
        let mut path = database.as_os_str().to_owned();
        path.push("-sync");
        let path = PathBuf::from(path);
        let file = std::fs::OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .truncate(false)
            .open(&path)?;
        let long = file.metadata()?.len() > 0;
        Ok(JournalProbe { path, file, long })
    }

    /// Changes the probe's size; an error means the file system refuses
    /// journaled changes now (failed, or read-only), and whatever it
    /// acknowledged since its last committed transaction may be gone.
    pub fn check(&mut self) -> Result<(), String> {
        let len = if self.long { 0 } else { 1 };
        self.file.set_len(len).map_err(|e| {
            format!(
                "{}: the file system refused a journaled change after the flush ({e}): it has \
                 failed, and the flush may not have reached the disk",
                self.path.display()
            )
        })?;
        self.long = !self.long;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_check_flips_the_size_and_a_reopened_probe_carries_on() {
        let dir = tempfile::tempdir().unwrap();
        let db = dir.path().join("lim.db");
        let mut probe = JournalProbe::open(&db).unwrap();
        let size = || {
            std::fs::metadata(dir.path().join("lim.db-sync"))
                .unwrap()
                .len()
        };
        assert_eq!(size(), 0);
        probe.check().unwrap();
        assert_eq!(size(), 1);
        probe.check().unwrap();
        assert_eq!(size(), 0);
        probe.check().unwrap();
        drop(probe);
        let mut again = JournalProbe::open(&db).unwrap();
        again.check().unwrap();
        assert_eq!(size(), 0, "a reopened probe flips from the size it finds");
    }

    /// A probe whose file system refuses the change reports it: here a
    /// descriptor opened read-only, which `set_len` cannot change.
    #[test]
    fn a_refused_change_is_an_error_naming_the_probe() {
        let dir = tempfile::tempdir().unwrap();
        let db = dir.path().join("lim.db");
        drop(JournalProbe::open(&db).unwrap());
        let path = dir.path().join("lim.db-sync");
        let mut probe = JournalProbe {
            file: File::open(&path).unwrap(),
            path,
            long: false,
        };
        let err = probe.check().unwrap_err();
        assert!(err.contains("lim.db-sync"), "{err}");
        assert!(err.contains("refused a journaled change"), "{err}");
    }
}
