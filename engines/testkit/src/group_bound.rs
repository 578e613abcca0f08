//! Group's time bound (audit G1): with the engine's own threads on, a writer
//! acknowledges a burst of `Group` writes and then falls silent; at a random
//! moment the disk's power-loss image is taken. Every write acknowledged
//! more than `bound` before that moment must be in the recovered store, and
//! what is recovered is a prefix of the writes, each with its value.
//!
//! The burst then silence matters: a write path that syncs when the interval
//! has passed hides a missing timer while writes keep coming; only the
//! timer syncs the last writes of a burst.
//!
//! Cases are timed (the bound is wall-clock), so `bound` carries a slack for
//! scheduling on a loaded machine: the timer's interval plus its tick plus
//! `SLACK`. A case is seeded (its burst and its crash moment), not replayable
//! to the microsecond.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use leasehold_core::kv::{Durability, KvEngine, WriteBatch};
use leasehold_core::rng::SplitMix64;
use leasehold_core::vfs::{CrashPolicy, SimVfs};
use leasehold_core::KvResult;

use super::crash::collect_all;
use super::oracle::Violation;

/// What scheduling on a loaded two-core machine may add to the bound.
pub const SLACK: Duration = Duration::from_millis(250);

/// Opens an engine (with its background threads) on a disk.
pub type OpenTimed<E> = dyn Fn(SimVfs) -> KvResult<E> + Send + Sync;

/// One case: a burst of `writes` Group writes `pace` apart, and the crash
/// image taken `crash_after` after the burst began.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct GroupBoundCase {
    pub seed: u64,
    pub writes: usize,
    pub pace: Duration,
    pub crash_after: Duration,
}

impl GroupBoundCase {
    /// A random case for an engine whose timer promises `bound`: the crash
    /// lands anywhere from inside the burst to two bounds after it.
    pub fn random(seed: u64, bound: Duration) -> GroupBoundCase {
        let mut rng = SplitMix64::new(seed);
        let writes = 5 + rng.below(60) as usize;
        let pace = Duration::from_micros(rng.below(3_000));
        let burst = pace * writes as u32;
        let window = (burst + bound * 2).as_micros() as u64;
        GroupBoundCase {
            seed,
            writes,
            pace,
            crash_after: Duration::from_micros(rng.below(window.max(1))),
        }
    }
}

/// The bound an engine whose timer syncs every `interval`, checking every
/// `tick`, must keep.
pub fn bound_for(interval: Duration, tick: Duration) -> Duration {
    interval + tick + SLACK
}

fn key(index: usize) -> Vec<u8> {
    format!("g{index:05}").into_bytes()
}

fn value(seed: u64, index: usize) -> Vec<u8> {
    format!("{seed}:{index}").into_bytes()
}

fn violation(reason: String) -> Violation {
    Violation { reason }
}

/// Runs `case`; returns how many writes had to be recovered.
pub fn run_group_bound_case<E: KvEngine + 'static>(
    open: &OpenTimed<E>,
    bound: Duration,
    case: &GroupBoundCase,
) -> Result<usize, Violation> {
    let vfs = SimVfs::new(case.seed);
    let engine = Arc::new(open(vfs.clone()).map_err(|err| violation(format!("open: {err}")))?);
    let stop = Arc::new(AtomicBool::new(false));
    let started = Instant::now();
    let writer = {
        let (engine, stop, case) = (Arc::clone(&engine), Arc::clone(&stop), case.clone());
        std::thread::spawn(move || -> Result<Vec<Instant>, String> {
            let mut acknowledged = Vec::with_capacity(case.writes);
            for index in 0..case.writes {
                if stop.load(Ordering::Acquire) {
                    break;
                }
                let mut batch = WriteBatch::new();
                batch.put(key(index), value(case.seed, index));
                engine
                    .write(batch, Durability::Group)
                    .map_err(|err| format!("write {index} failed on a healthy disk: {err}"))?;
                acknowledged.push(Instant::now());
                std::thread::sleep(case.pace);
            }
            Ok(acknowledged)
        })
    };
    std::thread::sleep(case.crash_after.saturating_sub(started.elapsed()));
    let crashed_at = Instant::now();
    let image = vfs.crash_image(CrashPolicy::PowerLoss, case.seed);
    stop.store(true, Ordering::Release);
    let acknowledged = writer
        .join()
        .map_err(|_| violation("the writer panicked".into()))?
        .map_err(violation)?;
    drop(engine);
    let due = acknowledged
        .iter()
        .take_while(|at| **at + bound <= crashed_at)
        .count();
    let recovered = open(image).map_err(|err| violation(format!("recovery: {err}")))?;
    let state = collect_all(&recovered).map_err(|err| violation(format!("scan: {err}")))?;
    let _ = recovered.close();
    for (index, (stored_key, stored_value)) in state.iter().enumerate() {
        if *stored_key != key(index) || *stored_value != value(case.seed, index) {
            return Err(violation(format!(
                "the recovered store is not a prefix of the writes: entry {index} is {:?}",
                String::from_utf8_lossy(stored_key)
            )));
        }
    }
    if state.len() < due {
        let lost = &acknowledged[state.len()];
        return Err(violation(format!(
            "{} of {due} Group writes acknowledged more than {bound:?} before the crash were \
             lost; the first was acknowledged {:?} before it",
            due - state.len(),
            crashed_at - *lost
        )));
    }
    Ok(due)
}

/// `cases` random cases from `seed`; the first violation with its case.
pub fn search_group_bound<E: KvEngine + 'static>(
    open: &OpenTimed<E>,
    bound: Duration,
    seed: u64,
    cases: u32,
) -> Result<usize, (GroupBoundCase, String)> {
    let mut due = 0;
    for index in 0..u64::from(cases) {
        let case = GroupBoundCase::random(seed.wrapping_mul(1_000_003).wrapping_add(index), bound);
        due += run_group_bound_case(open, bound, &case).map_err(|found| (case, found.reason))?;
    }
    Ok(due)
}
