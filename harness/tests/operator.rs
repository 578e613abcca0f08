//! The operator commands, driven as an operator would, against data the
//! harness wrote: listing, inspecting, verifying, dumping, probing — and a
//! flipped byte that verify and dump must find with its offset.

#![allow(clippy::unwrap_used, clippy::expect_used)] // test code: a failure panics with its message

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

fn leasehold(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_leasehold"))
        .args(args)
        .output()
        .unwrap()
}

fn stdout(output: &Output) -> String {
    String::from_utf8_lossy(&output.stdout).into_owned()
}

fn stderr(output: &Output) -> String {
    String::from_utf8_lossy(&output.stderr).into_owned()
}

/// Runs `scenario` on `engine` and keeps the files; returns their directory.
fn harness_data(root: &Path, scenario: &str, engine: &str) -> PathBuf {
    let data = root.join("data");
    let output = leasehold(&[
        "run",
        "--scenario",
        scenario,
        "--scale",
        "0.02",
        "--engine",
        engine,
        "--keep-data",
        "--data-dir",
        data.to_str().unwrap(),
        "--out",
        root.join("results").to_str().unwrap(),
        "--metrics-file",
        root.join(format!("{engine}-metrics.json"))
            .to_str()
            .unwrap(),
    ]);
    assert!(output.status.success(), "{}", stderr(&output));
    data.join(format!("{scenario}-{engine}-buffered"))
}

/// Every file's bytes, to show a command changed nothing.
fn contents(dir: &Path) -> BTreeMap<String, Vec<u8>> {
    std::fs::read_dir(dir)
        .unwrap()
        .map(|entry| {
            let entry = entry.unwrap();
            (
                entry.file_name().to_string_lossy().into_owned(),
                std::fs::read(entry.path()).unwrap(),
            )
        })
        .collect()
}

fn target<'a>(engine: &'a str, dir: &'a Path) -> [&'a str; 4] {
    ["--engine", engine, "--dir", dir.to_str().unwrap()]
}

fn run(command: &[&str], target: [&str; 4]) -> Output {
    let mut args: Vec<&str> = command.to_vec();
    args.extend_from_slice(&target);
    leasehold(&args)
}

#[test]
fn reading_commands_show_the_data_and_change_nothing() {
    let root = tempfile::tempdir().unwrap();
    for engine in ["lsm", "btree"] {
        let dir = harness_data(root.path(), "steady-zipf", engine);
        let before = contents(&dir);
        let at = ["--at", "1700000100000"];

        let listed = run(
            &[&["actor", "list-leases"][..], &at[..]].concat(),
            target(engine, &dir),
        );
        assert!(listed.status.success(), "{}", stderr(&listed));
        let text = stdout(&listed);
        assert!(
            text.starts_with("ACTOR TYPE") && text.contains("player") && text.contains(" leases\n"),
            "{text}"
        );

        let json = run(
            &["actor", "list-leases", "--json", "--node-id", "node-1"],
            target(engine, &dir),
        );
        let rows: Vec<serde_json::Value> = serde_json::from_slice(&json.stdout).unwrap();
        assert!(
            !rows.is_empty() && rows.iter().all(|row| row["owner"] == "node-1"),
            "{rows:?}"
        );

        // Actor 0 was preloaded with a snapshot before the run.
        let inspected = run(
            &[
                "actor",
                "inspect-state",
                "--actor-type",
                "player",
                "--actor-id",
                "00000000",
            ],
            target(engine, &dir),
        );
        assert!(inspected.status.success(), "{}", stderr(&inspected));
        let text = stdout(&inspected);
        assert!(
            text.contains("(verified)") && text.contains("version ") && text.contains("00000000  "),
            "{text}"
        );
        let missing = run(
            &[
                "actor",
                "inspect-state",
                "--actor-type",
                "player",
                "--actor-id",
                "nobody",
            ],
            target(engine, &dir),
        );
        assert_eq!(missing.status.code(), Some(1));
        assert!(stdout(&missing).contains("snapshot     none"));

        let verified = run(&["verify"], target(engine, &dir));
        assert!(
            verified.status.success() && stdout(&verified).contains("no problems"),
            "{}",
            stdout(&verified)
        );

        let dumped = run(&["dump", "--max-entries", "1"], target(engine, &dir));
        assert!(dumped.status.success(), "{}", stderr(&dumped));
        assert!(stdout(&dumped).contains("checksum valid") && !stdout(&dumped).contains("INVALID"));

        let at_rest = run(&["metrics"], target(engine, &dir));
        assert!(
            at_rest.status.success() && stdout(&at_rest).contains("live "),
            "{}",
            stdout(&at_rest)
        );

        assert_eq!(
            contents(&dir),
            before,
            "{engine}: a reading command changed the files"
        );
    }
}

#[test]
fn verify_and_dump_find_a_flipped_byte_with_its_offset() {
    let root = tempfile::tempdir().unwrap();
    for (engine, file, offset) in [
        ("lsm", "000003.sst", 100u64),
        ("btree", "data.db", 3 * 4096 + 100),
    ] {
        let dir = harness_data(root.path(), "steady-zipf", engine);
        let path = dir.join(file);
        let mut bytes = std::fs::read(&path).unwrap();
        bytes[offset as usize] ^= 0x04;
        std::fs::write(&path, &bytes).unwrap();

        let verified = run(&["verify"], target(engine, &dir));
        assert_eq!(
            verified.status.code(),
            Some(1),
            "{engine}: {}",
            stdout(&verified)
        );
        let report = stdout(&verified);
        assert!(
            report.contains("problem:") && report.contains(file),
            "{engine}: {report}"
        );
        // The damaged page or block starts at or before the flipped byte.
        let at: u64 = report
            .split("at offset ")
            .nth(1)
            .and_then(|rest| rest.split(':').next())
            .and_then(|number| number.trim().parse().ok())
            .unwrap_or_else(|| panic!("{engine}: no offset in {report}"));
        assert!(
            at <= offset && offset - at < 65_536,
            "{engine}: offset {at} for a flip at {offset}"
        );

        let dumped = run(
            &["dump", "--file", file, "--max-entries", "0"],
            target(engine, &dir),
        );
        assert_eq!(dumped.status.code(), Some(1), "{engine}");
        let text = stdout(&dumped);
        let damaged = text
            .lines()
            .find(|line| line.contains("INVALID"))
            .unwrap_or_else(|| panic!("{text}"));
        assert!(damaged.contains(&format!("@{at}")), "{engine}: {damaged}");
        assert!(!stderr(&dumped).contains("panicked"));
    }
}

/// A health check of a directory a live store holds says whose lock it is,
/// checks read-only, and changes nothing the live store depends on (on main
/// it opened read-write and deleted the live store's log and manifest).
#[test]
fn health_check_of_a_live_store_reads_only_and_names_the_holder() {
    use leasehold_core::{Durability, KvEngine, WriteBatch};
    use std::sync::Arc;
    let root = tempfile::tempdir().unwrap();
    for engine in ["lsm", "btree"] {
        let dir = harness_data(root.path(), "steady-zipf", engine);
        let vfs = Arc::new(leasehold_core::vfs::OsVfs::new());
        let live: Box<dyn KvEngine> = match engine {
            "lsm" => Box::new(
                leasehold_lsm::LsmEngine::open(
                    &leasehold_config::LsmConfig {
                        data_dir: dir.clone(),
                        ..Default::default()
                    },
                    vfs,
                )
                .unwrap(),
            ),
            _ => Box::new(
                leasehold_btree::BtreeEngine::open(
                    &leasehold_config::BtreeConfig {
                        data_dir: dir.clone(),
                        ..Default::default()
                    },
                    vfs,
                )
                .unwrap(),
            ),
        };
        let mut batch = WriteBatch::new();
        batch.put(&b"written-while-checked"[..], &b"1"[..]);
        live.write(batch, Durability::Sync).unwrap();
        let before = contents(&dir);
        let checked = run(&["health-check"], target(engine, &dir));
        let text = stdout(&checked);
        assert_eq!(checked.status.code(), Some(0), "{text}{}", stderr(&checked));
        assert!(
            text.contains(&format!("held by process {}", std::process::id())),
            "{text}"
        );
        assert!(text.contains("skipped"), "{text}");
        assert_eq!(contents(&dir), before, "{engine}: the check changed files");
        live.close().unwrap();
        let verified = run(&["verify"], target(engine, &dir));
        assert!(
            stdout(&verified).contains("no problems"),
            "{}",
            stdout(&verified)
        );
    }
}

#[test]
fn health_check_probes_and_metrics_render_a_live_run() {
    let root = tempfile::tempdir().unwrap();
    let dir = harness_data(root.path(), "churn", "lsm");
    let checked = run(&["health-check"], target("lsm", &dir));
    assert_eq!(
        checked.status.code(),
        Some(0),
        "{}{}",
        stdout(&checked),
        stderr(&checked)
    );
    let text = stdout(&checked);
    for probe in ["open", "engine", "round trip", "verify", "disk space"] {
        assert!(
            text.lines()
                .any(|line| line.starts_with(probe) && line.contains(" ok ")),
            "{probe}: {text}"
        );
    }
    assert!(text.trim_end().ends_with("Healthy"));
    // The probe key is gone again: verify still sees only the harness's data.
    assert!(stdout(&run(&["verify"], target("lsm", &dir))).contains("no problems"));

    let metrics_file = root.path().join("lsm-metrics.json");
    let shown = leasehold(&[
        "metrics",
        "--file",
        metrics_file.to_str().unwrap(),
        "--watch",
        "--interval",
        "50ms",
        "--count",
        "2",
    ]);
    assert!(shown.status.success(), "{}", stderr(&shown));
    let text = stdout(&shown);
    assert_eq!(
        text.matches("\x1b[2J").count(),
        2,
        "refreshed in place twice"
    );
    assert!(
        text.contains("save") && text.contains("P99 µs") && text.contains("write amp"),
        "{text}"
    );
}

#[test]
fn bad_targets_are_clear_errors_never_panics() {
    let root = tempfile::tempdir().unwrap();
    let lsm = harness_data(root.path(), "lease-contention", "lsm");
    let cases: Vec<(Vec<String>, &str)> = vec![
        (
            vec![
                "verify".into(),
                "--engine".into(),
                "lsm".into(),
                "--dir".into(),
                root.path().join("absent").display().to_string(),
            ],
            "cannot read directory",
        ),
        (
            vec![
                "verify".into(),
                "--engine".into(),
                "btree".into(),
                "--dir".into(),
                lsm.display().to_string(),
            ],
            "holds lsm data, not btree",
        ),
        (
            vec![
                "verify".into(),
                "--engine".into(),
                "lsm".into(),
                "--dir".into(),
                root.path().display().to_string(),
            ],
            "holds no Leasehold database",
        ),
        (
            vec!["verify".into()],
            "--config FILE or with --engine E --dir D",
        ),
        (
            vec![
                "actor".into(),
                "list-leases".into(),
                "--config".into(),
                root.path().join("missing.toml").display().to_string(),
            ],
            "missing.toml",
        ),
    ];
    for (args, expected) in cases {
        let args: Vec<&str> = args.iter().map(String::as_str).collect();
        let output = leasehold(&args);
        assert!(!output.status.success(), "{args:?}");
        assert!(
            stderr(&output).contains(expected),
            "{args:?}: {}",
            stderr(&output)
        );
        assert!(!stderr(&output).contains("panicked"), "{args:?}");
    }
    let config = root.path().join("bad.toml");
    std::fs::write(
        &config,
        "[persistence]\ntype = \"lsm_tree\"\nmemtable_size_limit = \"big\"\n",
    )
    .unwrap();
    let output = leasehold(&["verify", "--config", config.to_str().unwrap()]);
    assert!(
        !output.status.success() && stderr(&output).contains("memtable_size_limit"),
        "{}",
        stderr(&output)
    );
    let config = root.path().join("good.toml");
    std::fs::write(
        &config,
        format!(
            "[persistence]\ntype = \"lsm_tree\"\ndata_dir = \"{}\"\n",
            lsm.display()
        ),
    )
    .unwrap();
    let output = leasehold(&["verify", "--config", config.to_str().unwrap()]);
    assert!(output.status.success(), "{}", stderr(&output));
}

/// A memory config with its own backup file name: the operator commands used
/// to look for `backup.lz4` beside it ("not a Leasehold database"), or
/// inspect — and rewrite at close — a stray `backup.lz4` instead. And what
/// they print of stored text is escaped (an actor id holding a terminal
/// escape sequence), and a JSON state is cut at `--max-bytes` too.
#[test]
fn the_operator_commands_read_the_memory_backup_their_config_names() {
    use leasehold_core::{ActorKey, KvStore, NodeId, SnapshotWrite, Store, Timestamp};
    let root = tempfile::tempdir().unwrap();
    let backup = root.path().join("actors.bak");
    let memory = leasehold_config::MemoryConfig {
        backup_path: Some(backup.clone()),
        ..Default::default()
    };
    let engine = leasehold_memory::MemoryEngine::open(
        &memory,
        std::sync::Arc::new(leasehold_core::vfs::OsVfs::new()),
    )
    .unwrap();
    let store = KvStore::new(engine, leasehold_core::Durability::Sync);
    let key = ActorKey::new("player", "p-1\u{1b}[2J");
    let now = Timestamp(1_700_000_000_000);
    let lease = store
        .try_acquire(
            &key,
            &NodeId::new("node-1"),
            std::time::Duration::from_secs(60),
            now,
        )
        .unwrap();
    let epoch = lease.lease().unwrap().epoch;
    store
        .save(SnapshotWrite::new(key, &b"{\"hp\":3}"[..]), 0, epoch, now)
        .unwrap();
    store.close().unwrap();
    let config = root.path().join("memory.toml");
    std::fs::write(
        &config,
        format!(
            "[persistence]\ntype = \"memory\"\nenable_disk_backup = true\nbackup_path = \"{}\"\n",
            backup.display()
        ),
    )
    .unwrap();
    let before = contents(root.path());
    let at = ["--at", "1700000010000"];
    for command in [
        &["verify"][..],
        &["actor", "list-leases", at[0], at[1]][..],
        &["dump"][..],
    ] {
        let output = leasehold(&[command, &["--config", config.to_str().unwrap()][..]].concat());
        assert!(output.status.success(), "{command:?}: {}", stderr(&output));
        if command[0] == "actor" {
            assert!(stdout(&output).contains("p-1"), "{}", stdout(&output));
            assert!(!stdout(&output).contains('\u{1b}'), "{}", stdout(&output));
        }
    }
    let inspected = leasehold(&[
        "actor",
        "inspect-state",
        "--config",
        config.to_str().unwrap(),
        "--actor-type",
        "player",
        "--actor-id",
        "p-1\u{1b}[2J",
        "--max-bytes",
        "4",
        at[0],
        at[1],
    ]);
    let text = stdout(&inspected);
    assert!(inspected.status.success(), "{}", stderr(&inspected));
    assert!(
        !text.contains('\u{1b}') && text.contains("more bytes"),
        "{text}"
    );
    assert_eq!(
        before,
        contents(root.path()),
        "reading commands changed nothing"
    );
}
