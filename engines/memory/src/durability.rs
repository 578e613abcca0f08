//! Making writes durable: a backup covering a sequence number, written by a
//! Sync writer, a flush, or the background thread every `sync_interval`.

use super::*;

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
        if let Some(reason) = &state.poisoned {
            return Err(KvError::Poisoned {
                reason: reason.clone(),
            });
        }
        if state.durable_sequence >= sequence {
            return Ok(());
        }
        let (covered, bytes) = {
            let guards = self.read_all_shards();
            let covered = self.sequence.load(Ordering::Acquire);
            let mut entries: Vec<(&[u8], &[u8])> = guards
                .iter()
                .flat_map(|map| {
                    map.iter()
                        .map(|(key, value)| (key.as_slice(), value.as_slice()))
                })
                .collect();
            entries.sort_unstable_by(|left, right| left.0.cmp(right.0));
            (
                covered,
                backup::encode(covered, entries.into_iter(), target.compression),
            )
        };
        match target.replace(&bytes) {
            Ok(()) => {
                state.durable_sequence = covered;
                self.counters
                    .backup_bytes_written
                    .fetch_add(bytes.len() as u64, Ordering::Relaxed);
                self.counters.backups.fetch_add(1, Ordering::Relaxed);
                Ok(())
            }
            Err(err) => {
                let reason = format!("backup to {} failed: {err}", target.path.display());
                state.poisoned = Some(reason);
                Err(KvError::io(
                    format!("backup to {}", target.path.display()),
                    err,
                ))
            }
        }
    }

    pub(crate) fn background_loop(&self) {
        let Some(target) = &self.backup else { return };
        loop {
            {
                let mut stop = self.stop.lock();
                if !*stop {
                    self.wake.wait_for(&mut stop, target.interval);
                }
                if *stop {
                    return;
                }
            }
            let sequence = self.sequence.load(Ordering::Acquire);
            let behind = target.state.lock().durable_sequence < sequence;
            if behind && self.backup_through(sequence).is_err() {
                // Poisoned; writers see it. Nothing more to do here.
                return;
            }
        }
    }
}
