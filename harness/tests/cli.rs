//! The `leasehold` binary, driven as a user would.

#![allow(clippy::unwrap_used, clippy::expect_used)] // test code: a failure panics with its message

use std::process::Command;

fn leasehold() -> Command {
    Command::new(env!("CARGO_BIN_EXE_leasehold"))
}

#[test]
fn compare_runs_every_landed_engine_and_prints_the_table() {
    let dir = tempfile::tempdir().unwrap();
    let output = leasehold()
        .args([
            "compare",
            "--actors",
            "200",
            "--messages",
            "3000",
            "--data-dir",
        ])
        .arg(dir.path())
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(
        output.status.success(),
        "stderr: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    for engine in [
        "| memory (volatile) | buffered |",
        "| memory + lz4 backup | group (1 s) |",
    ] {
        let row = stdout
            .lines()
            .find(|line| line.starts_with(engine))
            .unwrap_or_else(|| panic!("no row {engine}:\n{stdout}"));
        assert!(
            row.trim_end().ends_with("| 0 |"),
            "duplicate owners must be 0: {row}"
        );
    }
    assert!(stdout.contains("3000 messages, 200 actors"));
}

#[test]
fn a_bad_command_line_is_an_error_not_a_panic() {
    let output = leasehold()
        .args(["compare", "--actors", "many"])
        .output()
        .unwrap();
    assert!(!output.status.success());
    assert!(String::from_utf8_lossy(&output.stderr).contains("invalid value"));
    let output = leasehold().arg("frobnicate").output().unwrap();
    assert_eq!(output.status.code(), Some(2));
}

#[test]
fn crash_fuzz_searches_runs_exhaustively_and_replays_reproducers() {
    let output = leasehold()
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
        .unwrap();
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    assert!(String::from_utf8_lossy(&output.stdout).contains("no violation"));

    let output = leasehold()
        .args([
            "crash-fuzz",
            "--engine",
            "btree",
            "--exhaustive",
            "--policy",
            "power-loss",
        ])
        .output()
        .unwrap();
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    assert!(String::from_utf8_lossy(&output.stdout)
        .contains("crash points of 6 sequences under 1 policies, no violation"));

    let dir = tempfile::tempdir().unwrap();
    let case = leasehold_core::testkit::crash::CrashCase {
        ops: vec![leasehold_core::testkit::crash::CrashOp::Write {
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
    let output = leasehold()
        .args(["crash-fuzz", "--engine", "lsm", "--replay"])
        .arg(&path)
        .output()
        .unwrap();
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
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
    let output = leasehold()
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
        .unwrap();
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
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
}
