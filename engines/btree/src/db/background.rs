//! The background threads: the checkpointer and the syncer (timed log syncs
//! for Group writes, never behind a checkpoint).

use super::*;
use leasehold_storage::wal::SEAL_AFTER_IDLE;

impl Inner {
    pub(super) fn background_loop(&self) {
        let interval = Duration::from_secs(self.config.wal_sync_interval_seconds)
            .clamp(Duration::from_millis(10), Duration::from_millis(200));
        let mut wait = interval;
        while self.lifecycle.pause(&self.stop, &self.work_cv, wait) {
            wait = interval;
            if self.checkpoint_due() {
                self.checkpointing.store(true, Ordering::Relaxed);
                let done = self.checkpoint();
                self.checkpointing.store(false, Ordering::Relaxed);
                if done.is_err() {
                    return;
                }
                // Writers did not wake it while it worked: look again at once.
                wait = Duration::ZERO;
            }
        }
    }

    /// Group durability: syncs the log once its unsynced records have waited
    /// the interval. Its own thread, so that no checkpoint delays it (audit
    /// G1); it never waits for the writer lock (a holder syncs or will).
    /// It also seals a synced log once it has been quiet for
    /// `wal::SEAL_AFTER_IDLE` (audit D8): the seal claims the last records,
    /// so damage in them after a crash is corruption, not a torn tail.
    pub(super) fn sync_loop(&self) {
        let interval = Duration::from_secs(self.config.wal_sync_interval_seconds);
        let tick = (interval / 4).clamp(Duration::from_millis(1), Duration::from_millis(50));
        while self.lifecycle.pause(&self.stop, &self.sync_cv, tick) {
            if self.planted(PlantedBug::NoGroupTimer) {
                continue;
            }
            if let Some(mut writer) = self.writer.try_lock() {
                let dirty = !writer.buffer.is_empty() || !writer.wal.is_synced();
                let failed = if dirty && writer.last_sync.elapsed() >= interval {
                    self.sync_log(&mut writer).is_err()
                } else if !dirty
                    && writer.wal.needs_seal()
                    && writer.last_sync.elapsed() >= SEAL_AFTER_IDLE
                {
                    self.seal_log(&mut writer).is_err()
                } else {
                    false
                };
                if failed {
                    return;
                }
            }
        }
    }

    fn seal_log(&self, writer: &mut WriterState) -> KvResult<()> {
        writer.wal.seal().map_err(|err| {
            self.fail(KvError::io(
                format!("seal {}", writer.wal.path().display()),
                err,
            ))
        })?;
        writer.last_sync = Instant::now();
        Ok(())
    }
}
