//! The Group timer, one per engine with a log, on a thread of its own so
//! that no flush, compaction or checkpoint delays it (audit G1). It keeps
//! `Durability::Group`'s promise — a write acknowledged unsynced is fsynced
//! within the engine's interval — and seals a synced log once it has been
//! quiet for `wal::SEAL_AFTER_IDLE` (audit D8: the seal claims the last
//! records, so damage in them after a crash is corruption, not a torn tail).
//!
//! It never waits for the log: a writer holding it (a Sync write's fsync, a
//! stall) syncs before it acknowledges anything else, so the timer only
//! tries the lock, and tries again a tick later.

use std::time::{Duration, Instant};

use parking_lot::{Condvar, Mutex};

use crate::error::{KvError, KvResult};
use crate::kv::Durability;
use crate::lifecycle::Lifecycle;
use crate::wal::{WalWriter, SEAL_AFTER_IDLE};

/// An engine's log as the timer judges it.
pub trait TimedLog {
    /// Whether acknowledged writes are not yet fsynced (in the engine's
    /// buffer or in the file).
    fn unsynced(&self) -> bool;
    /// How long since the log was last fsynced.
    fn since_sync(&self) -> Duration;
    /// Whether the log is synced, holds records, and no seal claims them.
    fn needs_seal(&self) -> bool;
}

/// What the timer does with the log now.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Due {
    Sync,
    Seal,
}

/// Sync a log whose unsynced writes have waited `interval`; seal a synced
/// one that has been quiet for `SEAL_AFTER_IDLE`; else nothing.
pub fn due(log: &impl TimedLog, interval: Duration) -> Option<Due> {
    let since = log.since_sync();
    if log.unsynced() {
        (since >= interval).then_some(Due::Sync)
    } else {
        (log.needs_seal() && since >= SEAL_AFTER_IDLE).then_some(Due::Seal)
    }
}

/// One look of the timer at a log behind `lock`: nothing while a writer
/// holds it (the writer syncs as it goes), else `sync` or `seal` as `due`
/// says — what an engine's `try_due` is.
pub fn on_log<L: TimedLog>(
    lock: &Mutex<L>,
    interval: Duration,
    sync: impl FnOnce(&mut L) -> KvResult<()>,
    seal: impl FnOnce(&mut L) -> KvResult<()>,
) -> KvResult<()> {
    let Some(mut log) = lock.try_lock() else {
        return Ok(());
    };
    match due(&*log, interval) {
        Some(Due::Sync) => sync(&mut log),
        Some(Due::Seal) => seal(&mut log),
        None => Ok(()),
    }
}

/// Whether a write group must be fsynced before it is acknowledged: it
/// holds a Sync write, or a Group write once `interval` has passed since
/// the last sync — or at once when no timer runs to sync it later (Group's
/// promise, durable within the interval, kept the only way it can be).
pub fn must_sync(
    durabilities: impl Iterator<Item = Durability>,
    since_sync: Duration,
    interval: Duration,
    timer_runs: bool,
) -> bool {
    let (mut sync, mut group) = (false, false);
    for durability in durabilities {
        sync |= durability == Durability::Sync;
        group |= durability == Durability::Group;
    }
    sync || (group && (since_sync >= interval || !timer_runs))
}

/// Fsyncs an engine's log and notes when in `last_sync` (the timer's and
/// the writers' sync alike); `pretend`, a planted bug, notes it without
/// the fsync. An error goes through `fail`: the engine cannot go on with a
/// log it could not sync.
pub fn sync_log(
    wal: &mut WalWriter,
    last_sync: &mut Instant,
    pretend: bool,
    fail: impl FnOnce(KvError) -> KvError,
) -> KvResult<()> {
    if !pretend {
        wal.sync()
            .map_err(|err| fail(KvError::io(format!("sync {}", wal.path().display()), err)))?;
    }
    *last_sync = Instant::now();
    Ok(())
}

/// Seals a quiet, synced log (`Due::Seal`) and notes when, as `sync_log`.
pub fn seal_log(
    wal: &mut WalWriter,
    last_sync: &mut Instant,
    fail: impl FnOnce(KvError) -> KvError,
) -> KvResult<()> {
    wal.seal()
        .map_err(|err| fail(KvError::io(format!("seal {}", wal.path().display()), err)))?;
    *last_sync = Instant::now();
    Ok(())
}

/// How often the timer looks: a quarter of the interval, within 1–50 ms.
pub fn tick(interval: Duration) -> Duration {
    (interval / 4).clamp(Duration::from_millis(1), Duration::from_millis(50))
}

/// Runs the timer until the engine stops or fails: every tick, unless
/// `paused` (a planted bug that silences it), calls `try_due`, which takes the
/// log only if it is free and does what `due` says. An error ends the loop
/// (the engine has failed itself).
pub fn run(
    lifecycle: &Lifecycle,
    stop: &Mutex<bool>,
    wake: &Condvar,
    interval: Duration,
    paused: impl Fn() -> bool,
    mut try_due: impl FnMut() -> KvResult<()>,
) {
    while lifecycle.pause(stop, wake, tick(interval)) {
        if paused() {
            continue;
        }
        if try_due().is_err() {
            return;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    struct Log {
        unsynced: bool,
        since: Duration,
        needs_seal: bool,
    }

    impl TimedLog for Log {
        fn unsynced(&self) -> bool {
            self.unsynced
        }
        fn since_sync(&self) -> Duration {
            self.since
        }
        fn needs_seal(&self) -> bool {
            self.needs_seal
        }
    }

    #[test]
    fn syncs_after_the_interval_and_seals_only_a_quiet_synced_log() {
        let interval = Duration::from_millis(20);
        let log = |unsynced, since_ms, needs_seal| Log {
            unsynced,
            since: Duration::from_millis(since_ms),
            needs_seal,
        };
        assert_eq!(due(&log(true, 19, false), interval), None);
        assert_eq!(due(&log(true, 20, false), interval), Some(Due::Sync));
        // Unsynced writes come first, however long the log was quiet.
        let quiet = SEAL_AFTER_IDLE.as_millis() as u64 + 1;
        assert_eq!(due(&log(true, quiet, true), interval), Some(Due::Sync));
        assert_eq!(due(&log(false, quiet, true), interval), Some(Due::Seal));
        assert_eq!(due(&log(false, quiet - 2, true), interval), None);
        assert_eq!(due(&log(false, quiet, false), interval), None);
        assert_eq!(tick(Duration::from_secs(1)), Duration::from_millis(50));
        assert_eq!(tick(Duration::from_millis(20)), Duration::from_millis(5));
        assert_eq!(tick(Duration::ZERO), Duration::from_millis(1));
    }

    #[test]
    fn a_group_is_synced_for_a_sync_write_or_a_group_write_past_its_interval() {
        use Durability::{Buffered, Group, Sync};
        let interval = Duration::from_millis(20);
        let must = |writes: &[Durability], since_ms, timer_runs| {
            must_sync(
                writes.iter().copied(),
                Duration::from_millis(since_ms),
                interval,
                timer_runs,
            )
        };
        assert!(must(&[Buffered, Sync], 0, true));
        assert!(!must(&[Buffered, Group], 19, true));
        assert!(must(&[Buffered, Group], 20, true));
        assert!(must(&[Group], 0, false), "no timer will sync it later");
        assert!(!must(&[Buffered], 1_000, false));
    }

    #[test]
    fn a_look_at_the_log_leaves_a_held_one_alone_and_does_what_is_due() {
        let interval = Duration::from_millis(20);
        let lock = Mutex::new(Log {
            unsynced: true,
            since: interval,
            needs_seal: false,
        });
        let done = std::cell::Cell::new("nothing");
        let look = || {
            on_log(
                &lock,
                interval,
                |_| {
                    done.set("sync");
                    Ok(())
                },
                |_| {
                    done.set("seal");
                    Ok(())
                },
            )
        };
        let held = lock.lock();
        look().unwrap();
        assert_eq!(done.get(), "nothing", "a writer holds the log");
        drop(held);
        look().unwrap();
        assert_eq!(done.get(), "sync");
        *lock.lock() = Log {
            unsynced: false,
            since: SEAL_AFTER_IDLE,
            needs_seal: true,
        };
        look().unwrap();
        assert_eq!(done.get(), "seal");
    }
}
