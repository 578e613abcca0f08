//! One measured run: a trace replayed against one engine at one durability in
//! a fresh directory, then synced, measured, closed, reopened and timed.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use hdrhistogram::Histogram;
use leasehold_core::codec::fnv1a;
use leasehold_core::kv::EngineStats;
use leasehold_core::ActorKey;
use leasehold_core::Timestamp;
use leasehold_workloads::runtime::actor_key;
use leasehold_workloads::trace::TraceHeader;

use crate::engines::{BenchStore, DurabilityMode, EngineKind};
use crate::measure::{self, ProcIo};
use crate::metrics::Publisher;
use crate::replay::{self, ReopenTiming, ReplayOptions};
use crate::source::OpSource;
use crate::{Context, Error, Result};

#[derive(Clone, Debug, serde::Serialize, serde::Deserialize)]
pub struct LatencySummary {
    pub count: u64,
    pub mean_us: f64,
    pub p50_us: f64,
    pub p99_us: f64,
    pub p999_us: f64,
    pub max_us: f64,
}

impl LatencySummary {
    fn of(histogram: &Histogram<u64>) -> LatencySummary {
        let micros = |nanos: u64| nanos as f64 / 1e3;
        LatencySummary {
            count: histogram.len(),
            mean_us: histogram.mean() / 1e3,
            p50_us: micros(histogram.value_at_quantile(0.50)),
            p99_us: micros(histogram.value_at_quantile(0.99)),
            p999_us: micros(histogram.value_at_quantile(0.999)),
            max_us: micros(histogram.max()),
        }
    }
}

/// The reopen at the end of every run (close, open, first read).
#[derive(Clone, Debug, serde::Serialize, serde::Deserialize)]
pub struct Recovery {
    pub close_ms: f64,
    pub open_ms: f64,
    pub first_read_ms: f64,
    /// Did every actor's last state come back? Checked by loading each actor
    /// the trace touched and comparing with the store before the close.
    pub states_checked: u64,
    pub states_lost: u64,
}

/// A run the kernel ended for memory: how far it got.
#[derive(Clone, Debug, serde::Serialize, serde::Deserialize)]
pub struct OutOfMemory {
    /// The trace op the replay had reached at its last published progress
    /// (at most a second before the kill); None if it published none.
    pub trace_position: Option<u64>,
    pub trace_ops: u64,
}

impl OutOfMemory {
    /// "OOM at 61 % of the trace" / "OOM after the trace, in the end-of-run
    /// checks" / "OOM before its first progress report".
    pub fn describe(&self) -> String {
        match self.trace_position {
            Some(position) if position >= self.trace_ops => {
                "OOM after the trace, in the end-of-run checks (live-data scan, close, reopen)"
                    .to_owned()
            }
            Some(position) => format!(
                "OOM at {:.0} % of the trace",
                position as f64 * 100.0 / self.trace_ops.max(1) as f64
            ),
            None => "OOM before its first progress report".to_owned(),
        }
    }
}

/// A replay the time cap (`--time-cap`) stopped before the end of its trace.
#[derive(Clone, Debug, serde::Serialize, serde::Deserialize)]
pub struct TimeCapped {
    pub cap_secs: f64,
    /// Ops of the trace replayed (set-up ops included).
    pub trace_position: u64,
    pub trace_ops: u64,
}

impl TimeCapped {
    /// "stopped by the 300 s time cap at 37 % of the trace".
    pub fn describe(&self) -> String {
        format!(
            "stopped by the {:.0} s time cap at {:.0} % of the trace",
            self.cap_secs,
            self.trace_position as f64 * 100.0 / self.trace_ops.max(1) as f64
        )
    }
}

/// The memory a run had: a cgroup limit counting the page cache.
#[derive(Clone, Debug, serde::Serialize, serde::Deserialize)]
pub struct MemoryBudget {
    pub limit_bytes: u64,
    /// The most the cgroup held (page cache included).
    pub peak_bytes: Option<u64>,
    /// Whether the page cache was dropped before the run (needs root).
    pub page_cache_dropped: bool,
    /// `MALLOC_ARENA_MAX` the child ran with (glibc's malloc arenas).
    #[serde(default)]
    pub malloc_arenas: Option<u32>,
}

#[derive(Clone, Debug, serde::Serialize, serde::Deserialize)]
pub struct RunResult {
    pub scenario: String,
    pub engine: EngineKind,
    /// The engine's release (RocksDB's version; "hand-written" for ours).
    pub engine_version: String,
    pub durability: DurabilityMode,
    pub threads: usize,
    pub open_loop_rate: Option<f64>,
    pub ops: u64,
    pub elapsed_secs: f64,
    pub throughput_ops_per_sec: f64,
    /// Per op kind, and "all".
    pub latency: BTreeMap<String, LatencySummary>,
    /// Key + value bytes of the batches the store wrote (engine counter).
    pub user_bytes_written: u64,
    /// Bytes the engine handed to its files.
    pub device_bytes_written: u64,
    /// Bytes this process sent towards the block layer (`/proc/self/io`
    /// write_bytes; page-cache writeback the kernel had not started by the
    /// end of the run is not in it).
    pub os_bytes_written: u64,
    pub write_amp_engine: Option<f64>,
    pub write_amp_os: Option<f64>,
    /// Engine files after the final sync.
    pub disk_bytes: u64,
    /// Keys + values the engine holds after the run (a full scan).
    pub live_bytes: u64,
    pub space_amp: Option<f64>,
    /// State bytes the store returned to loads.
    pub state_bytes_read: u64,
    /// Bytes the engine read from its files (the page cache may have served them).
    pub device_bytes_read: u64,
    pub read_amp: Option<f64>,
    pub fsyncs: u64,
    pub fsyncs_per_op: f64,
    pub stall_micros: u64,
    pub recovery: Option<Recovery>,
    /// The scenario's own reopens (recovery scenario).
    pub reopens: Vec<ReopenTiming>,
    pub peak_rss_bytes: Option<u64>,
    pub lease_conflicts: u64,
    pub duplicate_owners: u64,
    /// Answers that differ from the reference store's (must be 0).
    pub mismatches: u64,
    pub first_mismatches: Vec<String>,
    /// The engine's counters over the measured part of the run, summed over
    /// every instance (reopens); gauges as at the end.
    pub engine_stats: EngineStats,
    /// The run's memory budget; None: it ran in the harness's own process,
    /// with no limit.
    #[serde(default)]
    pub memory: Option<MemoryBudget>,
    /// Set when the kernel killed the run for memory: its figures are then
    /// empty and this says how far it got.
    #[serde(default)]
    pub out_of_memory: Option<OutOfMemory>,
    /// The time cap stopped the replay before the end of the trace: the
    /// figures are those of the ops it replayed.
    #[serde(default)]
    pub time_capped: Option<TimeCapped>,
}

impl RunResult {
    /// The result of a run killed for memory: no figures, how far it got.
    pub fn killed_for_memory(
        scenario: &str,
        engine: EngineKind,
        durability: DurabilityMode,
        threads: usize,
        memory: MemoryBudget,
        out_of_memory: OutOfMemory,
    ) -> RunResult {
        RunResult {
            scenario: scenario.to_owned(),
            engine,
            engine_version: engine.version().to_owned(),
            durability,
            threads,
            open_loop_rate: None,
            ops: 0,
            elapsed_secs: 0.0,
            throughput_ops_per_sec: 0.0,
            latency: BTreeMap::new(),
            user_bytes_written: 0,
            device_bytes_written: 0,
            os_bytes_written: 0,
            write_amp_engine: None,
            write_amp_os: None,
            disk_bytes: 0,
            live_bytes: 0,
            space_amp: None,
            state_bytes_read: 0,
            device_bytes_read: 0,
            read_amp: None,
            fsyncs: 0,
            fsyncs_per_op: 0.0,
            stall_micros: 0,
            recovery: None,
            reopens: Vec::new(),
            peak_rss_bytes: None,
            lease_conflicts: 0,
            duplicate_owners: 0,
            mismatches: 0,
            first_mismatches: Vec::new(),
            engine_stats: EngineStats::default(),
            memory: Some(memory),
            out_of_memory: Some(out_of_memory),
            time_capped: None,
        }
    }
}

/// Opens the store on the files in a directory (fresh, or left by the last
/// instance: reopening recovers them).
pub type Opener<'a> = &'a dyn Fn(&Path) -> Result<Box<dyn BenchStore>>;

pub struct RunSpec<'a> {
    /// What the results are labelled with; `open` opens it.
    pub engine: EngineKind,
    pub durability: DurabilityMode,
    pub open: Opener<'a>,
    /// A fresh directory for the engine's files (removed afterwards).
    pub dir: PathBuf,
    pub options: ReplayOptions,
    /// Publish live metrics to this file while the run goes on.
    pub metrics_file: Option<&'a Path>,
    /// Leave the engine's files in `dir` after the run.
    pub keep_data: bool,
}

fn ratio(numerator: u64, denominator: u64) -> Option<f64> {
    (denominator > 0).then(|| numerator as f64 / denominator as f64)
}

pub fn run(spec: &RunSpec, source: &mut dyn OpSource) -> Result<RunResult> {
    let header = source.header().clone();
    let trace_ops = source.total_ops();
    let label = format!(
        "{} {} {}",
        header.scenario,
        spec.engine.name(),
        spec.durability.name()
    );
    let _ = std::fs::remove_dir_all(&spec.dir);
    std::fs::create_dir_all(&spec.dir).map_err(Error::file(&spec.dir))?;
    let open = || (spec.open)(&spec.dir);
    let store = open()?;
    measure::reset_peak_rss();
    let io_before = ProcIo::read();
    let mut reopener = open;
    let reopen: Option<&mut replay::Reopener<'_>> = if spec.engine.durable() {
        Some(&mut reopener)
    } else {
        None
    };
    let publisher = spec.metrics_file.map(|path| {
        Publisher::new(
            path,
            format!("{label} (leasehold run)"),
            Duration::from_secs(1),
        )
    });
    let outcome = replay::replay(source, store, reopen, spec.options, publisher.as_ref())
        .with_context(|| label.clone())?;
    let io_before = outcome
        .baseline
        .as_ref()
        .map_or(io_before, |baseline| baseline.io);
    let io = match (ProcIo::read(), io_before) {
        (Some(after), Some(before)) => after.since(before),
        _ => ProcIo::default(),
    };
    let peak_rss_bytes = measure::peak_rss_bytes();
    let store = outcome.store;
    let metrics = store.metrics();
    if let Some(publisher) = &publisher {
        publisher.publish_done(outcome.replayed as usize, &metrics);
    }
    let mut stats = EngineStats::default();
    for retired in &outcome.retired {
        stats.accumulate(retired);
    }
    if let Some(engine) = &metrics.engine {
        stats.accumulate(engine);
    }
    let baseline_metrics = outcome.baseline.as_ref().map(|baseline| &baseline.metrics);
    if let Some(engine) = baseline_metrics.and_then(|metrics| metrics.engine.as_ref()) {
        stats = stats.since(engine);
    }
    let state_bytes_read =
        metrics.state_bytes_read - baseline_metrics.map_or(0, |metrics| metrics.state_bytes_read);
    let live_bytes = store
        .live()
        .map(|live| live.bytes)
        .with_context(|| format!("{label}: live bytes"))?;
    // A store on a server: the size it reports of its own tables (none for
    // object storage, whose server says nothing of its disk).
    let disk_bytes = if spec.engine.keeps_local_files() {
        leasehold_core::vfs::dir_bytes(&spec.dir)
    } else {
        stats.disk_bytes
    };
    let recovery = if spec.engine.durable() {
        Some(
            recover(store, &header, outcome.last_ms, &open)
                .with_context(|| format!("{label}: recovery"))?,
        )
    } else {
        store.close().with_context(|| format!("{label}: close"))?;
        None
    };
    let mut latency: BTreeMap<String, LatencySummary> = outcome
        .latencies
        .iter()
        .map(|(kind, histogram)| ((*kind).to_owned(), LatencySummary::of(histogram)))
        .collect();
    let mut all = measure::latency_histogram();
    for histogram in outcome.latencies.values() {
        let _ = all.add(histogram);
    }
    latency.insert("all".to_owned(), LatencySummary::of(&all));
    let elapsed_secs = outcome.elapsed.as_secs_f64();
    if !spec.keep_data {
        if !spec.engine.keeps_local_files() && spec.engine.durable() {
            let discarded = (spec.open)(&spec.dir).and_then(|store| store.discard());
            discarded.with_context(|| format!("{label}: removing the run's data"))?;
        }
        let _ = std::fs::remove_dir_all(&spec.dir);
    }
    // A volatile engine has no files: its amplification is not a figure. Nor
    // is the local disk's for engine s3, whose data lives on the server.
    let durable = spec.engine.durable();
    let local = durable && spec.engine.keeps_local_files();
    // A peer that keeps no I/O counters (fjall) has no engine-counted figures.
    let counted = !stats.io_uncounted;
    Ok(RunResult {
        scenario: header.scenario.clone(),
        engine: spec.engine,
        engine_version: spec.engine.version().to_owned(),
        durability: spec.durability,
        threads: spec.options.threads,
        open_loop_rate: spec.options.open_loop_rate,
        ops: outcome.ops,
        elapsed_secs,
        throughput_ops_per_sec: outcome.ops as f64 / elapsed_secs.max(1e-9),
        latency,
        user_bytes_written: stats.user_bytes_written,
        device_bytes_written: stats.device_bytes_written,
        os_bytes_written: io.write_bytes,
        write_amp_engine: ratio(stats.device_bytes_written, stats.user_bytes_written)
            .filter(|_| durable && counted),
        write_amp_os: ratio(io.write_bytes, stats.user_bytes_written).filter(|_| local),
        disk_bytes,
        live_bytes,
        space_amp: ratio(disk_bytes, live_bytes).filter(|_| durable && disk_bytes > 0),
        state_bytes_read,
        device_bytes_read: stats.device_bytes_read,
        read_amp: ratio(stats.device_bytes_read, state_bytes_read).filter(|_| durable && counted),
        fsyncs: stats.fsyncs + stats.dir_syncs,
        fsyncs_per_op: (stats.fsyncs + stats.dir_syncs) as f64 / outcome.ops.max(1) as f64,
        stall_micros: stats.stall_micros,
        recovery,
        reopens: outcome.reopens,
        peak_rss_bytes,
        lease_conflicts: outcome.lease_conflicts,
        duplicate_owners: outcome.duplicate_owners + outcome.epochs_not_raised,
        mismatches: outcome.mismatch_count,
        first_mismatches: outcome
            .mismatches
            .iter()
            .map(|mismatch| {
                format!(
                    "op {} {:?}: expected {:?}, got {:?}",
                    mismatch.index, mismatch.op, mismatch.expected, mismatch.actual
                )
            })
            .collect(),
        engine_stats: stats,
        memory: None,
        out_of_memory: None,
        time_capped: outcome.time_capped.then(|| TimeCapped {
            cap_secs: spec.options.time_cap.map_or(0.0, |cap| cap.as_secs_f64()),
            trace_position: outcome.replayed,
            trace_ops,
        }),
    })
}

/// Close, reopen, time the first read, then check every actor's state came
/// back exactly as the store showed it before the close.
fn recover(
    store: Box<dyn BenchStore>,
    header: &TraceHeader,
    last_ms: u64,
    open: &dyn Fn() -> Result<Box<dyn BenchStore>>,
) -> Result<Recovery> {
    let now = Timestamp::from_millis(last_ms);
    let keys = || (0..header.actors).map(|actor| actor_key(header, actor));
    // One fingerprint per actor (0: none), not its key and state: a million
    // actors cost 8 MB of the replaying child's budget.
    let fingerprint = |store: &dyn BenchStore, key: &ActorKey| -> Result<u64> {
        let loaded = store.load(key, now)?;
        Ok(loaded.map_or(0, |snapshot| {
            let mut bytes = snapshot.version.to_le_bytes().to_vec();
            bytes.extend_from_slice(&snapshot.state_hash);
            fnv1a(&bytes) | 1
        }))
    };
    let before: Vec<u64> = keys()
        .map(|key| fingerprint(store.as_ref(), &key))
        .collect::<Result<_, _>>()?;
    let closing = Instant::now();
    store.close()?;
    drop(store);
    let close_ms = closing.elapsed().as_secs_f64() * 1e3;
    let opening = Instant::now();
    let reopened = open()?;
    let open_ms = opening.elapsed().as_secs_f64() * 1e3;
    reopened.load(&actor_key(header, 0), now)?;
    let first_read_ms = opening.elapsed().as_secs_f64() * 1e3;
    let mut states_lost = 0;
    for (key, expected) in keys().zip(&before) {
        if fingerprint(reopened.as_ref(), &key)? != *expected {
            states_lost += 1;
        }
    }
    reopened.close()?;
    Ok(Recovery {
        close_ms,
        open_ms,
        first_read_ms,
        states_checked: before.len() as u64,
        states_lost,
    })
}

/// Where a run's result goes: `<out>/<scenario>/<engine>-<durability>.json`.
pub fn result_path(out: &Path, result: &RunResult) -> PathBuf {
    out.join(&result.scenario).join(format!(
        "{}-{}.json",
        result.engine.name(),
        result.durability.name()
    ))
}
