//! The registry's tests. Each walks every row — and `TOY`, an engine put in
//! the harness here the way any engine is, by a row alone — so an engine
//! added to the registry is opened, written, recognised by its files, shown
//! and crash-fuzzed without a test naming it.

use std::path::Path;
use std::time::Duration;

use clap::ValueEnum;
use leasehold_core::vfs::{CrashPolicy, OsVfs};
use leasehold_core::{ActorKey, KvEngine, KvResult, NodeId, SnapshotWrite, Timestamp};
use leasehold_testkit::toy::ToyLogEngine;

use super::*;
use crate::crash_fuzz::{self, Mode, Options};
use crate::engines::crash::{Maintained, Setting};
use crate::engines::EngineKind;

/// Core's toy log engine as a harness engine: this row, and the `Maintained`
/// the crash campaign asks of it, are the whole of its entry.
const TOY: Row = Row {
    name: "toy",
    about: "core's toy log engine (tests only)",
    compared_by_default: false,
    version: "testkit",
    local_files: true,
    durable: true,
    buffered: true,
    kv_engine: true,
    locks_dir: false,
    recognises: Some(|names| names.iter().any(|name| name == "toy.log")),
    open: |at| {
        let engine = ToyLogEngine::open(Arc::clone(&at.vfs), at.dir, false)
            .map_err(crate::Error::open("toy"))?;
        Ok(Box::new(KvStore::new(engine, at.durability)))
    },
    open_read_only: None,
    files_of: None,
    dump: Dump::Refused("a toy"),
    crash: Some(&TOY_CRASH),
};

const TOY_CRASH: CrashRow = CrashRow {
    dir: "/toy",
    describe_file: |name| (name == "toy.log").then_some("log"),
    open: |vfs, _setting: Setting, _planted| {
        Ok(Box::new(ToyLogEngine::open(
            Arc::new(vfs),
            Path::new("/toy"),
            false,
        )?))
    },
    planted_bugs: Vec::new,
    group_bound: (Duration::from_millis(20), Duration::from_millis(20)),
};

impl Maintained for ToyLogEngine {
    fn maintain(&self) -> KvResult<()> {
        self.flush()
    }
}

fn every_row() -> impl Iterator<Item = &'static Row> {
    ROWS.iter().chain(std::iter::once(&TOY))
}

/// Names are unique, and clap and serde name each engine by its row.
#[test]
fn every_row_is_one_engine_under_its_own_name() {
    for row in &ROWS {
        assert_eq!(
            ROWS.iter().filter(|other| other.name == row.name).count(),
            1
        );
        let kind = EngineKind::named(row.name);
        assert_eq!(kind.map(EngineKind::name), Some(row.name));
        let named = kind.and_then(|kind| kind.to_possible_value());
        assert_eq!(named.as_ref().map(|value| value.get_name()), Some(row.name));
        let json = serde_json::to_string(&kind).unwrap_or_default();
        let back: Option<EngineKind> = serde_json::from_str(&json).ok();
        assert_eq!(back, kind, "{json}");
    }
    assert_eq!(EngineKind::value_variants().len(), ROWS.len());
    assert!(serde_json::from_str::<EngineKind>("\"nosuch\"").is_err());
}

/// Every engine with local files keeps a save across a close and reopen (and
/// one that says it locks its directory refuses a second open); the
/// directory it leaves is claimed by its own recogniser and no other; its
/// files show, where the row says they can.
#[test]
fn every_engine_on_local_files_keeps_a_save_and_is_known_by_its_files() {
    let key = ActorKey::new("Counter", "registry");
    let node = NodeId::new("node-a");
    let now = Timestamp::from_millis(1_000);
    for row in every_row().filter(|row| row.local_files) {
        let dir = tempfile::tempdir().expect("temp dir");
        let settings = EngineSettings::default();
        let opening = Opening {
            durability: Durability::Sync,
            settings: &settings,
            dir: dir.path(),
            max_actors: 16,
            vfs: Arc::new(OsVfs::new()),
            memory_backup: true,
        };
        let store = (row.open)(&opening).unwrap_or_else(|err| panic!("{}: {err}", row.name));
        if row.locks_dir {
            // The row's word that it locks its directory, held to: the
            // engine's own `Locked`, kept as the cause of the harness's error.
            let second = (row.open)(&opening).err();
            let cause = second
                .as_ref()
                .and_then(std::error::Error::source)
                .and_then(|cause| cause.downcast_ref::<leasehold_core::KvError>());
            assert!(
                matches!(cause, Some(leasehold_core::KvError::Locked { .. })),
                "{}: {second:?}",
                row.name
            );
        }
        let lease = store
            .try_acquire(&key, &node, Duration::from_secs(30), now)
            .unwrap_or_else(|err| panic!("{}: {err}", row.name))
            .lease()
            .cloned()
            .unwrap_or_else(|| panic!("{}: lease refused", row.name));
        let write = SnapshotWrite::new(key.clone(), &b"seven"[..]);
        store
            .save(write, 0, lease.epoch, now)
            .unwrap_or_else(|err| panic!("{}: {err}", row.name));
        store
            .close()
            .unwrap_or_else(|err| panic!("{}: {err}", row.name));
        drop(store);

        let reopened = (row.open)(&opening).unwrap_or_else(|err| panic!("{}: {err}", row.name));
        let loaded = reopened
            .load(&key, now)
            .unwrap_or_else(|err| panic!("{}: {err}", row.name));
        assert_eq!(
            loaded.map(|snapshot| snapshot.state),
            Some(bytes::Bytes::from_static(b"seven")),
            "{}",
            row.name
        );
        reopened
            .close()
            .unwrap_or_else(|err| panic!("{}: {err}", row.name));
        drop(reopened);
        if let Some(open_read_only) = row.open_read_only {
            let reader =
                open_read_only(&opening).unwrap_or_else(|err| panic!("{}: {err}", row.name));
            let loaded = reader
                .load(&key, now)
                .unwrap_or_else(|err| panic!("{}: {err}", row.name));
            assert_eq!(
                loaded.map(|snapshot| snapshot.version),
                Some(1),
                "{}",
                row.name
            );
            reader
                .close()
                .unwrap_or_else(|err| panic!("{}: {err}", row.name));
        }

        let names: Vec<String> = std::fs::read_dir(dir.path())
            .expect("list")
            .filter_map(Result::ok)
            .filter_map(|entry| entry.file_name().to_str().map(str::to_owned))
            .collect();
        let claimed: Vec<&str> = every_row()
            .filter(|other| {
                other
                    .recognises
                    .is_some_and(|recognises| recognises(&names))
            })
            .map(|other| other.name)
            .collect();
        if row.recognises.is_some() {
            assert_eq!(claimed, [row.name], "{}: {names:?}", row.name);
        } else if let Some(owner) = row.files_of {
            assert_eq!(claimed, [owner], "{}: {names:?}", row.name);
        } else {
            // An engine the operator commands do not open (a peer).
            assert!(claimed.len() <= 1, "{}: {claimed:?}", row.name);
        }
        if let Dump::Files(dump) = row.dump {
            let shown = dump(
                &OsVfs::new(),
                dir.path(),
                None,
                10,
                &leasehold_core::dump::describe_key,
            )
            .unwrap_or_else(|err| panic!("{}: {err}", row.name));
            assert!(!shown.is_empty(), "{}", row.name);
        }
    }
}

/// Every engine with a crash row passes a short campaign of the oracle.
#[test]
fn every_engine_with_a_crash_row_passes_a_short_campaign() {
    let out = tempfile::tempdir().expect("temp dir");
    for row in every_row() {
        let Some(crash) = row.crash else { continue };
        let options = Options {
            // Only names the engine in reports; the toy has no handle.
            engine: EngineKind::named(row.name).unwrap_or(EngineKind::NULL),
            seconds: 1,
            seed: 7,
            policies: CrashPolicy::ALL.to_vec(),
            mode: Mode::Crash,
            exhaustive: false,
            replay: None,
            out: Some(out.path().join(format!("{}.json", row.name))),
            report: false,
            planted: None,
        };
        let found = crash_fuzz::run_row(&options, crash);
        assert!(found.is_ok(), "{}: {found:?}", row.name);
    }
    let not_crashable = crash_fuzz::crash_row(EngineKind::ROCKSDB).err();
    assert!(
        matches!(not_crashable, Some(crate::Error::Usage(why)) if why.contains("does its own file I/O")),
        "RocksDB cannot run on the simulated disk"
    );
}
