//! `crash-fuzz --mode group-bound`: Group's time bound (`testkit::group_bound`)
//! with each engine's threads on — a burst of Group writes, silence, and a
//! crash image at a random moment — within the bound of the engine's crash
//! row. With `--planted no-group-timer` it hunts
//! a timer that never syncs (audit G1), on the LSM or the B+tree.

use std::time::{Duration, Instant};

use leasehold_core::vfs::SimVfs;
use leasehold_core::KvEngine;
use leasehold_testkit::group_bound::{bound_for, search_group_bound, OpenTimed};

use super::Options;
use crate::engines::crash::Setting;
use crate::{Error, Result};

const ROUND_CASES: u32 = 10;

pub(super) fn campaign(options: &Options) -> Result<String> {
    if options.replay.is_some() || options.exhaustive {
        return Err(Error::usage(
            "--mode group-bound takes neither --replay nor --exhaustive: its cases are timed",
        ));
    }
    let engine = super::crash_row(options.engine)?;
    if let Some(bug) = &options.planted {
        engine.check_planted(options.engine.name(), bug)?;
    }
    let (interval, slack) = engine.group_bound;
    let (open, planted) = (engine.open, options.planted.clone());
    rounds(options, bound_for(interval, slack), &move |vfs: SimVfs| {
        open(vfs, Setting::GroupTimer, planted.as_deref())
    })
}

/// Rounds of cases until the time is up; with a planted bug, until it is found.
fn rounds<E: KvEngine + 'static>(
    options: &Options,
    bound: Duration,
    open: &OpenTimed<E>,
) -> Result<String> {
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
                return Err(Error::Violation(format!(
                    "group-bound case failed: {reason}\ncase: {case:?}"
                )))
            }
            (Ok(checked), _) => due += checked,
        }
    }
    let cases = rounds * u64::from(ROUND_CASES);
    match &options.planted {
        Some(bug) => Err(Error::NotCaught {
            bug: bug.clone(),
            cases,
            mode: "GroupBound".to_owned(),
            elapsed: started.elapsed(),
        }),
        None => Ok(format!(
            "{cases} cases (GroupBound mode, bound {bound:?}, seeds {}..{}) in {:.0?}: {due} \
             writes were due, no violation",
            options.seed,
            options.seed.wrapping_add(rounds),
            started.elapsed()
        )),
    }
}
