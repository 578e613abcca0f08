//! Multi-actor commits on object storage (FORMAT.md, "Multi-actor commit"):
//! intents on every participant, a commit record as the commit point, and
//! the resolution every reader and writer applies when it meets an intent.
//!
//! 1. **Prepare**, in key order: for each actor read the lease and the
//!    settled envelope, check fence, epoch and version with the core's rules,
//!    and PUT the envelope back (`If-Match`) unchanged but for an intent
//!    naming the commit, its deadline and the after-image. An intent blocks
//!    every other write of the object until it is resolved.
//! 2. **Commit point**: PUT the commit record `Committed`, create-only. A
//!    reader that meets an intent past its deadline with no record writes the
//!    record `Aborted`, create-only: of the two PUTs exactly one lands.
//! 3. **Apply**: each intent is rolled forward (after-image in place, intent
//!    gone) — by the coordinator, or by whoever meets it first.
//!
//! A rule broken at prepare (a stale epoch, a version conflict) aborts: the
//! record says `Aborted` and the intents are rolled back.

use std::collections::hash_map::RandomState;
use std::hash::{BuildHasher, Hasher};
use std::sync::atomic::AtomicU64;

use leasehold_core::store::distinct_keys;

use crate::record::{CommitRecord, Intent, Outcome};

use super::*;

/// How long after its start a commit may stay unresolved before a reader may
/// abort it (on the caller's clock), unless `set_commit_deadline` says.
pub const COMMIT_DEADLINE: Duration = Duration::from_secs(5);

/// How long a writer waits, in real time, for a pending commit on its actor
/// to resolve before it reports the contention.
const PENDING_WAIT_MAX: Duration = Duration::from_secs(15);

/// Where a commit is when the test hook is told (crash tests kill the
/// coordinator there).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum CommitPhase {
    /// The intent of the `n`-th participant (from 1) is written.
    Prepared(usize),
    /// The commit record says committed; nothing is applied yet.
    Recorded,
}

/// What a caller of `settle` does with an intent still pending (no record,
/// deadline not passed).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Pending {
    /// Read past it: the envelope's own snapshot is the committed state.
    Read,
    /// Wait for it to resolve (or pass its deadline and abort it).
    Wait,
    /// Leave the actor alone this time (`None`).
    Skip,
}

fn new_commit_id() -> String {
    static NEXT: AtomicU64 = AtomicU64::new(0);
    let since = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap_or_default();
    // RandomState is seeded from the OS per process: unique across machines.
    let mut hasher = RandomState::new().build_hasher();
    hasher.write_u64(NEXT.fetch_add(1, Ordering::Relaxed));
    format!(
        "{:x}-{:x}-{:x}-{:016x}",
        since.as_nanos(),
        std::process::id(),
        NEXT.fetch_add(1, Ordering::Relaxed),
        hasher.finish()
    )
}

impl ObjectStoreBackend {
    fn read_record(&self, commit: &str) -> StoreResult<Option<CommitRecord>> {
        let path = self.layout.commit(commit);
        let Some((bytes, _)) = self.client.get(&path)? else {
            return Ok(None);
        };
        CommitRecord::decode(&bytes)
            .map(Some)
            .map_err(|err| corrupt(&path, err))
    }

    /// Writes the record create-only; answers what the record says after
    /// (ours, or the one that was there first).
    fn decide(&self, commit: &str, record: CommitRecord) -> StoreResult<Outcome> {
        let path = self.layout.commit(commit);
        if self.put_checked(&path, record.encode(), &Condition::Absent)? {
            return Ok(record.outcome);
        }
        match self.read_record(commit)? {
            Some(found) => Ok(found.outcome),
            None => Err(corrupt(
                &path,
                "a create-only PUT was refused but no record is there",
            )),
        }
    }

    /// The actor's envelope with no intent on it: intents whose commit is
    /// decided are applied (rolled forward or back); one still pending is
    /// read past, waited for, or skipped, as `pending` says. `None` when there
    /// is no object (or it was skipped).
    pub(crate) fn settle(
        &self,
        key: &ActorKey,
        now: Timestamp,
        pending: Pending,
    ) -> StoreResult<Option<(Envelope, ETag)>> {
        self.settle_at(&self.layout.snapshot(key), now, pending)
    }

    /// `settle` of the snapshot object at `path`.
    pub(crate) fn settle_at(
        &self,
        path: &Path,
        now: Timestamp,
        pending: Pending,
    ) -> StoreResult<Option<(Envelope, ETag)>> {
        let started = Instant::now();
        let mut backoff = Duration::from_millis(1);
        loop {
            let Some((envelope, etag)) = self.read_envelope_at(path)? else {
                return Ok(None);
            };
            let Some(intent) = envelope.intent.clone() else {
                return Ok(Some((envelope, etag)));
            };
            // The caller's clock, moved on by the time spent waiting here.
            let now = now.saturating_add(started.elapsed());
            let outcome = match self.read_record(&intent.commit)? {
                Some(record) => record.outcome,
                None if now >= intent.deadline => {
                    self.aborts.fetch_add(1, Ordering::Relaxed);
                    self.decide(
                        &intent.commit,
                        CommitRecord {
                            outcome: Outcome::Aborted,
                            // The coordinator's record would name them all;
                            // a reader knows only where it found the intent.
                            participants: Vec::new(),
                        },
                    )?
                }
                None => match pending {
                    Pending::Read => return Ok(Some((envelope, etag))),
                    Pending::Skip => return Ok(None),
                    Pending::Wait if started.elapsed() < PENDING_WAIT_MAX => {
                        std::thread::sleep(backoff);
                        backoff = (backoff * 2).min(Duration::from_millis(50));
                        continue;
                    }
                    Pending::Wait => {
                        return Err(StoreError::Engine(KvError::io(
                            format!("a write of {path}"),
                            std::io::Error::other(format!(
                                "commit {} holds the actor and did not resolve within {PENDING_WAIT_MAX:?}",
                                intent.commit
                            )),
                        )))
                    }
                },
            };
            let resolved = match outcome {
                Outcome::Committed => {
                    Envelope::settled(envelope.fence.max(intent.fence_epoch), intent.after.clone())
                }
                Outcome::Aborted => Envelope::settled(envelope.fence, envelope.snapshot.clone()),
            };
            // Lost: somebody else resolved it (or wrote after that); read again.
            self.put_checked(path, resolved.encode(), &Condition::Matches(etag))?;
        }
    }

    /// Tells the test hook, if one is set, where the commit is.
    fn reached(&self, phase: CommitPhase) {
        if let Some(hook) = self.commit_hook.lock().as_ref() {
            hook(phase);
        }
    }

    /// For crash tests: `hook` is called at each phase of every commit (and
    /// may end the process there).
    pub fn set_commit_hook(&self, hook: impl Fn(CommitPhase) + Send + Sync + 'static) {
        *self.commit_hook.lock() = Some(Box::new(hook));
    }

    /// How long this instance's commits may stay unresolved before a reader
    /// may abort them (default `COMMIT_DEADLINE`). Shorter frees the actors of
    /// a dead coordinator sooner; a coordinator slower than it between its
    /// first intent and its record is aborted (and answers an error).
    pub fn set_commit_deadline(&self, deadline: Duration) {
        *self.commit_deadline.lock() = deadline;
    }

    /// Commits that readers found past their deadline and aborted.
    pub fn commits_aborted_by_readers(&self) -> u64 {
        self.aborts.load(Ordering::Relaxed)
    }

    /// Writes `key`'s intent for `op` (reading, checking and retrying lost
    /// races); answers the after-image.
    fn prepare(
        &self,
        op: &CommitOp,
        commit: &str,
        deadline: Timestamp,
        now: Timestamp,
    ) -> StoreResult<Option<Snapshot>> {
        let key = op.key();
        let path = self.layout.snapshot(key);
        for _ in 0..MAX_ATTEMPTS {
            let lease = self.read_lease(key)?.map(|(lease, _)| lease);
            let (fence, stored, etag) = match self.settle(key, now, Pending::Wait)? {
                Some((envelope, etag)) => (envelope.fence, envelope.snapshot, Some(etag)),
                None => (0, None, None),
            };
            let fence_epoch = op.fence_epoch();
            check_object_fence(key, fence, fence_epoch)?;
            let after = rules::decide(op, lease.as_ref(), stored.as_ref(), now)?;
            let envelope = Envelope {
                fence,
                snapshot: stored,
                intent: Some(Intent {
                    commit: commit.to_owned(),
                    deadline,
                    fence_epoch,
                    after: after.clone(),
                }),
            };
            if self.put_checked(
                &path,
                envelope.encode(),
                &Condition::after_read(etag.as_ref()),
            )? {
                return Ok(after);
            }
        }
        Err(contention("commit prepare", key))
    }

    /// All of `ops` or none, across actors (see the module docs).
    pub(super) fn commit_ops(
        &self,
        ops: Vec<CommitOp>,
        now: Timestamp,
    ) -> StoreResult<Vec<Option<Snapshot>>> {
        distinct_keys(&ops)?;
        let mut order: Vec<usize> = (0..ops.len()).collect();
        order.sort_by(|&a, &b| ops[a].key().cmp(ops[b].key()));
        for op in &ops {
            validate(op.key())?;
        }
        let commit = new_commit_id();
        let deadline = now.saturating_add(*self.commit_deadline.lock());
        let participants: Vec<ActorKey> = order.iter().map(|&i| ops[i].key().clone()).collect();
        let mut results = vec![None; ops.len()];
        let mut prepared = Vec::new();
        for &index in &order {
            match self.prepare(&ops[index], &commit, deadline, now) {
                Ok(after) => results[index] = after,
                // A rule broken before any intent was written: no object
                // names this commit, so no record is needed to cancel it.
                // (After a failed request an intent may have landed unseen.)
                Err(err) if prepared.is_empty() && !matches!(err, StoreError::Engine(_)) => {
                    return Err(err)
                }
                Err(err) => {
                    self.abandon(&commit, &participants, &prepared, now)?;
                    return Err(err);
                }
            }
            prepared.push(ops[index].key().clone());
            self.reached(CommitPhase::Prepared(prepared.len()));
        }
        let record = CommitRecord {
            outcome: Outcome::Committed,
            participants: participants.clone(),
        };
        if self.decide(&commit, record)? == Outcome::Aborted {
            self.abandon(&commit, &participants, &prepared, now)?;
            return Err(StoreError::Engine(KvError::io(
                format!("commit {commit}"),
                std::io::Error::other(
                    "a reader found the commit past its deadline and aborted it; nothing was applied",
                ),
            )));
        }
        self.reached(CommitPhase::Recorded);
        // Committed. Applying is a courtesy: whoever meets an intent first
        // applies it, so a failure here loses nothing.
        for key in &participants {
            let _ = self.settle(key, now, Pending::Read);
        }
        self.metrics.add_saved(&results);
        Ok(results)
    }

    /// Aborts `commit` (unless it is already decided) and rolls back the
    /// intents written so far.
    fn abandon(
        &self,
        commit: &str,
        participants: &[ActorKey],
        prepared: &[ActorKey],
        now: Timestamp,
    ) -> StoreResult<()> {
        let record = CommitRecord {
            outcome: Outcome::Aborted,
            participants: participants.to_vec(),
        };
        self.decide(commit, record)?;
        for key in prepared {
            self.settle(key, now, Pending::Read)?;
        }
        Ok(())
    }
}
