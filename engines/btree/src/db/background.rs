//! The background threads: the checkpointer and the Group timer
//! (`leasehold_storage::group_timer`: timed log syncs, never behind a
//! checkpoint; seals of idle logs).

use super::*;
use leasehold_storage::group_timer::{self, TimedLog};

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

    /// The Group timer (`group_timer`): syncs the log once its unsynced
    /// records (buffered or written) have waited the interval, seals a
    /// quiet one.
    pub(super) fn sync_loop(&self) {
        let interval = Duration::from_secs(self.config.wal_sync_interval_seconds);
        group_timer::run(
            &self.lifecycle,
            &self.stop,
            &self.sync_cv,
            interval,
            || self.planted(PlantedBug::NoGroupTimer),
            || {
                group_timer::on_log(
                    &self.writer,
                    interval,
                    |writer| self.sync_log(writer),
                    |writer| {
                        group_timer::seal_log(&mut writer.wal, &mut writer.last_sync, |err| {
                            self.fail(err)
                        })
                    },
                )
            },
        );
    }
}

impl TimedLog for WriterState {
    fn unsynced(&self) -> bool {
        !self.buffer.is_empty() || !self.wal.is_synced()
    }

    fn since_sync(&self) -> Duration {
        self.last_sync.elapsed()
    }

    fn needs_seal(&self) -> bool {
        self.wal.needs_seal()
    }
}
