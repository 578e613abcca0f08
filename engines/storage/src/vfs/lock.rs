//! The directory lock: one writer per engine directory, as LevelDB's `LOCK`
//! file. An engine takes it before it reads or changes anything in its
//! directory and holds it until `close` (or drop); a second open of the same
//! directory — by another process, or by this one — fails with
//! `KvError::Locked` naming the holder's pid when it is known.
//!
//! On the real file system the lock is `flock(LOCK_EX | LOCK_NB)` on
//! `<dir>/LOCK` (std's `File::try_lock`), so the kernel releases it when the
//! holder dies — a SIGKILLed writer never leaves a stale lock. The holder
//! writes its pid into the file for the message of the one refused; the pid
//! is a hint, never trusted for the decision. `SimVfs` keeps a table of held
//! directories per simulated machine (a crash image starts with none, as a
//! rebooted machine does). `OverlayVfs` never writes to the disk, so it takes
//! no lock and needs none: read-only tools work beside a live writer.

use std::collections::BTreeSet;
use std::fmt;
use std::io;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use parking_lot::Mutex;

use super::Vfs;
use crate::error::KvError;

/// The lock file's name in an engine directory. Written to disk — do not change.
pub const LOCK_FILE: &str = "LOCK";

/// Why a lock was not taken.
#[derive(Debug)]
pub enum LockError {
    /// Someone holds it; `holder_pid` is what the holder wrote, if readable.
    Held {
        holder_pid: Option<u32>,
    },
    Io(io::Error),
}

impl From<io::Error> for LockError {
    fn from(err: io::Error) -> Self {
        LockError::Io(err)
    }
}

/// A held directory lock; dropping it releases the lock.
pub struct DirLock {
    _held: Box<dyn Send + Sync>,
}

impl fmt::Debug for DirLock {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("DirLock")
    }
}

impl DirLock {
    pub(crate) fn new(held: impl Send + Sync + 'static) -> DirLock {
        DirLock {
            _held: Box::new(held),
        }
    }

    /// A lock that guards nothing (for a Vfs that never writes to the disk).
    pub(crate) fn none() -> DirLock {
        DirLock::new(())
    }
}

/// Takes `dir`'s lock through `vfs`, as an engine error: `Locked` when held.
pub fn lock_directory(vfs: &dyn Vfs, dir: &Path) -> Result<DirLock, KvError> {
    vfs.lock_dir(dir).map_err(|err| match err {
        LockError::Held { holder_pid } => KvError::Locked {
            dir: dir.to_path_buf(),
            holder_pid,
        },
        LockError::Io(source) => KvError::io(format!("lock {}", dir.display()), source),
    })
}

/// `flock` on `<dir>/LOCK`, created owner-only.
pub(crate) fn lock_os(dir: &Path) -> Result<DirLock, LockError> {
    use std::io::{Read, Seek, Write};
    use std::os::unix::fs::OpenOptionsExt;
    let path = dir.join(LOCK_FILE);
    let mut file = std::fs::OpenOptions::new()
        .read(true)
        .write(true)
        .create(true)
        .truncate(false)
        .mode(0o600)
        .open(&path)?;
    match file.try_lock() {
        Ok(()) => {}
        Err(std::fs::TryLockError::WouldBlock) => {
            let mut text = String::new();
            let holder_pid = file
                .read_to_string(&mut text)
                .ok()
                .and_then(|_| text.trim().parse().ok());
            return Err(LockError::Held { holder_pid });
        }
        Err(std::fs::TryLockError::Error(err)) => return Err(LockError::Io(err)),
    }
    // The pid is only a hint for the refused opener's message.
    file.set_len(0)?;
    file.rewind()?;
    file.write_all(format!("{}\n", std::process::id()).as_bytes())?;
    Ok(DirLock::new(file))
}

/// The directories held on one simulated machine.
#[derive(Clone, Debug, Default)]
pub(crate) struct SimLocks {
    held: Arc<Mutex<BTreeSet<PathBuf>>>,
}

struct SimLockGuard {
    locks: SimLocks,
    dir: PathBuf,
}

impl Drop for SimLockGuard {
    fn drop(&mut self) {
        self.locks.held.lock().remove(&self.dir);
    }
}

impl SimLocks {
    /// Takes `dir`'s lock (the simulated holder is this process).
    pub(crate) fn lock(&self, dir: &Path) -> Result<DirLock, LockError> {
        if !self.held.lock().insert(dir.to_path_buf()) {
            return Err(LockError::Held {
                holder_pid: Some(std::process::id()),
            });
        }
        Ok(DirLock::new(SimLockGuard {
            locks: self.clone(),
            dir: dir.to_path_buf(),
        }))
    }
}
