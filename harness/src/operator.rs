//! The operator commands: `actor list-leases`, `actor inspect-state`,
//! `metrics`, `health-check`, `verify` and `dump`, on any engine's directory,
//! named by the seed's TOML (`--config`) or by `--engine E --dir D`.
//!
//! Commands that only read open the engine on an [`OverlayVfs`]: it recovers
//! exactly as it would (replaying its log, even rewriting its manifest) but
//! every change stays in memory, so inspecting never modifies the data.
//! `health-check` is the one command that writes: a probe key, written, read
//! and deleted through the engine — unless a live store holds the directory's
//! lock, in which case it says so and checks read-only (a second writer would
//! fight the live one).
//!
//! An object store is named by a config with a `[persistence.s3]`, `azure` or
//! `gcs` section (its bucket or container and prefix, not a directory).
//! Commands read its objects directly; opening it writes and removes one
//! probe object under `<prefix>/health/` (the check that the server
//! arbitrates conditional writes).

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use leasehold_config::{Config, PersistenceConfig};
use leasehold_core::dump::describe_key;
use leasehold_core::kv::Health;
use leasehold_core::time::{Clock, SystemClock};
use leasehold_core::vfs::{OsVfs, OverlayVfs, Vfs};
use leasehold_core::Timestamp;

mod actor;
mod health;
pub use actor::{inspect_state, list_leases, InspectState, ListLeases};
pub use health::health_check;

use crate::engines::{self, BenchStore, DurabilityMode, EngineKind, EngineSettings};
use crate::{Context, Error, Result};

/// Which data a command works on.
#[derive(clap::Args, Clone, Debug)]
pub struct TargetArgs {
    /// The seed's TOML: its persistence section names the engine and its directory.
    #[arg(long, conflicts_with_all = ["engine", "dir"])]
    pub config: Option<PathBuf>,
    /// The engine whose files are in --dir (checked against what is there).
    #[arg(long, value_enum, requires = "dir")]
    pub engine: Option<EngineKind>,
    /// The engine's directory.
    #[arg(long, requires = "engine")]
    pub dir: Option<PathBuf>,
}

pub struct Target {
    /// `S3` for every object store (the section says which); `Postgres`.
    pub engine: EngineKind,
    /// The directory, or for a store on a server a URL-like name of where
    /// its data is (never holding a credential).
    pub dir: PathBuf,
    pub settings: EngineSettings,
    /// The section of a store on a server: an object store (s3, azure,
    /// gcs) or PostgreSQL.
    pub remote: Option<PersistenceConfig>,
}

impl Target {
    /// The engine's name as the commands print it: the section's type for a
    /// store on a server (`azure`, say), else the engine's.
    pub fn label(&self) -> &'static str {
        self.remote
            .as_ref()
            .map_or(self.engine.name(), PersistenceConfig::type_name)
    }
}

/// Where a store on a server keeps its data, as the commands print it: the
/// bucket (or container) and prefix of an object store; the host, database
/// and schema of PostgreSQL. `None` for a local engine.
fn remote_location(persistence: &PersistenceConfig) -> Option<(EngineKind, String)> {
    let object = |bucket: &str, prefix: &str| {
        format!(
            "{}://{bucket}/{}",
            persistence.type_name(),
            prefix.trim_matches('/')
        )
    };
    match persistence {
        PersistenceConfig::S3(s3) => Some((EngineKind::S3, object(&s3.bucket, &s3.prefix))),
        PersistenceConfig::Azure(azure) => {
            Some((EngineKind::S3, object(&azure.container_name, &azure.prefix)))
        }
        PersistenceConfig::Gcs(gcs) => {
            Some((EngineKind::S3, object(&gcs.bucket_name, &gcs.prefix)))
        }
        PersistenceConfig::Postgres(postgres) => {
            // A URL may hold a password: only the parts are shown.
            let server = match (&postgres.host, &postgres.url) {
                (Some(host), _) => format!(
                    "{host}:{}/{}",
                    postgres.port.unwrap_or(5432),
                    postgres.dbname.as_deref().unwrap_or("")
                ),
                (None, _) => "(url)".to_owned(),
            };
            Some((
                EngineKind::POSTGRES,
                format!("postgres://{server}?schema={}", postgres.schema),
            ))
        }
        _ => None,
    }
}

/// Exit status of a command: 0 fine, 1 a problem found (or degraded), 2 failed.
pub type Status = Result<u8>;

impl Target {
    /// What a config's persistence section names (`path`: the file, for
    /// messages), without looking at what is there.
    pub fn of_config(persistence: PersistenceConfig, path: &Path) -> Result<Target> {
        let mut settings = EngineSettings::default();
        // On a server, not in files: the location is where there.
        if let Some((engine, location)) = remote_location(&persistence) {
            return Ok(Target {
                engine,
                dir: PathBuf::from(location),
                settings,
                remote: Some(persistence),
            });
        }
        let dir = persistence.data_dir().map(Path::to_path_buf);
        let engine = match persistence {
            PersistenceConfig::LsmTree(lsm) => {
                settings.lsm = lsm;
                EngineKind::LSM
            }
            PersistenceConfig::CowBtree(btree) => {
                settings.btree = btree;
                EngineKind::BTREE
            }
            PersistenceConfig::Memory(memory) => {
                settings.memory = memory;
                EngineKind::MEMORY
            }
            PersistenceConfig::RocksDb(rocksdb) => {
                settings.rocksdb = rocksdb;
                EngineKind::ROCKSDB
            }
            // Object stores returned above.
            other => {
                return Err(Error::Usage(format!(
                    "{}: {} is not a store the operator commands open",
                    path.display(),
                    other.type_name()
                )))
            }
        };
        let dir = dir.ok_or_else(|| {
            Error::Usage(format!(
                "{}: the memory section has no backup_path: nothing on disk to inspect",
                path.display()
            ))
        })?;
        Ok(Target {
            engine,
            dir,
            settings,
            remote: None,
        })
    }

    /// Opens what it names to read and write at `durability`, creating it
    /// when absent (an example host, a tool that writes).
    pub fn open(&self, durability: leasehold_core::Durability) -> Result<Box<dyn BenchStore>> {
        match &self.remote {
            Some(PersistenceConfig::Postgres(config)) => {
                let store = leasehold_postgres::PostgresStore::open(config, durability)
                    .map_err(Error::open(self.label()))?;
                Ok(Box::new(store))
            }
            Some(section) => {
                let store = leasehold_objectstore::open(&object_store(section)?)
                    .map_err(Error::open(self.label()))?;
                Ok(Box::new(store))
            }
            None => engines::open_with(
                self.engine,
                durability,
                &self.settings,
                &self.dir,
                Arc::new(leasehold_core::vfs::OsVfs::new()),
            ),
        }
    }
}

impl TargetArgs {
    pub fn resolve(&self) -> Result<Target> {
        let mut settings = EngineSettings::default();
        let (engine, dir) = match (&self.config, self.engine, &self.dir) {
            (Some(path), _, _) => {
                let config = Config::from_file(path)?;
                let target = Target::of_config(config.persistence, path)?;
                if target.remote.is_some() {
                    return Ok(target);
                }
                settings = target.settings;
                (target.engine, target.dir)
            }
            (None, Some(engine), Some(_)) if !engine.keeps_local_files() => {
                return Err(Error::Usage(format!(
                    "engine {0} keeps its data on a server, not in a directory: name it with \
                     --config FILE holding a [persistence.{0}] section",
                    engine.name()
                )))
            }
            (None, Some(engine), Some(dir)) => (engine, dir.clone()),
            _ => {
                return Err(Error::usage(
                    "name the data with --config FILE or with --engine E --dir D",
                ))
            }
        };
        let found = match (engine, &settings.memory.backup_path) {
            // A memory config names its backup file, whatever its name.
            (EngineKind::MEMORY, Some(backup)) if backup.is_file() => EngineKind::MEMORY,
            (EngineKind::MEMORY, Some(backup)) => {
                return Err(Error::Usage(format!(
                    "{}: no memory backup there (the config's backup_path)",
                    backup.display()
                )))
            }
            _ => detect(&dir)?,
        };
        // An engine whose files are another's (RocksDB with blob files).
        let same = found == engine || engine.row().files_of == Some(found.name());
        if !same {
            return Err(Error::Usage(format!(
                "{} holds {} data, not {}",
                dir.display(),
                found.name(),
                engine.name()
            )));
        }
        Ok(Target {
            engine,
            dir,
            settings,
            remote: None,
        })
    }
}

/// The object store a remote section names (`remote` holds only those and
/// PostgreSQL's, which is matched first).
fn object_store(section: &PersistenceConfig) -> Result<leasehold_config::ObjectStoreConfig> {
    section.object_store().ok_or_else(|| {
        Error::Usage(format!(
            "type {:?} is not an object store; the object-store backend takes s3, azure or gcs",
            section.type_name()
        ))
    })
}

/// What kind of database `dir` holds, from the names of its files.
pub fn detect(dir: &Path) -> Result<EngineKind> {
    let entries = std::fs::read_dir(dir)
        .map_err(Error::file(dir))
        .with_context(|| "cannot read directory".to_owned())?;
    let names: Vec<String> = entries
        .filter_map(Result::ok)
        .filter_map(|entry| entry.file_name().to_str().map(str::to_owned))
        .collect();
    // Each engine knows its own files; a directory two engines claimed
    // would be a bug in their recognisers, not a guess to make here.
    let found: Vec<&engines::registry::Row> = engines::registry::ROWS
        .iter()
        .filter(|row| row.recognises.is_some_and(|recognises| recognises(&names)))
        .collect();
    match found.as_slice() {
        [row] => Ok(EngineKind::of_row(row)),
        [] => Err(Error::Usage(format!(
            "{} holds no Leasehold database (no CURRENT + MANIFEST, data.db or {})",
            dir.display(),
            engines::MEMORY_BACKUP_FILE
        ))),
        several => Err(Error::Usage(format!(
            "{} looks like the files of several engines ({})",
            dir.display(),
            several
                .iter()
                .map(|row| row.name)
                .collect::<Vec<_>>()
                .join(", ")
        ))),
    }
}

impl Target {
    /// Opens the data without modifying it (see the module docs).
    pub fn open_read_only(&self) -> Result<Box<dyn BenchStore>> {
        match self.remote {
            Some(_) => self.open_on(Arc::new(OverlayVfs::new())),
            None => engines::open_read_only(self.engine, &self.settings, &self.dir),
        }
    }

    fn open_on(&self, vfs: Arc<dyn Vfs>) -> Result<Box<dyn BenchStore>> {
        match &self.remote {
            // The configured schema itself, not a run's; never created here.
            Some(PersistenceConfig::Postgres(config)) => {
                let store = leasehold_postgres::PostgresStore::open_existing(config)
                    .map_err(Error::open(self.label()))?;
                return Ok(Box::new(store));
            }
            // The configured prefix itself, not a run's; opening writes and
            // removes one probe object (the check that the server arbitrates).
            Some(section) => {
                let store = leasehold_objectstore::open(&object_store(section)?)
                    .map_err(Error::open(self.label()))?;
                return Ok(Box::new(store));
            }
            None => {}
        }
        engines::open_on(
            self.engine,
            DurabilityMode::Sync,
            &self.settings,
            &self.dir,
            1,
            vfs,
            true,
        )
    }
}

/// What a store on a server keeps its leases and snapshots in.
fn remote_unit(engine: EngineKind) -> &'static str {
    if engine == EngineKind::POSTGRES {
        "rows"
    } else {
        "objects"
    }
}

fn now(at: Option<u64>) -> Timestamp {
    at.map_or_else(|| SystemClock.now(), Timestamp::from_millis)
}

pub fn verify(target: &TargetArgs) -> Status {
    let target = target.resolve()?;
    let store = match target.open_read_only() {
        Ok(store) => store,
        Err(err) => {
            println!(
                "{} {}: cannot be opened",
                target.label(),
                target.dir.display()
            );
            println!("problem: {err}");
            return Ok(1);
        }
    };
    let report = store.verify()?;
    println!(
        "{} {}: checked {}",
        target.label(),
        target.dir.display(),
        report.checked
    );
    for problem in &report.problems {
        println!("problem: {problem}");
    }
    if report.is_clean() {
        println!("no problems");
        Ok(0)
    } else {
        println!("{} problems", report.problems.len());
        Ok(1)
    }
}

pub fn parse_interval(text: &str) -> Result<Duration> {
    let (number, unit) = text
        .find(|c: char| !c.is_ascii_digit() && c != '.')
        .map_or((text, "s"), |at| text.split_at(at));
    let value: f64 = number
        .parse()
        .map_err(|_| Error::Usage(format!("bad interval {text:?} (try 1s or 500ms)")))?;
    let secs = match unit {
        "ms" => value / 1000.0,
        "s" => value,
        "m" => value * 60.0,
        _ => {
            return Err(Error::Usage(format!(
                "bad interval unit in {text:?} (ms, s or m)"
            )))
        }
    };
    if !(0.05..=3600.0).contains(&secs) {
        return Err(Error::Usage(format!(
            "interval {text:?} is not within 50ms..=1h"
        )));
    }
    Ok(Duration::from_secs_f64(secs))
}

pub struct MetricsOptions<'a> {
    pub file: Option<&'a Path>,
    pub watch: bool,
    pub interval: Duration,
    /// Stop after this many refreshes (for scripts and tests).
    pub count: Option<u64>,
}

/// What a directory holds, for `metrics` without a live process.
fn at_rest(target: &TargetArgs) -> Result<String> {
    let target = target.resolve()?;
    let store = target.open_read_only()?;
    let live = store.live()?;
    let (live_entries, live_bytes) = (live.entries, live.bytes);
    let mut files: std::collections::BTreeMap<String, (u64, u64)> =
        std::collections::BTreeMap::new();
    let entries = if target.engine.keeps_local_files() {
        std::fs::read_dir(&target.dir)
            .map_err(Error::file(&target.dir))?
            .filter_map(Result::ok)
            .collect()
    } else {
        Vec::new()
    };
    for entry in entries {
        let name = entry.file_name().to_string_lossy().into_owned();
        let kind = match name.rsplit_once('.') {
            Some((_, extension)) if !extension.is_empty() => format!("*.{extension}"),
            _ => name
                .trim_end_matches(|c: char| c.is_ascii_digit())
                .to_owned(),
        };
        let bytes = entry.metadata().map_or(0, |meta| meta.len());
        let slot = files.entry(kind).or_default();
        slot.0 += 1;
        slot.1 += bytes;
    }
    if !target.engine.keeps_local_files() {
        // The objects (or rows) are the store's files: every lease and
        // snapshot.
        files.insert(
            remote_unit(target.engine).to_owned(),
            (live_entries, live_bytes),
        );
    }
    let disk_bytes: u64 = files.values().map(|(_, bytes)| bytes).sum();
    let mut out = format!(
        "{} {} — read from its {} (no process publishes live metrics here; use --file)\n",
        target.label(),
        target.dir.display(),
        if target.engine.keeps_local_files() {
            "files".to_owned()
        } else {
            format!("{} on the server", remote_unit(target.engine))
        }
    );
    for (kind, (count, bytes)) in &files {
        out.push_str(&format!("{kind:<14} {count:>5} files {bytes:>14} bytes\n"));
    }
    out.push_str(&format!(
        "live           {live_entries} entries, {live_bytes} key+value bytes; {disk_bytes} bytes on disk; space amp {}\n",
        if live_bytes > 0 { format!("{:.2}", disk_bytes as f64 / live_bytes as f64) } else { "-".to_owned() }
    ));
    match store.health() {
        Health::Healthy => out.push_str("health         healthy\n"),
        Health::Degraded(reason) => out.push_str(&format!("health         degraded: {reason}\n")),
        Health::Failed(reason) => out.push_str(&format!("health         failed: {reason}\n")),
    }
    Ok(out)
}

pub fn metrics(target: &TargetArgs, options: &MetricsOptions) -> Status {
    let render = || match options.file {
        Some(file) => crate::metrics::read(file).map(|view| view.render()),
        None => at_rest(target),
    };
    if !options.watch {
        print!("{}", render()?);
        return Ok(0);
    }
    let mut shown = 0u64;
    loop {
        let text = render()?;
        // Clear the screen and go home: the view refreshes in place.
        print!("\x1b[2J\x1b[H{text}");
        use std::io::Write as _;
        let _ = std::io::stdout().flush();
        shown += 1;
        if options.count.is_some_and(|count| shown >= count) {
            return Ok(0);
        }
        std::thread::sleep(options.interval);
    }
}

pub fn dump(target: &TargetArgs, file: Option<&str>, max_entries: usize) -> Status {
    let target = target.resolve()?;
    // Reads raw files: nothing is opened for writing.
    let vfs = OsVfs::new();
    let text = match &target.engine.row().dump {
        engines::registry::Dump::Files(dump) => {
            dump(&vfs, &target.dir, file, max_entries, &describe_key)
        }
        engines::registry::Dump::MemoryBackup => {
            let path = file.map_or_else(
                || engines::memory_backup_path(&target.settings, &target.dir),
                |file| target.dir.join(file),
            );
            std::fs::read(&path)
                .map(|bytes| {
                    format!(
                        "== {} ({} bytes)\n{}",
                        path.display(),
                        bytes.len(),
                        leasehold_memory::backup::describe(
                            &path,
                            &bytes,
                            max_entries,
                            &describe_key
                        )
                    )
                })
                .map_err(|err| leasehold_core::KvError::io(format!("read {}", path.display()), err))
        }
        engines::registry::Dump::Refused(why) => {
            return Err(Error::Usage(format!("{}: {why}", target.label())))
        }
    }?;
    print!("{text}");
    // A dump that met damage says so in its exit status, as verify does.
    let damaged = text.contains("INVALID") || text.contains("CORRUPT");
    Ok(u8::from(damaged))
}
