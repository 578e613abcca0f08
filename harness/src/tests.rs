//! The harness measured against engines whose costs and answers are known:
//! a fake engine that charges exactly 3 device bytes per logical byte, one
//! fsync per write and 2 ms per write (and remembers the most writes it had
//! in flight at once); and a store that lies about one load.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::collections::BTreeMap;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Mutex;
use std::time::Duration;

use leasehold_core::kv::{EngineStats, Health, KeyRange, ScanVisitor, VerifyReport, WriteBatch};
use leasehold_core::{Durability, KvEngine, KvResult, KvStore};
use leasehold_memory::MemoryEngine;
use leasehold_workloads::{generate, Answer, Op, Scenario, Trace};

use crate::engines::{BenchStore, DurabilityMode, EngineKind, Live};
use crate::replay::{replay, ReplayOptions};
use crate::run::{run, RunResult, RunSpec};
use crate::source::{InMemory, OpSource, Streamed, WINDOW_OPS};
use crate::Result;

const WRITE_COST: Duration = Duration::from_millis(2);

/// Data in a memory engine; costs charged by rule, and every value appended
/// twice to `data.log` so the directory holds a known number of bytes.
struct FakeEngine {
    data: MemoryEngine,
    log: Mutex<std::fs::File>,
    user_bytes: AtomicU64,
    writes: AtomicU64,
    in_flight: AtomicU64,
    most_in_flight: std::sync::Arc<AtomicU64>,
}

impl FakeEngine {
    fn open(dir: &Path) -> FakeEngine {
        let log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(dir.join("data.log"))
            .unwrap();
        FakeEngine {
            data: MemoryEngine::volatile(1 << 20),
            log: Mutex::new(log),
            user_bytes: AtomicU64::new(0),
            writes: AtomicU64::new(0),
            in_flight: AtomicU64::new(0),
            most_in_flight: std::sync::Arc::new(AtomicU64::new(0)),
        }
    }
}

impl KvEngine for FakeEngine {
    fn name(&self) -> &'static str {
        "fake"
    }
    fn get(&self, key: &[u8]) -> KvResult<Option<Vec<u8>>> {
        self.data.get(key)
    }
    fn write(&self, batch: WriteBatch, durability: Durability) -> KvResult<()> {
        let now = self.in_flight.fetch_add(1, Ordering::SeqCst) + 1;
        self.most_in_flight.fetch_max(now, Ordering::SeqCst);
        std::thread::sleep(WRITE_COST);
        self.in_flight.fetch_sub(1, Ordering::SeqCst);
        self.user_bytes
            .fetch_add(batch.logical_bytes(), Ordering::SeqCst);
        self.writes.fetch_add(1, Ordering::SeqCst);
        let bytes = vec![0u8; 2 * batch.logical_bytes() as usize];
        self.log.lock().unwrap().write_all(&bytes).unwrap();
        self.data.write(batch, durability)
    }
    fn scan(&self, range: &KeyRange, visit: &mut ScanVisitor<'_>) -> KvResult<()> {
        self.data.scan(range, visit)
    }
    fn flush(&self) -> KvResult<()> {
        Ok(())
    }
    fn stats(&self) -> EngineStats {
        let user = self.user_bytes.load(Ordering::SeqCst);
        EngineStats {
            user_bytes_written: user,
            device_bytes_written: 3 * user,
            fsyncs: self.writes.load(Ordering::SeqCst),
            ..EngineStats::default()
        }
    }
    fn health(&self) -> Health {
        Health::Healthy
    }
    fn verify(&self) -> KvResult<VerifyReport> {
        Ok(VerifyReport::default())
    }
    fn close(&self) -> KvResult<()> {
        Ok(())
    }
    fn persists(&self) -> bool {
        self.data.persists()
    }
}

fn small_trace(name: &str) -> leasehold_workloads::Trace {
    let scenario = Scenario::built_in(name).unwrap();
    generate(&scenario, 0.01, &crate::engines::reference_store)
        .unwrap()
        .trace
}

fn spec_dir() -> (tempfile::TempDir, PathBuf) {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("run");
    (dir, data)
}

/// `trace` run on the fake engine (labelled LSM, buffered), 2 threads.
fn run_on_fake(trace: &Trace, time_cap: Option<Duration>) -> RunResult {
    let (_dir, data) = spec_dir();
    let open = |dir: &Path| -> Result<Box<dyn BenchStore>> {
        Ok(Box::new(KvStore::new(
            FakeEngine::open(dir),
            Durability::Buffered,
        )))
    };
    let spec = RunSpec {
        engine: EngineKind::LSM,
        durability: DurabilityMode::Buffered,
        open: &open,
        dir: data,
        options: ReplayOptions {
            threads: 2,
            open_loop_rate: None,
            time_cap,
        },
        metrics_file: None,
        keep_data: false,
    };
    run(&spec, &mut InMemory::new(trace)).unwrap()
}

#[test]
fn metrics_match_an_engine_with_known_costs() {
    let trace = small_trace("snapshot-heavy");
    // The fake keeps its data in memory: the run's final reopen loses it, and
    // the recovery check must say so.
    let result = run_on_fake(&trace, None);
    assert!(result.time_capped.is_none());
    assert_eq!(result.mismatches, 0, "{:?}", result.first_mismatches);
    assert!(
        (result.write_amp_engine.unwrap() - 3.0).abs() < 1e-9,
        "{:?}",
        result.write_amp_engine
    );
    // Saves write one batch each; acquire and release one each; loads none.
    let writes: u64 = ["save", "acquire", "release", "renew"]
        .iter()
        .map(|kind| result.latency.get(*kind).map_or(0, |latency| latency.count))
        .sum();
    assert_eq!(result.fsyncs, writes);
    assert!((result.fsyncs_per_op - writes as f64 / result.ops as f64).abs() < 1e-9);
    // Every write slept 2 ms: no save can have been measured faster.
    let save = &result.latency["save"];
    assert!(save.p50_us >= 2000.0 && save.max_us >= save.p99_us && save.p99_us >= save.p50_us);
    assert!(
        result.latency["load"].p50_us < 2000.0,
        "loads write nothing"
    );
    // Twice the user bytes of the whole run (set-up included) sit in data.log.
    let space = result.space_amp.unwrap();
    assert!((space - result.disk_bytes as f64 / result.live_bytes as f64).abs() < 1e-9);
    assert!(
        result.disk_bytes > 2 * result.user_bytes_written,
        "set-up writes are on disk too"
    );
    let expected_ops = trace
        .ops
        .iter()
        .skip_while(|op| op.op != Op::Measure)
        .count() as u64
        - 1;
    assert_eq!(result.ops, expected_ops);
    let recovery = result.recovery.unwrap();
    assert!(recovery.states_lost > 0 && recovery.states_lost <= recovery.states_checked);
}

/// Answers like the store it wraps, except that loads of every tenth actor
/// claim one version more than stored.
struct LyingStore(KvStore<MemoryEngine>);

macro_rules! delegate {
    ($($name:ident($($arg:ident: $ty:ty),*) -> $ret:ty;)*) => {
        $(fn $name(&self, $($arg: $ty),*) -> $ret { self.0.$name($($arg),*) })*
    };
}

impl leasehold_core::Store for LyingStore {
    delegate! {
        name() -> &str;
        try_acquire_with_metadata(key: &leasehold_core::ActorKey, node: &leasehold_core::NodeId, duration: Duration, metadata: BTreeMap<String, String>, now: leasehold_core::Timestamp) -> leasehold_core::StoreResult<leasehold_core::Acquire>;
        renew(key: &leasehold_core::ActorKey, node: &leasehold_core::NodeId, epoch: u64, now: leasehold_core::Timestamp) -> leasehold_core::StoreResult<leasehold_core::Lease>;
        release(key: &leasehold_core::ActorKey, node: &leasehold_core::NodeId, epoch: u64) -> leasehold_core::StoreResult<leasehold_core::Lease>;
        get_lease(key: &leasehold_core::ActorKey) -> leasehold_core::StoreResult<Option<leasehold_core::Lease>>;
        list_leases(filter: &leasehold_core::LeaseFilter) -> leasehold_core::StoreResult<Vec<leasehold_core::Lease>>;
        save(snapshot: leasehold_core::SnapshotWrite, expected_version: u64, fence_epoch: u64, now: leasehold_core::Timestamp) -> leasehold_core::StoreResult<leasehold_core::Snapshot>;
        delete(key: &leasehold_core::ActorKey, expected_version: u64, fence_epoch: u64, now: leasehold_core::Timestamp) -> leasehold_core::StoreResult<()>;
        list(actor_type: &str, now: leasehold_core::Timestamp) -> leasehold_core::StoreResult<Vec<leasehold_core::SnapshotInfo>>;
        purge_expired(now: leasehold_core::Timestamp) -> leasehold_core::StoreResult<u64>;
        commit(ops: Vec<leasehold_core::CommitOp>, now: leasehold_core::Timestamp) -> leasehold_core::StoreResult<Vec<Option<leasehold_core::Snapshot>>>;
        metrics() -> leasehold_core::metrics::StoreMetrics;
        health() -> Health;
        sync() -> leasehold_core::StoreResult<()>;
        close() -> leasehold_core::StoreResult<()>;
    }

    fn load(
        &self,
        key: &leasehold_core::ActorKey,
        now: leasehold_core::Timestamp,
    ) -> leasehold_core::StoreResult<Option<leasehold_core::Snapshot>> {
        let loaded = self.0.load(key, now)?;
        Ok(loaded.map(|mut snapshot| {
            if key.actor_id.ends_with('0') {
                snapshot.version += 1;
            }
            snapshot
        }))
    }
}

impl BenchStore for LyingStore {
    fn live(&self) -> Result<Live> {
        self.0.live()
    }

    fn verify(&self) -> KvResult<VerifyReport> {
        BenchStore::verify(&self.0)
    }

    fn round_trip(&self) -> KvResult<Duration> {
        self.0.round_trip()
    }
}

#[test]
fn replay_catches_a_wrong_answer() {
    let trace = small_trace("steady-zipf");
    let lied_about = |op: &Op| matches!(op, Op::Load { actor } if actor % 10 == 0);
    assert!(trace
        .ops
        .iter()
        .any(|op| lied_about(&op.op) && matches!(op.answer, Answer::Loaded { .. })));
    let honest = Box::new(KvStore::new(
        MemoryEngine::volatile(1 << 20),
        Durability::Buffered,
    ));
    let outcome = replay(
        &mut InMemory::new(&trace),
        honest,
        None,
        ReplayOptions {
            threads: 2,
            open_loop_rate: None,
            time_cap: None,
        },
        None,
    )
    .unwrap();
    assert_eq!(outcome.mismatch_count, 0);
    let lying = Box::new(LyingStore(KvStore::new(
        MemoryEngine::volatile(1 << 20),
        Durability::Buffered,
    )));
    let outcome = replay(
        &mut InMemory::new(&trace),
        lying,
        None,
        ReplayOptions {
            threads: 2,
            open_loop_rate: None,
            time_cap: None,
        },
        None,
    )
    .unwrap();
    assert!(outcome.mismatch_count > 0);
    assert!(
        outcome
            .mismatches
            .iter()
            .all(|mismatch| lied_about(&mismatch.op)),
        "{:?}",
        outcome.mismatches
    );
}

#[test]
fn open_loop_counts_latency_from_the_schedule() {
    // 2 ms per write at 2000 ops/s offered: the fake cannot keep up, so ops
    // queue and open-loop latency grows far past the 2 ms a call takes.
    let trace = small_trace("snapshot-heavy");
    let (_dir, data) = spec_dir();
    std::fs::create_dir_all(&data).unwrap();
    let store = Box::new(KvStore::new(FakeEngine::open(&data), Durability::Buffered));
    let outcome = replay(
        &mut InMemory::new(&trace),
        store,
        None,
        ReplayOptions {
            threads: 1,
            open_loop_rate: Some(2000.0),
            time_cap: None,
        },
        None,
    )
    .unwrap();
    let save = &outcome.latencies["save"];
    assert!(
        save.value_at_quantile(0.99) > 20 * WRITE_COST.as_nanos() as u64,
        "p99 {}",
        save.value_at_quantile(0.99)
    );
}

#[test]
fn a_streamed_trace_replays_window_by_window_as_in_memory() {
    // More ops than one window, so the replay crosses window boundaries.
    let scenario = Scenario::find("activation-storm").unwrap();
    let trace = generate(&scenario, 0.5, &crate::engines::reference_store)
        .unwrap()
        .trace;
    assert!(trace.ops.len() > WINDOW_OPS, "{}", trace.ops.len());
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("storm.trace");
    trace.write(&path).unwrap();
    let options = ReplayOptions {
        threads: 2,
        open_loop_rate: None,
        time_cap: None,
    };
    let store = || {
        Box::new(KvStore::new(
            MemoryEngine::volatile(1 << 20),
            Durability::Buffered,
        ))
    };
    let mut streamed = Streamed::open(&path).unwrap();
    assert_eq!(streamed.total_ops(), trace.ops.len() as u64);
    let from_file = replay(&mut streamed, store(), None, options, None).unwrap();
    let in_memory = replay(&mut InMemory::new(&trace), store(), None, options, None).unwrap();
    assert_eq!(from_file.mismatch_count, 0, "{:?}", from_file.mismatches);
    assert_eq!(from_file.replayed, trace.ops.len() as u64);
    assert_eq!(from_file.ops, in_memory.ops);
    assert_eq!(from_file.lease_conflicts, in_memory.lease_conflicts);
    assert!(!from_file.time_capped);
}

#[test]
fn the_time_cap_stops_a_replay_and_says_how_far_it_got() {
    // 2 ms per write: ~2 500 writes take far longer than the 1 s cap.
    let scenario = Scenario::find("snapshot-heavy").unwrap();
    let trace = generate(&scenario, 0.1, &crate::engines::reference_store)
        .unwrap()
        .trace;
    let result = run_on_fake(&trace, Some(Duration::from_secs(1)));
    let capped = result.time_capped.as_ref().expect("the cap stopped it");
    assert_eq!(capped.trace_ops, trace.ops.len() as u64);
    assert!(
        capped.trace_position > 0 && capped.trace_position < capped.trace_ops,
        "{capped:?}"
    );
    // What it replayed was answered right, and is what the figures count.
    assert_eq!(result.mismatches, 0, "{:?}", result.first_mismatches);
    assert!(result.elapsed_secs < 3.0, "{}", result.elapsed_secs);
    assert!(
        capped.describe().contains("time cap at"),
        "{}",
        capped.describe()
    );
}

#[test]
fn a_replay_capped_before_its_measure_marker_measured_nothing() {
    // 2 ms per write: the 1 s cap ends the run inside its set-up saves.
    let scenario = Scenario::find("activation-storm").unwrap();
    let trace = generate(&scenario, 0.1, &crate::engines::reference_store)
        .unwrap()
        .trace;
    let marker = trace
        .ops
        .iter()
        .position(|op| op.op == Op::Measure)
        .unwrap();
    assert!(
        marker > 1_000,
        "{marker} set-up ops: the cap must fall among them"
    );
    let (_dir, data) = spec_dir();
    std::fs::create_dir_all(&data).unwrap();
    let store = Box::new(KvStore::new(FakeEngine::open(&data), Durability::Buffered));
    let outcome = replay(
        &mut InMemory::new(&trace),
        store,
        None,
        ReplayOptions {
            threads: 2,
            open_loop_rate: None,
            time_cap: Some(Duration::from_secs(1)),
        },
        None,
    )
    .unwrap();
    assert!(outcome.time_capped);
    assert!(outcome.replayed < marker as u64, "{}", outcome.replayed);
    assert_eq!(outcome.ops, 0, "set-up ops counted as measured");
}

#[test]
fn set_up_ops_are_replayed_by_more_threads_than_the_run() {
    // Two run threads never have more than two writes in flight: more came
    // from the set-up, and the answers must still all match.
    let scenario = Scenario::find("snapshot-heavy").unwrap();
    let trace = generate(&scenario, 0.1, &crate::engines::reference_store)
        .unwrap()
        .trace;
    let marker = trace.ops.iter().position(|op| op.op == Op::Measure);
    assert!(marker.unwrap_or(0) > 100, "{marker:?} set-up ops");
    let (_dir, data) = spec_dir();
    std::fs::create_dir_all(&data).unwrap();
    let fake = FakeEngine::open(&data);
    let most = std::sync::Arc::clone(&fake.most_in_flight);
    let outcome = replay(
        &mut InMemory::new(&trace),
        Box::new(KvStore::new(fake, Durability::Buffered)),
        None,
        ReplayOptions {
            threads: 2,
            open_loop_rate: None,
            time_cap: None,
        },
        None,
    )
    .unwrap();
    assert_eq!(outcome.mismatch_count, 0, "{:?}", outcome.mismatches);
    assert_eq!(outcome.duplicate_owners + outcome.epochs_not_raised, 0);
    assert!(most.load(Ordering::SeqCst) > 2, "{most:?} writes in flight");
}
