//! An open file of the simulated disk: reads see the page-cache view, writes
//! and syncs go through the disk's state (and its faults and crash point).

use super::*;

#[derive(Debug)]
pub(super) struct SimFile {
    pub(super) state: Arc<Mutex<State>>,
    pub(super) inode: InodeId,
    pub(super) writable: bool,
    /// The name it was opened under (for reporting where a crash struck).
    pub(super) path: PathBuf,
}

impl VfsFile for SimFile {
    fn read_at(&self, buf: &mut [u8], offset: u64) -> io::Result<usize> {
        let mut guard = self.state.lock();
        let state = &mut *guard;
        let read_eio = state.faults.read_eio;
        if state.fires(Fault::ReadEio, read_eio, &self.path) {
            return Err(injected("read"));
        }
        let content = &state.inodes[self.inode].current;
        let start = (offset as usize).min(content.len());
        let mut len = buf.len().min(content.len() - start);
        let short_read = state.faults.short_read;
        if len > 1 && state.fires(Fault::ShortRead, short_read, &self.path) {
            len = 1 + state.rng.below(len as u64 - 1) as usize;
        }
        let content = &state.inodes[self.inode].current;
        buf[..len].copy_from_slice(&content[start..start + len]);
        let bit_flip = state.faults.read_bit_flip;
        if len > 0 && state.fires(Fault::ReadBitFlip, bit_flip, &self.path) {
            let bit = state.rng.below(len as u64 * 8) as usize;
            buf[bit / 8] ^= 1 << (bit % 8);
        }
        state.stats.bytes_read += len as u64;
        Ok(len)
    }

    fn write_at(&self, buf: &[u8], offset: u64) -> io::Result<usize> {
        if !self.writable {
            return Err(io::Error::new(
                io::ErrorKind::PermissionDenied,
                "file opened read-only",
            ));
        }
        let mut guard = self.state.lock();
        let state = &mut *guard;
        state.mutate(MutationKind::Write, &self.path)?;
        let write_eio = state.faults.write_eio;
        if state.fires(Fault::WriteEio, write_eio, &self.path) {
            return Err(injected("write"));
        }
        let mut len = buf.len();
        let short_write = state.faults.short_write;
        if len > 1 && state.fires(Fault::ShortWrite, short_write, &self.path) {
            len = 1 + state.rng.below(len as u64 - 1) as usize;
        }
        let current_len = state.inodes[self.inode].current.len() as u64;
        let growth = (offset + len as u64).saturating_sub(current_len);
        let over_capacity = state
            .faults
            .capacity_bytes
            .is_some_and(|cap| state.used_bytes() + growth > cap);
        if over_capacity {
            state.fired.push((Fault::WriteNoSpace, self.path.clone()));
        }
        if over_capacity || state.fires(Fault::WriteNoSpace, 0.0, &self.path) {
            return Err(io::Error::new(
                io::ErrorKind::StorageFull,
                "simulated disk is full",
            ));
        }
        let op = FileOp::Write {
            offset,
            data: buf[..len].to_vec(),
        };
        let inode = &mut state.inodes[self.inode];
        op.apply(&mut inode.current);
        inode.pending.push(op);
        state.stats.bytes_written += len as u64;
        Ok(len)
    }

    fn sync(&self) -> io::Result<()> {
        let mut guard = self.state.lock();
        let state = &mut *guard;
        state.mutate(MutationKind::Sync, &self.path)?;
        state.stats.fsyncs += 1;
        let sync_eio = state.faults.sync_eio;
        let failed = state.fires(Fault::SyncEio, sync_eio, &self.path);
        let inode = &mut state.inodes[self.inode];
        let pending = std::mem::take(&mut inode.pending);
        if failed {
            // The kernel marks the pages clean: this data will never be durable.
            return Err(injected("fsync"));
        }
        for op in &pending {
            op.apply(&mut inode.durable);
        }
        Ok(())
    }

    fn len(&self) -> io::Result<u64> {
        Ok(self.state.lock().inodes[self.inode].current.len() as u64)
    }

    fn set_len(&self, len: u64) -> io::Result<()> {
        if !self.writable {
            return Err(io::Error::new(
                io::ErrorKind::PermissionDenied,
                "file opened read-only",
            ));
        }
        let mut state = self.state.lock();
        state.mutate(MutationKind::SetLen, &self.path)?;
        let op = FileOp::SetLen { len };
        let inode = &mut state.inodes[self.inode];
        op.apply(&mut inode.current);
        inode.pending.push(op);
        Ok(())
    }
}
