//! Flushes: a frozen memtable to a level-0 table (and the blob files its
//! large values go to), installed by one manifest edit (FORMAT.md, "Flush");
//! and installing any edit. One flush and one compaction (`compact.rs`) may
//! run at once (`flusher`, `compactor`); each writes its files outside
//! `versions` and takes it only to pick and to install.

use super::*;

impl Inner {
    pub(super) fn run_due_work_inline(&self) -> KvResult<()> {
        while self.flush_one()? {}
        while self.compact_once()? {}
        Ok(())
    }

    /// Writes the oldest immutable memtable to a level-0 table. False when
    /// there was none.
    pub(super) fn flush_one(&self) -> KvResult<bool> {
        // `flusher` first: whoever holds it is the only flusher, so the
        // memtable picked is the one `install` removes below (picked before
        // the lock, a racing flush could install it first and this one would
        // then remove the next, unflushed memtable).
        let racy = self.planted(PlantedBug::PickBeforeLock);
        let picked_early = racy
            .then(|| self.state.read().immutables.first().cloned())
            .flatten();
        let _flusher = self.flusher.lock();
        let Some(memtable) = picked_early.or_else(|| self.state.read().immutables.first().cloned())
        else {
            return Ok(false);
        };
        let mut edit = VersionEdit::default();
        if !memtable.is_empty() {
            let (table, blobs) = write_level0(
                self.vfs.as_ref(),
                &self.dir,
                &self.config,
                &self.table_options,
                self.filter.as_deref(),
                &|| self.allocate_file_number(),
                &memtable,
            )
            .map_err(|err| self.fail(err))?;
            if let Some(meta) = table {
                bump(&self.counters.flush_bytes, meta.size);
                edit.added.push((0, meta));
            }
            for blob in blobs {
                bump(&self.counters.flush_bytes, blob.size);
                bump(&self.counters.blob_bytes_written, blob.size);
                edit.blobs_added.push(blob);
            }
            self.sync_dir()?;
        }
        let mut versions = self.versions.lock();
        let next_log = {
            let state = self.state.read();
            state
                .immutables
                .get(1)
                .map_or(state.active.wal_number(), |next| next.wal_number())
        };
        edit.log_number = Some(next_log);
        edit.next_file_number = Some(self.file_numbers.load(Ordering::SeqCst));
        edit.last_sequence = Some(self.visible_sequence.load(Ordering::Acquire));
        self.install(&mut versions, &edit, |state| {
            let flushed = state.immutables.remove(0);
            assert!(
                racy || Arc::ptr_eq(&flushed, &memtable),
                "flushed one memtable and retired another"
            );
        })?;
        versions.log_number = next_log;
        drop(versions);
        bump(&self.counters.flushes, 1);
        self.remove_file(&self.dir.join(log_name(memtable.wal_number())));
        Ok(true)
    }

    /// Logs `edit` in the manifest, then makes it (and `also`) the current
    /// state in one step.
    pub(super) fn install(
        &self,
        versions: &mut VersionSet,
        edit: &VersionEdit,
        also: impl FnOnce(&mut TreeState),
    ) -> KvResult<()> {
        let next = self.state.read().version.apply(
            edit,
            |meta| open_table(self.vfs.as_ref(), &self.dir, &self.cache, meta),
            |meta| open_blob(self.vfs.as_ref(), &self.dir, meta),
        );
        let next = next.map_err(|err| self.fail(err))?;
        let written = versions.manifest.append(edit).map_err(|err| {
            self.fail(KvError::io(
                format!("append to {}", versions.manifest.path().display()),
                err,
            ))
        })?;
        bump(&self.counters.manifest_bytes, written);
        let mut state = self.state.write();
        state.version = Arc::new(next);
        also(&mut state);
        drop(state);
        self.progress_cv.notify_all();
        Ok(())
    }

    /// Deletes an obsolete file. Failure is harmless (recovery deletes it).
    pub(super) fn remove_file(&self, path: &Path) {
        let _ = self.vfs.remove(path);
    }
}
