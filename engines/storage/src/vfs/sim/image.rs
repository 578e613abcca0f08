//! Crash images: what survives a crash of each kind, as a fresh disk; and
//! damage written straight onto the platter, for tests.

use super::*;

impl SimVfs {
    /// What survives a crash of kind `policy` now, as a fresh disk with no
    /// pending data, no faults and no freeze. `seed` picks the random choices.
    pub fn crash_image(&self, policy: CrashPolicy, seed: u64) -> SimVfs {
        let state = self.state.lock();
        let mut rng = SplitMix64::new(seed);
        let mut inodes: Vec<Inode> = Vec::with_capacity(state.inodes.len());
        for inode in &state.inodes {
            let content = match policy {
                CrashPolicy::ProcessCrash => inode.current.clone(),
                _ => surviving_content(inode, policy, &mut rng),
            };
            inodes.push(Inode {
                current: content.clone(),
                durable: content,
                pending: Vec::new(),
            });
        }
        let mut dirs = BTreeMap::new();
        for (path, dir) in &state.dirs {
            let kept = match policy {
                CrashPolicy::ProcessCrash => dir.pending.len(),
                CrashPolicy::PowerLoss => 0,
                _ => rng.below(dir.pending.len() as u64 + 1) as usize,
            };
            let mut entries = dir.durable.clone();
            for op in &dir.pending[..kept] {
                op.apply(&mut entries);
            }
            dirs.insert(
                path.clone(),
                Dir {
                    current: entries.clone(),
                    durable: entries,
                    pending: Vec::new(),
                },
            );
        }
        SimVfs::holding(inodes, dirs, seed ^ 0x5eed)
    }

    /// XORs `mask` into the byte at `offset` of `path`, durably (a bit rotting
    /// on the platter). For tests of corruption detection.
    pub fn corrupt_byte(&self, path: &Path, offset: u64, mask: u8) -> io::Result<()> {
        let mut state = self.state.lock();
        let inode = state.lookup(path)?;
        let inode = &mut state.inodes[inode];
        for content in [&mut inode.current, &mut inode.durable] {
            let byte = content.get_mut(offset as usize).ok_or_else(|| {
                io::Error::new(io::ErrorKind::InvalidInput, "offset past the end")
            })?;
            *byte ^= mask;
        }
        Ok(())
    }

    /// The durable content of `path` under its durable name, if any.
    pub fn durable_content(&self, path: &Path) -> Option<Vec<u8>> {
        let state = self.state.lock();
        let (dir, name) = split(path).ok()?;
        let inode = *state.dirs.get(&dir)?.durable.get(&name)?;
        Some(state.inodes[inode].durable.clone())
    }
}

/// The content of `inode` after a crash under `policy` (not ProcessCrash).
fn surviving_content(inode: &Inode, policy: CrashPolicy, rng: &mut SplitMix64) -> Vec<u8> {
    let mut content = inode.durable.clone();
    let pending = &inode.pending;
    match policy {
        CrashPolicy::ProcessCrash => return inode.current.clone(),
        CrashPolicy::PowerLoss => {}
        CrashPolicy::Subset => {
            for op in pending {
                if rng.chance(0.5) {
                    op.apply(&mut content);
                }
            }
        }
        CrashPolicy::Prefix | CrashPolicy::TornSectors { .. } => {
            let kept = rng.below(pending.len() as u64 + 1) as usize;
            for op in &pending[..kept] {
                op.apply(&mut content);
            }
            if let (CrashPolicy::TornSectors { garbage }, Some(FileOp::Write { offset, data })) =
                (policy, pending.get(kept))
            {
                tear(&mut content, *offset, data, garbage, rng);
            }
        }
    }
    content
}

/// Applies a random subset of the sectors of one write; with `garbage`, the
/// sectors that did not make it hold random bytes instead of their old content.
fn tear(content: &mut Vec<u8>, offset: u64, data: &[u8], garbage: bool, rng: &mut SplitMix64) {
    let end = offset + data.len() as u64;
    let mut sector_start = offset;
    while sector_start < end {
        let sector_end = ((sector_start / SECTOR_LEN) + 1) * SECTOR_LEN;
        let piece_end = sector_end.min(end);
        let piece = &data[(sector_start - offset) as usize..(piece_end - offset) as usize];
        if rng.chance(0.5) {
            write_into(content, sector_start, piece);
        } else if garbage {
            let mut junk = vec![0u8; piece.len()];
            rng.fill(&mut junk);
            write_into(content, sector_start, &junk);
        }
        sector_start = piece_end;
    }
}
