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
