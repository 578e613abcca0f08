//! What the simulated disk can do to an engine: the crash policies that
//! decide what survives, the kinds of mutation a crash can strike, and the
//! device faults (probabilistic, or armed for the next operation).

/// What survives a crash.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize)]
pub enum CrashPolicy {
    /// The process died; the OS kept everything written (page cache survives).
    ProcessCrash,
    /// Power failed; only synced data and synced directory entries survive.
    PowerLoss,
    /// Per file, a random prefix of the unsynced writes survives; per directory,
    /// a random prefix of the unsynced entry changes.
    Prefix,
    /// Per file, a random subset of the unsynced writes survives (in any
    /// combination: writes may reach the disk out of order).
    Subset,
    /// Like `Prefix`, and the first lost write is torn: a random subset of its
    /// 512-byte sectors reached the disk; with `garbage`, the others hold junk.
    TornSectors { garbage: bool },
}

impl CrashPolicy {
    pub const ALL: [CrashPolicy; 6] = [
        CrashPolicy::ProcessCrash,
        CrashPolicy::PowerLoss,
        CrashPolicy::Prefix,
        CrashPolicy::Subset,
        CrashPolicy::TornSectors { garbage: false },
        CrashPolicy::TornSectors { garbage: true },
    ];

    pub fn name(self) -> &'static str {
        match self {
            CrashPolicy::ProcessCrash => "process-crash",
            CrashPolicy::PowerLoss => "power-loss",
            CrashPolicy::Prefix => "prefix",
            CrashPolicy::Subset => "subset",
            CrashPolicy::TornSectors { garbage: false } => "torn",
            CrashPolicy::TornSectors { garbage: true } => "torn-garbage",
        }
    }

    pub fn parse(name: &str) -> Option<CrashPolicy> {
        CrashPolicy::ALL
            .into_iter()
            .find(|policy| policy.name() == name)
    }
}

/// The kinds of mutating operation, for saying where a crash struck.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum MutationKind {
    Write,
    SetLen,
    Sync,
    SyncDir,
    Create,
    Rename,
    Remove,
    CreateDir,
}

impl MutationKind {
    pub fn name(self) -> &'static str {
        match self {
            MutationKind::Write => "write",
            MutationKind::SetLen => "set_len",
            MutationKind::Sync => "fsync",
            MutationKind::SyncDir => "dir fsync",
            MutationKind::Create => "create",
            MutationKind::Rename => "rename",
            MutationKind::Remove => "remove",
            MutationKind::CreateDir => "mkdir",
        }
    }
}

/// Probabilistic device faults; all zero by default.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct FaultConfig {
    pub write_eio: f64,
    pub sync_eio: f64,
    pub sync_dir_eio: f64,
    pub read_eio: f64,
    /// A read returns its bytes with one bit flipped (the stored data is intact).
    pub read_bit_flip: f64,
    pub short_read: f64,
    pub short_write: f64,
    /// Total bytes the files may hold; a write past it fails with StorageFull.
    pub capacity_bytes: Option<u64>,
}

/// A one-shot fault for the next operation of its kind.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Fault {
    WriteEio,
    WriteNoSpace,
    ShortWrite,
    SyncEio,
    SyncDirEio,
    ReadEio,
    ReadBitFlip,
    ShortRead,
}

impl Fault {
    pub const ALL: [Fault; 8] = [
        Fault::WriteEio,
        Fault::WriteNoSpace,
        Fault::ShortWrite,
        Fault::SyncEio,
        Fault::SyncDirEio,
        Fault::ReadEio,
        Fault::ReadBitFlip,
        Fault::ShortRead,
    ];

    /// How reports name it.
    pub fn name(self) -> &'static str {
        match self {
            Fault::WriteEio => "EIO on write",
            Fault::WriteNoSpace => "ENOSPC",
            Fault::ShortWrite => "short write",
            Fault::SyncEio => "EIO on fsync",
            Fault::SyncDirEio => "EIO on directory sync",
            Fault::ReadEio => "EIO on read",
            Fault::ReadBitFlip => "bit flip on read",
            Fault::ShortRead => "short read",
        }
    }
}
