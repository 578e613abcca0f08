//! The timed loop: client threads draw requests from their sources, serve
//! each through the target and record its latency.

use std::time::Instant;

use hdrhistogram::Histogram;

use super::output::WorkloadCounters;
use super::target::{Level, Target};
use super::workload::{Request, Requests, Workload};
use super::{BenchArgs, BenchResult, LOAD};
use crate::engines::{DurabilityMode, EngineKind};
use crate::measure;
use crate::{Context, Result};

/// A source of requests for one client thread.
pub(super) trait RequestSource: Send {
    /// The next request; `None` when the source is done early.
    fn next_request(&mut self) -> Option<Request>;
    /// Records this source inserted.
    fn inserted(&self) -> u64 {
        0
    }
}

impl RequestSource for Requests {
    fn next_request(&mut self) -> Option<Request> {
        (!self.exhausted()).then(|| self.next())
    }

    fn inserted(&self) -> u64 {
        Requests::inserted_span(self)
    }
}

/// YCSB's load phase: records 0.. in order, each inserted once (threads
/// take every `threads`-th).
pub(super) struct LoadPhase {
    pub next: u64,
    pub records: u64,
}

impl RequestSource for LoadPhase {
    fn next_request(&mut self) -> Option<Request> {
        (self.next < self.records).then(|| {
            self.next += 1;
            Request::Insert(self.next - 1)
        })
    }
}

/// Runs `requests` requests (split over the threads; the load phase runs
/// until its records are in) and times each. Returns the result and the
/// records inserted.
pub(super) fn run(
    target: &Target,
    engine: EngineKind,
    level: Level,
    durability: DurabilityMode,
    name: &str,
    args: &BenchArgs,
    source: impl Fn(usize, usize) -> Box<dyn RequestSource> + Sync,
) -> Result<(BenchResult, u64)> {
    let threads = args.threads;
    let requests = match Workload::ALL
        .iter()
        .find(|workload| workload.name() == name)
    {
        Some(workload) => workload.requests(args.ops, args.records),
        None => args.records,
    };
    let per_thread = requests.div_ceil(threads as u64);
    let stats_before = target.engine_stats();
    let started = Instant::now();
    let logs: Vec<Result<ThreadLog>> = std::thread::scope(|scope| {
        let handles: Vec<_> = (0..threads)
            .map(|thread| {
                let source = &source;
                scope.spawn(move || {
                    let mut requests = source(thread, threads);
                    let mut log = ThreadLog::new();
                    let mut issued = 0;
                    while issued < per_thread {
                        let Some(request) = requests.next_request() else {
                            break;
                        };
                        // The load phase's records are split over the threads.
                        if let (Request::Insert(record), LOAD) = (request, name) {
                            if record % threads as u64 != thread as u64 {
                                continue;
                            }
                        }
                        let began = Instant::now();
                        let found = target
                            .serve(request)
                            .with_context(|| format!("{name} on {}", target.describe()))?;
                        log.record(began.elapsed());
                        if matches!(
                            request,
                            Request::Read(_) | Request::ReadMissing(_) | Request::Scan { .. }
                        ) {
                            log.reads += 1;
                            log.found += u64::from(found);
                        }
                        issued += 1;
                    }
                    log.inserted = requests.inserted();
                    Ok(log)
                })
            })
            .collect();
        crate::threads::join_all(handles, "bench")
    });
    let elapsed = started.elapsed().as_secs_f64();
    let engine_counters = stats_before
        .zip(target.engine_stats())
        .map(|(before, after)| WorkloadCounters::between(&before, &after));
    let mut all = ThreadLog::new();
    let mut inserted = 0;
    for log in logs {
        let log = log?;
        inserted = inserted.max(log.inserted);
        all.merge(&log);
    }
    let done = all.latencies.len();
    let quantile = |q: f64| all.latencies.value_at_quantile(q) as f64 / 1000.0;
    Ok((
        BenchResult {
            workload: name.to_owned(),
            engine,
            engine_version: engine.version().to_owned(),
            level,
            durability,
            threads,
            requests: done,
            elapsed_secs: elapsed,
            ops_per_sec: done as f64 / elapsed.max(1e-9),
            p50_us: quantile(0.5),
            p99_us: quantile(0.99),
            p999_us: quantile(0.999),
            found: all.found,
            reads: all.reads,
            round: 0,
            engine_counters,
        },
        inserted,
    ))
}

struct ThreadLog {
    latencies: Histogram<u64>,
    reads: u64,
    found: u64,
    inserted: u64,
}

impl ThreadLog {
    fn new() -> ThreadLog {
        ThreadLog {
            latencies: measure::latency_histogram(),
            reads: 0,
            found: 0,
            inserted: 0,
        }
    }

    fn record(&mut self, latency: std::time::Duration) {
        measure::record_latency(&mut self.latencies, latency);
    }

    fn merge(&mut self, other: &ThreadLog) {
        // Same bounds on both sides: adding cannot fail.
        let _ = self.latencies.add(&other.latencies);
        self.reads += other.reads;
        self.found += other.found;
    }
}
