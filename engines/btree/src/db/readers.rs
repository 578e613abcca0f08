//! Reader registration: each read registers the checkpoint its root dates
//! from for as long as it runs, and a page freed by checkpoint `f` is reused
//! only once no registered reader dates from before `f` (FORMAT.md,
//! "Readers"). A reader thus never meets a page rewritten under it.

use std::collections::BTreeMap;

use super::*;

#[derive(Default)]
pub(super) struct Readers {
    /// Registered readers per checkpoint their root dates from. A count
    /// that falls to zero stays until `oldest` prunes it, so a read pins and
    /// unpins without allocating (the map's node was made and freed by
    /// every get when each unpin removed its entry).
    pinned: Mutex<BTreeMap<u64, usize>>,
}

/// A registered reader; dropping it unregisters.
pub(super) struct Pin<'a> {
    readers: &'a Readers,
    txn: u64,
}

impl Pin<'_> {
    /// The checkpoint the reader's root dates from.
    pub(super) fn txn(&self) -> u64 {
        self.txn
    }
}

impl Drop for Pin<'_> {
    fn drop(&mut self) {
        if let Some(count) = self.readers.pinned.lock().get_mut(&self.txn) {
            *count -= 1;
        }
    }
}

impl Readers {
    fn pin(&self, txn: u64) -> Pin<'_> {
        *self.pinned.lock().entry(txn).or_default() += 1;
        Pin { readers: self, txn }
    }

    /// The checkpoint the oldest registered reader's root dates from.
    pub(super) fn oldest(&self) -> Option<u64> {
        let mut pinned = self.pinned.lock();
        pinned.retain(|_, count| *count > 0);
        pinned.keys().next().copied()
    }
}

impl Inner {
    /// The live tree, with the reader registered until the pin is dropped.
    /// Registered under the root lock, so a checkpoint that publishes a
    /// newer root has seen every reader of the older one.
    pub(super) fn snapshot(&self) -> (Option<Child>, Pin<'_>) {
        let root = self.root.read();
        let pin = self.readers.pin(root.txn);
        (root.tree.clone(), pin)
    }

    /// Whether pages freed by checkpoint `freed_by` may be overwritten now.
    pub(super) fn reusable(&self, freed_by: u64) -> bool {
        if self.planted(PlantedBug::IgnoreReaders) {
            return true;
        }
        self.readers
            .oldest()
            .is_none_or(|oldest| oldest >= freed_by)
    }
}
