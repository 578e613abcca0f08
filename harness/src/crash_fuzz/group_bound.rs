//! `crash-fuzz --mode group-bound`: Group's time bound (`testkit::group_bound`)
//! with each engine's threads on — a burst of Group writes, silence, and a
//! crash image at a random moment. With `--planted no-group-timer` it hunts
//! a timer that never syncs (audit G1), on the LSM or the B+tree.

use std::time::{Duration, Instant};

use leasehold_core::config::{BtreeConfig, LsmConfig, MemoryConfig};
use leasehold_core::testkit::group_bound::{bound_for, search_group_bound, OpenTimed};
use leasehold_core::vfs::SimVfs;
use leasehold_core::KvEngine;

use super::{memory_config, Engine, Options};

const ROUND_CASES: u32 = 10;
/// The LSM's and the memory engine's interval here; the B+tree's is whole
/// seconds (`wal_sync_interval`), so it runs at 1 s.
const INTERVAL: Duration = Duration::from_millis(20);

fn lsm_config() -> LsmConfig {
    LsmConfig {
        background_threads: true,
        wal_sync_interval_ms: INTERVAL.as_millis() as u64,
        // No memtable switch (which syncs the log) stands in for the timer.
        memtable_size_limit: 1 << 20,
        ..leasehold_lsm::crash_test_config("/lsm")
    }
}

fn btree_config() -> BtreeConfig {
    BtreeConfig {
        background_threads: true,
        wal_sync_interval_seconds: 1,
        ..leasehold_btree::crash_test_config("/btree")
    }
}

pub(super) fn campaign(options: &Options) -> Result<String, String> {
    if options.replay.is_some() || options.exhaustive {
        return Err(
            "--mode group-bound takes neither --replay nor --exhaustive: its cases are timed"
                .to_owned(),
        );
    }
    let lsm_bound = bound_for(INTERVAL, INTERVAL / 4);
    let btree_bound = bound_for(Duration::from_secs(1), Duration::from_millis(50));
    match (options.engine, options.planted.as_deref()) {
        (Engine::Lsm, None) => rounds(options, lsm_bound, &|vfs: SimVfs| {
            leasehold_lsm::LsmEngine::open(&lsm_config(), std::sync::Arc::new(vfs))
        }),
        (Engine::Btree, None) => rounds(options, btree_bound, &|vfs: SimVfs| {
            leasehold_btree::BtreeEngine::open(&btree_config(), std::sync::Arc::new(vfs))
        }),
        (Engine::Memory, None) => rounds(options, bound_for(INTERVAL, INTERVAL), &|vfs| {
            let config = MemoryConfig {
                sync_interval: INTERVAL,
                ..memory_config()
            };
            leasehold_memory::MemoryEngine::open(&config, std::sync::Arc::new(vfs))
        }),
        #[cfg(feature = "planted-bugs")]
        (Engine::Lsm, Some("no-group-timer")) => rounds(options, lsm_bound, &|vfs: SimVfs| {
            leasehold_lsm::LsmEngine::open_planted(
                &lsm_config(),
                std::sync::Arc::new(vfs),
                leasehold_lsm::db::PlantedBug::NoGroupTimer,
            )
        }),
        #[cfg(feature = "planted-bugs")]
        (Engine::Btree, Some("no-group-timer")) => rounds(options, btree_bound, &|vfs: SimVfs| {
            leasehold_btree::BtreeEngine::open_planted(
                &btree_config(),
                std::sync::Arc::new(vfs),
                leasehold_btree::db::PlantedBug::NoGroupTimer,
            )
        }),
        (_, Some(bug)) => Err(format!(
            "no planted bug {bug:?} is hunted in group-bound mode in this build (no-group-timer \
             on the LSM or the B+tree, with --features planted-bugs)"
        )),
    }
}

/// Rounds of cases until the time is up; with a planted bug, until it is found.
fn rounds<E: KvEngine + 'static>(
    options: &Options,
    bound: Duration,
    open: &OpenTimed<E>,
) -> Result<String, String> {
    let started = Instant::now();
    let deadline = started + Duration::from_secs(options.seconds);
    let (mut rounds, mut due) = (0u64, 0usize);
    while Instant::now() < deadline {
        let seed = options.seed.wrapping_add(rounds);
        let found = search_group_bound(open, bound, seed, ROUND_CASES);
        rounds += 1;
        let cases = rounds * u64::from(ROUND_CASES);
        match (found, &options.planted) {
            (Err((_, reason)), Some(bug)) => {
                return Ok(format!(
                    "planted {bug} caught within {cases} cases (GroupBound mode) in {:.1?}: \
                     {reason}",
                    started.elapsed()
                ))
            }
            (Err((case, reason)), None) => {
                return Err(format!("group-bound case failed: {reason}\ncase: {case:?}"))
            }
            (Ok(checked), _) => due += checked,
        }
    }
    let cases = rounds * u64::from(ROUND_CASES);
    match &options.planted {
        Some(bug) => Err(format!(
            "planted {bug} NOT caught by {cases} cases (GroupBound mode) in {:.0?}",
            started.elapsed()
        )),
        None => Ok(format!(
            "{cases} cases (GroupBound mode, bound {bound:?}, seeds {}..{}) in {:.0?}: {due} \
             writes were due, no violation",
            options.seed,
            options.seed.wrapping_add(rounds),
            started.elapsed()
        )),
    }
}
