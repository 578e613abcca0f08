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
use crate::error::KvResult;
use crate::kv::{Durability, KeyRange, KvEngine, WriteBatch};
use crate::vfs::{CrashPolicy, Fault, FaultConfig, MutationKind, SimVfs};

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

fn value_strategy() -> impl Strategy<Value = Vec<u8>> {
    prop_oneof![
        4 => proptest::collection::vec(any::<u8>(), 0..24),
        // Values that span 512-byte sectors, so writes can tear inside a record:
        // one byte repeated (compressing to almost nothing) or noise (not
        // compressing at all, so engines that compress still meet long records).
        1 => (1usize..3000, any::<u8>()).prop_map(|(len, byte)| vec![byte; len]),
        1 => (1usize..3000, any::<u64>()).prop_map(|(len, seed)| {
            let mut value = vec![0; len];
            crate::rng::SplitMix64::new(seed).fill(&mut value);
            value
        }),
    ]
}

fn durability_strategy() -> impl Strategy<Value = Durability> {
    prop_oneof![
        Just(Durability::Sync),
        Just(Durability::Group),
        Just(Durability::Buffered)
    ]
}

fn op_strategy() -> impl Strategy<Value = CrashOp> {
    let entry = (
        0..KEY_SPACE,
        proptest::option::weighted(0.8, value_strategy()),
    );
    prop_oneof![
        8 => (proptest::collection::vec(entry, 1..4), durability_strategy())
            .prop_map(|(ops, durability)| CrashOp::Write { ops, durability }),
        1 => Just(CrashOp::Flush),
        1 => Just(CrashOp::Reopen),
    ]
}

fn policy_strategy(policies: &[CrashPolicy]) -> impl Strategy<Value = CrashPolicy> {
    proptest::sample::select(policies.to_vec())
}

/// Cases of up to `ops_max` operations.
pub fn case_strategy(ops_max: usize) -> impl Strategy<Value = CrashCase> {
    case_strategy_with(ops_max, &CrashPolicy::ALL)
}

/// Cases of up to `ops_max` operations crashing under one of `policies`.
pub fn case_strategy_with(
    ops_max: usize,
    policies: &[CrashPolicy],
) -> impl Strategy<Value = CrashCase> {
    (
        proptest::collection::vec(op_strategy(), 1..ops_max),
        // Most runs make 30-150 mutations: most cases crash mid-run, some after.
        1u64..120,
        policy_strategy(policies),
        any::<u64>(),
        1u64..40,
        policy_strategy(policies),
    )
        .prop_map(
            |(ops, crash_after, policy, seed, recovery_crash_after, recovery_policy)| CrashCase {
                ops,
                crash_after,
                policy,
                seed,
                recovery_crash_after,
                recovery_policy,
            },
        )
}

/// Runs `cases` random cases (deterministic unless `LEASEHOLD_CRASH_SEED` is
/// set) and returns the shrunk failing case, if any.
pub fn search<E: KvEngine>(
    open: &dyn Fn(SimVfs) -> KvResult<E>,
    cases: u32,
    ops_max: usize,
) -> Result<(), (CrashCase, String)> {
    search_with(open, cases, ops_max, None)
}

/// `search` with check 4 under `read_faults`.
pub fn search_with<E: KvEngine>(
    open: &dyn Fn(SimVfs) -> KvResult<E>,
    cases: u32,
    ops_max: usize,
    read_faults: Option<&FaultConfig>,
) -> Result<(), (CrashCase, String)> {
    search_cases(cases, ops_max, &|case| {
        run_case_with(open, case, read_faults).map(|_| ())
    })
}

/// Runs `run` over `cases` random cases (deterministic unless
/// `LEASEHOLD_CRASH_SEED` is set); the shrunk failing case, if any.
pub fn search_cases(
    cases: u32,
    ops_max: usize,
    run: &dyn Fn(&CrashCase) -> Result<(), Violation>,
) -> Result<(), (CrashCase, String)> {
    let seed = std::env::var("LEASEHOLD_CRASH_SEED")
        .ok()
        .and_then(|text| text.parse::<u64>().ok())
        .unwrap_or(0);
    search_seeded(seed, cases, ops_max, &CrashPolicy::ALL, run)
}

/// `search_cases` from an explicit seed, crashing only under `policies`.
pub fn search_seeded(
    seed: u64,
    cases: u32,
    ops_max: usize,
    policies: &[CrashPolicy],
    run: &dyn Fn(&CrashCase) -> Result<(), Violation>,
) -> Result<(), (CrashCase, String)> {
    let mut seed_bytes = [0u8; 32];
    seed_bytes[..8].copy_from_slice(&seed.to_le_bytes());
    let config = Config {
        cases,
        failure_persistence: None,
        ..Config::default()
    };
    let rng = TestRng::from_seed(RngAlgorithm::ChaCha, &seed_bytes);
    let mut runner = TestRunner::new_with_rng(config, rng);
    match runner.run(&case_strategy_with(ops_max, policies), |case| {
        run(&case).map_err(|err| TestCaseError::fail(err.reason))
    }) {
        Ok(()) => Ok(()),
        Err(TestError::Fail(reason, case)) => Err((case, reason.to_string())),
        Err(TestError::Abort(reason)) => Err((
            CrashCase {
                ops: Vec::new(),
                crash_after: 0,
                policy: CrashPolicy::ProcessCrash,
                seed: 0,
                recovery_crash_after: 0,
                recovery_policy: CrashPolicy::ProcessCrash,
            },
            format!("proptest aborted: {reason}"),
        )),
    }
}

/// Device faults while running: write and fsync errors, failed directory
/// syncs, short writes and reads, flipped bits on read (and, in a third of the
/// cases, a full disk).
pub fn device_fault_config() -> FaultConfig {
    FaultConfig {
        write_eio: 0.01,
        sync_eio: 0.03,
        sync_dir_eio: 0.03,
        short_write: 0.1,
        short_read: 0.1,
        read_bit_flip: 0.01,
        read_eio: 0.005,
        ..FaultConfig::default()
    }
}

/// One case run on a device with `faults` (the case's crash point is used as
/// the crash *after* the run). Checks: every read is right or an error; once a
/// write or flush failed, no later write is acknowledged until a reopen (a
/// failed fsync may have lost data for good); after the crash, a clean
/// recovery holds the durable floor plus a prefix of the rest, the failed
/// batch counting as uncertain.
pub fn run_device_fault_case<E: KvEngine>(
    open: &dyn Fn(SimVfs) -> KvResult<E>,
    case: &CrashCase,
    faults: &FaultConfig,
) -> Result<CaseReport, Violation> {
    let vfs = SimVfs::new(case.seed);
    let mut report = CaseReport::default();
    let mut engine = Some(
        open(vfs.clone())
            .map_err(|err| violation(format!("open of an empty disk failed: {err}")))?,
    );
    let mut faults = faults.clone();
    // A third of the cases also run out of space, somewhere past what the
    // empty engine already uses: a full disk must not corrupt what was durable.
    // The headroom is log-uniform, 256 B to 64 KiB, so an engine that writes
    // little (the memory engine's backups) fills its disk too.
    if case.seed.is_multiple_of(3) && faults.capacity_bytes.is_none() {
        let used: u64 = disk_usage(&vfs);
        faults.capacity_bytes = Some(used + (256 << (case.seed / 3 % 9)));
    }
    vfs.set_faults(faults);
    let mut model = Model::new();
    let mut failed = false;
    for op in &case.ops {
        let Some(live) = engine.as_ref() else { break };
        match op {
            CrashOp::Write { ops, durability } => {
                let batch = CrashOp::batch(ops);
                match live.write(batch.clone(), *durability) {
                    Ok(()) if failed => {
                        return Err(violation(
                            "a write was acknowledged after an earlier write or flush failed",
                        ));
                    }
                    Ok(()) => {
                        report.acknowledged += 1;
                        model.acknowledge(batch.clone(), *durability == Durability::Sync);
                        let expected = model.expected();
                        for op in &batch.ops {
                            if let Ok(read) = live.get(op.key()) {
                                if read.as_ref() != expected.get(op.key()) {
                                    return Err(violation(
                                        "a read under device faults returned wrong data",
                                    ));
                                }
                            }
                        }
                    }
                    Err(_) if failed => break,
                    Err(_) => {
                        model.uncertain(batch);
                        failed = true;
                    }
                }
                report.faults.extend(hits(&vfs, "write"));
            }
            CrashOp::Flush => {
                match live.flush() {
                    Ok(()) if !failed => model.mark_durable(),
                    Ok(()) => {
                        return Err(violation(
                            "a flush succeeded after an earlier write or flush failed",
                        ))
                    }
                    Err(_) => failed = true,
                }
                report.faults.extend(hits(&vfs, "flush"));
            }
            // Reopening on a faulty device is not what this check is about.
            CrashOp::Reopen => {}
        }
    }
    vfs.freeze();
    drop(engine.take());
    let image = vfs.crash_image(case.policy, case.seed);
    let recovered = recover(open, image, "clean recovery after device faults")?;
    report.tail_batches_recovered = model.check_recovered(&recovered)?;
    Ok(report)
}

/// Bytes the files of `vfs` hold now.
fn disk_usage(vfs: &SimVfs) -> u64 {
    vfs.total_bytes()
}

/// Device-fault cases over random operation sequences; panics with the shrunk case.
pub fn check_device_faults<E: KvEngine>(
    name: &str,
    open: &dyn Fn(SimVfs) -> KvResult<E>,
    cases: u32,
    ops_max: usize,
) {
    let faults = device_fault_config();
    if let Err((case, reason)) = search_cases(cases, ops_max, &|case| {
        run_device_fault_case(open, case, &faults).map(|_| ())
    }) {
        panic!("device-fault check failed for {name}: {reason}\nshrunk case: {case:#?}");
    }
}

/// `search`, panicking with the shrunk case on failure: for engine tests.
pub fn check<E: KvEngine>(
    name: &str,
    open: &dyn Fn(SimVfs) -> KvResult<E>,
    cases: u32,
    ops_max: usize,
) {
    if let Err((case, reason)) = search(open, cases, ops_max) {
        panic!("crash oracle failed for {name}: {reason}\nshrunk case: {case:#?}");
    }
}

/// `check` plus check 4 (recovery under read faults, `read_fault_config`).
pub fn check_read_faults<E: KvEngine>(
    name: &str,
    open: &dyn Fn(SimVfs) -> KvResult<E>,
    cases: u32,
    ops_max: usize,
) {
    if let Err((case, reason)) = search_with(open, cases, ops_max, Some(&read_fault_config())) {
        panic!(
            "crash oracle under read faults failed for {name}: {reason}\nshrunk case: {case:#?}"
        );
    }
}

/// Hand-written sequences of at most five engine operations, for exhaustive
/// runs: every crash point of each under every policy. Large values make
/// engines with small test settings switch logs, flush and compact.
pub fn exhaustive_sequences() -> Vec<Vec<CrashOp>> {
    let put = |key: u8, len: usize, durability| CrashOp::Write {
        ops: vec![(key, Some(vec![key; len]))],
        durability,
    };
    let delete = |key: u8, durability| CrashOp::Write {
        ops: vec![(key, None)],
        durability,
    };
    let batch = CrashOp::Write {
        ops: vec![
            (1, Some(vec![1; 40])),
            (2, Some(vec![2; 40])),
            (3, Some(vec![3; 40])),
        ],
        durability: Durability::Buffered,
    };
    vec![
        vec![put(1, 10, Durability::Sync)],
        vec![
            put(1, 10, Durability::Buffered),
            put(2, 10, Durability::Buffered),
            CrashOp::Flush,
        ],
        vec![
            put(1, 3000, Durability::Sync),
            put(2, 3000, Durability::Sync),
            put(3, 3000, Durability::Sync),
        ],
        vec![
            batch,
            delete(2, Durability::Sync),
            CrashOp::Reopen,
            put(4, 10, Durability::Sync),
        ],
        vec![
            put(1, 2500, Durability::Group),
            CrashOp::Reopen,
            delete(1, Durability::Sync),
            put(5, 2500, Durability::Sync),
            CrashOp::Flush,
        ],
        vec![
            put(1, 3000, Durability::Sync),
            put(2, 3000, Durability::Buffered),
            put(1, 3000, Durability::Sync),
            put(3, 3000, Durability::Sync),
            CrashOp::Reopen,
        ],
    ]
}

/// Every crash point (until one past the run's end) of every exhaustive
/// sequence under each of `policies`; the number of points, or the first
/// failing case.
pub fn run_exhaustive<E: KvEngine>(
    open: &dyn Fn(SimVfs) -> KvResult<E>,
    policies: &[CrashPolicy],
    mut progress: impl FnMut(usize),
) -> Result<usize, (CrashCase, String)> {
    const CRASH_POINTS_MAX: u64 = 100_000;
    let mut points = 0;
    for ops in exhaustive_sequences() {
        for crash_after in 1..CRASH_POINTS_MAX {
            let mut past_end = true;
            for (index, &policy) in policies.iter().enumerate() {
                let case = CrashCase {
                    ops: ops.clone(),
                    crash_after,
                    policy,
                    seed: crash_after * 7 + index as u64,
                    recovery_crash_after: 1 + crash_after % 13,
                    recovery_policy: policies[(index + 1) % policies.len()],
                };
                let report = run_case(open, &case).map_err(|err| (case.clone(), err.reason))?;
                past_end &= !report.crashed_during_run;
                points += 1;
                progress(points);
            }
            if past_end {
                break;
            }
        }
    }
    Ok(points)
}

#[cfg(test)]
mod tests {
    use std::path::Path;
    use std::sync::Arc;

    use super::*;
    use crate::testkit::toy::ToyLogEngine;

    fn toy(ack_before_fsync: bool) -> impl Fn(SimVfs) -> KvResult<ToyLogEngine> {
        move |vfs| ToyLogEngine::open(Arc::new(vfs), Path::new("/toy"), ack_before_fsync)
    }

    #[test]
    fn a_correct_log_engine_passes_the_oracle() {
        check("toy", &toy(false), 300, 24);
    }

    #[test]
    fn the_oracle_catches_an_engine_that_acks_before_fsync() {
        let (case, reason) =
            search(&toy(true), 300, 24).expect_err("the planted bug must be found");
        assert!(reason.contains("not the durable floor"), "{reason}");
        // Shrinking leaves a short reproducer.
        assert!(case.ops.len() <= 3, "{case:#?}");
    }

    #[test]
    fn read_faults_catch_an_engine_that_treats_a_flipped_bit_as_a_torn_tail() {
        // The toy truncates its log at the first frame that fails its checksum,
        // so a bit flipped on the way from the device destroys durable records.
        let (_, reason) = search_with(&toy(false), 300, 24, Some(&read_fault_config()))
            .expect_err("check 4 must catch the toy's truncation");
        assert!(
            reason.contains("destroyed data") || reason.contains("without an error"),
            "{reason}"
        );
    }

    #[test]
    fn exhaustive_runs_pass_on_the_correct_toy_and_catch_the_broken_one() {
        let points = run_exhaustive(&toy(false), &CrashPolicy::ALL, |_| {}).unwrap();
        assert!(points > 100, "{points}");
        assert!(run_exhaustive(&toy(true), &[CrashPolicy::PowerLoss], |_| {}).is_err());
    }

    #[test]
    fn cases_survive_a_round_trip_through_json() {
        // Reproducer files rely on it.
        let case = CrashCase {
            ops: vec![
                CrashOp::Write {
                    ops: vec![(1, Some(vec![1, 2])), (2, None)],
                    durability: Durability::Group,
                },
                CrashOp::Reopen,
            ],
            crash_after: 3,
            policy: CrashPolicy::TornSectors { garbage: true },
            seed: 9,
            recovery_crash_after: 2,
            recovery_policy: CrashPolicy::Subset,
        };
        let text = serde_json::to_string(&case).unwrap();
        assert_eq!(serde_json::from_str::<CrashCase>(&text).unwrap(), case);
    }

    #[test]
    fn a_hand_written_case_reproduces_exactly() {
        let case = CrashCase {
            ops: vec![
                CrashOp::Write {
                    ops: vec![(1, Some(b"a".to_vec()))],
                    durability: Durability::Sync,
                },
                CrashOp::Write {
                    ops: vec![(2, Some(vec![7; 1500])), (1, None)],
                    durability: Durability::Buffered,
                },
                CrashOp::Reopen,
                CrashOp::Write {
                    ops: vec![(3, Some(b"c".to_vec()))],
                    durability: Durability::Buffered,
                },
            ],
            crash_after: 1_000,
            policy: CrashPolicy::TornSectors { garbage: true },
            seed: 3,
            recovery_crash_after: 2,
            recovery_policy: CrashPolicy::PowerLoss,
        };
        let first = run_case(&toy(false), &case).unwrap();
        assert_eq!(first, run_case(&toy(false), &case).unwrap());
        assert_eq!(first.acknowledged, 3);
        assert!(!first.crashed_during_run);
        let lost_on_power_loss = CrashCase {
            ops: case.ops[..1].to_vec(),
            policy: CrashPolicy::PowerLoss,
            ..case
        };
        assert!(run_case(&toy(false), &lost_on_power_loss).is_ok());
        assert!(run_case(&toy(true), &lost_on_power_loss).is_err());
    }
}
