//! `crash-fuzz --mode background`: the oracle with each engine's workers on,
//! its manual maintenance and a scanning reader racing them
//! (`testkit::background`). With `--planted pick-before-lock` it hunts the
//! LSM's flush race (audit D3); with `--planted ignore-readers`, the B+tree
//! reusing pages a reader still holds.

use std::sync::Arc;
use std::time::{Duration, Instant};

use leasehold_core::config::LsmConfig;
use leasehold_core::testkit::background::{search_background, Maintain, OpenShared};
use leasehold_core::vfs::SimVfs;
use leasehold_core::KvEngine;

use super::{memory_config, Engine, Options};

const ROUND_CASES: u32 = 100;
const OPS_MAX: usize = 32;

fn lsm_config() -> LsmConfig {
    LsmConfig {
        background_threads: true,
        max_memtables: 4,
        ..leasehold_lsm::crash_test_config("/lsm")
    }
}

fn btree_config() -> leasehold_core::config::BtreeConfig {
    leasehold_core::config::BtreeConfig {
        background_threads: true,
        ..leasehold_btree::crash_test_config("/btree")
    }
}

pub(super) fn campaign(options: &Options) -> Result<String, String> {
    if options.replay.is_some() || options.exhaustive {
        return Err(
            "--mode background takes neither --replay nor --exhaustive: its cases \
                    interleave as the threads are scheduled"
                .to_owned(),
        );
    }
    match (options.engine, options.planted.as_deref()) {
        (Engine::Lsm, None) => rounds(
            options,
            Arc::new(|vfs: SimVfs| leasehold_lsm::LsmEngine::open(&lsm_config(), Arc::new(vfs))),
            Arc::new(leasehold_lsm::LsmEngine::compact_all),
        ),
        #[cfg(feature = "planted-bugs")]
        (Engine::Lsm, Some("pick-before-lock")) => rounds(
            options,
            Arc::new(|vfs: SimVfs| {
                leasehold_lsm::LsmEngine::open_planted(
                    &lsm_config(),
                    Arc::new(vfs),
                    leasehold_lsm::db::PlantedBug::PickBeforeLock,
                )
            }),
            Arc::new(leasehold_lsm::LsmEngine::compact_all),
        ),
        (Engine::Btree, None) => rounds(
            options,
            Arc::new(|vfs: SimVfs| {
                leasehold_btree::BtreeEngine::open(&btree_config(), Arc::new(vfs))
            }),
            Arc::new(leasehold_btree::BtreeEngine::checkpoint),
        ),
        #[cfg(feature = "planted-bugs")]
        (Engine::Btree, Some("ignore-readers")) => rounds(
            options,
            Arc::new(|vfs: SimVfs| {
                leasehold_btree::BtreeEngine::open_planted(
                    &btree_config(),
                    Arc::new(vfs),
                    leasehold_btree::db::PlantedBug::IgnoreReaders,
                )
            }),
            Arc::new(leasehold_btree::BtreeEngine::checkpoint),
        ),
        (Engine::Memory, None) => rounds(
            options,
            Arc::new(|vfs: SimVfs| {
                let config = leasehold_core::config::MemoryConfig {
                    sync_interval: Duration::from_secs(1),
                    ..memory_config()
                };
                leasehold_memory::MemoryEngine::open(&config, Arc::new(vfs))
            }),
            Arc::new(|engine: &leasehold_memory::MemoryEngine| engine.flush()),
        ),
        (_, Some(bug)) => Err(format!(
            "no planted bug {bug:?} is hunted in background mode in this build (the LSM's \
             pick-before-lock and the B+tree's ignore-readers, with --features planted-bugs)"
        )),
    }
}

/// Rounds of cases until the time is up; with a planted bug, until it is found.
fn rounds<E: KvEngine>(
    options: &Options,
    open: Arc<OpenShared<E>>,
    maintain: Arc<Maintain<E>>,
) -> Result<String, String> {
    let started = Instant::now();
    let deadline = started + Duration::from_secs(options.seconds);
    let mut rounds = 0u64;
    while Instant::now() < deadline {
        let seed = options.seed.wrapping_add(rounds);
        let found = search_background(
            Arc::clone(&open),
            Arc::clone(&maintain),
            seed,
            ROUND_CASES,
            OPS_MAX,
        );
        rounds += 1;
        let cases = rounds * u64::from(ROUND_CASES);
        match (found, &options.planted) {
            (Err((_, reason)), Some(bug)) => {
                return Ok(format!(
                "planted {bug} caught within {cases} cases (Background mode) in {:.1?}: {reason}",
                started.elapsed()
            ))
            }
            (Err((case, reason)), None) => {
                return Err(format!("background case failed: {reason}\ncase: {case:?}"))
            }
            (Ok(()), _) => {}
        }
    }
    let cases = rounds * u64::from(ROUND_CASES);
    match &options.planted {
        Some(bug) => Err(format!(
            "planted {bug} NOT caught by {cases} cases (Background mode) in {:.0?}",
            started.elapsed()
        )),
        None => Ok(format!(
            "{cases} cases (Background mode, seeds {}..{}) in {:.0?}: no violation",
            options.seed,
            options.seed.wrapping_add(rounds),
            started.elapsed()
        )),
    }
}
