//! Making writes durable: a backup covering a sequence number, written by a
//! Sync writer, a flush, or the background thread every `sync_interval`.

use super::*;
use apply::ShardGuard;

impl Shared {
    /// Returns once a durable backup covers batch `sequence` (writing one if
    /// needed). Errors poison the engine.
    pub(crate) fn backup_through(&self, sequence: u64) -> KvResult<()> {
        let Some(target) = &self.backup else {
            return Err(KvError::Unsupported(
                "the memory engine has no backup configured; it cannot make writes durable".into(),
            ));
        };
        let mut state = target.state.lock();
        // A failed backup (recorded under this lock) refuses every later one.
        self.lifecycle.check_healthy()?;
        if state.durable_sequence >= sequence {
            return Ok(());
        }
        let guards = self.read_all_shards();
        let covered = self.sequence.load(Ordering::Acquire);
        let bytes = encode_maps(guards.iter().map(|map| &**map), covered, target.compression);
        drop(guards);
        self.install(target, &mut state, &bytes, covered)
    }

    /// A Sync write: applied and its backup made durable while the shards it
    /// touches stay write-locked, so no reader sees it before it is durable
    /// (audit X5); if the backup fails it is taken back and the engine
    /// poisoned. The other shards are read-locked only while the map is
    /// encoded. Concurrent Sync writers take turns, one backup each.
    pub(crate) fn write_durably(&self, batch: &WriteBatch) -> KvResult<()> {
        let Some(target) = &self.backup else {
            return Err(KvError::Unsupported(
                "the memory engine has no backup configured; it cannot make writes durable".into(),
            ));
        };
        let mut state = target.state.lock();
        self.lifecycle.check_healthy()?;
        let mut guards = self.lock_for(batch, true);
        let undo = Shared::undo_of(&guards, batch);
        let sequence = self.apply_locked(&mut guards, batch)?;
        let bytes = encode_maps(
            guards.iter().filter_map(ShardGuard::map),
            sequence,
            target.compression,
        );
        for guard in &mut guards {
            if matches!(guard, ShardGuard::Read(_)) {
                *guard = ShardGuard::Free;
            }
        }
        let installed = self.install(target, &mut state, &bytes, sequence);
        if installed.is_err() {
            // Taking back can only shrink the map to what it was: no limit
            // stands in the way.
            self.apply_locked(&mut guards, &undo)?;
        }
        installed
    }

    /// Writes `bytes` (a backup covering batch `covered`) in place; a failure
    /// poisons the engine.
    fn install(
        &self,
        target: &BackupTarget,
        state: &mut BackupState,
        bytes: &[u8],
        covered: u64,
    ) -> KvResult<()> {
        match target.replace(bytes) {
            Ok(()) => {
                state.durable_sequence = covered;
                self.counters
                    .backup_bytes_written
                    .fetch_add(bytes.len() as u64, Ordering::Relaxed);
                self.counters.backups.fetch_add(1, Ordering::Relaxed);
                Ok(())
            }
            Err(err) => Err(self.lifecycle.fail(KvError::io(
                format!("backup to {}", target.path.display()),
                err,
            ))),
        }
    }

    pub(crate) fn background_loop(&self) {
        let Some(target) = &self.backup else { return };
        while self
            .lifecycle
            .pause(&self.stop, &self.wake, target.interval)
        {
            let sequence = self.sequence.load(Ordering::Acquire);
            let behind = target.state.lock().durable_sequence < sequence;
            if behind && self.backup_through(sequence).is_err() {
                // Poisoned; writers see it. Nothing more to do here.
                return;
            }
        }
    }
}

/// The backup of `maps` (each in key order; together, the whole map).
fn encode_maps<'a>(
    maps: impl Iterator<Item = &'a ShardMap>,
    covered: u64,
    compression: BackupCompression,
) -> Vec<u8> {
    let mut entries: Vec<(&[u8], &[u8])> = maps
        .flat_map(|map| {
            map.iter()
                .map(|(key, value)| (key.as_slice(), value.as_slice()))
        })
        .collect();
    entries.sort_unstable_by(|left, right| left.0.cmp(right.0));
    backup::encode(covered, entries.into_iter(), compression)
}
