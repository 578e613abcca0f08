//! The crash driver: run operations on an engine over `SimVfs`, crash it at a
//! chosen mutation under a chosen policy, recover, and ask the oracle.
//!
//! One `CrashCase` is fully determined by its fields, so a failure is
//! reproduced by its debug print. Each case checks:
//! 1. while running: every acknowledged write reads back; no operation fails
//!    before the crash point (crash faults are not device errors); a clean
//!    close + reopen loses nothing;
//! 2. after the crash: recovery succeeds, `verify()` is clean, and the state is
//!    the durable floor plus a prefix of the acknowledged tail (the oracle);
//! 3. recovery crashed at `recovery_crash_after` (under `recovery_policy`) and
//!    run again gives the same state as an uninterrupted recovery;
//! 4. with read faults (`check_read_faults`): recovery on a device that fails,
//!    flips bits in and shortens reads either errors or yields exactly the
//!    recovered state, every read after it is right or an error, and a clean
//!    recovery afterwards still finds everything (faults never destroy data).

use std::collections::BTreeMap;
use std::ops::ControlFlow;
use std::path::PathBuf;

use proptest::prelude::*;
use proptest::test_runner::{Config, RngAlgorithm, TestCaseError, TestError, TestRng, TestRunner};

use super::oracle::{KvMap, Model, Violation};
use leasehold_core::error::KvResult;
use leasehold_core::kv::{Durability, KeyRange, KvEngine, WriteBatch};
use leasehold_core::vfs::{CrashPolicy, Fault, FaultConfig, MutationKind, SimVfs};

/// Keys are drawn from a small set so operations collide.
pub const KEY_SPACE: u8 = 12;

pub fn key_name(key: u8) -> Vec<u8> {
    format!("key-{key:02}").into_bytes()
}

#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub enum CrashOp {
    /// One batch; `None` values are deletes.
    Write {
        ops: Vec<(u8, Option<Vec<u8>>)>,
        durability: Durability,
    },
    Flush,
    /// Close cleanly and open again.
    Reopen,
}

impl CrashOp {
    pub(crate) fn batch(ops: &[(u8, Option<Vec<u8>>)]) -> WriteBatch {
        let mut batch = WriteBatch::new();
        for (key, value) in ops {
            match value {
                Some(value) => batch.put(key_name(*key), value.clone()),
                None => batch.delete(key_name(*key)),
            };
        }
        batch
    }
}

/// One reproducible case; serializable so a campaign can write a shrunk
/// failure to a file and `leasehold crash-fuzz --replay` can rerun it.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct CrashCase {
    pub ops: Vec<CrashOp>,
    /// The disk freezes at this mutation after the first open (1-based); past
    /// the end of the run, the crash comes after the last operation.
    pub crash_after: u64,
    pub policy: CrashPolicy,
    pub seed: u64,
    /// Mutation of the first recovery at which it is crashed.
    pub recovery_crash_after: u64,
    pub recovery_policy: CrashPolicy,
}

/// What a passing case did, for statistics.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct CaseReport {
    pub acknowledged: usize,
    pub crashed_during_run: bool,
    pub tail_batches_recovered: usize,
    /// The operation and file the run's crash struck (none: after the run).
    pub crash_site: Option<(MutationKind, PathBuf)>,
    /// The operation and file the crash inside recovery struck (none: it
    /// came after recovery finished).
    pub recovery_crash_site: Option<(MutationKind, PathBuf)>,
    /// Every device fault injected, with the file it struck and the phase.
    pub faults: Vec<FaultHit>,
}

/// One injected device fault.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct FaultHit {
    pub fault: Fault,
    pub path: PathBuf,
    /// What the engine was doing: "write", "flush" (during the run),
    /// "recovery" (opening a crashed disk) or "read" (reading it back).
    pub phase: &'static str,
}

fn hits(vfs: &SimVfs, phase: &'static str) -> impl Iterator<Item = FaultHit> {
    vfs.take_fired_faults()
        .into_iter()
        .map(move |(fault, path)| FaultHit { fault, path, phase })
}

fn violation(reason: impl Into<String>) -> Violation {
    Violation {
        reason: reason.into(),
    }
}

/// Every entry of `engine`, in order.
pub fn collect_all(engine: &dyn KvEngine) -> KvResult<KvMap> {
    let mut map = BTreeMap::new();
    engine.scan(&KeyRange::all(), &mut |key, value| {
        map.insert(key.to_vec(), value.to_vec());
        ControlFlow::Continue(())
    })?;
    Ok(map)
}

/// Opens `vfs` as after a crash and returns what the engine holds; any error,
/// or a `verify` problem, is a violation.
fn recover<E: KvEngine>(
    open: &dyn Fn(SimVfs) -> KvResult<E>,
    vfs: SimVfs,
    what: &str,
) -> Result<KvMap, Violation> {
    let engine = open(vfs).map_err(|err| violation(format!("{what}: recovery failed: {err}")))?;
    let state = collect_all(&engine)
        .map_err(|err| violation(format!("{what}: scan after recovery failed: {err}")))?;
    let report = engine
        .verify()
        .map_err(|err| violation(format!("{what}: verify failed: {err}")))?;
    if !report.is_clean() {
        return Err(violation(format!(
            "{what}: verify found problems: {:?}",
            report.problems
        )));
    }
    engine
        .close()
        .map_err(|err| violation(format!("{what}: close after recovery failed: {err}")))?;
    Ok(state)
}

/// Runs one case against the engine `open` builds on a disk.
pub fn run_case<E: KvEngine>(
    open: &dyn Fn(SimVfs) -> KvResult<E>,
    case: &CrashCase,
) -> Result<CaseReport, Violation> {
    run_case_with(open, case, None)
}

/// Read faults for check 4: frequent enough that most recoveries meet one.
pub fn read_fault_config() -> FaultConfig {
    FaultConfig {
        read_eio: 0.02,
        read_bit_flip: 0.05,
        short_read: 0.2,
        ..FaultConfig::default()
    }
}

/// `run_case`, plus check 4 when `read_faults` is given.
pub fn run_case_with<E: KvEngine>(
    open: &dyn Fn(SimVfs) -> KvResult<E>,
    case: &CrashCase,
    read_faults: Option<&FaultConfig>,
) -> Result<CaseReport, Violation> {
    let vfs = SimVfs::new(case.seed);
    let mut engine = Some(
        open(vfs.clone())
            .map_err(|err| violation(format!("open of an empty disk failed: {err}")))?,
    );
    vfs.freeze_at(Some(vfs.mutations() + case.crash_after.max(1)));
    let mut model = Model::new();
    let mut report = CaseReport::default();

    for op in &case.ops {
        let Some(live) = engine.as_ref() else { break };
        let failed = |what: &str, err: &dyn std::fmt::Display| {
            violation(format!(
                "{what} failed before any crash or device fault: {err}"
            ))
        };
        match op {
            CrashOp::Write { ops, durability } => {
                let batch = CrashOp::batch(ops);
                match live.write(batch.clone(), *durability) {
                    Ok(()) => {
                        report.acknowledged += 1;
                        model.acknowledge(batch.clone(), *durability == Durability::Sync);
                        let expected = model.expected();
                        for op in &batch.ops {
                            let read = live.get(op.key()).map_err(|err| failed("read", &err))?;
                            if read.as_ref() != expected.get(op.key()) {
                                return Err(violation(format!(
                                    "read of {:?} after an acknowledged write returned {:?}",
                                    String::from_utf8_lossy(op.key()),
                                    read
                                )));
                            }
                        }
                    }
                    Err(_) if vfs.is_frozen() => {
                        model.uncertain(batch);
                        break;
                    }
                    Err(err) => return Err(failed("write", &err)),
                }
            }
            CrashOp::Flush => match live.flush() {
                Ok(()) => model.mark_durable(),
                Err(_) if vfs.is_frozen() => break,
                Err(err) => return Err(failed("flush", &err)),
            },
            CrashOp::Reopen => {
                let Some(closing) = engine.take() else { break };
                match closing.close() {
                    Ok(()) => model.mark_durable(),
                    Err(_) if vfs.is_frozen() => break,
                    Err(err) => return Err(failed("close", &err)),
                }
                drop(closing);
                match open(vfs.clone()) {
                    Ok(reopened) => {
                        let state = collect_all(&reopened).map_err(|err| failed("scan", &err))?;
                        if state != model.expected() {
                            return Err(violation("a clean close and reopen lost or changed data"));
                        }
                        engine = Some(reopened);
                    }
                    Err(_) if vfs.is_frozen() => break,
                    Err(err) => return Err(failed("reopen", &err)),
                }
            }
        }
    }
    report.crashed_during_run = vfs.is_frozen();
    report.crash_site = vfs.freeze_site();
    vfs.freeze();
    drop(engine);

    let recovered = recover(
        open,
        vfs.crash_image(case.policy, case.seed),
        "first recovery",
    )?;
    report.tail_batches_recovered = model.check_recovered(&recovered)?;

    // The same crash image (same seed), recovery interrupted, then rerun.
    let interrupted = vfs.crash_image(case.policy, case.seed);
    interrupted.freeze_at(Some(case.recovery_crash_after.max(1)));
    if let Ok(engine) = open(interrupted.clone()) {
        drop(engine);
    }
    report.recovery_crash_site = interrupted.freeze_site();
    interrupted.freeze();
    let rerun_image = interrupted.crash_image(case.recovery_policy, case.seed.wrapping_add(1));
    let rerun = recover(open, rerun_image, "recovery after a crashed recovery")?;
    if rerun != recovered {
        return Err(violation(format!(
            "recovery crashed at mutation {} ({}) and rerun gives {} keys where an uninterrupted recovery gave {}",
            case.recovery_crash_after,
            case.recovery_policy.name(),
            rerun.len(),
            recovered.len()
        )));
    }
    if let Some(faults) = read_faults {
        report.faults = check_under_read_faults(
            open,
            &vfs.crash_image(case.policy, case.seed),
            faults,
            &recovered,
        )?;
    }
    Ok(report)
}

/// Check 4 on `image`, whose clean recovery gives `recovered`.
fn check_under_read_faults<E: KvEngine>(
    open: &dyn Fn(SimVfs) -> KvResult<E>,
    image: &SimVfs,
    faults: &FaultConfig,
    recovered: &KvMap,
) -> Result<Vec<FaultHit>, Violation> {
    image.set_faults(faults.clone());
    let opened = open(image.clone());
    let mut fired: Vec<FaultHit> = hits(image, "recovery").collect();
    if let Ok(engine) = opened {
        if let Ok(state) = collect_all(&engine) {
            if &state != recovered {
                return Err(violation(format!(
                    "under read faults recovery returned {} keys without an error; the disk holds {}",
                    state.len(),
                    recovered.len()
                )));
            }
        }
        for (key, value) in recovered {
            if let Ok(read) = engine.get(key) {
                if read.as_ref() != Some(value) {
                    return Err(violation(format!(
                        "under read faults a read of {:?} returned wrong data without an error",
                        String::from_utf8_lossy(key)
                    )));
                }
            }
        }
        // Closing may fail on a faulty device; what matters is what remains.
        let _ = engine.close();
        fired.extend(hits(image, "read"));
    }
    image.set_faults(FaultConfig::default());
    let after = recover(
        open,
        image.clone(),
        "clean recovery after a recovery under read faults",
    )?;
    if &after != recovered {
        return Err(violation(format!(
            "a recovery under read faults destroyed data: {} keys remain of {}",
            after.len(),
            recovered.len()
        )));
    }
    Ok(fired)
}

mod device;
mod exhaustive;
mod search;
#[cfg(test)]
mod tests;

pub use device::*;
pub use exhaustive::*;
pub use search::*;
