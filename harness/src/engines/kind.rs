//! Which engines the harness runs, and at which durabilities.

/// An engine the harness runs: a handle on its row in the registry
/// (`registry.rs`), named as the command line and the results name it. Every
/// fact about an engine is in its row; the constants below are for the code
/// that means one engine in particular. A new engine needs a row, not a
/// constant.
#[derive(Clone, Copy, PartialEq, Eq, Hash)]
pub struct EngineKind(&'static str);

impl EngineKind {
    pub const MEMORY: EngineKind = EngineKind("memory");
    pub const LSM: EngineKind = EngineKind("lsm");
    pub const BTREE: EngineKind = EngineKind("btree");
    pub const ROCKSDB: EngineKind = EngineKind("rocksdb");
    pub const ROCKSDB_BLOB: EngineKind = EngineKind("rocksdb-blob");
    pub const REDB: EngineKind = EngineKind("redb");
    pub const FJALL: EngineKind = EngineKind("fjall");
    pub const S3: EngineKind = EngineKind("s3");
    pub const POSTGRES: EngineKind = EngineKind("postgres");
    pub const NULL: EngineKind = EngineKind("null");

    /// The engine of this name, if the registry has one.
    pub fn named(name: &str) -> Option<EngineKind> {
        super::registry::ROWS
            .iter()
            .find(|row| row.name == name)
            .map(|row| EngineKind(row.name))
    }

    /// The engine a registry row describes.
    pub(crate) fn of_row(row: &super::registry::Row) -> EngineKind {
        EngineKind(row.name)
    }

    /// The engines a comparison runs when none is named: every row that
    /// needs no server and measures something.
    pub fn compared_by_default() -> Vec<EngineKind> {
        super::registry::ROWS
            .iter()
            .filter(|row| row.compared_by_default)
            .map(|row| EngineKind(row.name))
            .collect()
    }

    /// Its row in the registry: every fact below is there.
    pub fn row(self) -> &'static super::registry::Row {
        super::registry::row(self.0)
    }

    pub fn name(self) -> &'static str {
        self.0
    }

    /// What exactly ran, for every result: RocksDB's release, or that the
    /// engine is this repository's own.
    pub fn version(self) -> &'static str {
        self.row().version
    }

    /// Whether the data is in files of the run's directory (engine s3 keeps
    /// it on the server: local disk figures say nothing about it).
    pub fn keeps_local_files(self) -> bool {
        self.row().local_files
    }

    /// Whether a `KvEngine` is under its Store (the benchmarks' kv level):
    /// not for the stores on a server, which implement the Store directly.
    pub fn has_kv_engine(self) -> bool {
        self.row().kv_engine
    }

    /// Whether acknowledged writes can outlive the process at all. The memory
    /// engine runs volatile in comparisons: it is the ceiling, not a peer.
    pub fn durable(self) -> bool {
        self.row().durable
    }

    /// Its place in the registry: results list engines in this order.
    fn position(self) -> usize {
        super::registry::ROWS
            .iter()
            .position(|row| row.name == self.0)
            .unwrap_or(usize::MAX)
    }
}

impl std::fmt::Debug for EngineKind {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.0)
    }
}

impl std::fmt::Display for EngineKind {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.0)
    }
}

impl Ord for EngineKind {
    fn cmp(&self, other: &Self) -> std::cmp::Ordering {
        self.position()
            .cmp(&other.position())
            .then_with(|| self.0.cmp(other.0))
    }
}

impl PartialOrd for EngineKind {
    fn partial_cmp(&self, other: &Self) -> Option<std::cmp::Ordering> {
        Some(self.cmp(other))
    }
}

/// Every row, as a handle: what the command line offers.
static ALL: [EngineKind; super::registry::ROWS.len()] = {
    let mut all = [EngineKind(""); super::registry::ROWS.len()];
    let mut index = 0;
    while index < all.len() {
        all[index] = EngineKind(super::registry::ROWS[index].name);
        index += 1;
    }
    all
};

impl clap::ValueEnum for EngineKind {
    fn value_variants<'a>() -> &'a [Self] {
        &ALL
    }

    fn to_possible_value(&self) -> Option<clap::builder::PossibleValue> {
        Some(clap::builder::PossibleValue::new(self.0).help(self.row().about))
    }
}

impl serde::Serialize for EngineKind {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(self.0)
    }
}

impl<'de> serde::Deserialize<'de> for EngineKind {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let name = String::deserialize(deserializer)?;
        EngineKind::named(&name)
            .ok_or_else(|| serde::de::Error::custom(format!("no engine named {name:?}")))
    }
}

/// How durable an acknowledged write is; the same for every engine in a table.
#[derive(
    Clone,
    Copy,
    Debug,
    PartialEq,
    Eq,
    PartialOrd,
    Ord,
    clap::ValueEnum,
    serde::Serialize,
    serde::Deserialize,
)]
#[serde(rename_all = "lowercase")]
pub enum DurabilityMode {
    /// Acknowledged before any fsync; never survives power loss. The LSM and
    /// RocksDB have handed it to the OS (it survives a process crash); the
    /// B+tree may hold up to `wal_buffer_size` in its own buffer, which dies
    /// with the process.
    Buffered,
    /// fsynced before the answer (group commit among concurrent writers).
    Sync,
    /// Nowhere but this process's memory: the volatile memory engine only.
    None,
}

impl DurabilityMode {
    pub fn name(self) -> &'static str {
        match self {
            DurabilityMode::Buffered => "buffered",
            DurabilityMode::Sync => "sync",
            DurabilityMode::None => "none",
        }
    }

    /// The durability modes `engine` can be run with.
    pub fn for_engine(engine: EngineKind, wanted: &[DurabilityMode]) -> Vec<DurabilityMode> {
        if !engine.row().buffered {
            // A PUT is durable on the server when it is answered: there is no
            // buffered mode to offer.
            wanted
                .iter()
                .copied()
                .filter(|mode| *mode == DurabilityMode::Sync)
                .collect()
        } else if engine.durable() {
            wanted
                .iter()
                .copied()
                .filter(|mode| *mode != DurabilityMode::None)
                .collect()
        } else {
            vec![DurabilityMode::None]
        }
    }
}
