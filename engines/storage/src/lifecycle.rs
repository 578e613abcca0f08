//! An engine's lifecycle: open, failed, closed. The first I/O failure that
//! could have lost acknowledged data (a failed fsync, a failed log or manifest
//! write) is sticky: from then on the engine refuses writes until it is
//! reopened, because after a failed fsync the kernel may have dropped the data
//! for good (DESIGN §4). Reads stay allowed until `close`. The lifecycle also
//! holds the engine directory's lock, so `close` releases it.

use std::sync::atomic::{AtomicBool, Ordering};

use std::time::Duration;

use parking_lot::{Condvar, Mutex};

use crate::error::{KvError, KvResult};
use crate::kv::Health;
use crate::vfs::DirLock;

#[derive(Debug, Default)]
pub struct Lifecycle {
    failure: Mutex<Option<String>>,
    /// Set when `close` begins: writes are refused from then on, so none
    /// slips in after the close's final sync.
    closing: AtomicBool,
    closed: AtomicBool,
    lock: Mutex<Option<DirLock>>,
}

impl Lifecycle {
    /// Ok while the engine may write: not closing or closed, not failed.
    pub fn check_writable(&self) -> KvResult<()> {
        if self.closing.load(Ordering::Acquire) {
            return Err(KvError::Closed);
        }
        self.check_healthy()
    }

    /// Ok unless the engine has failed (a closing engine's last sync).
    pub fn check_healthy(&self) -> KvResult<()> {
        match self.failure.lock().as_ref() {
            Some(reason) => Err(KvError::Poisoned {
                reason: reason.clone(),
            }),
            None => Ok(()),
        }
    }

    /// Ok until `close` (reads stay allowed after a failure).
    pub fn check_open(&self) -> KvResult<()> {
        if self.closed.load(Ordering::Acquire) {
            return Err(KvError::Closed);
        }
        Ok(())
    }

    /// Records `err` as the engine's failure (the first one wins) and returns it.
    pub fn fail(&self, err: KvError) -> KvError {
        self.failure.lock().get_or_insert_with(|| err.to_string());
        err
    }

    pub fn is_failed(&self) -> bool {
        self.failure.lock().is_some()
    }

    pub fn is_closed(&self) -> bool {
        self.closed.load(Ordering::Acquire)
    }

    /// Keeps the directory lock until `close` (or until the engine drops).
    pub fn hold(&self, lock: DirLock) {
        *self.lock.lock() = Some(lock);
    }

    /// Starts closing: from now on writes get `Closed` (reads go on until
    /// `close`). False if a close already began: the caller then does nothing.
    pub fn begin_close(&self) -> bool {
        !self.closing.swap(true, Ordering::AcqRel)
    }

    /// Marks the engine closed and releases its directory lock; false if it
    /// already was closed.
    pub fn close(&self) -> bool {
        let first = !self.closed.swap(true, Ordering::AcqRel);
        self.lock.lock().take();
        first
    }

    /// The close every engine makes. The first call stops the engine's
    /// background work (`stop`), then, unless the engine has failed, makes
    /// its last writes durable (`last`: a final sync, a checkpoint, a
    /// backup), marks it closed and releases its directory lock, and
    /// returns what went wrong; a later call does nothing. Writes are refused
    /// from the start, so `last` sees every write there will be.
    pub fn close_with(
        &self,
        stop: impl FnOnce(),
        last: impl FnOnce() -> KvResult<()>,
    ) -> KvResult<()> {
        if !self.begin_close() {
            return Ok(());
        }
        stop();
        let result = self.check_healthy().and_then(|()| last());
        self.close();
        result
    }

    /// One pause of a background loop: waits up to `timeout` on `wake`
    /// (not at all for a zero timeout). False — the loop ends — once `stop`
    /// is set or the engine has failed.
    pub fn pause(&self, stop: &Mutex<bool>, wake: &Condvar, timeout: Duration) -> bool {
        {
            let mut stopping = stop.lock();
            if !*stopping && !timeout.is_zero() {
                wake.wait_for(&mut stopping, timeout);
            }
            if *stopping {
                return false;
            }
        }
        !self.is_failed()
    }

    /// `Failed` when closed or failed, else `None` (the engine judges the rest).
    pub fn health(&self) -> Option<Health> {
        if self.is_closed() {
            return Some(Health::Failed("engine is closed".into()));
        }
        self.failure.lock().clone().map(Health::Failed)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_first_failure_sticks_and_close_is_final() {
        let lifecycle = Lifecycle::default();
        assert!(lifecycle.check_writable().is_ok());
        lifecycle.fail(KvError::InvalidArgument("first".into()));
        lifecycle.fail(KvError::InvalidArgument("second".into()));
        match lifecycle.check_writable() {
            Err(KvError::Poisoned { reason }) => assert!(reason.contains("first")),
            other => panic!("{other:?}"),
        }
        assert!(lifecycle.check_open().is_ok(), "reads stay allowed");
        assert!(lifecycle.close());
        assert!(!lifecycle.close());
        assert!(matches!(lifecycle.check_open(), Err(KvError::Closed)));
        assert!(matches!(lifecycle.health(), Some(Health::Failed(_))));
    }
}
