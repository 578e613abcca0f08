//! Snapshot objects: saves and deletes as conditional PUTs over the ETag just
//! read, and the takeover fence that keeps an old holder's late saves out
//! (FORMAT.md, "Protocol").

use super::*;

impl ObjectStoreBackend {
    /// Raises the snapshot object's fence to `epoch` (creating a tombstone if
    /// there is no object), so no write fenced below `epoch` can land. A
    /// commit in flight on the actor is resolved first: its intent was
    /// checked under the old epoch.
    pub(super) fn fence(&self, key: &ActorKey, epoch: u64, now: Timestamp) -> StoreResult<()> {
        let path = self.layout.snapshot(key);
        for _ in 0..MAX_ATTEMPTS {
            let read = self.settle(key, now, Pending::Wait)?;
            let (envelope, etag) = match read {
                Some((envelope, _)) if envelope.fence >= epoch => return Ok(()),
                Some((envelope, etag)) => (envelope, Some(etag)),
                None => (Envelope::settled(0, None), None),
            };
            let fenced = Envelope {
                fence: epoch,
                ..envelope
            };
            if self.put_checked(
                &path,
                fenced.encode(),
                &Condition::after_read(etag.as_ref()),
            )? {
                self.fences.fetch_add(1, Ordering::Relaxed);
                return Ok(());
            }
        }
        Err(contention("fence", key))
    }

    /// Saves and deletes of one actor: read lease and snapshot, apply the
    /// rules, PUT the result over the snapshot's ETag; on a lost race, again.
    pub(super) fn write_snapshot(
        &self,
        op: CommitOp,
        now: Timestamp,
    ) -> StoreResult<Option<Snapshot>> {
        let key = op.key().clone();
        validate(&key)?;
        let path = self.layout.snapshot(&key);
        for _ in 0..MAX_ATTEMPTS {
            let lease = self.read_lease(&key)?.map(|(lease, _)| lease);
            let read = self.settle(&key, now, Pending::Wait)?;
            let (fence, stored, etag) = match read {
                Some((envelope, etag)) => (envelope.fence, envelope.snapshot, Some(etag)),
                None => (0, None, None),
            };
            let fence_epoch = op.fence_epoch();
            check_object_fence(&key, fence, fence_epoch)?;
            let saved = rules::decide(&op, lease.as_ref(), stored.as_ref(), now)?;
            if saved.is_none() && stored.is_none() {
                // A delete of nothing: nothing written.
                return Ok(None);
            }
            let envelope = Envelope::settled(fence.max(fence_epoch), saved.clone());
            if self.put_checked(
                &path,
                envelope.encode(),
                &Condition::after_read(etag.as_ref()),
            )? {
                self.metrics.add_saved(std::slice::from_ref(&saved));
                return Ok(saved);
            }
        }
        Err(contention("write", &key))
    }
}
