//! The background threads: the flusher, the compactor (each its own, so a
//! flush never waits behind a compaction) and the Group timer
//! (`leasehold_storage::group_timer`: timed WAL syncs, seals of idle logs).

use super::*;
use leasehold_storage::group_timer::{self, TimedLog};

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

    /// The Group timer (`group_timer`): syncs a WAL whose unsynced bytes
    /// have waited the interval, seals a quiet one.
    pub(super) fn sync_loop(&self) {
        let interval = Duration::from_millis(self.config.wal_sync_interval_ms.max(1));
        group_timer::run(
            &self.lifecycle,
            &self.stop,
            &self.work_cv,
            interval,
            || self.planted(PlantedBug::NoGroupTimer),
            || {
                group_timer::on_log(
                    &self.wal,
                    interval,
                    |wal| self.sync_wal(wal),
                    |wal| {
                        group_timer::seal_log(&mut wal.writer, &mut wal.last_sync, |err| {
                            self.fail(err)
                        })
                    },
                )
            },
        );
    }
}

impl TimedLog for WalState {
    fn unsynced(&self) -> bool {
        !self.writer.is_synced()
    }

    fn since_sync(&self) -> Duration {
        self.last_sync.elapsed()
    }

    fn needs_seal(&self) -> bool {
        self.writer.needs_seal()
    }
}
