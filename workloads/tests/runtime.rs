#![allow(clippy::unwrap_used, clippy::expect_used)]
//! The runtime's promises: one seed gives one trace, byte for byte; the nodes
//! it simulates never break the lease rules; traces survive a round trip and a
//! damaged trace is an error, not a wrong workload.

use leasehold_workloads::scenario::{Scenario, BUILT_IN};
use leasehold_workloads::trace::{Trace, TraceFile};
use leasehold_workloads::{generate, Op};

/// Small enough for a debug build; the virtual timeline is the same at every
/// scale, so failures, purges, reopens and deactivations all happen.
fn scale_for(scenario: &Scenario) -> f64 {
    (4000.0 / scenario.messages() as f64).min(1.0)
}

/// The reference store of these traces: the volatile memory engine.
fn memory(actors: u32) -> Box<dyn leasehold_core::Store> {
    Box::new(leasehold_core::KvStore::new(
        leasehold_memory::MemoryEngine::volatile(u64::from(actors) * 2 + 16),
        leasehold_core::Durability::Buffered,
    ))
}

#[test]
fn one_seed_gives_a_byte_identical_trace() {
    for name in ["steady-zipf", "churn", "activation-storm"] {
        let scenario = Scenario::built_in(name).unwrap();
        let scale = scale_for(&scenario);
        let one = generate(&scenario, scale, &memory).unwrap().trace.encode();
        let two = generate(&scenario, scale, &memory).unwrap().trace.encode();
        assert!(one == two, "{name}: two generations differ");
        let mut reseeded = scenario.clone();
        reseeded.seed += 1;
        assert_ne!(
            one,
            generate(&reseeded, scale, &memory).unwrap().trace.encode(),
            "{name}"
        );
    }
}

#[test]
fn simulated_nodes_never_share_an_actor_and_every_rule_holds() {
    for (name, _) in BUILT_IN {
        let scenario = Scenario::built_in(name).unwrap();
        let generated = generate(&scenario, scale_for(&scenario), &memory).unwrap();
        let stats = &generated.stats;
        assert_eq!(stats.duplicate_owners, 0, "{name}: {stats:?}");
        assert_eq!(stats.unexpected_rejections, 0, "{name}: {stats:?}");
        assert!(
            stats.activations > 0 && stats.saves > 0,
            "{name}: {stats:?}"
        );
        assert_eq!(
            generated.trace.ops.last().map(|op| op.op),
            Some(Op::Sync),
            "{name}"
        );
        assert!(
            generated
                .trace
                .ops
                .windows(2)
                .all(|pair| pair[0].at_ms <= pair[1].at_ms),
            "{name}: time goes backwards"
        );
    }
}

#[test]
fn scenarios_exercise_what_they_are_named_for() {
    let stats = |name: &str| {
        let scenario = Scenario::built_in(name).unwrap();
        generate(&scenario, scale_for(&scenario), &memory)
            .unwrap()
            .stats
    };
    let storm = stats("activation-storm");
    assert!(
        storm.node_failures == 1 && storm.takeovers > 0 && storm.deferred_messages > 0,
        "{storm:?}"
    );
    let churn = stats("churn");
    assert!(churn.deletes > 0 && churn.releases > 0, "{churn:?}");
    let contention = stats("lease-contention");
    assert!(
        contention.lease_conflicts >= contention.activations * 2,
        "{contention:?}"
    );
    let recovery = stats("recovery");
    assert!(recovery.reopens >= 1, "{recovery:?}");
}

#[test]
fn traces_round_trip_and_damage_is_detected() {
    let scenario = Scenario::built_in("churn").unwrap();
    let trace = generate(&scenario, 0.02, &memory).unwrap().trace;
    let bytes = trace.encode();
    assert_eq!(Trace::decode(&bytes).unwrap(), trace);
    for offset in [0, 9, bytes.len() / 2, bytes.len() - 3] {
        let mut damaged = bytes.clone();
        damaged[offset] ^= 0x10;
        assert!(
            Trace::decode(&damaged).is_err(),
            "flip at {offset} not detected"
        );
    }
    assert!(Trace::decode(&bytes[..bytes.len() - 1]).is_err());
    assert!(Trace::decode(&bytes[..bytes.len() / 2]).is_err());
}

#[test]
fn a_trace_file_streams_chunk_by_chunk_and_is_checked_before_it_is_replayed() {
    let scenario = Scenario::built_in("churn").unwrap();
    let trace = generate(&scenario, 0.05, &memory).unwrap().trace;
    let dir = std::env::temp_dir().join(format!("leasehold-trace-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join("churn.trace");
    trace.write(&path).unwrap();
    let mut file = TraceFile::open(&path).unwrap();
    assert_eq!(file.total_ops, trace.ops.len() as u64);
    assert_eq!(file.reader.header(), &trace.header);
    let marker = trace.ops.iter().position(|op| op.op == Op::Measure);
    assert!(marker.is_some());
    assert_eq!(file.measure_at, marker.map(|at| at as u64));
    let mut ops = Vec::new();
    let mut chunks = 0;
    while file.reader.next_chunk(&mut ops).unwrap() {
        chunks += 1;
    }
    assert_eq!(ops, trace.ops);
    assert!(chunks > 1, "{chunks} chunk(s): the test needs several");
    // A damaged byte anywhere is refused at open, before any op is replayed.
    let bytes = std::fs::read(&path).unwrap();
    let mut damaged = bytes.clone();
    damaged[bytes.len() * 2 / 3] ^= 0x01;
    std::fs::write(&path, &damaged).unwrap();
    let err = TraceFile::open(&path).err().expect("damage detected");
    assert!(err.to_string().contains("corrupt at byte"), "{err}");
    std::fs::write(&path, &bytes[..bytes.len() - 2]).unwrap();
    assert!(TraceFile::open(&path).is_err());
    std::fs::remove_dir_all(&dir).unwrap();
}
