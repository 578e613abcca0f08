//! The write path: group commit into the log (Buffered records held up to
//! `wal_buffer_size`), fsyncs per durability, and the copy-on-write apply.

use super::*;
use leasehold_storage::group_timer;

impl Inner {
    pub(super) fn write(&self, batch: WriteBatch, durability: Durability) -> KvResult<()> {
        self.check_usable()?;
        batch.check_size()?;
        if batch.is_empty() {
            return Ok(());
        }
        let key_max = self.limits.capacity / 8;
        if let Some(op) = batch.ops.iter().find(|op| op.key().len() > key_max) {
            return Err(KvError::InvalidArgument(format!(
                "key of {} bytes; this page size allows at most {key_max}",
                op.key().len()
            )));
        }
        self.wait_for_dirty_room();
        self.commits
            .submit(batch, durability, |group| self.write_group(group))
    }

    /// Holds a writer back while dirty nodes are at `max_dirty_bytes` (twice
    /// the limit that makes a checkpoint due) and the checkpointer is behind (background threads only: inline
    /// checkpoints run after each write that makes one due). Counted as a
    /// stall.
    fn wait_for_dirty_room(&self) {
        if !self.config.background_threads {
            return;
        }
        let full = || self.counters.dirty_bytes.load(Ordering::Relaxed) >= 2 * self.dirty_limit();
        if !full() {
            return;
        }
        let began = Instant::now();
        let (lock, room) = &self.dirty_room;
        let mut guard = lock.lock();
        while full() && self.lifecycle.check_writable().is_ok() && !*self.stop.lock() {
            self.work_cv.notify_all();
            room.wait_for(&mut guard, Duration::from_millis(10));
        }
        bump(
            &self.counters.stall_micros,
            began.elapsed().as_micros() as u64,
        );
    }

    /// Writes buffered records to the log.
    pub(super) fn drain_buffer(&self, writer: &mut WriterState) -> KvResult<()> {
        if writer.buffer.is_empty() {
            return Ok(());
        }
        let records = std::mem::take(&mut writer.buffer);
        writer.buffer_bytes = 0;
        let refs: Vec<&[u8]> = records.iter().map(Vec::as_slice).collect();
        self.counters.log.append(
            &mut writer.wal,
            |wal| wal.append(&refs),
            |err| self.fail(err),
        )?;
        Ok(())
    }

    pub(super) fn sync_log(&self, writer: &mut WriterState) -> KvResult<()> {
        self.drain_buffer(writer)?;
        let pretend = self.planted(PlantedBug::SkipLogSync);
        group_timer::sync_log(&mut writer.wal, &mut writer.last_sync, pretend, |err| {
            self.fail(err)
        })
    }

    pub(super) fn write_group(&self, group: &[Arc<Pending>]) -> KvResult<()> {
        let mut writer = self.writer.lock();
        self.check_usable()?;
        let mut bytes = 0;
        for pending in group {
            #[allow(unused_mut)]
            let mut record = pending.batch.encode();
            #[cfg(any(test, feature = "planted-bugs"))]
            if self.planted(PlantedBug::AckBeforeWal) {
                let deferred = self.planted.hold_back(vec![record]);
                record = deferred.into_iter().next().unwrap_or_default();
                if record.is_empty() {
                    continue;
                }
            }
            bytes += record.len() as u64;
            writer.buffer.push(record);
        }
        writer.buffer_bytes += bytes;
        let sync = group_timer::must_sync(
            group.iter().map(|pending| pending.durability),
            writer.last_sync.elapsed(),
            Duration::from_secs(self.config.wal_sync_interval_seconds),
            self.config.background_threads,
        );
        let unbuffered = group
            .iter()
            .any(|pending| pending.durability != Durability::Buffered);
        if sync {
            self.sync_log(&mut writer)?;
        } else if unbuffered || writer.buffer_bytes >= self.config.wal_buffer_size {
            self.drain_buffer(&mut writer)?;
        }
        let (mut root, txn) = {
            let root = self.root.read();
            (root.tree.clone(), root.txn)
        };
        let pages = self.pages.at(txn);
        let mut change = Change::default();
        let writer = &mut *writer;
        for pending in group {
            bump(&self.counters.user_bytes, pending.batch.logical_bytes());
            for op in pending.batch.ops.iter().cloned() {
                // A page that cannot be read leaves the tree behind its log:
                // the engine fails rather than diverge (the log is intact).
                apply(
                    &mut root,
                    op,
                    &self.limits,
                    &mut writer.replaced,
                    &mut change,
                    &pages,
                )
                .map_err(|err| self.fail(err))?;
            }
        }
        // The old root is dropped (and with it the path this group
        // replaced, unless a reader holds it) after the lock is released:
        // readers do not wait for it to be freed.
        let old = std::mem::replace(&mut self.root.write().tree, root);
        drop(old);
        self.counters
            .dirty_bytes
            .fetch_add(change.dirty_bytes, Ordering::Relaxed);
        self.counters
            .live_entries
            .fetch_add(change.entries, Ordering::Relaxed);
        self.counters
            .live_bytes
            .fetch_add(change.bytes, Ordering::Relaxed);
        writer.since_checkpoint += bytes;
        // Inline mode checkpoints in `BtreeEngine::write`, once this group's
        // writer lock is released (`checkpoint` takes it itself). A
        // checkpointer at work looks again when it is done: no wake-up (a
        // futex call per write while a checkpoint ran, measured at 5 % of
        // the writer's time with the syncer woken too).
        if self.config.background_threads
            && !self.checkpointing.load(Ordering::Relaxed)
            && (writer.since_checkpoint >= self.config.checkpoint_wal_bytes
                || self.counters.dirty_bytes.load(Ordering::Relaxed) >= self.dirty_limit())
        {
            self.work_cv.notify_one();
        }
        Ok(())
    }
}
