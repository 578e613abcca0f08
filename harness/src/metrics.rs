//! Live metrics of a running replay, published to a JSON file that
//! `leasehold metrics --file F [--watch]` renders, and the rendering itself.

use std::fmt::Write;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use crate::{Error, Result};
use leasehold_core::kv::EngineStats;
use leasehold_core::metrics::StoreMetrics;
use leasehold_core::time::{Clock, SystemClock};
use parking_lot::Mutex;

/// One op kind's figures.
#[derive(Clone, Debug, serde::Serialize, serde::Deserialize)]
pub struct OpView {
    pub kind: String,
    pub count: u64,
    pub errors: u64,
    pub mean_us: f64,
    pub p50_us: f64,
    pub p99_us: f64,
    pub p999_us: f64,
    pub max_us: f64,
}

/// What a running store publishes.
#[derive(Clone, Debug, serde::Serialize, serde::Deserialize)]
pub struct MetricsView {
    pub source: String,
    pub published_at_ms: u64,
    pub ops: Vec<OpView>,
    pub lease_conflicts: u64,
    pub version_conflicts: u64,
    pub stale_epochs: u64,
    pub integrity_failures: u64,
    pub state_bytes_written: u64,
    pub state_bytes_read: u64,
    pub engine: Option<EngineStats>,
    /// How far a replay is: the trace op thread 0 reached, of `trace_ops`.
    #[serde(default)]
    pub trace_position: Option<u64>,
    #[serde(default)]
    pub trace_ops: Option<u64>,
}

impl MetricsView {
    pub fn of(source: &str, metrics: &StoreMetrics) -> MetricsView {
        let micros = |duration: Duration| duration.as_secs_f64() * 1e6;
        MetricsView {
            source: source.to_owned(),
            published_at_ms: SystemClock.now().as_millis(),
            ops: metrics
                .ops
                .iter()
                .map(|op| OpView {
                    kind: op.kind.name().to_owned(),
                    count: op.count,
                    errors: op.errors,
                    mean_us: micros(op.mean),
                    p50_us: micros(op.p50),
                    p99_us: micros(op.p99),
                    p999_us: micros(op.p999),
                    max_us: micros(op.max),
                })
                .collect(),
            lease_conflicts: metrics.lease_conflicts,
            version_conflicts: metrics.version_conflicts,
            stale_epochs: metrics.stale_epochs,
            integrity_failures: metrics.integrity_failures,
            state_bytes_written: metrics.state_bytes_written,
            state_bytes_read: metrics.state_bytes_read,
            engine: metrics.engine.clone(),
            trace_position: None,
            trace_ops: None,
        }
    }

    pub fn render(&self) -> String {
        let mut out = String::new();
        let age = SystemClock
            .now()
            .as_millis()
            .saturating_sub(self.published_at_ms);
        let _ = writeln!(
            out,
            "{} — published {:.1} s ago",
            self.source,
            age as f64 / 1000.0
        );
        let _ = writeln!(
            out,
            "{:<10} {:>10} {:>7} {:>10} {:>10} {:>10} {:>10} {:>10}",
            "OP", "COUNT", "ERRORS", "MEAN µs", "P50 µs", "P99 µs", "P999 µs", "MAX µs"
        );
        for op in &self.ops {
            let _ = writeln!(
                out,
                "{:<10} {:>10} {:>7} {:>10.1} {:>10.1} {:>10.1} {:>10.1} {:>10.1}",
                op.kind,
                op.count,
                op.errors,
                op.mean_us,
                op.p50_us,
                op.p99_us,
                op.p999_us,
                op.max_us
            );
        }
        let _ = writeln!(
            out,
            "conflicts  lease {}, version {}, stale epoch {}; integrity failures {}",
            self.lease_conflicts,
            self.version_conflicts,
            self.stale_epochs,
            self.integrity_failures
        );
        let _ = writeln!(
            out,
            "state      {} bytes written, {} bytes read",
            self.state_bytes_written, self.state_bytes_read
        );
        if let Some(engine) = &self.engine {
            out.push_str(&render_engine(engine));
        }
        out
    }
}

/// An engine's counters: bytes, fsyncs, amplification, caches, sizes.
pub fn render_engine(engine: &EngineStats) -> String {
    let mut out = String::new();
    let ratio = |value: Option<f64>| value.map_or("-".to_owned(), |value| format!("{value:.2}"));
    let _ = writeln!(
        out,
        "engine     {} user bytes written; {} to the device (WAL {}, flush {}, compaction {}); write amp {}",
        engine.user_bytes_written,
        engine.device_bytes_written,
        engine.wal_bytes_written,
        engine.flush_bytes_written,
        engine.compaction_bytes_written,
        ratio(engine.write_amplification())
    );
    let _ = writeln!(
        out,
        "           {} fsyncs, {} directory syncs, {} µs stalled, {} checkpoints",
        engine.fsyncs, engine.dir_syncs, engine.stall_micros, engine.checkpoints
    );
    let _ = writeln!(
        out,
        "           block cache {} hits / {} misses; bloom {} probes, {} useful, {} false positives",
        engine.block_cache_hits,
        engine.block_cache_misses,
        engine.bloom_probes,
        engine.bloom_useful,
        engine.bloom_false_positives
    );
    let _ = writeln!(
        out,
        "           {} bytes on disk, {} live entries, {} live bytes; space amp {}",
        engine.disk_bytes,
        engine.live_entries,
        engine.live_bytes,
        ratio(engine.space_amplification())
    );
    out
}

/// Writes a [`MetricsView`] to a file at most once per interval, atomically
/// (temporary file, then rename), so a reader never sees half a file.
pub struct Publisher {
    path: PathBuf,
    source: String,
    interval: Duration,
    last: Mutex<Option<Instant>>,
}

impl Publisher {
    pub fn new(path: &Path, source: String, interval: Duration) -> Publisher {
        Publisher {
            path: path.to_path_buf(),
            source,
            interval,
            last: Mutex::new(None),
        }
    }

    /// Publishes if the interval has passed, with how far the replay is
    /// (`position` of `ops` trace ops); `metrics` is only called then.
    pub fn maybe_publish(
        &self,
        (position, ops): (usize, usize),
        metrics: impl FnOnce() -> StoreMetrics,
    ) {
        let mut last = self.last.lock();
        if last.is_some_and(|at| at.elapsed() < self.interval) {
            return;
        }
        *last = Some(Instant::now());
        drop(last);
        let mut view = MetricsView::of(&self.source, &metrics());
        view.trace_position = Some(position as u64);
        view.trace_ops = Some(ops as u64);
        self.write(&view);
    }

    /// Publishes now: the end of a replay, all `ops` trace ops done (what
    /// follows is the run's end-of-run checks: live-data scan, close, reopen).
    pub fn publish_done(&self, ops: usize, metrics: &StoreMetrics) {
        let mut view = MetricsView::of(&self.source, metrics);
        view.trace_position = Some(ops as u64);
        view.trace_ops = Some(ops as u64);
        self.write(&view);
    }

    /// Best effort: a metrics file that cannot be written is reported once
    /// per attempt on stderr and never stops the run.
    fn write(&self, view: &MetricsView) {
        let temporary = self.path.with_extension("tmp");
        let written = serde_json::to_vec_pretty(view)
            .map_err(std::io::Error::other)
            .and_then(|json| std::fs::write(&temporary, json))
            .and_then(|()| std::fs::rename(&temporary, &self.path));
        if let Err(err) = written {
            eprintln!("metrics file {}: {err}", self.path.display());
        }
    }
}

pub fn read(path: &Path) -> Result<MetricsView> {
    let text = std::fs::read_to_string(path).map_err(Error::file(path))?;
    serde_json::from_str(&text).map_err(Error::parse(path, "a metrics file"))
}
