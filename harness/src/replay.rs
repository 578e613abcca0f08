//! Replays a trace against a store: every op issued as recorded, every answer
//! compared with the reference's, latencies recorded per op kind.
//!
//! Threads: ops that touch one actor go to thread `hash(actor) % threads`, so
//! each actor's ops keep their order (that is all the answers depend on: lease
//! and snapshot rules are per actor, and time is the trace's, not the clock).
//! Whole-store ops (purge, sync, reopen) run alone between two barriers.
//! Set-up ops (before the trace's `Measure` marker: the preloaded snapshots)
//! are not measured, and are replayed by `SET_UP_THREADS_PER_THREAD` times as
//! many threads so that fsynced lease grants share their fsyncs: a fill of a
//! million actors then fits the beyond-memory preset's time cap.
//!
//! Closed loop by default: each thread issues its next op when the last one
//! answered, and latency is the call's duration. With an open-loop rate, op
//! `i` of the trace is due at `start + i / rate`; a thread that is behind
//! issues at once and latency counts from the due time, so a stall shows in
//! every op that queued behind it instead of hiding (coordinated omission).

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use hdrhistogram::Histogram;
use leasehold_core::codec::fnv1a;
use leasehold_core::kv::EngineStats;
use leasehold_core::metrics::StoreMetrics;
use leasehold_core::{NodeId, SnapshotWrite, Store, StoreError, Timestamp};
use leasehold_workloads::runtime::{
    actor_key, answer_of_acquire, answer_of_load, node_ids, rejection,
};
use leasehold_workloads::state::StatePool;
use leasehold_workloads::trace::{Answer, Op, TraceHeader, TraceOp};

use crate::engines::BenchStore;
use crate::measure::{self, ProcIo};
use crate::metrics::Publisher;
use crate::source::{OpSource, WINDOW_OPS};
use crate::Context as _;
use crate::{Error, Result};

mod judge;

use judge::Judge;

/// Mismatches kept for the report (all are counted).
const MISMATCHES_KEPT: usize = 20;
/// Set-up ops are replayed by this many threads per replay thread. Set-up
/// thread `f` replays the actors whose hash is `f` modulo their number — a
/// subset of replay thread `f % threads`'s actors — so its judge folds into
/// that thread's at the marker and the lease checks go on unbroken.
pub const SET_UP_THREADS_PER_THREAD: usize = 4;

#[derive(Clone, Copy, Debug)]
pub struct ReplayOptions {
    pub threads: usize,
    /// Ops per second of wall time; `None` runs closed loop.
    pub open_loop_rate: Option<f64>,
    /// Stop issuing ops this long after the replay began (set-up ops
    /// included); `None` replays the whole trace.
    pub time_cap: Option<Duration>,
}

#[derive(Clone, Debug)]
pub struct Mismatch {
    pub index: usize,
    pub op: Op,
    pub expected: Answer,
    pub actual: Answer,
}

/// One close-and-reopen, timed.
#[derive(Clone, Debug, serde::Serialize, serde::Deserialize)]
pub struct ReopenTiming {
    /// Ops replayed before it.
    pub after_ops: usize,
    /// Bytes the engine wrote to its log since it was opened last.
    pub wal_bytes_since_open: u64,
    pub close_ms: f64,
    pub open_ms: f64,
    /// From the start of the open to the first read answered.
    pub first_read_ms: f64,
}

/// The store's counters when measurement started (after set-up ops).
pub struct Baseline {
    pub metrics: StoreMetrics,
    pub io: Option<ProcIo>,
    /// The first measured op.
    pub index: usize,
}

pub struct ReplayOutcome {
    /// Ops measured (after the trace's `Measure` marker, if it has one).
    pub ops: u64,
    pub baseline: Option<Baseline>,
    pub elapsed: Duration,
    pub latencies: BTreeMap<&'static str, Histogram<u64>>,
    pub mismatches: Vec<Mismatch>,
    pub mismatch_count: u64,
    pub lease_conflicts: u64,
    pub duplicate_owners: u64,
    pub epochs_not_raised: u64,
    pub reopens: Vec<ReopenTiming>,
    /// Ops of the trace replayed (all of them unless the time cap stopped
    /// the replay).
    pub replayed: u64,
    /// The time cap stopped the replay before the end of the trace.
    pub time_capped: bool,
    /// The latest trace time of an op replayed.
    pub last_ms: u64,
    /// Engine counters of the instances closed by reopens (the last one is
    /// `store`'s).
    pub retired: Vec<EngineStats>,
    /// Store metrics and engine stats of each store instance, summed over
    /// reopens by the caller where it matters.
    pub store: Box<dyn BenchStore>,
}

/// Opens the engine again on the same files (for `Reopen` ops).
pub type Reopener<'a> = dyn FnMut() -> Result<Box<dyn BenchStore>> + 'a;

struct Context<'a> {
    header: &'a TraceHeader,
    total_ops: usize,
    nodes: Vec<NodeId>,
    pool: StatePool,
    options: ReplayOptions,
    publisher: Option<&'a Publisher>,
    /// When the time cap runs out.
    deadline: Option<Instant>,
    /// Set by the first thread that sees the deadline pass: every thread
    /// stops at its next op.
    stopped: AtomicBool,
}

impl Context<'_> {
    /// Whether to stop before the next op (the time cap ran out).
    fn stop_now(&self) -> bool {
        let Some(deadline) = self.deadline else {
            return false;
        };
        if self.stopped.load(Ordering::Relaxed) {
            return true;
        }
        if Instant::now() >= deadline {
            self.stopped.store(true, Ordering::Relaxed);
            return true;
        }
        false
    }
}

/// When measurement started, and at which op (open-loop due times count
/// from there).
#[derive(Clone, Copy)]
struct Timing {
    start: Instant,
    first_index: usize,
}

/// What one thread saw over one segment.
#[derive(Default)]
struct ThreadLog {
    latencies: BTreeMap<&'static str, Histogram<u64>>,
}

/// The set-up threads' judges folded into the replay threads' (see
/// `SET_UP_THREADS_PER_THREAD`).
fn fold(judges: &mut [Judge], set_up: Option<Vec<Judge>>) {
    let threads = judges.len();
    for (thread, judge) in set_up.into_iter().flatten().enumerate() {
        judges[thread % threads].absorb(judge);
    }
}

fn histogram() -> Histogram<u64> {
    measure::latency_histogram()
}

pub fn replay(
    source: &mut dyn OpSource,
    mut store: Box<dyn BenchStore>,
    reopen: Option<&mut Reopener<'_>>,
    options: ReplayOptions,
    publisher: Option<&Publisher>,
) -> Result<ReplayOutcome> {
    let threads = options.threads.max(1);
    let header = source.header().clone();
    let total_ops = source.total_ops() as usize;
    let began = Instant::now();
    let context = Context {
        header: &header,
        total_ops,
        nodes: node_ids(&header),
        pool: StatePool::new(header.seed, header.state_bytes_max),
        options,
        publisher,
        deadline: options.time_cap.map(|cap| began + cap),
        stopped: AtomicBool::new(false),
    };
    let mut reopen = reopen;
    let lease_ms = header.lease_ms;
    let judges_for = |threads: usize| (0..threads).map(|_| Judge::default()).collect::<Vec<_>>();
    let mut judges = judges_for(threads);
    let mut set_up = source
        .measure_at()
        .map(|_| judges_for(threads * SET_UP_THREADS_PER_THREAD));
    let mut alone = Judge::default();
    let mut latencies: BTreeMap<&'static str, Histogram<u64>> = BTreeMap::new();
    let mut reopens = Vec::new();
    let mut retired = Vec::new();
    let mut wal_at_open = store
        .metrics()
        .engine
        .map_or(0, |stats| stats.wal_bytes_written);
    let mut timing = Timing {
        start: began,
        first_index: 0,
    };
    let mut baseline = None;
    let mut window = Vec::with_capacity(WINDOW_OPS);
    // The trace index of `window[0]`.
    let mut base = 0;
    'windows: loop {
        source.next_window(&mut window)?;
        if window.is_empty() {
            break;
        }
        let mut segment_start = 0;
        while segment_start < window.len() {
            let segment_end = window[segment_start..]
                .iter()
                .position(|op| op.op.actor().is_none())
                .map_or(window.len(), |offset| segment_start + offset);
            let ops = Ops { ops: &window, base };
            let logs = run_segment(
                &context,
                timing,
                store.as_ref(),
                ops,
                segment_start..segment_end,
                match set_up.as_mut() {
                    Some(set_up) => set_up,
                    None => &mut judges,
                },
            )?;
            for log in logs {
                merge(&mut latencies, log.latencies);
            }
            if segment_end == window.len() {
                break;
            }
            if context.stop_now() {
                break 'windows;
            }
            // The whole-store op, alone.
            let index = base + segment_end;
            let traced = &window[segment_end];
            let due = due_time(&context, timing, index);
            let op_began = Instant::now();
            let answer = match traced.op {
                Op::Measure => {
                    fold(&mut judges, set_up.take());
                    latencies.clear();
                    baseline = Some(Baseline {
                        metrics: store.metrics(),
                        io: ProcIo::read(),
                        index: index + 1,
                    });
                    timing = Timing {
                        start: Instant::now(),
                        first_index: index + 1,
                    };
                    alone.judge(index, traced, Answer::Done, lease_ms);
                    segment_start = segment_end + 1;
                    continue;
                }
                Op::Reopen => match reopen.as_deref_mut() {
                    Some(reopener) => {
                        let stats = store.metrics().engine.unwrap_or_default();
                        let wal_now = stats.wal_bytes_written;
                        retired.push(stats);
                        let (reopened, timing) = reopen_store(store, reopener, &context, index)?;
                        store = reopened;
                        reopens.push(ReopenTiming {
                            wal_bytes_since_open: wal_now.saturating_sub(wal_at_open),
                            ..timing
                        });
                        wal_at_open = store
                            .metrics()
                            .engine
                            .map_or(0, |stats| stats.wal_bytes_written);
                        Answer::Done
                    }
                    // A volatile engine cannot reopen: the op does not apply.
                    None => Answer::Done,
                },
                Op::Sync => match reopen {
                    Some(_) => store.sync().map(|()| Answer::Done)?,
                    None => Answer::Done,
                },
                Op::PurgeExpired => store
                    .purge_expired(Timestamp::from_millis(traced.at_ms))
                    .map(|_| Answer::Purged)?,
                _ => unreachable!("segments end at whole-store ops"),
            };
            let latency = Instant::now().duration_since(due.unwrap_or(op_began));
            record(&mut latencies, traced.op.kind(), latency);
            alone.judge(index, traced, answer, lease_ms);
            segment_start = segment_end + 1;
        }
        if context.stop_now() {
            break;
        }
        base += window.len();
    }
    let elapsed = timing.start.elapsed();
    fold(&mut judges, set_up.take());
    judges.push(alone);
    let judged: usize = judges.iter().map(|judge| judge.judged).sum();
    let time_capped = context.stopped.load(Ordering::Relaxed) && judged < total_ops;
    if judged != total_ops && !time_capped {
        return Err(Error::Wrong(format!(
            "{} of {} ops were never replayed",
            total_ops.saturating_sub(judged),
            total_ops
        )));
    }
    let mut mismatches: Vec<Mismatch> = judges
        .iter_mut()
        .flat_map(|judge| std::mem::take(&mut judge.mismatches))
        .collect();
    mismatches.sort_by_key(|mismatch| mismatch.index);
    mismatches.truncate(MISMATCHES_KEPT);
    let sum = |count: fn(&Judge) -> u64| judges.iter().map(count).sum::<u64>();
    let mismatch_count = sum(|judge| judge.mismatch_count);
    let lease_conflicts = sum(|judge| judge.lease_conflicts);
    let duplicate_owners = sum(|judge| judge.check.duplicate_owners);
    let epochs_not_raised = sum(|judge| judge.check.epochs_not_raised);
    let last_ms = judges.iter().map(|judge| judge.last_ms).max().unwrap_or(0);
    // A cap that fell among the set-up ops measured nothing.
    let ops = match (&baseline, source.measure_at()) {
        (Some(baseline), _) => judged.saturating_sub(baseline.index),
        (None, Some(_)) => 0,
        (None, None) => judged,
    };
    Ok(ReplayOutcome {
        ops: ops as u64,
        baseline,
        elapsed,
        latencies,
        mismatches,
        mismatch_count,
        lease_conflicts,
        duplicate_owners,
        epochs_not_raised,
        reopens,
        replayed: judged as u64,
        time_capped,
        last_ms,
        retired,
        store,
    })
}

/// A window of the trace and the trace index of its first op.
#[derive(Clone, Copy)]
struct Ops<'a> {
    ops: &'a [TraceOp],
    base: usize,
}

fn reopen_store(
    store: Box<dyn BenchStore>,
    reopener: &mut Reopener<'_>,
    context: &Context,
    index: usize,
) -> Result<(Box<dyn BenchStore>, ReopenTiming)> {
    let closing = Instant::now();
    store
        .close()
        .with_context(|| "close before reopen".to_owned())?;
    drop(store);
    let close_ms = closing.elapsed().as_secs_f64() * 1e3;
    let opening = Instant::now();
    let reopened = reopener()?;
    let open_ms = opening.elapsed().as_secs_f64() * 1e3;
    reopened
        .load(&actor_key(context.header, 0), Timestamp::from_millis(0))
        .with_context(|| "first read after reopen".to_owned())?;
    let first_read_ms = opening.elapsed().as_secs_f64() * 1e3;
    Ok((
        reopened,
        ReopenTiming {
            after_ops: index,
            wal_bytes_since_open: 0,
            close_ms,
            open_ms,
            first_read_ms,
        },
    ))
}

fn merge(
    into: &mut BTreeMap<&'static str, Histogram<u64>>,
    from: BTreeMap<&'static str, Histogram<u64>>,
) {
    for (kind, histogram) in from {
        let target = into.entry(kind).or_insert_with(self::histogram);
        // Same bounds on both sides: adding cannot fail.
        let _ = target.add(&histogram);
    }
}

fn record(
    latencies: &mut BTreeMap<&'static str, Histogram<u64>>,
    kind: &'static str,
    latency: Duration,
) {
    measure::record_latency(latencies.entry(kind).or_insert_with(histogram), latency);
}

fn due_time(context: &Context, timing: Timing, index: usize) -> Option<Instant> {
    context.options.open_loop_rate.map(|rate| {
        let ahead = index.saturating_sub(timing.first_index) as f64 / rate;
        timing.start + Duration::from_secs_f64(ahead)
    })
}

fn run_segment(
    context: &Context,
    timing: Timing,
    store: &dyn BenchStore,
    ops: Ops,
    range: std::ops::Range<usize>,
    judges: &mut [Judge],
) -> Result<Vec<ThreadLog>> {
    let threads = judges.len();
    if range.is_empty() {
        return Ok(Vec::new());
    }
    if let [judge] = judges {
        return Ok(vec![run_thread(
            context,
            timing,
            store,
            ops,
            range,
            (0, 1),
            judge,
        )?]);
    }
    std::thread::scope(|scope| {
        let handles: Vec<_> = judges
            .iter_mut()
            .enumerate()
            .map(|(thread, judge)| {
                let range = range.clone();
                scope.spawn(move || {
                    run_thread(context, timing, store, ops, range, (thread, threads), judge)
                })
            })
            .collect();
        crate::threads::join_all(handles, "replay")
            .into_iter()
            .collect()
    })
}

fn run_thread(
    context: &Context,
    timing: Timing,
    store: &dyn BenchStore,
    ops: Ops,
    range: std::ops::Range<usize>,
    (thread, threads): (usize, usize),
    judge: &mut Judge,
) -> Result<ThreadLog> {
    let mut log = ThreadLog::default();
    for local in range {
        let index = ops.base + local;
        let traced = &ops.ops[local];
        let actor = traced.op.actor().unwrap_or_default();
        if threads > 1 && fnv1a(&actor.to_le_bytes()) % threads as u64 != thread as u64 {
            continue;
        }
        if context.stop_now() {
            break;
        }
        let due = due_time(context, timing, index);
        if let Some(due) = due {
            let now = Instant::now();
            if due > now {
                std::thread::sleep(due - now);
            }
        }
        let began = Instant::now();
        let answer = issue(context, store, traced.op, traced.at_ms)
            .with_context(|| format!("op {index} ({})", traced.op.kind()))?;
        let latency = Instant::now().duration_since(due.unwrap_or(began));
        record(&mut log.latencies, traced.op.kind(), latency);
        judge.judge(index, traced, answer, context.header.lease_ms);
        if thread == 0 {
            if let Some(publisher) = context.publisher {
                publisher.maybe_publish((index, context.total_ops), || store.metrics());
            }
        }
    }
    Ok(log)
}

/// Issues one per-actor op and reduces the store's answer to the trace's form.
fn issue(context: &Context, store: &dyn Store, op: Op, at_ms: u64) -> Result<Answer, StoreError> {
    let now = Timestamp::from_millis(at_ms);
    // Built per op, not held: a trace of a million actors would otherwise
    // keep a million keys in the replaying child's memory budget.
    let key = |actor: u32| actor_key(context.header, actor);
    let node = |node: u32| &context.nodes[node as usize];
    let result = match op {
        Op::Acquire { actor, node: owner } => {
            let lease = Duration::from_millis(context.header.lease_ms);
            store
                .try_acquire(&key(actor), node(owner), lease, now)
                .map(|acquire| answer_of_acquire(&acquire, &context.nodes))
        }
        Op::Renew {
            actor,
            node: owner,
            epoch,
        } => store
            .renew(&key(actor), node(owner), epoch, now)
            .map(|lease| Answer::Renewed {
                expires_at_ms: lease.expires_at.as_millis(),
            }),
        Op::Release {
            actor,
            node: owner,
            epoch,
        } => store
            .release(&key(actor), node(owner), epoch)
            .map(|_| Answer::Released),
        Op::Load { actor } => store
            .load(&key(actor), now)
            .map(|loaded| answer_of_load(loaded.as_ref())),
        Op::Save {
            actor,
            expected_version,
            epoch,
            state_bytes,
        } => {
            let state = context.pool.state(actor, expected_version + 1, state_bytes);
            let mut write = SnapshotWrite::new(key(actor), state);
            if context.header.ttl_ms > 0 {
                write = write.with_ttl(Duration::from_millis(context.header.ttl_ms));
            }
            store
                .save(write, expected_version, epoch, now)
                .map(|snapshot| Answer::Saved {
                    version: snapshot.version,
                })
        }
        Op::Delete {
            actor,
            expected_version,
            epoch,
        } => store
            .delete(&key(actor), expected_version, epoch, now)
            .map(|()| Answer::Deleted),
        Op::PurgeExpired | Op::Sync | Op::Reopen | Op::Measure => {
            unreachable!("whole-store ops run alone")
        }
    };
    match result {
        Ok(answer) => Ok(answer),
        Err(err) => match rejection(&err) {
            Some(rejected) => Ok(Answer::Rejected(rejected)),
            None => Err(err),
        },
    }
}
