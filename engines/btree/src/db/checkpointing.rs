//! Checkpoints: the tree's new pages written into pages free as of the durable
//! meta and reached by no reader, fsynced, then the other meta slot flipped;
//! then the live tree swaps the nodes written for their pages, so memory
//! holds only what is dirty (FORMAT.md, "Checkpoint").

use super::*;
use crate::node::Node;

impl Inner {
    /// Writes a checkpoint: see FORMAT.md, "Checkpoint".
    pub(super) fn checkpoint(&self) -> KvResult<()> {
        let mut state = self.checkpoint.lock();
        let started = Instant::now();
        let (snapshot, replaced, new_wal, live) = {
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
            self.counters.log.rotated();
            writer.wal_number = number;
            writer.since_checkpoint = 0;
            let mut replaced = std::mem::take(&mut writer.replaced);
            // Anything pending from an earlier checkpoint is settled by now.
            replaced.settle();
            writer.replaced.checkpoint_running = true;
            let live = (
                self.counters.live_entries.load(Ordering::Relaxed).max(0) as u64,
                self.counters.live_bytes.load(Ordering::Relaxed).max(0) as u64,
            );
            (self.root.read().tree.clone(), replaced, number, live)
        };
        let txn = state.txn + 1;
        // Pages freed by earlier checkpoints that no reader can reach now.
        let mut free_now = state.free.clone();
        let mut held = Vec::new();
        for (freed_by, pages) in std::mem::take(&mut state.held) {
            if self.reusable(freed_by) {
                free_now.extend(pages);
            } else {
                held.push((freed_by, pages));
            }
        }
        let mut page_count = state.page_count;
        let mut writer = PageWriter {
            file: self.data.as_ref(),
            path: &self.data_path,
            page_size: self.page_size,
            txn,
            free: &mut free_now,
            page_count: &mut page_count,
            limits: self.limits,
            pages_written: 0,
            cache: &self.pages.cache,
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
        // The meta lists every free page; after a crash no reader holds any.
        let mut free_after: BTreeSet<PageId> = writer.free.clone();
        free_after.extend(newly_freed.iter().copied());
        free_after.extend(held.iter().flat_map(|(_, pages)| pages.iter().copied()));
        let list = writer
            .write_freelist(free_after.clone())
            .map_err(|err| self.fail(err))?;
        let pages_written = writer.pages_written;
        let free_kept = writer.free.clone();
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
            live,
            list.inline,
        );
        write_meta(self.data.as_ref(), &self.data_path, self.page_size, &meta)
            .map_err(|err| self.fail(err))?;
        // Beyond page_count nothing is named by either meta slot.
        let _ = self.data.set_len(page_count * self.page_size as u64);
        self.pages.set_page_count(page_count);
        state.txn = txn;
        state.free = free_kept;
        held.push((txn, newly_freed.into_iter().collect()));
        state.held = held;
        state.page_count = page_count;
        state.list_pages = list.list_pages;
        {
            // Nodes replaced while this checkpoint ran now have their pages
            // known; the live tree swaps the nodes written for their pages.
            let mut writer = self.writer.lock();
            writer.replaced.settle();
            let mut root = self.root.write();
            let mut dirty = 0;
            root.tree = root.tree.as_ref().map(|tree| clean(tree, &mut dirty));
            root.txn = txn;
            self.counters.dirty_bytes.store(dirty, Ordering::Relaxed);
        }
        let (lock, room) = &self.dirty_room;
        drop(lock.lock());
        room.notify_all();
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
            || self.counters.dirty_bytes.load(Ordering::Relaxed) >= self.dirty_limit()
    }

    /// Dirty node bytes that make a checkpoint due: half of `max_dirty_bytes`
    /// (writers wait at all of it).
    pub(super) fn dirty_limit(&self) -> i64 {
        (self.config.max_dirty_bytes / 2) as i64
    }
}

/// `child` with every node a checkpoint wrote swapped for its page (which
/// the checkpoint put in the cache as it wrote it); adds the bytes of the
/// nodes still dirty to `dirty`.
fn clean(child: &Child, dirty: &mut i64) -> Child {
    let Child::Node(node) = child else {
        return child.clone();
    };
    if let Some(&page) = node.page.get() {
        return Child::Page(page);
    }
    *dirty += node.resident as i64;
    let Body::Branch { keys, children } = &node.body else {
        return child.clone();
    };
    let cleaned: Vec<Child> = children.iter().map(|child| clean(child, dirty)).collect();
    let unchanged = cleaned.iter().zip(children).all(|(new, old)| {
        matches!((new, old), (Child::Node(new), Child::Node(old)) if Arc::ptr_eq(new, old))
            || matches!((new, old), (Child::Page(new), Child::Page(old)) if new == old)
    });
    if unchanged {
        return child.clone();
    }
    // The same branch, still dirty, naming pages where it can.
    Child::Node(Node::new(Body::Branch {
        keys: keys.clone(),
        children: cleaned,
    }))
}
