//! How `crash-fuzz` runs an engine on the simulated disk: a registry row's
//! `crash` part. An engine that does its own file I/O (RocksDB, redb, fjall)
//! or keeps no files (the stores on a server) has none: the campaign cannot
//! crash its disk.

use std::sync::Arc;
use std::time::Duration;

use crate::{Error, Result};
use leasehold_config::{BtreeConfig, LsmConfig, MemoryConfig};
use leasehold_core::vfs::SimVfs;
use leasehold_core::{KvEngine, KvError, KvResult};

/// What the campaign asks of an engine beyond `KvEngine`: the manual
/// maintenance the background mode races against the workers (the LSM's
/// `compact_all`, the B+tree's checkpoint, the memory engine's backup).
pub trait Maintained: KvEngine {
    fn maintain(&self) -> KvResult<()>;
}

/// An engine the campaign opened, whichever it is.
pub type Crashable = Box<dyn Maintained>;

/// Opens (recovering) an engine on the simulated disk, with a planted bug
/// by name when one is given.
pub type CrashOpener = fn(SimVfs, Setting, Option<&str>) -> KvResult<Crashable>;

/// The settings a mode opens an engine with.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Setting {
    /// Small, deterministic, no threads: every few writes flush, compact or
    /// checkpoint inline, so crash points fall inside all of them.
    Inline,
    /// The engine's workers on (`--mode background`).
    Threads,
    /// Workers on and Group's timer the only thing that syncs
    /// (`--mode group-bound`).
    GroupTimer,
}

/// An engine's part in the crash campaign.
pub struct CrashRow {
    /// Its directory on the simulated disk.
    pub dir: &'static str,
    /// What kind of the engine's files a name is (`None`: not one of them).
    pub describe_file: fn(&str) -> Option<&'static str>,
    /// Opens it there (planted bugs named as `planted_bugs` names them).
    pub open: CrashOpener,
    /// The kebab-case names of its planted bugs; none without the
    /// `planted-bugs` feature.
    pub planted_bugs: fn() -> Vec<String>,
    /// Group's promise under `Setting::GroupTimer`: the interval, and the
    /// slack a sync may take beyond it.
    pub group_bound: (Duration, Duration),
}

impl CrashRow {
    /// Checks a planted bug's name before any case runs.
    pub fn check_planted(&self, engine: &str, bug: &str) -> Result<()> {
        let names = (self.planted_bugs)();
        if names.is_empty() {
            return Err(Error::Usage(
                "this build has no planted bugs: run with `cargo run --release -p \
                        leasehold --features planted-bugs -- crash-fuzz ...`"
                    .to_owned(),
            ));
        }
        if names.iter().any(|name| name == bug) {
            Ok(())
        } else {
            Err(Error::Usage(format!(
                "no planted bug {bug:?} in engine {engine} (it has {})",
                names.join(", ")
            )))
        }
    }
}

/// The LSM's and the memory engine's Group interval in `GroupTimer`; the
/// B+tree's is whole seconds (`wal_sync_interval_seconds`), so it runs at 1 s.
const GROUP_INTERVAL: Duration = Duration::from_millis(20);

pub const LSM: CrashRow = CrashRow {
    dir: "/lsm",
    describe_file: leasehold_lsm::db::describe_file,
    open: open_lsm,
    planted_bugs: planted_lsm,
    group_bound: (GROUP_INTERVAL, Duration::from_millis(5)),
};

pub const BTREE: CrashRow = CrashRow {
    dir: "/btree",
    describe_file: leasehold_btree::db::describe_file,
    open: open_btree,
    planted_bugs: planted_btree,
    group_bound: (Duration::from_secs(1), Duration::from_millis(50)),
};

pub const MEMORY: CrashRow = CrashRow {
    dir: "/memory",
    describe_file: |name| leasehold_memory::describe_file(name, MEMORY_BACKUP),
    open: open_memory,
    planted_bugs: planted_memory,
    group_bound: (GROUP_INTERVAL, GROUP_INTERVAL),
};

const MEMORY_BACKUP: &str = "backup.lz4";

impl Maintained for leasehold_lsm::LsmEngine {
    fn maintain(&self) -> KvResult<()> {
        self.compact_all()
    }
}

impl Maintained for leasehold_btree::BtreeEngine {
    fn maintain(&self) -> KvResult<()> {
        self.checkpoint()
    }
}

impl Maintained for leasehold_memory::MemoryEngine {
    fn maintain(&self) -> KvResult<()> {
        self.flush()
    }
}

fn lsm_config(setting: Setting) -> LsmConfig {
    let inline = leasehold_lsm::crash_test_config(LSM.dir);
    match setting {
        Setting::Inline => inline,
        Setting::Threads => LsmConfig {
            background_threads: true,
            max_memtables: 4,
            ..inline
        },
        Setting::GroupTimer => LsmConfig {
            background_threads: true,
            wal_sync_interval_ms: GROUP_INTERVAL.as_millis() as u64,
            // No memtable switch (which syncs the log) stands in for the timer.
            memtable_size_limit: 1 << 20,
            ..inline
        },
    }
}

fn open_lsm(vfs: SimVfs, setting: Setting, planted: Option<&str>) -> KvResult<Crashable> {
    let config = lsm_config(setting);
    let Some(name) = planted else {
        return Ok(Box::new(leasehold_lsm::LsmEngine::open(
            &config,
            Arc::new(vfs),
        )?));
    };
    #[cfg(feature = "planted-bugs")]
    if let Some(bug) = pick(&leasehold_lsm::db::PlantedBug::ALL, name) {
        let engine = leasehold_lsm::LsmEngine::open_planted(&config, Arc::new(vfs), bug)?;
        return Ok(Box::new(engine));
    }
    Err(no_such_bug("lsm", name))
}

fn btree_config(setting: Setting) -> BtreeConfig {
    let inline = leasehold_btree::crash_test_config(BTREE.dir);
    match setting {
        Setting::Inline => inline,
        Setting::Threads => BtreeConfig {
            background_threads: true,
            ..inline
        },
        Setting::GroupTimer => BtreeConfig {
            background_threads: true,
            wal_sync_interval_seconds: BTREE.group_bound.0.as_secs(),
            ..inline
        },
    }
}

fn open_btree(vfs: SimVfs, setting: Setting, planted: Option<&str>) -> KvResult<Crashable> {
    let config = btree_config(setting);
    let Some(name) = planted else {
        return Ok(Box::new(leasehold_btree::BtreeEngine::open(
            &config,
            Arc::new(vfs),
        )?));
    };
    #[cfg(feature = "planted-bugs")]
    if let Some(bug) = pick(&leasehold_btree::db::PlantedBug::ALL, name) {
        let engine = leasehold_btree::BtreeEngine::open_planted(&config, Arc::new(vfs), bug)?;
        return Ok(Box::new(engine));
    }
    Err(no_such_bug("btree", name))
}

/// The memory engine as the campaign runs it: backed up on the simulated disk.
pub fn memory_config(setting: Setting) -> MemoryConfig {
    let sync_interval = match setting {
        // No background backups: a case must be deterministic.
        Setting::Inline => Duration::from_secs(24 * 3600),
        Setting::Threads => Duration::from_secs(1),
        Setting::GroupTimer => GROUP_INTERVAL,
    };
    MemoryConfig {
        max_entries: 10_000,
        backup_path: Some(std::path::Path::new(MEMORY.dir).join(MEMORY_BACKUP)),
        sync_interval,
        compression: leasehold_config::BackupCompression::Lz4,
    }
}

fn open_memory(vfs: SimVfs, setting: Setting, planted: Option<&str>) -> KvResult<Crashable> {
    let config = memory_config(setting);
    let Some(name) = planted else {
        return Ok(Box::new(leasehold_memory::MemoryEngine::open(
            &config,
            Arc::new(vfs),
        )?));
    };
    #[cfg(feature = "planted-bugs")]
    if let Some(bug) = pick(&leasehold_memory::PlantedBug::ALL, name) {
        let engine = leasehold_memory::MemoryEngine::open_planted(&config, Arc::new(vfs), bug)?;
        return Ok(Box::new(engine));
    }
    Err(no_such_bug("memory", name))
}

fn no_such_bug(engine: &str, name: &str) -> KvError {
    KvError::Unsupported(format!(
        "engine {engine} has no planted bug {name:?} in this build"
    ))
}

#[cfg(feature = "planted-bugs")]
fn planted_names<B: std::fmt::Debug>(all: &[B]) -> Vec<String> {
    all.iter().map(|bug| kebab(&format!("{bug:?}"))).collect()
}

#[cfg(feature = "planted-bugs")]
fn pick<B: Copy + std::fmt::Debug>(all: &[B], name: &str) -> Option<B> {
    all.iter()
        .copied()
        .find(|bug| kebab(&format!("{bug:?}")) == name)
}

fn planted_lsm() -> Vec<String> {
    #[cfg(feature = "planted-bugs")]
    return planted_names(&leasehold_lsm::db::PlantedBug::ALL);
    #[cfg(not(feature = "planted-bugs"))]
    Vec::new()
}

fn planted_btree() -> Vec<String> {
    #[cfg(feature = "planted-bugs")]
    return planted_names(&leasehold_btree::db::PlantedBug::ALL);
    #[cfg(not(feature = "planted-bugs"))]
    Vec::new()
}

fn planted_memory() -> Vec<String> {
    #[cfg(feature = "planted-bugs")]
    return planted_names(&leasehold_memory::PlantedBug::ALL);
    #[cfg(not(feature = "planted-bugs"))]
    Vec::new()
}

/// "SkipWalSync" → "skip-wal-sync".
#[cfg_attr(not(feature = "planted-bugs"), allow(dead_code))]
pub fn kebab(name: &str) -> String {
    let mut out = String::new();
    for (index, letter) in name.chars().enumerate() {
        if letter.is_ascii_uppercase() && index > 0 {
            out.push('-');
        }
        out.push(letter.to_ascii_lowercase());
    }
    out
}
