//! The write path: group commit through the WAL into the active memtable,
//! memtable switches and stalls, timed and Sync fsyncs, and the record a clean
//! close leaves in the manifest (FORMAT.md, "Write", "Close").

use super::*;
use leasehold_storage::group_timer;

impl Inner {
    pub(super) fn write(&self, batch: WriteBatch, durability: Durability) -> KvResult<()> {
        self.check_usable()?;
        batch.check_size()?;
        if batch.is_empty() {
            return Ok(());
        }
        self.commits
            .submit(batch, durability, |group| self.write_group(group))
    }

    pub(super) fn write_group(&self, group: &[Arc<Pending>]) -> KvResult<()> {
        let mut wal = self.wal.lock();
        self.check_usable()?;
        self.make_room(&mut wal)?;
        let first = wal.last_sequence + 1;
        // Each batch's record is its first sequence and its encoding, written
        // from parts: the values are copied once, into the log's buffer.
        let mut sequence = first;
        let mut prefixes = Vec::with_capacity(group.len());
        for pending in group {
            prefixes.push(sequence.to_le_bytes());
            sequence += pending.batch.len() as u64;
        }
        let mut scratches = vec![Vec::new(); group.len()];
        let records: Vec<Vec<&[u8]>> = group
            .iter()
            .zip(&prefixes)
            .zip(scratches.iter_mut())
            .map(|((pending, prefix), scratch)| pending.batch.encode_parts(prefix, scratch))
            .collect();
        #[cfg(any(test, feature = "planted-bugs"))]
        let held_back: Vec<Vec<u8>>;
        #[cfg(any(test, feature = "planted-bugs"))]
        let records = if self.planted(PlantedBug::AckBeforeWal) {
            // The bug: this group's records wait for the next group's write.
            let joined = records.iter().map(|parts| parts.concat()).collect();
            held_back = self.planted.hold_back(joined);
            held_back
                .iter()
                .map(|record| vec![record.as_slice()])
                .collect()
        } else {
            records
        };
        let refs: Vec<&[&[u8]]> = records.iter().map(Vec::as_slice).collect();
        self.counters.log.append(
            &mut wal.writer,
            |writer| writer.append_parts(&refs),
            |err| self.fail(err),
        )?;
        let sync_now = group_timer::must_sync(
            group.iter().map(|pending| pending.durability),
            wal.last_sync.elapsed(),
            Duration::from_millis(self.config.wal_sync_interval_ms),
            self.config.background_threads,
        );
        if sync_now {
            self.sync_wal(&mut wal)?;
        }
        let active = Arc::clone(&self.state.read().active);
        let mut sequence = first;
        for pending in group {
            bump(&self.counters.user_bytes, pending.batch.logical_bytes());
            for op in &pending.batch.ops {
                insert_op(&active, op, sequence);
                sequence += 1;
            }
        }
        wal.last_sequence = sequence - 1;
        self.visible_sequence.store(sequence - 1, Ordering::Release);
        if !self.config.background_threads {
            drop(wal);
            // The group is applied and visible: a failed flush or compaction
            // fails the engine for what comes next (`fail`), it does not turn
            // these acknowledged writes into errors (audit X3).
            if let Err(err) = self.run_due_work_inline() {
                self.fail(err);
            }
        }
        Ok(())
    }

    pub(super) fn sync_wal(&self, wal: &mut WalState) -> KvResult<()> {
        let pretend = self.planted(PlantedBug::SkipWalSync);
        group_timer::sync_log(&mut wal.writer, &mut wal.last_sync, pretend, |err| {
            self.fail(err)
        })
    }

    /// Makes sure the active memtable has room, switching to a new one (and
    /// stalling while too much waits to be flushed).
    pub(super) fn make_room(&self, wal: &mut WalState) -> KvResult<()> {
        let limit = self.config.memtable_size_limit as usize;
        let mut stalled: Option<Instant> = None;
        loop {
            let (full, immutables, level0) = {
                let state = self.state.read();
                (
                    state.active.size() >= limit,
                    state.immutables.len(),
                    state.version.levels[0].len(),
                )
            };
            if !full {
                break;
            }
            let backlog = immutables >= self.config.max_memtables as usize
                || (self.config.enable_compaction && level0 >= self.config.l0_stop_writes as usize);
            if !backlog || !self.config.background_threads {
                self.switch_memtable(wal)?;
                break;
            }
            // Stall: wait for the worker to flush or compact.
            stalled.get_or_insert_with(Instant::now);
            self.work_cv.notify_all();
            let mut stop = self.stop.lock();
            if *stop {
                return Err(KvError::Closed);
            }
            self.progress_cv
                .wait_for(&mut stop, Duration::from_millis(50));
            drop(stop);
            self.check_usable()?;
        }
        if let Some(started) = stalled {
            bump(
                &self.counters.stall_micros,
                started.elapsed().as_micros() as u64,
            );
        }
        Ok(())
    }

    /// Freezes the active memtable and starts a new WAL. The old WAL is
    /// fsynced first: records in the new one must never outlive older ones.
    pub(super) fn switch_memtable(&self, wal: &mut WalState) -> KvResult<()> {
        self.sync_wal(wal)?;
        let number = self.allocate_file_number();
        let path = self.dir.join(log_name(number));
        let file = self
            .vfs
            .create(&path)
            .map_err(|err| self.fail(KvError::io(format!("create {}", path.display()), err)))?;
        self.sync_dir()?;
        wal.writer = WalWriter::new(file, path);
        self.counters.log.rotated();
        wal.number = number;
        let mut state = self.state.write();
        let frozen = std::mem::replace(&mut state.active, Arc::new(Memtable::new(number)));
        state.immutables.push(frozen);
        drop(state);
        self.work_cv.notify_all();
        Ok(())
    }

    /// Logs the clean close (FORMAT.md, "Recovery"): every log still
    /// holding records, with its exact length, so that the next open can
    /// tell a removed, truncated or damaged log from a crash's torn tail. The
    /// WAL was just synced; nothing writes after this.
    pub(super) fn record_close(&self) -> KvResult<()> {
        let wal = self.wal.lock();
        let mut versions = self.versions.lock();
        let state = self.state.read();
        let mut logs = Vec::new();
        for memtable in state.immutables.iter().chain([&state.active]) {
            let path = self.dir.join(log_name(memtable.wal_number()));
            let length = self
                .vfs
                .file_size(&path)
                .map_err(io_error(format!("stat {}", path.display())))?;
            if length > 0 {
                logs.push((memtable.wal_number(), length));
            }
        }
        drop(state);
        let edit = VersionEdit {
            last_sequence: Some(wal.last_sequence),
            closed: Some(logs),
            ..VersionEdit::default()
        };
        let written = versions.manifest.append(&edit).map_err(|err| {
            self.fail(KvError::io(
                format!("append to {}", versions.manifest.path().display()),
                err,
            ))
        })?;
        bump(&self.counters.manifest_bytes, written);
        Ok(())
    }

    /// A fresh file number. Recovery also moves past every number on disk,
    /// so an edit recording a smaller `next_file_number` than a file that
    /// raced it never leads to reuse.
    pub(super) fn allocate_file_number(&self) -> u64 {
        self.file_numbers.fetch_add(1, Ordering::SeqCst)
    }
}
