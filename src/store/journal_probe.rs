//! The proof, after a WAL flush, that the file system had not failed under
//! it: a change the file system must journal, made after the flush
//! returned.
//!
//! Why a flush alone proves too little: when ext4 hits an error on a mount
//! with `errors=remount-ro`, it first aborts its journal and only then,
//! after writing its superblock, marks itself read-only. An `fdatasync`
//! that falls in between, for a file whose last block allocation or size
//! change was in the transaction the abort threw away, can find that
//! transaction no longer running and return success (inferred from ext4's
//! error path, not traced; what the test saw is this): the data blocks are
//! written, but the size and the extents that make them part of the file
//! are not, and after the repair (fsck replays the journal) the file ends
//! where the last committed transaction left it. `tests/fault_store.rs`
//! caught SQLite commits acknowledged so and gone after the repair (the
//! WAL grows by appends, each one an allocation). Linux 6.x marks that state
//! `emergency_ro` inside ext4, where `statvfs` does not see it, so the
//! earlier check of `ST_RDONLY` missed it.
//!
//! The abort is for good, and ext4 refuses to start a journal handle once
//! its journal is aborted (`-EROFS`). So a size change of a file of the
//! store's own after the flush returned proves that the journal was alive
//! then, hence that the flush's transaction had committed rather than been
//! thrown away. The file is unnamed (`O_TMPFILE` in the database's folder,
//! or created and unlinked at once where that is missing): nobody else can
//! change its size under the probe (a named file shared by two stores could
//! be set to the size a probe wants already, and a change to the same size
//! starts no handle), and nothing is left beside the database. It flips
//! between 0 and 1 byte and is never synced; a check costs one system call
//! that takes journal handles, no wait for a commit. The argument is
//! ext4's (jbd2's); on other file systems the change succeeds and proves
//! no more than the flush did.
//!
//! Checkpoints have the same doubt (their sync of the database file), and
//! a worse outcome: once a checkpoint has copied every frame, the next
//! commit starts the WAL over on top of them. So the probe also follows
//! every writer job (a commit may have checkpointed the WAL itself), and the
//! next job is refused if it failed; and the checkpoint task holds a read
//! transaction from before its checkpoint until its probe is answered,
//! which keeps the WAL from starting over meanwhile (`sqlite_wal.rs`). Not
//! covered: the checkpoint SQLite runs when the last connection to the
//! database closes, which then deletes the WAL (lim closes its last
//! connection only when it stops).

use std::fs::File;
use std::path::Path;

#[derive(Debug)]
pub(super) struct JournalProbe {
    file: File,
    /// The probe's length now: 0 or 1, flipped by each check.
    long: bool,
}

impl JournalProbe {
    /// An unnamed file in `dir`, the database's folder (the same file
    /// system, the same journal).
    pub fn open(dir: &Path) -> std::io::Result<JournalProbe> {
        Ok(JournalProbe {
            file: tempfile::tempfile_in(dir)?,
            long: false,
        })
    }

    /// Changes the probe's size; an error means the file system refuses
    /// journaled changes now (failed, or read-only), and whatever it
    /// acknowledged since its last committed transaction may be gone.
    /// `after` names what is being proved ("the WAL flush").
    pub fn check(&mut self, after: &str) -> Result<(), String> {
        let len = if self.long { 0 } else { 1 };
        self.file.set_len(len).map_err(|e| {
            format!(
                "the file system refused a journaled change after {after} ({e}): it may have \
                 failed, and what it acknowledged may not be on disk"
            )
        })?;
        self.long = !self.long;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::fd::AsRawFd;

    fn size(probe: &JournalProbe) -> u64 {
        probe.file.metadata().unwrap().len()
    }

    #[test]
    fn each_check_flips_the_size_of_an_unnamed_file() {
        let dir = tempfile::tempdir().unwrap();
        let mut probe = JournalProbe::open(dir.path()).unwrap();
        assert_eq!(size(&probe), 0);
        probe.check("a flush").unwrap();
        assert_eq!(size(&probe), 1);
        probe.check("a flush").unwrap();
        assert_eq!(size(&probe), 0);
        assert_eq!(
            std::fs::read_dir(dir.path()).unwrap().count(),
            0,
            "nothing is left beside the database"
        );
    }

    #[test]
    fn two_probes_in_one_folder_do_not_share_a_file() {
        let dir = tempfile::tempdir().unwrap();
        let mut a = JournalProbe::open(dir.path()).unwrap();
        let b = JournalProbe::open(dir.path()).unwrap();
        a.check("a flush").unwrap();
        assert_eq!((size(&a), size(&b)), (1, 0));
    }

    /// A change the file refuses is an error, and the probe's idea of its
    /// size stays what the file is. (The refusal here is the descriptor's,
    /// reopened read-only; an aborted journal's is `EROFS`, which
    /// tests/fault_store.rs meets on a real ext4.)
    #[test]
    fn a_refused_change_is_an_error_and_changes_nothing() {
        let dir = tempfile::tempdir().unwrap();
        let mut probe = JournalProbe::open(dir.path()).unwrap();
        let fd = probe.file.as_raw_fd();
        let read_only = File::open(format!("/proc/self/fd/{fd}")).unwrap();
        let writable = std::mem::replace(&mut probe.file, read_only);
        let err = probe.check("the WAL flush").unwrap_err();
        assert!(err.contains("after the WAL flush"), "{err}");
        assert!(!probe.long, "a failed check flips nothing");
        probe.file = writable;
        probe.check("the WAL flush").unwrap();
        assert_eq!(size(&probe), 1);
    }
}
