use super::*;
use std::path::Path;
use std::sync::Arc;

use crate::toy::ToyLogEngine;

fn toy(ack_before_fsync: bool) -> impl Fn(SimVfs) -> KvResult<ToyLogEngine> {
    move |vfs| ToyLogEngine::open(Arc::new(vfs), Path::new("/toy"), ack_before_fsync)
}

#[test]
fn a_correct_log_engine_passes_the_oracle() {
    check("toy", &toy(false), 300, 24);
}

#[test]
fn the_oracle_catches_an_engine_that_acks_before_fsync() {
    let (case, reason) = search(&toy(true), 300, 24).expect_err("the planted bug must be found");
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
