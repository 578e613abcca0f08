//! Exhaustive runs: every crash point of short hand-written sequences under
//! every policy.

use super::*;

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

/// `ops` crashed after `crash_after` mutations under `policies[index]`, its
/// recovery crashed too, at a point and under a policy that rotate with the
/// case.
fn crash_point_case(
    ops: &[CrashOp],
    crash_after: u64,
    policies: &[CrashPolicy],
    index: usize,
) -> CrashCase {
    CrashCase {
        ops: ops.to_vec(),
        crash_after,
        policy: policies[index],
        seed: crash_after * 7 + index as u64,
        recovery_crash_after: 1 + crash_after % 13,
        recovery_policy: policies[(crash_after as usize + index + 1) % policies.len()],
    }
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
            for index in 0..policies.len() {
                let case = crash_point_case(&ops, crash_after, policies, index);
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

/// The writes of `ops` on an engine `open` opens on a fresh disk, without
/// crashing it: the engine after them, and the disk mutations they made
/// (the open's own not counted) — the crash points there are for
/// `check_every_crash_point`, and the engine shows what the run exercised.
pub fn replay_writes<E: KvEngine>(
    open: &dyn Fn(SimVfs) -> KvResult<E>,
    ops: &[CrashOp],
) -> (E, u64) {
    let disk = SimVfs::new(0);
    let engine = open(disk.clone()).expect("open");
    let before = disk.mutations();
    for op in ops {
        if let CrashOp::Write { ops, durability } = op {
            engine
                .write(CrashOp::batch(ops), *durability)
                .expect("write");
        }
    }
    (engine, disk.mutations() - before)
}

/// Runs `ops` crashed at every one of `crash_points` under every policy,
/// each recovery crashed too (at a point and under a policy that rotate
/// with the case); panics with the first violation. The number of cases.
pub fn check_every_crash_point<E: KvEngine>(
    open: &dyn Fn(SimVfs) -> KvResult<E>,
    ops: &[CrashOp],
    crash_points: std::ops::RangeInclusive<u64>,
) -> usize {
    let mut cases = 0;
    for crash_after in crash_points {
        for index in 0..CrashPolicy::ALL.len() {
            let case = crash_point_case(ops, crash_after, &CrashPolicy::ALL, index);
            if let Err(violation) = run_case(open, &case) {
                panic!(
                    "crash point {crash_after} ({}): {violation}",
                    case.policy.name()
                );
            }
            cases += 1;
        }
    }
    cases
}
