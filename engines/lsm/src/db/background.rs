//! The background threads: the worker (flushes and compactions) and the
//! syncer (timed WAL syncs for Group writes, never behind a flush; seals of
//! idle logs).

use super::*;
use leasehold_core::wal::SEAL_AFTER_IDLE;

impl Inner {
    pub(super) fn has_work(&self) -> bool {
        let state = self.state.read();
        !state.immutables.is_empty()
            || compaction::pick(&state.version, &self.config, &vec![Vec::new(); LEVELS]).is_some()
    }

    pub(super) fn background_loop(&self) {
        let interval = Duration::from_millis(self.config.wal_sync_interval_ms.max(1));
        loop {
            let wait = if self.has_work() {
                Duration::ZERO
            } else {
                interval
            };
            if !self.lifecycle.pause(&self.stop, &self.work_cv, wait) {
                return;
            }
            let worked = self.flush_one().and_then(|flushed| {
                if flushed {
                    Ok(true)
                } else {
                    self.compact_once()
                }
            });
            if worked.is_err() {
                return;
            }
        }
    }

    /// Group durability: syncs a WAL whose unsynced bytes have waited the
    /// interval. Its own thread, so that no flush or compaction delays it
    /// (audit G1). A write leader holding the WAL (a Sync write's fsync, or
    /// a stall) syncs before it acknowledges anything else, so this never
    /// waits for the lock: it tries again a few milliseconds later.
    ///
    /// It also seals a synced log once it has been quiet for
    /// `wal::SEAL_AFTER_IDLE` (audit D8): the seal claims the last records,
    /// so damage in them after a crash is corruption, not a torn tail.
    pub(super) fn sync_loop(&self) {
        let interval = Duration::from_millis(self.config.wal_sync_interval_ms.max(1));
        let tick = (interval / 4).max(Duration::from_millis(1));
        while self.lifecycle.pause(&self.stop, &self.work_cv, tick) {
            if self.planted(PlantedBug::NoGroupTimer) {
                continue;
            }
            if let Some(mut wal) = self.wal.try_lock() {
                let failed = if !wal.writer.is_synced() && wal.last_sync.elapsed() >= interval {
                    self.sync_wal(&mut wal).is_err()
                } else if wal.writer.needs_seal() && wal.last_sync.elapsed() >= SEAL_AFTER_IDLE {
                    self.seal_wal(&mut wal).is_err()
                } else {
                    false
                };
                if failed {
                    return;
                }
            }
        }
    }

    fn seal_wal(&self, wal: &mut WalState) -> KvResult<()> {
        wal.writer.seal().map_err(|err| {
            self.fail(KvError::io(
                format!("seal {}", wal.writer.path().display()),
                err,
            ))
        })?;
        wal.last_sync = Instant::now();
        Ok(())
    }
}
