//! The `leasehold` binary, driven as a user would.

#![allow(clippy::unwrap_used, clippy::expect_used)] // test code: a failure panics with its message

use std::process::Command;

/// `output`, after checking the command succeeded (its stderr if not).
fn succeeded(output: std::process::Output) -> std::process::Output {
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    output
}

fn leasehold() -> Command {
    Command::new(env!("CARGO_BIN_EXE_leasehold"))
}

#[test]
fn compare_writes_results_summary_and_plots_for_every_engine() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("results");
    let output = leasehold()
        .args([
            "compare",
            "--scale",
            "0.01",
            "--scenario",
            "steady-zipf",
            "--scenario",
            "recovery",
        ])
        .arg("--out")
        .arg(&out)
        .arg("--data-dir")
        .arg(dir.path().join("data"))
        .output()
        .unwrap();
    assert!(
        output.status.success(),
        "stderr: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    let summary = std::fs::read_to_string(out.join("SUMMARY.md")).unwrap();
    for scenario in ["steady-zipf", "recovery"] {
        assert!(summary.contains(&format!("## {scenario}")), "{summary}");
        for run in [
            "memory-none",
            "lsm-buffered",
            "lsm-sync",
            "btree-buffered",
            "btree-sync",
        ] {
            let path = out.join(scenario).join(format!("{run}.json"));
            let json: serde_json::Value =
                serde_json::from_str(&std::fs::read_to_string(&path).unwrap()).unwrap();
            let result = &json["result"];
            assert_eq!(result["mismatches"], 0, "{path:?}");
            assert_eq!(result["duplicate_owners"], 0, "{path:?}");
            assert!(result["throughput_ops_per_sec"].as_f64().unwrap() > 0.0);
            assert!(json["machine"]["cores"].as_u64().unwrap() > 0);
        }
        for plot in ["throughput", "latency", "amplification"] {
            let svg =
                std::fs::read_to_string(out.join("plots").join(format!("{scenario}-{plot}.svg")))
                    .unwrap();
            assert!(
                svg.starts_with("<svg") && svg.contains("lsm (sync)"),
                "{plot}"
            );
        }
    }
    // The recovery scenario reopens durable engines mid-run.
    let recovery: serde_json::Value = serde_json::from_str(
        &std::fs::read_to_string(out.join("recovery").join("btree-sync.json")).unwrap(),
    )
    .unwrap();
    assert!(!recovery["result"]["reopens"].as_array().unwrap().is_empty());
    assert!(summary.contains("Reproduce with `leasehold compare --scale 0.01"));
    // Ratios to RocksDB from the results (the same comparison stands in for
    // both regimes here, so both columns must agree).
    let ratios = dir.path().join("ratios");
    succeeded(
        leasehold()
            .arg("ratios")
            .arg("--in-memory")
            .arg(&out)
            .arg("--beyond-memory")
            .arg(&out)
            .arg("--out")
            .arg(&ratios)
            .output()
            .unwrap(),
    );
    let text = std::fs::read_to_string(ratios.join("RATIOS.md")).unwrap();
    let row = text
        .lines()
        .find(|line| line.starts_with("| rocksdb-blob | sync |"))
        .unwrap_or_else(|| panic!("{text}"));
    let cells: Vec<&str> = row.split('|').map(str::trim).collect();
    assert_eq!(
        cells[3], cells[4],
        "the same results in both columns: {row}"
    );
    assert!(cells[3].parse::<f64>().unwrap() > 0.0, "{row}");
    assert!(ratios
        .join("plots/ratio-steady-zipf-throughput.svg")
        .exists());
}

#[test]
fn record_then_replay_checks_every_answer() {
    let dir = tempfile::tempdir().unwrap();
    let trace = dir.path().join("churn.lht");
    succeeded(
        leasehold()
            .args(["record", "--scenario", "churn", "--scale", "0.01", "--out"])
            .arg(&trace)
            .output()
            .unwrap(),
    );
    for engine in ["lsm", "btree", "memory"] {
        let output = leasehold()
            .args(["replay", "--engine", engine, "--trace"])
            .arg(&trace)
            .arg("--data-dir")
            .arg(dir.path().join("data"))
            .output()
            .unwrap();
        assert!(
            output.status.success(),
            "{engine}: {}",
            String::from_utf8_lossy(&output.stderr)
        );
        assert!(String::from_utf8_lossy(&output.stdout).contains("every answer matched"));
    }
    // A damaged trace is refused with the offset, not replayed.
    let mut bytes = std::fs::read(&trace).unwrap();
    let middle = bytes.len() / 2;
    bytes[middle] ^= 0x40;
    std::fs::write(&trace, bytes).unwrap();
    let output = leasehold()
        .args(["replay", "--engine", "memory", "--trace"])
        .arg(&trace)
        .output()
        .unwrap();
    assert!(!output.status.success());
    assert!(
        String::from_utf8_lossy(&output.stderr).contains("corrupt"),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
}

#[test]
fn a_bad_command_line_or_scenario_is_an_error_not_a_panic() {
    let output = leasehold()
        .args(["compare", "--scale", "many"])
        .output()
        .unwrap();
    assert!(!output.status.success());
    assert!(String::from_utf8_lossy(&output.stderr).contains("invalid value"));
    let output = leasehold()
        .args(["compare", "--scale=-1"])
        .output()
        .unwrap();
    assert_eq!(output.status.code(), Some(1));
    let output = leasehold()
        .args(["run", "--scenario", "nope", "--engine", "lsm"])
        .output()
        .unwrap();
    assert!(String::from_utf8_lossy(&output.stderr).contains("no built-in scenario \"nope\""));
    let dir = tempfile::tempdir().unwrap();
    let bad = dir.path().join("bad.toml");
    std::fs::write(&bad, "name = \"bad\"\nseed = 1\nactors = 5\nnodes = 2\nmessages_per_sec = 1\nrun_secs = 1\n[leases]\nrace = 9\n").unwrap();
    let output = leasehold()
        .args(["run", "--engine", "memory", "--scenario"])
        .arg(&bad)
        .output()
        .unwrap();
    assert!(!output.status.success());
    assert!(String::from_utf8_lossy(&output.stderr).contains("leases.race"));
    let output = leasehold().arg("frobnicate").output().unwrap();
    assert_eq!(output.status.code(), Some(2));
}

#[test]
fn crash_fuzz_searches_runs_exhaustively_and_replays_reproducers() {
    let output = succeeded(
        leasehold()
            .args([
                "crash-fuzz",
                "--engine",
                "memory",
                "--seconds",
                "1",
                "--seed",
                "3",
            ])
            .output()
            .unwrap(),
    );
    assert!(String::from_utf8_lossy(&output.stdout).contains("no violation"));

    let output = succeeded(
        leasehold()
            .args([
                "crash-fuzz",
                "--engine",
                "btree",
                "--exhaustive",
                "--policy",
                "power-loss",
            ])
            .output()
            .unwrap(),
    );
    assert!(String::from_utf8_lossy(&output.stdout)
        .contains("crash points of 6 sequences under 1 policies, no violation"));

    let dir = tempfile::tempdir().unwrap();
    let case = leasehold_testkit::crash::CrashCase {
        ops: vec![leasehold_testkit::crash::CrashOp::Write {
            ops: vec![(1, Some(vec![7; 100]))],
            durability: leasehold_core::Durability::Sync,
        }],
        crash_after: 2,
        policy: leasehold_core::vfs::CrashPolicy::PowerLoss,
        seed: 1,
        recovery_crash_after: 1,
        recovery_policy: leasehold_core::vfs::CrashPolicy::Prefix,
    };
    let path = dir.path().join("case.json");
    std::fs::write(&path, serde_json::to_string(&case).unwrap()).unwrap();
    let output = succeeded(
        leasehold()
            .args(["crash-fuzz", "--engine", "lsm", "--replay"])
            .arg(&path)
            .output()
            .unwrap(),
    );
    assert!(String::from_utf8_lossy(&output.stdout).contains("the case passes"));

    std::fs::write(&path, "not a case").unwrap();
    let output = leasehold()
        .args(["crash-fuzz", "--engine", "lsm", "--replay"])
        .arg(&path)
        .output()
        .unwrap();
    assert_eq!(output.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&output.stderr).contains("is not a crash case"));

    let output = leasehold()
        .args(["crash-fuzz", "--engine", "lsm", "--policy", "sideways"])
        .output()
        .unwrap();
    assert_eq!(output.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&output.stderr).contains("unknown crash policy"));
}

#[test]
fn crash_fuzz_reports_what_it_covered() {
    let dir = tempfile::tempdir().unwrap();
    succeeded(
        leasehold()
            .current_dir(dir.path())
            .args([
                "crash-fuzz",
                "--engine",
                "btree",
                "--seconds",
                "1",
                "--seed",
                "5",
                "--report",
            ])
            .output()
            .unwrap(),
    );
    let report = std::fs::read_to_string(dir.path().join("results/crash-fuzz-btree.md")).unwrap();
    for expected in [
        "| data file | write |",
        "| log | fsync |",
        "Where the crash inside recovery struck",
        "--seed 5 --report",
    ] {
        assert!(
            report.contains(expected),
            "missing {expected:?} in\n{report}"
        );
    }
    let json: serde_json::Value = serde_json::from_str(
        &std::fs::read_to_string(dir.path().join("results/crash-fuzz-btree.json")).unwrap(),
    )
    .unwrap();
    assert!(json["cases"].as_u64().unwrap() > 100);

    // A device-fault campaign reports fault × file kind × phase.
    succeeded(
        leasehold()
            .current_dir(dir.path())
            .args([
                "crash-fuzz",
                "--engine",
                "lsm",
                "--mode",
                "device-faults",
                "--seconds",
                "2",
                "--seed",
                "5",
                "--report",
            ])
            .output()
            .unwrap(),
    );
    let report =
        std::fs::read_to_string(dir.path().join("results/crash-fuzz-lsm-device-faults.md"))
            .unwrap();
    for expected in [
        "| fault | file | write |",
        "| EIO on fsync | log |",
        "| short write | log |",
        "--mode device-faults",
    ] {
        assert!(
            report.contains(expected),
            "missing {expected:?} in\n{report}"
        );
    }
    let json: serde_json::Value = serde_json::from_str(
        &std::fs::read_to_string(dir.path().join("results/crash-fuzz-lsm-device-faults.json"))
            .unwrap(),
    )
    .unwrap();
    assert!(!json["faults"].as_array().unwrap().is_empty());
}

/// Every planted bug, hunted in the mode that can see it, must be caught — in
/// a build with the `planted-bugs` feature (scripts/test runs this one with it).
/// Without the feature the switch must be refused, not silently ignored.
#[test]
fn planted_bugs_need_their_build_and_are_caught_with_it() {
    let bugs = [
        ("lsm", "skip-wal-sync", "crash"),
        ("lsm", "skip-dir-sync", "crash"),
        ("lsm", "ack-before-wal", "crash"),
        ("lsm", "delete-live-blob", "crash"),
        ("lsm", "forget-failures", "device-faults"),
        ("lsm", "skip-block-checksum", "read-faults"),
        ("btree", "skip-log-sync", "crash"),
        ("btree", "skip-dir-sync", "crash"),
        ("btree", "ack-before-wal", "crash"),
        ("btree", "skip-data-sync", "crash"),
        ("btree", "skip-page-checksum", "read-faults"),
        ("memory", "skip-backup-sync", "crash"),
        ("memory", "skip-dir-sync", "crash"),
        ("memory", "ack-before-backup", "crash"),
        ("memory", "skip-checksum", "read-faults"),
        ("lsm", "skip-dir-lock", "damage"),
        ("lsm", "trust-torn-manifest", "damage"),
        ("btree", "skip-dir-lock", "damage"),
        ("btree", "fall-back-blindly", "damage"),
        ("memory", "skip-dir-lock", "damage"),
        ("memory", "ignore-witness", "damage"),
        ("lsm", "pick-before-lock", "background"),
        ("btree", "ignore-readers", "background"),
        ("lsm", "no-group-timer", "group-bound"),
        ("btree", "no-group-timer", "group-bound"),
    ];
    for (engine, bug, mode) in bugs {
        let output = leasehold()
            .args([
                "crash-fuzz",
                "--engine",
                engine,
                "--planted",
                bug,
                "--mode",
                mode,
            ])
            // A background hunt holds its racing scans across maintenance
            // rounds (testkit::background::Pin): ignore-readers, once 7 s to
            // over 60 s here, is caught in its first round.
            .args(["--seconds", "60", "--seed", "1"])
            .output()
            .unwrap();
        let stderr = String::from_utf8_lossy(&output.stderr);
        if cfg!(feature = "planted-bugs") {
            assert!(output.status.success(), "{engine} {bug}: {stderr}");
            assert!(String::from_utf8_lossy(&output.stdout).contains("caught within"));
        } else {
            assert_eq!(output.status.code(), Some(1));
            assert!(stderr.contains("--features planted-bugs"), "{stderr}");
        }
    }
}

#[test]
fn a_jsonl_trace_replays_on_every_engine_and_a_bad_line_is_refused_by_number() {
    let dir = tempfile::tempdir().unwrap();
    // The README's example: a takeover, a stale save refused, a delete.
    let example = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../workloads/traces/example.jsonl"
    );
    let output = leasehold()
        .args([
            "record",
            "--lease-ms",
            "10000",
            "--from-jsonl",
            example,
            "--out",
        ])
        .arg(dir.path().join("example.lht"))
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    assert!(stdout.contains("16 lines → 16 ops (1 rejected"), "{stdout}");
    // A scenario's ops as JSONL, then replayed from it on every engine.
    let jsonl = dir.path().join("storm.jsonl");
    succeeded(
        leasehold()
            .args([
                "record",
                "--scenario",
                "activation-storm",
                "--scale",
                "0.02",
            ])
            .args(["--format", "jsonl", "--out"])
            .arg(&jsonl)
            .output()
            .unwrap(),
    );
    for engine in [
        "memory",
        "lsm",
        "btree",
        "rocksdb",
        "rocksdb-blob",
        "redb",
        "fjall",
    ] {
        let output = leasehold()
            .args([
                "replay",
                "--lease-ms",
                "10000",
                "--engine",
                engine,
                "--jsonl",
            ])
            .arg(&jsonl)
            .arg("--data-dir")
            .arg(dir.path().join("data"))
            .output()
            .unwrap();
        let stdout = String::from_utf8_lossy(&output.stdout);
        assert!(
            output.status.success(),
            "{engine}: {}",
            String::from_utf8_lossy(&output.stderr)
        );
        assert!(
            stdout.contains("every answer matched"),
            "{engine}: {stdout}"
        );
    }
    // A malformed line: refused with its number, nothing replayed.
    let text = std::fs::read_to_string(&jsonl).unwrap();
    let mut lines: Vec<&str> = text.lines().collect();
    lines[6] =
        r#"{"t_ms": 1, "node": "node-0", "op": "lease", "actor_type": "x", "actor_id": "y"}"#;
    let bad = dir.path().join("bad.jsonl");
    std::fs::write(&bad, lines.join("\n")).unwrap();
    let output = leasehold()
        .args(["replay", "--engine", "memory", "--jsonl"])
        .arg(&bad)
        .arg("--data-dir")
        .arg(dir.path().join("data"))
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(!output.status.success());
    assert!(
        stderr.contains("line 7") && stderr.contains("unknown variant `lease`"),
        "{stderr}"
    );
}
