//! The background threads: the flusher, the compactor (each its own, so a
//! flush never waits behind a compaction) and the syncer (timed WAL syncs
//! for Group writes, never behind either; seals of idle logs).

use super::*;
use leasehold_storage::wal::SEAL_AFTER_IDLE;

impl Inner {
    /// Flushes frozen memtables as they come.
    pub(super) fn flush_loop(&self) {
        self.work_loop(
            || !self.state.read().immutables.is_empty(),
            || self.flush_one(),
        );
    }

    /// Compacts while a compaction is due.
    pub(super) fn compaction_loop(&self) {
        self.work_loop(
            || {
                let state = self.state.read();
                compaction::pick(&state.version, &self.config, &vec![Vec::new(); LEVELS]).is_some()
            },
            || self.compact_once(),
        );
    }

    /// Runs `work` while `due`, else waits to be woken (or the sync
    /// interval); returns when the engine stops or the work fails (the
    /// failure has failed the engine).
    fn work_loop(&self, due: impl Fn() -> bool, work: impl Fn() -> KvResult<bool>) {
        let interval = Duration::from_millis(self.config.wal_sync_interval_ms.max(1));
        loop {
            let wait = if due() { Duration::ZERO } else { interval };
            if !self.lifecycle.pause(&self.stop, &self.work_cv, wait) {
                return;
            }
            if work().is_err() {
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
