//! What every `Store` implementation wraps its operations in, once: the
//! closed flag (every call after `close` is `Closed`) and the per-operation
//! latency and outcome counters `metrics()` reports. `KvStore`, the object
//! store and PostgreSQL all hold one.

use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Instant;

use crate::error::{StoreError, StoreResult};
use crate::key::ActorKey;
use crate::kv::{EngineStats, Health};
use crate::metrics::{MetricsRecorder, OpKind, Outcome, StoreMetrics};
use crate::snapshot::{Snapshot, SnapshotWrite};
use crate::store::{the_saved, Acquire, CommitOp};

#[derive(Debug, Default)]
pub struct Instrumented {
    recorder: MetricsRecorder,
    closed: AtomicBool,
}

impl Instrumented {
    /// `Closed` once `close` was called.
    pub fn check_open(&self) -> StoreResult<()> {
        if self.closed.load(Ordering::Acquire) {
            return Err(StoreError::Closed);
        }
        Ok(())
    }

    /// Runs `body` (unless closed), timing it into `kind`'s histogram and
    /// counting its outcome.
    pub fn timed<T>(&self, kind: OpKind, body: impl FnOnce() -> StoreResult<T>) -> StoreResult<T> {
        let started = Instant::now();
        let result = self.check_open().and_then(|()| body());
        self.recorder
            .record(kind, started.elapsed(), Outcome::of(&result));
        result
    }

    /// `save` as every store makes it: one `CommitOp::Save` handed to
    /// `apply` (the store's commit path, or a cheaper one for a single op),
    /// timed as a save.
    pub fn save_alone(
        &self,
        write: SnapshotWrite,
        expected_version: u64,
        fence_epoch: u64,
        apply: impl FnOnce(CommitOp) -> StoreResult<Vec<Option<Snapshot>>>,
    ) -> StoreResult<Snapshot> {
        self.timed(OpKind::Save, || {
            the_saved(apply(CommitOp::save(write, expected_version, fence_epoch))?)
        })
    }

    /// `delete` as every store makes it: one `CommitOp::Delete` handed to
    /// `apply`, timed as a delete.
    pub fn delete_alone(
        &self,
        key: &ActorKey,
        expected_version: u64,
        fence_epoch: u64,
        apply: impl FnOnce(CommitOp) -> StoreResult<Vec<Option<Snapshot>>>,
    ) -> StoreResult<()> {
        self.timed(OpKind::Delete, || {
            apply(CommitOp::delete(key, expected_version, fence_epoch)).map(|_| ())
        })
    }

    /// `timed` for `try_acquire`: an answer of `Held` counts as a lease
    /// conflict, not a success.
    pub fn timed_acquire(
        &self,
        body: impl FnOnce() -> StoreResult<Acquire>,
    ) -> StoreResult<Acquire> {
        let started = Instant::now();
        let result = self.check_open().and_then(|()| body());
        self.recorder.record(
            OpKind::Acquire,
            started.elapsed(),
            match &result {
                Ok(Acquire::Held { .. }) => Outcome::LeaseConflict,
                other => Outcome::of(other),
            },
        );
        result
    }

    /// Marks the store closed; true the first time (the caller then closes
    /// what it holds).
    pub fn close(&self) -> bool {
        !self.closed.swap(true, Ordering::AcqRel)
    }

    pub fn is_closed(&self) -> bool {
        self.closed.load(Ordering::Acquire)
    }

    /// `Failed` for a closed store, else `None` (the store probes itself).
    pub fn closed_health(&self) -> Option<Health> {
        self.is_closed()
            .then(|| Health::Failed("store is closed".into()))
    }

    pub fn add_state_bytes_written(&self, bytes: u64) {
        self.recorder.add_state_bytes_written(bytes);
    }

    /// Counts the states a save or commit wrote (`None`: a delete).
    pub fn add_saved(&self, saved: &[Option<Snapshot>]) {
        let bytes = saved
            .iter()
            .flatten()
            .map(|snapshot| snapshot.state.len() as u64)
            .sum();
        self.recorder.add_state_bytes_written(bytes);
    }

    /// Counts a loaded snapshot's state and passes it on.
    pub fn loaded(&self, loaded: Option<Snapshot>) -> Option<Snapshot> {
        self.recorder.loaded(loaded)
    }

    /// The counters, with the engine's (or server's) own.
    pub fn snapshot(&self, engine: Option<EngineStats>) -> StoreMetrics {
        self.recorder.snapshot(engine)
    }
}
