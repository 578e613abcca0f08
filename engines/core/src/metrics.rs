//! Per-operation counts and latencies of a `Store`, recorded lock-free on the
//! hot path and read as a `StoreMetrics` snapshot.
//!
//! Latencies go into a log-linear histogram: 8 sub-buckets per power of two of
//! nanoseconds, so a percentile is reported within 12.5 % of the true value (the
//! harness keeps exact HdrHistograms of its own; these are for `metrics()`).

use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use crate::error::{StoreError, StoreResult};
use crate::kv::EngineStats;
use crate::snapshot::Snapshot;

/// The store operations that are counted.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum OpKind {
    Acquire,
    Renew,
    Release,
    GetLease,
    ListLeases,
    Load,
    Save,
    Delete,
    List,
    PurgeExpired,
    Commit,
}

impl OpKind {
    pub const ALL: [OpKind; 11] = [
        OpKind::Acquire,
        OpKind::Renew,
        OpKind::Release,
        OpKind::GetLease,
        OpKind::ListLeases,
        OpKind::Load,
        OpKind::Save,
        OpKind::Delete,
        OpKind::List,
        OpKind::PurgeExpired,
        OpKind::Commit,
    ];

    pub fn name(self) -> &'static str {
        match self {
            OpKind::Acquire => "acquire",
            OpKind::Renew => "renew",
            OpKind::Release => "release",
            OpKind::GetLease => "get_lease",
            OpKind::ListLeases => "list_leases",
            OpKind::Load => "load",
            OpKind::Save => "save",
            OpKind::Delete => "delete",
            OpKind::List => "list",
            OpKind::PurgeExpired => "purge_expired",
            OpKind::Commit => "commit",
        }
    }
}

const SUB_BUCKET_BITS: u32 = 3;
const SUB_BUCKETS: usize = 1 << SUB_BUCKET_BITS;
const BUCKETS: usize = 64 * SUB_BUCKETS;

/// A lock-free log-linear histogram of nanoseconds.
#[derive(Debug)]
pub struct LatencyHistogram {
    buckets: Box<[AtomicU64]>,
    count: AtomicU64,
    sum_nanos: AtomicU64,
    max_nanos: AtomicU64,
}

impl Default for LatencyHistogram {
    fn default() -> Self {
        LatencyHistogram {
            buckets: (0..BUCKETS).map(|_| AtomicU64::new(0)).collect(),
            count: AtomicU64::new(0),
            sum_nanos: AtomicU64::new(0),
            max_nanos: AtomicU64::new(0),
        }
    }
}

fn bucket_of(nanos: u64) -> usize {
    if nanos < SUB_BUCKETS as u64 {
        return nanos as usize;
    }
    let magnitude = 63 - nanos.leading_zeros();
    let sub = (nanos >> (magnitude - SUB_BUCKET_BITS)) as usize & (SUB_BUCKETS - 1);
    ((magnitude - SUB_BUCKET_BITS + 1) as usize) * SUB_BUCKETS + sub
}

/// The largest value that falls into `bucket`.
fn bucket_ceiling(bucket: usize) -> u64 {
    if bucket < SUB_BUCKETS {
        return bucket as u64;
    }
    let magnitude = (bucket / SUB_BUCKETS) as u32 + SUB_BUCKET_BITS - 1;
    let sub = (bucket % SUB_BUCKETS) as u64;
    let low = (1u64 << magnitude) | (sub << (magnitude - SUB_BUCKET_BITS));
    low.saturating_add((1u64 << (magnitude - SUB_BUCKET_BITS)) - 1)
}

impl LatencyHistogram {
    pub fn record(&self, latency: Duration) {
        let nanos = u64::try_from(latency.as_nanos()).unwrap_or(u64::MAX);
        self.buckets[bucket_of(nanos)].fetch_add(1, Ordering::Relaxed);
        self.count.fetch_add(1, Ordering::Relaxed);
        self.sum_nanos.fetch_add(nanos, Ordering::Relaxed);
        self.max_nanos.fetch_max(nanos, Ordering::Relaxed);
    }

    pub fn count(&self) -> u64 {
        self.count.load(Ordering::Relaxed)
    }

    /// The latency at quantile `q` (0.0–1.0), as the ceiling of its bucket.
    pub fn quantile(&self, q: f64) -> Duration {
        let total: u64 = self
            .buckets
            .iter()
            .map(|bucket| bucket.load(Ordering::Relaxed))
            .sum();
        if total == 0 {
            return Duration::ZERO;
        }
        let rank = ((q.clamp(0.0, 1.0) * total as f64).ceil() as u64).max(1);
        let mut seen = 0;
        for (index, bucket) in self.buckets.iter().enumerate() {
            seen += bucket.load(Ordering::Relaxed);
            if seen >= rank {
                let max = self.max_nanos.load(Ordering::Relaxed);
                return Duration::from_nanos(bucket_ceiling(index).min(max));
            }
        }
        Duration::from_nanos(self.max_nanos.load(Ordering::Relaxed))
    }

    pub fn mean(&self) -> Duration {
        let count = self.count();
        if count == 0 {
            return Duration::ZERO;
        }
        Duration::from_nanos(self.sum_nanos.load(Ordering::Relaxed) / count)
    }

    pub fn max(&self) -> Duration {
        Duration::from_nanos(self.max_nanos.load(Ordering::Relaxed))
    }
}

/// Live counters of one store.
#[derive(Debug, Default)]
pub struct MetricsRecorder {
    latencies: [LatencyHistogram; OpKind::ALL.len()],
    errors: [AtomicU64; OpKind::ALL.len()],
    lease_conflicts: AtomicU64,
    version_conflicts: AtomicU64,
    stale_epochs: AtomicU64,
    integrity_failures: AtomicU64,
    state_bytes_written: AtomicU64,
    state_bytes_read: AtomicU64,
}

/// Counters of one kind of operation.
#[derive(Clone, Debug, PartialEq)]
pub struct OpMetrics {
    pub kind: OpKind,
    pub count: u64,
    pub errors: u64,
    pub mean: Duration,
    pub p50: Duration,
    pub p99: Duration,
    pub p999: Duration,
    pub max: Duration,
}

/// A snapshot of a store's counters.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct StoreMetrics {
    /// Only kinds that ran at least once.
    pub ops: Vec<OpMetrics>,
    /// `try_acquire` answered `Held`.
    pub lease_conflicts: u64,
    pub version_conflicts: u64,
    pub stale_epochs: u64,
    pub integrity_failures: u64,
    pub state_bytes_written: u64,
    pub state_bytes_read: u64,
    /// The engine's own counters, where there is an engine.
    pub engine: Option<EngineStats>,
}

impl StoreMetrics {
    pub fn op(&self, kind: OpKind) -> Option<&OpMetrics> {
        self.ops.iter().find(|op| op.kind == kind)
    }
}

/// Which counter an error bumps besides the error count.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Outcome {
    Ok,
    LeaseConflict,
    Error,
    VersionConflict,
    StaleEpoch,
    IntegrityFailure,
}

impl Outcome {
    /// Which counter an operation's answer bumps.
    pub fn of<T>(result: &StoreResult<T>) -> Outcome {
        match result {
            Ok(_) => Outcome::Ok,
            Err(StoreError::VersionConflict { .. }) => Outcome::VersionConflict,
            Err(StoreError::StaleEpoch { .. }) => Outcome::StaleEpoch,
            Err(StoreError::Integrity { .. }) => Outcome::IntegrityFailure,
            Err(_) => Outcome::Error,
        }
    }
}

impl MetricsRecorder {
    pub fn record(&self, kind: OpKind, latency: Duration, outcome: Outcome) {
        let index = kind as usize;
        self.latencies[index].record(latency);
        let counter = match outcome {
            Outcome::Ok => None,
            Outcome::LeaseConflict => Some(&self.lease_conflicts),
            Outcome::Error => None,
            Outcome::VersionConflict => Some(&self.version_conflicts),
            Outcome::StaleEpoch => Some(&self.stale_epochs),
            Outcome::IntegrityFailure => Some(&self.integrity_failures),
        };
        if let Some(counter) = counter {
            counter.fetch_add(1, Ordering::Relaxed);
        }
        if !matches!(outcome, Outcome::Ok | Outcome::LeaseConflict) {
            self.errors[index].fetch_add(1, Ordering::Relaxed);
        }
    }

    pub fn add_state_bytes_written(&self, bytes: u64) {
        self.state_bytes_written.fetch_add(bytes, Ordering::Relaxed);
    }

    pub fn add_state_bytes_read(&self, bytes: u64) {
        self.state_bytes_read.fetch_add(bytes, Ordering::Relaxed);
    }

    /// Counts the state a `load` returned, passing the answer through.
    pub fn loaded(&self, loaded: Option<Snapshot>) -> Option<Snapshot> {
        if let Some(snapshot) = &loaded {
            self.add_state_bytes_read(snapshot.state.len() as u64);
        }
        loaded
    }

    pub fn snapshot(&self, engine: Option<EngineStats>) -> StoreMetrics {
        let ops = OpKind::ALL
            .iter()
            .filter_map(|&kind| {
                let histogram = &self.latencies[kind as usize];
                (histogram.count() > 0).then(|| OpMetrics {
                    kind,
                    count: histogram.count(),
                    errors: self.errors[kind as usize].load(Ordering::Relaxed),
                    mean: histogram.mean(),
                    p50: histogram.quantile(0.50),
                    p99: histogram.quantile(0.99),
                    p999: histogram.quantile(0.999),
                    max: histogram.max(),
                })
            })
            .collect();
        StoreMetrics {
            ops,
            lease_conflicts: self.lease_conflicts.load(Ordering::Relaxed),
            version_conflicts: self.version_conflicts.load(Ordering::Relaxed),
            stale_epochs: self.stale_epochs.load(Ordering::Relaxed),
            integrity_failures: self.integrity_failures.load(Ordering::Relaxed),
            state_bytes_written: self.state_bytes_written.load(Ordering::Relaxed),
            state_bytes_read: self.state_bytes_read.load(Ordering::Relaxed),
            engine,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn quantiles_land_within_an_eighth_of_the_truth() {
        let histogram = LatencyHistogram::default();
        for micros in 1..=1000u64 {
            histogram.record(Duration::from_micros(micros));
        }
        let p50 = histogram.quantile(0.5).as_nanos() as f64;
        assert!((p50 / 500_000.0 - 1.0).abs() <= 0.125, "p50 {p50}");
        let p99 = histogram.quantile(0.99).as_nanos() as f64;
        assert!((p99 / 990_000.0 - 1.0).abs() <= 0.125, "p99 {p99}");
        assert_eq!(histogram.max(), Duration::from_micros(1000));
        assert_eq!(histogram.quantile(1.0), Duration::from_micros(1000));
    }

    proptest! {
        #[test]
        fn every_value_lies_within_its_bucket(nanos: u64) {
            let bucket = bucket_of(nanos);
            prop_assert!(bucket < BUCKETS);
            prop_assert!(nanos <= bucket_ceiling(bucket));
            prop_assert!(bucket == 0 || nanos > bucket_ceiling(bucket - 1));
        }
    }
}
