//! Checkpoints: the tree's new pages written into pages free as of the durable
//! meta, fsynced, then the other meta slot flipped (FORMAT.md, "Checkpoint").

use super::*;

impl Inner {
    /// Writes a checkpoint: see FORMAT.md, "Checkpoint".
    pub(super) fn checkpoint(&self) -> KvResult<()> {
        let mut state = self.checkpoint.lock();
        let started = Instant::now();
        let (snapshot, replaced, new_wal) = {
            let mut writer = self.writer.lock();
            self.sync_log(&mut writer)?;
            let number = writer.wal_number + 1;
            let path = self.dir.join(wal_name(number));
            let file = self
                .vfs
                .create(&path)
                .map_err(|err| self.fail(KvError::io(format!("create {}", path.display()), err)))?;
            if !self.planted(PlantedBug::SkipDirSync) {
                self.vfs.sync_dir(&self.dir).map_err(|err| {
                    self.fail(KvError::io(format!("sync {}", self.dir.display()), err))
                })?;
            }
            writer.wal = WalWriter::new(file, path);
            self.counters.active_wal_bytes.store(0, Ordering::Relaxed);
            writer.wal_number = number;
            writer.since_checkpoint = 0;
            let mut replaced = std::mem::take(&mut writer.replaced);
            // Anything pending from an earlier checkpoint is settled by now.
            replaced.settle();
            writer.replaced.checkpoint_running = true;
            (self.root.read().clone(), replaced, number)
        };
        let txn = state.txn + 1;
        let mut free_now = state.free.clone();
        let mut page_count = state.page_count;
        let mut writer = PageWriter {
            file: self.data.as_ref(),
            path: &self.data_path,
            page_size: self.page_size,
            txn,
            free: &mut free_now,
            page_count: &mut page_count,
            compress: self.config.enable_compression,
            limits: self.limits,
            pages_written: 0,
        };
        let root_page = match &snapshot {
            Some(root) => Some(writer.write_node(root).map_err(|err| self.fail(err))?),
            None => None,
        };
        // Pages the last durable tree used and this one does not.
        let mut newly_freed: BTreeSet<PageId> = replaced.pages.iter().copied().collect();
        newly_freed.extend(state.list_pages.iter().copied());
        // Free pages at the end of the file are dropped rather than listed.
        while *writer.page_count > 2 && writer.free.contains(&(*writer.page_count - 1)) {
            let last = *writer.page_count - 1;
            writer.free.remove(&last);
            *writer.page_count = last;
        }
        let mut free_after: BTreeSet<PageId> = writer.free.clone();
        free_after.extend(newly_freed.iter().copied());
        let list = writer
            .write_freelist(free_after.clone())
            .map_err(|err| self.fail(err))?;
        let pages_written = writer.pages_written;
        for page in &list.list_pages {
            free_after.remove(page);
        }
        if !self.planted(PlantedBug::SkipDataSync) {
            self.data.sync().map_err(|err| {
                self.fail(KvError::io(
                    format!("sync {}", self.data_path.display()),
                    err,
                ))
            })?;
        }
        let meta = meta_for(
            txn,
            self.page_size,
            root_page,
            page_count,
            new_wal,
            list.count,
            list.head,
            list.inline,
        );
        write_meta(self.data.as_ref(), &self.data_path, self.page_size, &meta)
            .map_err(|err| self.fail(err))?;
        // Beyond page_count nothing is named by either meta slot.
        let _ = self.data.set_len(page_count * self.page_size as u64);
        state.txn = txn;
        state.free = free_after;
        state.page_count = page_count;
        state.list_pages = list.list_pages;
        // Nodes replaced while this checkpoint ran now have their pages known.
        self.writer.lock().replaced.settle();
        drop(state);
        for name in self
            .vfs
            .list(&self.dir)
            .map_err(io_error(format!("list {}", self.dir.display())))?
        {
            if wal_number(&name).is_some_and(|number| number < new_wal) {
                // Obsolete; recovery deletes it if this fails.
                let _ = self.vfs.remove(&self.dir.join(name));
            }
        }
        bump(
            &self.counters.page_bytes,
            pages_written * self.page_size as u64 + self.page_size as u64,
        );
        bump(&self.counters.checkpoints, 1);
        bump(
            &self.counters.checkpoint_micros,
            started.elapsed().as_micros() as u64,
        );
        Ok(())
    }

    pub(super) fn checkpoint_due(&self) -> bool {
        self.writer.lock().since_checkpoint >= self.config.checkpoint_wal_bytes
    }
}
