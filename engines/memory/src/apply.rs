//! Applying a batch to the shards: the locks it takes (contract 1), the
//! entry limit (contract 2), the size a backup can hold, and the undo that
//! takes back a Sync write whose backup failed.

use parking_lot::RwLockWriteGuard;

use super::*;

/// A shard as a batch holds it: written (the batch touches it), read (a Sync
/// write encodes the whole map before anyone sees its batch), or not at all.
pub(crate) enum ShardGuard<'a> {
    Write(RwLockWriteGuard<'a, ShardMap>),
    Read(RwLockReadGuard<'a, ShardMap>),
    Free,
}

impl ShardGuard<'_> {
    /// The shard's map, if this guard holds it.
    pub(crate) fn map(&self) -> Option<&ShardMap> {
        match self {
            ShardGuard::Write(map) => Some(map),
            ShardGuard::Read(map) => Some(map),
            ShardGuard::Free => None,
        }
    }
}

/// The backup's body (before compression) must fit one frame even after lz4's
/// worst-case growth (1/255, plus a few bytes): above it the engine refuses
/// writes with `CapacityExceeded` rather than fail every later backup (audit
/// C1). Keys and values are counted with a 10-byte varint each.
pub(crate) const BACKUP_BODY_MAX: u64 =
    (leasehold_storage::frame::FRAME_PAYLOAD_LEN_MAX as u64 - 64) / 256 * 255;

/// A backup body's size bound for `entries` entries holding `live_bytes`.
pub(crate) fn backup_body_bound(entries: u64, live_bytes: u64) -> u64 {
    20 + entries.saturating_mul(20).saturating_add(live_bytes)
}

impl Shared {
    /// Takes the shard locks for `batch` in ascending order: write locks on
    /// the shards it touches and, with `read_rest`, read locks on the others.
    pub(crate) fn lock_for(&self, batch: &WriteBatch, read_rest: bool) -> Vec<ShardGuard<'_>> {
        let mut touched = [false; SHARDS];
        for op in &batch.ops {
            touched[shard_of(op.key())] = true;
        }
        self.shards
            .iter()
            .zip(touched)
            .map(|(shard, touched)| match (touched, read_rest) {
                (true, _) => ShardGuard::Write(shard.write()),
                (false, true) => ShardGuard::Read(shard.read()),
                (false, false) => ShardGuard::Free,
            })
            .collect()
    }

    /// Applies `batch` atomically; returns its sequence number.
    pub(crate) fn apply(&self, batch: &WriteBatch) -> KvResult<u64> {
        let mut guards = self.lock_for(batch, false);
        self.apply_locked(&mut guards, batch)
    }

    /// Applies `batch` through `guards` (which write-lock every shard it
    /// touches) and returns its sequence number; or, when the entry limit or
    /// the backup's size bound would be exceeded, changes nothing.
    pub(crate) fn apply_locked(
        &self,
        guards: &mut [ShardGuard<'_>],
        batch: &WriteBatch,
    ) -> KvResult<u64> {
        let writable = |guards: &[ShardGuard<'_>], key: &[u8]| {
            matches!(guards[shard_of(key)], ShardGuard::Write(_))
        };
        if batch.ops.iter().any(|op| !writable(guards, op.key())) {
            return Err(KvError::InvalidArgument(
                "internal: a batch key's shard is not write-locked".into(),
            ));
        }
        let (entries_delta, bytes_delta) = self.deltas(guards, batch);
        if let Some(target) = &self.backup {
            let entries = self.entries.load(Ordering::Acquire);
            let live = self.counters.live_bytes.load(Ordering::Acquire);
            let bound = backup_body_bound(
                entries.saturating_add_signed(entries_delta),
                live.saturating_add_signed(bytes_delta),
            );
            let body_max = target.body_max.load(Ordering::Relaxed);
            if bytes_delta > 0 && bound > body_max {
                return Err(KvError::CapacityExceeded {
                    what: format!(
                        "bytes in the backup {} (one frame holds at most 4 GiB)",
                        target.path.display()
                    ),
                    limit: body_max,
                });
            }
        }
        if entries_delta > 0 {
            let grown = self
                .entries
                .fetch_update(Ordering::AcqRel, Ordering::Acquire, |entries| {
                    let after = entries + entries_delta as u64;
                    (after <= self.max_entries).then_some(after)
                });
            if grown.is_err() {
                return Err(KvError::CapacityExceeded {
                    what: "entries".into(),
                    limit: self.max_entries,
                });
            }
        } else {
            self.entries
                .fetch_sub(entries_delta.unsigned_abs(), Ordering::AcqRel);
        }
        for op in &batch.ops {
            let ShardGuard::Write(map) = &mut guards[shard_of(op.key())] else {
                unreachable!("checked above: every touched shard is write-locked");
            };
            match op {
                BatchOp::Put { key, value } => map.insert(key.clone(), value.to_vec()),
                BatchOp::Delete { key } => map.remove(key),
            };
        }
        if bytes_delta >= 0 {
            self.counters
                .live_bytes
                .fetch_add(bytes_delta as u64, Ordering::Relaxed);
        } else {
            self.counters
                .live_bytes
                .fetch_sub(bytes_delta.unsigned_abs(), Ordering::Relaxed);
        }
        Ok(self.sequence.fetch_add(1, Ordering::AcqRel) + 1)
    }

    /// How `batch` would change the entry count and the live bytes.
    fn deltas(&self, guards: &[ShardGuard<'_>], batch: &WriteBatch) -> (i64, i64) {
        // Each key's size as the batch goes (None: absent).
        let mut sizes: BTreeMap<&[u8], Option<usize>> = BTreeMap::new();
        let (mut entries, mut bytes) = (0i64, 0i64);
        for op in &batch.ops {
            let key = op.key();
            let before = *sizes.entry(key).or_insert_with(|| {
                guards[shard_of(key)]
                    .map()
                    .and_then(|map| map.get(key))
                    .map(|value| key.len() + value.len())
            });
            let after = match op {
                BatchOp::Put { value, .. } => Some(key.len() + value.len()),
                BatchOp::Delete { .. } => None,
            };
            entries += i64::from(after.is_some()) - i64::from(before.is_some());
            bytes += after.unwrap_or(0) as i64 - before.unwrap_or(0) as i64;
            sizes.insert(key, after);
        }
        (entries, bytes)
    }

    /// The batch that puts every key `batch` touches back as `guards` hold it
    /// now (before `batch` is applied).
    pub(crate) fn undo_of(guards: &[ShardGuard<'_>], batch: &WriteBatch) -> WriteBatch {
        let mut seen = std::collections::BTreeSet::new();
        let mut undo = WriteBatch::new();
        for op in &batch.ops {
            let key = op.key();
            if !seen.insert(key) {
                continue;
            }
            match guards[shard_of(key)].map().and_then(|map| map.get(key)) {
                Some(value) => undo.put(key, value.clone()),
                None => undo.delete(key),
            };
        }
        undo
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)] // test code: a failure panics with its message

    use std::path::PathBuf;

    use leasehold_storage::vfs::SimVfs;

    use super::*;

    /// C1: a backup above 4 GiB panicked in `frame::encode` (in the Sync
    /// writer, or silently in the backup thread). Now the write that would
    /// grow the map past what one backup frame holds is refused, with nothing
    /// changed and the engine still usable. (The limit is lowered here; the
    /// real one needs ~9 GiB of memory to reach.)
    #[test]
    fn a_write_that_would_outgrow_the_backup_frame_is_refused_and_changes_nothing() {
        let config = MemoryConfig {
            max_entries: 1_000,
            backup_path: Some(PathBuf::from("/m/backup")),
            sync_interval: Duration::from_secs(3600),
            compression: BackupCompression::Lz4,
        };
        let engine = MemoryEngine::open(&config, Arc::new(SimVfs::new(1))).unwrap();
        let target = engine.shared.backup.as_ref().unwrap();
        target
            .body_max
            .store(backup_body_bound(1, 4 + 1_000), Ordering::Relaxed);
        let mut small = WriteBatch::new();
        small.put(&b"k001"[..], vec![0u8; 1_000]);
        engine.write(small, Durability::Sync).unwrap();
        let mut large = WriteBatch::new();
        large.put(&b"k002"[..], vec![0u8; 10]);
        assert!(matches!(
            engine.write(large, Durability::Sync),
            Err(KvError::CapacityExceeded { .. })
        ));
        assert_eq!(engine.get(b"k002").unwrap(), None);
        assert_eq!(engine.stats().live_entries, 1);
        let mut shrink = WriteBatch::new();
        shrink.put(&b"k001"[..], vec![0u8; 10]);
        engine.write(shrink, Durability::Sync).unwrap();
        engine.close().unwrap();
    }
}
