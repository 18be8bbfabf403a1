//! The run folder's lock: one process writes a run at a time. The lock is an advisory
//! `flock` on `.lock` in the folder, which also holds the holder's pid and host for the
//! message a second process gets. The kernel drops the lock when its holder dies, so a
//! lock left behind by a killed process is stale by construction and simply taken over.

use std::fs::{File, OpenOptions};
use std::io::{Read, Seek, Write};
use std::path::{Path, PathBuf};

use crate::run::error::{RunError, io_err};

/// The lock file in a run folder.
pub const LOCK_FILE: &str = ".lock";

/// A held lock on a run folder, released (and its file removed) when dropped.
#[derive(Debug)]
pub struct RunLock {
    path: PathBuf,
    // Holding the open file holds the lock.
    _file: File,
}

impl RunLock {
    /// Locks `dir` (which must exist) for this process, or says which process holds it.
    /// Then removes the temporary files a killed writer left in it.
    pub fn acquire(dir: &Path) -> Result<RunLock, RunError> {
        let path = dir.join(LOCK_FILE);
        // A holder that releases removes the file; whoever locked that unlinked file
        // tries again on the new one.
        for _ in 0..100 {
            let mut file = OpenOptions::new()
                .read(true)
                .write(true)
                .create(true)
                .truncate(false)
                .open(&path)
                .map_err(|e| io_err(&path, e))?;
            if !try_lock(&file).map_err(|e| io_err(&path, e))? {
                let mut holder = String::new();
                let _ = file.read_to_string(&mut holder);
                let holder = holder.trim();
                return Err(RunError::Locked {
                    dir: dir.to_path_buf(),
                    holder: if holder.is_empty() {
                        "another process".into()
                    } else {
                        holder.to_string()
                    },
                });
            }
            if !same_file(&file, &path) {
                continue;
            }
            let me = format!("process {} on {}\n", std::process::id(), host());
            file.set_len(0)
                .and_then(|()| file.rewind())
                .and_then(|()| file.write_all(me.as_bytes()))
                .map_err(|e| io_err(&path, e))?;
            autograd::io::remove_stale_temporaries(dir).map_err(|e| io_err(dir, e))?;
            return Ok(RunLock { path, _file: file });
        }
        Err(io_err(&path, "the lock file keeps being replaced"))
    }
}

impl Drop for RunLock {
    fn drop(&mut self) {
        // Removed while still locked: a waiter sees the file it locked is gone.
        let _ = std::fs::remove_file(&self.path);
    }
}

/// Takes an exclusive `flock` without waiting; `false` when another process holds it.
#[cfg(unix)]
fn try_lock(file: &File) -> std::io::Result<bool> {
    use std::os::fd::AsRawFd;
    // SAFETY: `flock` on a file descriptor this process owns.
    if unsafe { libc::flock(file.as_raw_fd(), libc::LOCK_EX | libc::LOCK_NB) } == 0 {
        return Ok(true);
    }
    let e = std::io::Error::last_os_error();
    if e.kind() == std::io::ErrorKind::WouldBlock {
        Ok(false)
    } else {
        Err(e)
    }
}

#[cfg(not(unix))]
fn try_lock(_: &File) -> std::io::Result<bool> {
    Ok(true)
}

/// Whether the open `file` is still the file at `path` (not removed or replaced).
#[cfg(unix)]
fn same_file(file: &File, path: &Path) -> bool {
    use std::os::unix::fs::MetadataExt;
    match (file.metadata(), std::fs::metadata(path)) {
        (Ok(a), Ok(b)) => (a.dev(), a.ino()) == (b.dev(), b.ino()),
        _ => false,
    }
}

#[cfg(not(unix))]
fn same_file(_: &File, path: &Path) -> bool {
    path.is_file()
}

/// This machine's name, for the lock's message (run folders may be on a shared disk).
fn host() -> String {
    std::fs::read_to_string("/proc/sys/kernel/hostname")
        .map(|h| h.trim().to_string())
        .unwrap_or_else(|_| "this machine".into())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_second_holder_is_refused_until_the_first_lets_go() {
        let dir = tempfile::tempdir().unwrap();
        let first = RunLock::acquire(dir.path()).unwrap();
        let held = std::fs::read_to_string(dir.path().join(LOCK_FILE)).unwrap();
        assert!(held.contains(&std::process::id().to_string()), "{held}");
        let err = RunLock::acquire(dir.path()).unwrap_err().to_string();
        assert!(
            err.contains("is being written by process") && err.contains(LOCK_FILE),
            "{err}"
        );
        drop(first);
        assert!(!dir.path().join(LOCK_FILE).exists());
        let _again = RunLock::acquire(dir.path()).unwrap();
    }

    #[test]
    fn a_lock_file_left_by_a_dead_process_is_taken_over() {
        let dir = tempfile::tempdir().unwrap();
        // What a killed holder leaves: the file, with no process holding its lock.
        std::fs::write(
            dir.path().join(LOCK_FILE),
            "process 999999999 on elsewhere\n",
        )
        .unwrap();
        let lock = RunLock::acquire(dir.path()).unwrap();
        let held = std::fs::read_to_string(dir.path().join(LOCK_FILE)).unwrap();
        assert!(held.contains(&std::process::id().to_string()), "{held}");
        drop(lock);
    }
}
