//! Which engines the harness runs, and at which durabilities.

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
pub enum EngineKind {
    Memory,
    Lsm,
    Btree,
    /// RocksDB through the `rocksdb` crate: the yardstick.
    Rocksdb,
    /// RocksDB with its integrated BlobDB: values of at least
    /// `min_blob_size` (4 KiB) in blob files, blob GC on — the fair
    /// yardstick for large snapshots (key-value separation).
    #[serde(rename = "rocksdb-blob")]
    RocksdbBlob,
    /// redb 4, the copy-on-write B-tree Rust users pick: the hand-written
    /// B+tree's peer.
    Redb,
    /// fjall 3, the LSM-tree Rust users pick: the hand-written LSM's peer.
    Fjall,
    /// Cloud object storage through `leasehold-objectstore` (S3 protocol):
    /// settings from a `[persistence.s3]` config, or from the
    /// `LEASEHOLD_S3_*` variables `scripts/s3-server` prints. In the default
    /// comparison only when a config names it (it needs a server).
    S3,
    /// PostgreSQL through `leasehold-postgres`: settings from a
    /// `[persistence.postgres]` config, or from the `LEASEHOLD_PG_*`
    /// variables `scripts/postgres-server` prints; each run in a schema of
    /// its own. In the default comparison only when a config names it.
    Postgres,
    /// Answers at once without storing anything: replaying against it
    /// measures the harness's own cost per op. Its answers are not checked
    /// and it is never part of a comparison.
    Null,
}

impl EngineKind {
    pub const ALL: [EngineKind; 7] = [
        EngineKind::Memory,
        EngineKind::Lsm,
        EngineKind::Btree,
        EngineKind::Rocksdb,
        EngineKind::RocksdbBlob,
        EngineKind::Redb,
        EngineKind::Fjall,
    ];

    /// Its row in the registry (`registry.rs`): every fact below is there.
    pub fn row(self) -> &'static super::registry::Row {
        super::registry::row(self)
    }

    pub fn name(self) -> &'static str {
        self.row().name
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
