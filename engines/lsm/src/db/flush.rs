//! Flushes and compactions: a frozen memtable to a level-0 table, a pick of
//! tables merged into the next level, each installed by one manifest edit
//! (FORMAT.md, "Flush", "Compaction"). One flush and one compaction may run
//! at once (`flusher`, `compactor`); each writes its tables outside
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
            let number = self.allocate_file_number();
            let meta = write_table(
                self.vfs.as_ref(),
                &self.dir,
                &self.table_options,
                number,
                newest_versions(memtable_entries(&memtable)),
            )
            .map_err(|err| self.fail(err))?;
            if let Some(meta) = meta {
                bump(&self.counters.flush_bytes, meta.size);
                edit.added.push((0, meta));
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
        let next = self.state.read().version.apply(edit, |meta| {
            open_table(self.vfs.as_ref(), &self.dir, &self.cache, meta)
        });
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

    /// Runs one compaction if one is due. False when none was.
    pub(super) fn compact_once(&self) -> KvResult<bool> {
        let _compactor = self.compactor.lock();
        let pick = {
            let versions = self.versions.lock();
            let version = Arc::clone(&self.state.read().version);
            compaction::pick(&version, &self.config, &versions.pointers)
        };
        let Some(pick) = pick else {
            return Ok(false);
        };
        self.run_pick(&pick)?;
        Ok(true)
    }

    /// Runs the compaction `pick`: merge, log the edit, install, delete
    /// inputs. The caller holds `compactor`; a flush may install level-0
    /// tables meanwhile (newer than every input, so what the merge drops
    /// stays right), and the edit applies to the version current then.
    pub(super) fn run_pick(&self, pick: &Pick) -> KvResult<()> {
        let outputs = self.run_compaction(pick).map_err(|err| self.fail(err))?;
        let edit = VersionEdit {
            deleted: pick
                .all_inputs()
                .map(|(level, file)| (level, file.meta.number))
                .collect(),
            added: outputs
                .into_iter()
                .map(|meta| (pick.output_level, meta))
                .collect(),
            next_file_number: Some(self.file_numbers.load(Ordering::SeqCst)),
            ..VersionEdit::default()
        };
        let mut versions = self.versions.lock();
        self.install(&mut versions, &edit, |_| {})?;
        if let Some(largest) = pick.inputs.iter().map(|file| file.largest_user_key()).max() {
            versions.pointers[pick.level] = largest.to_vec();
        }
        drop(versions);
        bump(&self.counters.compactions, 1);
        for (_, file) in pick.all_inputs() {
            self.cache.forget_file(file.meta.number);
            self.remove_file(&self.dir.join(table_name(file.meta.number)));
        }
        Ok(())
    }

    /// Merges the inputs of `pick` into new tables (fsynced, directory synced).
    /// The caller holds `compactor`.
    pub(super) fn run_compaction(&self, pick: &Pick) -> KvResult<Vec<FileMeta>> {
        let mut sources: Vec<Source<'_>> = Vec::new();
        // Level-0 inputs may overlap: one source each, newest first.
        for file in &pick.inputs {
            sources.push(Box::new(file.table.iter_uncached()));
        }
        let next: Vec<Arc<TableFile>> = pick.next_inputs.clone();
        sources.push(Box::new(
            next.into_iter().flat_map(|file| file.table.iter_uncached()),
        ));
        let merged = MergeIter::new(sources).inspect(|entry| {
            if let Ok((key, value)) = entry {
                bump(
                    &self.counters.compaction_read,
                    (key.len() + value.len()) as u64,
                );
            }
        });
        let kept = newest_versions(merged).filter(|entry| match entry {
            Ok((key, value)) if pick.bottommost => match format::split(key) {
                Some((_, _, ValueKind::Delete)) => false,
                Some((user_key, _, ValueKind::Put)) => !self
                    .filter
                    .as_ref()
                    .is_some_and(|filter| filter(user_key, value)),
                None => true,
            },
            _ => true,
        });
        let mut outputs = Vec::new();
        let mut kept = kept.peekable();
        while kept.peek().is_some() {
            let number = self.allocate_file_number();
            let target = self.config.target_file_size;
            let mut size = 0u64;
            let chunk = std::iter::from_fn(|| {
                if size >= target {
                    return None;
                }
                let entry = kept.next()?;
                if let Ok((key, value)) = &entry {
                    size += (key.len() + value.len()) as u64;
                }
                Some(entry)
            });
            if let Some(meta) = write_table(
                self.vfs.as_ref(),
                &self.dir,
                &self.table_options,
                number,
                chunk,
            )? {
                bump(&self.counters.compaction_written, meta.size);
                outputs.push(meta);
            }
        }
        self.vfs
            .sync_dir(&self.dir)
            .map_err(io_error(format!("sync {}", self.dir.display())))?;
        Ok(outputs)
    }
}
