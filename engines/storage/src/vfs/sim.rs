//! `SimVfs`: an in-memory, deterministic disk that can crash.
//!
//! Model. Each file (inode) keeps `current` (what reads see: the page cache),
//! `durable` (what the platter holds) and `pending`, the writes and size changes
//! since the last successful sync, in order. Each directory keeps `current` and
//! `durable` name → inode maps and its `pending` entry operations. `sync` moves a
//! file's pending operations into `durable`; `sync_dir` does the same for a
//! directory's entries. A failed sync *drops* the pending operations without
//! applying them (reads still see them): they can never become durable, which is
//! what Linux does after an fsync error.
//!
//! Crashes. `crash_image(policy, seed)` returns a new disk holding what survives
//! a crash of the given kind (see `CrashPolicy`). `freeze_at(k)` makes the k-th
//! mutating operation (counting from 1) and every one after it fail, which is how
//! a test stops an engine at an exact point; the image is then taken.
//!
//! Faults. `FaultConfig` sets probabilities of EIO on write / sync / sync_dir /
//! read, bit flips and short transfers, and a capacity for ENOSPC; `arm(fault)`
//! makes the next operation of its kind fail once. Everything random comes from
//! one seeded generator, so a run is reproduced by its seed.

use std::collections::{BTreeMap, VecDeque};
use std::fmt;
use std::io;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use parking_lot::Mutex;

use super::lock::{DirLock, LockError, SimLocks, LOCK_FILE};
use super::{Vfs, VfsFile, VfsStats};
use crate::rng::SplitMix64;

mod faults;
mod file;
mod image;
pub use faults::{CrashPolicy, Fault, FaultConfig, MutationKind};
use file::SimFile;

/// Writes tear at this granularity.
pub const SECTOR_LEN: u64 = 512;

#[derive(Clone, Debug)]
enum FileOp {
    Write { offset: u64, data: Vec<u8> },
    SetLen { len: u64 },
}

impl FileOp {
    fn apply(&self, content: &mut Vec<u8>) {
        match self {
            FileOp::Write { offset, data } => write_into(content, *offset, data),
            FileOp::SetLen { len } => content.resize(*len as usize, 0),
        }
    }
}

fn write_into(content: &mut Vec<u8>, offset: u64, data: &[u8]) {
    let start = offset as usize;
    let end = start + data.len();
    if content.len() < end {
        content.resize(end, 0);
    }
    content[start..end].copy_from_slice(data);
}

#[derive(Clone, Debug, Default)]
struct Inode {
    current: Vec<u8>,
    durable: Vec<u8>,
    pending: Vec<FileOp>,
}

type InodeId = usize;

#[derive(Clone, Debug)]
enum DirOp {
    Link {
        name: String,
        inode: InodeId,
    },
    Unlink {
        name: String,
    },
    /// A rename inside one directory: atomic.
    Rename {
        from: String,
        to: String,
        inode: InodeId,
    },
}

impl DirOp {
    fn apply(&self, entries: &mut BTreeMap<String, InodeId>) {
        match self {
            DirOp::Link { name, inode } => {
                entries.insert(name.clone(), *inode);
            }
            DirOp::Unlink { name } => {
                entries.remove(name);
            }
            DirOp::Rename { from, to, inode } => {
                entries.remove(from);
                entries.insert(to.clone(), *inode);
            }
        }
    }
}

#[derive(Clone, Debug, Default)]
struct Dir {
    current: BTreeMap<String, InodeId>,
    durable: BTreeMap<String, InodeId>,
    pending: Vec<DirOp>,
}

#[derive(Debug)]
struct State {
    inodes: Vec<Inode>,
    dirs: BTreeMap<PathBuf, Dir>,
    rng: SplitMix64,
    faults: FaultConfig,
    armed: VecDeque<Fault>,
    /// Faults that fired, and where, since `take_fired_faults`.
    fired: Vec<(Fault, PathBuf)>,
    mutations: u64,
    freeze_at: Option<u64>,
    frozen: bool,
    /// The operation the freeze point struck, and its path.
    freeze_site: Option<(MutationKind, PathBuf)>,
    stats: VfsStats,
}

/// Splits a path into its directory and file name.
fn split(path: &Path) -> io::Result<(PathBuf, String)> {
    let name = path
        .file_name()
        .and_then(|name| name.to_str())
        .ok_or_else(|| {
            io::Error::new(
                io::ErrorKind::InvalidInput,
                format!("bad file path {path:?}"),
            )
        })?;
    Ok((
        path.parent().map(Path::to_path_buf).unwrap_or_default(),
        name.to_owned(),
    ))
}

fn not_found(path: &Path) -> io::Error {
    io::Error::new(io::ErrorKind::NotFound, format!("{path:?} not found"))
}

fn crashed() -> io::Error {
    io::Error::other("simulated crash: the device is frozen")
}

fn injected(what: &str) -> io::Error {
    io::Error::other(format!("injected EIO on {what}"))
}

impl State {
    /// Counts a mutating operation; fails from the freeze point on.
    fn mutate(&mut self, kind: MutationKind, path: &Path) -> io::Result<()> {
        if self.frozen {
            return Err(crashed());
        }
        self.mutations += 1;
        if self.freeze_at.is_some_and(|at| self.mutations >= at) {
            self.frozen = true;
            self.freeze_site = Some((kind, path.to_path_buf()));
            return Err(crashed());
        }
        Ok(())
    }

    /// True if `fault` is armed (consuming it) or drawn with probability `p`;
    /// a fault that fires is logged against `path`.
    fn fires(&mut self, fault: Fault, p: f64, path: &Path) -> bool {
        let fired = match self.armed.iter().position(|armed| *armed == fault) {
            Some(index) => {
                self.armed.remove(index);
                true
            }
            None => self.rng.chance(p),
        };
        if fired {
            self.fired.push((fault, path.to_path_buf()));
        }
        fired
    }

    fn dir(&self, dir: &Path) -> io::Result<&Dir> {
        self.dirs.get(dir).ok_or_else(|| not_found(dir))
    }

    fn dir_mut(&mut self, dir: &Path) -> io::Result<&mut Dir> {
        self.dirs.get_mut(dir).ok_or_else(|| not_found(dir))
    }

    fn lookup(&self, path: &Path) -> io::Result<InodeId> {
        let (dir, name) = split(path)?;
        self.dir(&dir)?
            .current
            .get(&name)
            .copied()
            .ok_or_else(|| not_found(path))
    }

    fn link(&mut self, dir: &Path, op: DirOp) -> io::Result<()> {
        let entry = self.dir_mut(dir)?;
        op.apply(&mut entry.current);
        entry.pending.push(op);
        Ok(())
    }

    /// Bytes held by files that still have a name (for the capacity limit).
    fn used_bytes(&self) -> u64 {
        let mut linked: Vec<InodeId> = self
            .dirs
            .values()
            .flat_map(|dir| dir.current.values().copied())
            .collect();
        linked.sort_unstable();
        linked.dedup();
        linked
            .iter()
            .map(|&inode| self.inodes[inode].current.len() as u64)
            .sum()
    }
}

/// A simulated disk; clones share it.
#[derive(Clone)]
pub struct SimVfs {
    state: Arc<Mutex<State>>,
    locks: SimLocks,
}

impl fmt::Debug for SimVfs {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let state = self.state.lock();
        f.debug_struct("SimVfs")
            .field(
                "files",
                &state
                    .dirs
                    .values()
                    .map(|dir| dir.current.len())
                    .sum::<usize>(),
            )
            .field("mutations", &state.mutations)
            .field("frozen", &state.frozen)
            .finish()
    }
}

impl SimVfs {
    /// An empty disk whose faults and crash images derive from `seed`.
    pub fn new(seed: u64) -> Self {
        let mut dirs = BTreeMap::new();
        dirs.insert(PathBuf::new(), Dir::default());
        dirs.insert(PathBuf::from("/"), Dir::default());
        SimVfs::holding(Vec::new(), dirs, seed)
    }

    /// A disk holding `inodes` and `dirs` as they stand (all of it durable),
    /// no fault armed, nothing counted yet.
    fn holding(inodes: Vec<Inode>, dirs: BTreeMap<PathBuf, Dir>, seed: u64) -> Self {
        SimVfs {
            locks: SimLocks::default(),
            state: Arc::new(Mutex::new(State {
                inodes,
                dirs,
                rng: SplitMix64::new(seed),
                faults: FaultConfig::default(),
                armed: VecDeque::new(),
                fired: Vec::new(),
                mutations: 0,
                freeze_at: None,
                frozen: false,
                freeze_site: None,
                stats: VfsStats::default(),
            })),
        }
    }

    pub fn set_faults(&self, faults: FaultConfig) {
        self.state.lock().faults = faults;
    }

    /// The faults that fired since the last call, each with the file (or
    /// directory) it struck, oldest first.
    pub fn take_fired_faults(&self) -> Vec<(Fault, PathBuf)> {
        std::mem::take(&mut self.state.lock().fired)
    }

    /// The next operation of `fault`'s kind fails (once).
    pub fn arm(&self, fault: Fault) {
        self.state.lock().armed.push_back(fault);
    }

    /// The `at`-th mutating operation from the start (1-based) and all after it
    /// fail; `None` lifts the freeze point (not an existing freeze).
    pub fn freeze_at(&self, at: Option<u64>) {
        let mut state = self.state.lock();
        state.freeze_at = at;
        if at.is_some_and(|at| state.mutations >= at) {
            state.frozen = true;
        }
    }

    /// Freezes now, as if the machine stopped.
    pub fn freeze(&self) {
        self.state.lock().frozen = true;
    }

    pub fn is_frozen(&self) -> bool {
        self.state.lock().frozen
    }

    /// Where the freeze point struck: the operation and its path (none if
    /// the disk was frozen by `freeze` or not at all).
    pub fn freeze_site(&self) -> Option<(MutationKind, PathBuf)> {
        self.state.lock().freeze_site.clone()
    }

    /// Mutating operations so far (writes, set_len, syncs, creates, renames,
    /// removes, directory syncs).
    pub fn mutations(&self) -> u64 {
        self.state.lock().mutations
    }

    /// Bytes held by files that have a name now (what a capacity limits).
    pub fn total_bytes(&self) -> u64 {
        self.state.lock().used_bytes()
    }
}

impl SimVfs {
    fn handle(&self, inode: InodeId, writable: bool, path: &Path) -> Arc<dyn VfsFile> {
        Arc::new(SimFile {
            state: Arc::clone(&self.state),
            inode,
            writable,
            path: path.to_path_buf(),
        })
    }
}

impl Vfs for SimVfs {
    fn create(&self, path: &Path) -> io::Result<Arc<dyn VfsFile>> {
        let (dir, name) = split(path)?;
        let mut state = self.state.lock();
        state.mutate(MutationKind::Create, path)?;
        state.dir(&dir)?;
        state.stats.files_created += 1;
        if let Some(&inode) = state.dir(&dir)?.current.get(&name) {
            // O_TRUNC: the size change is pending like any other.
            let op = FileOp::SetLen { len: 0 };
            let node = &mut state.inodes[inode];
            op.apply(&mut node.current);
            node.pending.push(op);
            drop(state);
            return Ok(self.handle(inode, true, path));
        }
        state.inodes.push(Inode::default());
        let inode = state.inodes.len() - 1;
        state.link(&dir, DirOp::Link { name, inode })?;
        drop(state);
        Ok(self.handle(inode, true, path))
    }

    fn open(&self, path: &Path) -> io::Result<Arc<dyn VfsFile>> {
        let inode = self.state.lock().lookup(path)?;
        Ok(self.handle(inode, true, path))
    }

    fn open_read(&self, path: &Path) -> io::Result<Arc<dyn VfsFile>> {
        let inode = self.state.lock().lookup(path)?;
        Ok(self.handle(inode, false, path))
    }

    fn exists(&self, path: &Path) -> io::Result<bool> {
        let state = self.state.lock();
        let (dir, name) = split(path)?;
        Ok(state.dirs.contains_key(path)
            || state
                .dirs
                .get(&dir)
                .is_some_and(|dir| dir.current.contains_key(&name)))
    }

    fn list(&self, dir: &Path) -> io::Result<Vec<String>> {
        Ok(self
            .state
            .lock()
            .dir(dir)?
            .current
            .keys()
            .cloned()
            .collect())
    }

    fn rename(&self, from: &Path, to: &Path) -> io::Result<()> {
        let (from_dir, from_name) = split(from)?;
        let (to_dir, to_name) = split(to)?;
        let mut state = self.state.lock();
        state.mutate(MutationKind::Rename, from)?;
        let inode = state.lookup(from)?;
        state.dir(&to_dir)?;
        if from_dir == to_dir {
            state.link(
                &from_dir,
                DirOp::Rename {
                    from: from_name,
                    to: to_name,
                    inode,
                },
            )
        } else {
            state.link(
                &to_dir,
                DirOp::Link {
                    name: to_name,
                    inode,
                },
            )?;
            state.link(&from_dir, DirOp::Unlink { name: from_name })
        }
    }

    fn remove(&self, path: &Path) -> io::Result<()> {
        let (dir, name) = split(path)?;
        let mut state = self.state.lock();
        state.mutate(MutationKind::Remove, path)?;
        state.lookup(path)?;
        state.stats.files_removed += 1;
        state.link(&dir, DirOp::Unlink { name })
    }

    fn create_dir_all(&self, dir: &Path) -> io::Result<()> {
        let mut state = self.state.lock();
        state.mutate(MutationKind::CreateDir, dir)?;
        for ancestor in dir.ancestors() {
            state.dirs.entry(ancestor.to_path_buf()).or_default();
        }
        Ok(())
    }

    fn sync_dir(&self, dir: &Path) -> io::Result<()> {
        let mut guard = self.state.lock();
        let state = &mut *guard;
        state.mutate(MutationKind::SyncDir, dir)?;
        state.stats.dir_syncs += 1;
        let sync_dir_eio = state.faults.sync_dir_eio;
        let failed = state.fires(Fault::SyncDirEio, sync_dir_eio, dir);
        let entry = state.dirs.get_mut(dir).ok_or_else(|| not_found(dir))?;
        if failed {
            // Like a file's failed fsync: these entry changes are not durable and
            // will not become durable by retrying (the journal commit failed).
            entry.pending.clear();
            return Err(injected("directory fsync"));
        }
        for op in std::mem::take(&mut entry.pending) {
            op.apply(&mut entry.durable);
        }
        Ok(())
    }

    fn file_size(&self, path: &Path) -> io::Result<u64> {
        let state = self.state.lock();
        let inode = state.lookup(path)?;
        Ok(state.inodes[inode].current.len() as u64)
    }

    fn stats(&self) -> VfsStats {
        self.state.lock().stats
    }

    /// Held per simulated machine; the LOCK file exists as on a real disk.
    fn lock_dir(&self, dir: &Path) -> Result<DirLock, LockError> {
        let lock = self.locks.lock(dir)?;
        let path = dir.join(LOCK_FILE);
        if !self.exists(&path)? {
            self.create(&path)?;
        }
        Ok(lock)
    }
}

// The rules above are tested through the public interface in tests/sim_vfs.rs.
