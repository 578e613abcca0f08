//! `crash-fuzz --mode background`: the oracle with each engine's workers on,
//! its manual maintenance and a scanning reader racing them
//! (`testkit::background`), on any engine with a crash row. With `--planted
//! pick-before-lock` it hunts the LSM's flush race (audit D3); with
//! `--planted ignore-readers`, the B+tree reusing pages a reader still holds.

use std::sync::Arc;
use std::time::{Duration, Instant};

use leasehold_core::vfs::SimVfs;
use leasehold_core::KvEngine;
use leasehold_testkit::background::{search_background, Maintain, OpenShared};

use super::Options;
use crate::engines::crash::{Crashable, Setting};
use crate::{Error, Result};

const ROUND_CASES: u32 = 100;
const OPS_MAX: usize = 32;

pub(super) fn campaign(options: &Options) -> Result<String> {
    if options.replay.is_some() || options.exhaustive {
        return Err(Error::Usage(
            "--mode background takes neither --replay nor --exhaustive: its cases \
                    interleave as the threads are scheduled"
                .to_owned(),
        ));
    }
    let engine = super::crash_row(options.engine)?;
    let planted = options.planted.clone();
    if let Some(bug) = &planted {
        engine.check_planted(options.engine.name(), bug)?;
    }
    let open = engine.open;
    rounds(
        options,
        Arc::new(move |vfs: SimVfs| open(vfs, Setting::Threads, planted.as_deref())),
        Arc::new(maintain),
    )
}

/// The testkit hands its engine type by reference, and here that type is
/// the box the registry's opener returns.
#[allow(clippy::borrowed_box)]
fn maintain(engine: &Crashable) -> leasehold_core::KvResult<()> {
    engine.maintain()
}

/// Rounds of cases until the time is up; with a planted bug, until it is found.
fn rounds<E: KvEngine>(
    options: &Options,
    open: Arc<OpenShared<E>>,
    maintain: Arc<Maintain<E>>,
) -> Result<String> {
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
                return Err(Error::Violation(format!(
                    "background case failed: {reason}\ncase: {case:?}"
                )))
            }
            (Ok(()), _) => {}
        }
    }
    let cases = rounds * u64::from(ROUND_CASES);
    match &options.planted {
        Some(bug) => Err(Error::NotCaught {
            bug: bug.clone(),
            cases,
            mode: "Background".to_owned(),
            elapsed: started.elapsed(),
        }),
        None => Ok(format!(
            "{cases} cases (Background mode, seeds {}..{}) in {:.0?}: no violation",
            options.seed,
            options.seed.wrapping_add(rounds),
            started.elapsed()
        )),
    }
}
