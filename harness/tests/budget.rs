//! Memory budgets: runs in a child process inside a memory cgroup, the
//! budget recorded in the result, an engine killed for memory reported as a
//! result, bad sizes refused. Needs root and a cgroup memory controller (the
//! machines this kit runs on have both; CI runs as root).

#![allow(clippy::unwrap_used, clippy::expect_used)] // test code: a failure panics with its message

use std::path::Path;
use std::process::{Command, Output};

fn leasehold(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_leasehold"))
        .args(args)
        .output()
        .unwrap()
}

fn run(root: &Path, scenario: &str, engine: &str, scale: &str, limit: &str) -> Output {
    leasehold(&[
        "run",
        "--scenario",
        scenario,
        "--scale",
        scale,
        "--engine",
        engine,
        "--memory-limit",
        limit,
        "--data-dir",
        root.join("data").to_str().unwrap(),
        "--out",
        root.join("results").to_str().unwrap(),
    ])
}

/// `engine`'s result at `durability` (the volatile memory engine runs at none).
fn result(root: &Path, scenario: &str, engine: &str, durability: &str) -> serde_json::Value {
    let path = root
        .join("results")
        .join(scenario)
        .join(format!("{engine}-{durability}.json"));
    serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap()
}

#[test]
fn a_budgeted_run_records_its_budget_and_the_cgroup_peak() {
    // A group left by a harness that was killed (its pid cannot exist) is
    // removed by the next budgeted run.
    let stale = Path::new("/sys/fs/cgroup/memory/leasehold-4294967295-0");
    if Path::new("/sys/fs/cgroup/memory/memory.limit_in_bytes").exists() {
        std::fs::create_dir(stale).unwrap();
    }
    let root = tempfile::tempdir().unwrap();
    let output = run(root.path(), "steady-zipf", "lsm", "0.02", "256MiB");
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    let result = result(root.path(), "steady-zipf", "lsm", "buffered");
    assert_eq!(result["memory"]["limit_bytes"], 256u64 << 20);
    // The child ran with one malloc arena per core (at least one).
    assert!(result["memory"]["malloc_arenas"].as_u64().unwrap() >= 1);
    let peak = result["memory"]["peak_bytes"].as_u64().unwrap();
    assert!(peak > 0 && peak <= 256 << 20, "peak {peak}");
    assert!(result["out_of_memory"].is_null());
    assert!(result["throughput_ops_per_sec"].as_f64().unwrap() > 0.0);
    assert!(!stale.exists(), "a stale cgroup is reaped");
    assert!(
        !root.path().join("data").read_dir().unwrap().any(|_| true),
        "the child's files are removed"
    );
}

#[test]
fn an_engine_killed_for_memory_is_a_result_not_a_failure() {
    let root = tempfile::tempdir().unwrap();
    // The volatile memory engine holds every state in the process: 24 MiB
    // cannot hold large-state's.
    let output = run(root.path(), "large-state", "memory", "0.2", "24MiB");
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(output.status.success(), "{stderr}");
    let result = result(root.path(), "large-state", "memory", "none");
    assert_eq!(result["memory"]["limit_bytes"], 24u64 << 20);
    let oom = &result["out_of_memory"];
    assert!(oom.is_object(), "{result}");
    assert!(oom["trace_ops"].as_u64().unwrap() > 0);
    assert!(
        String::from_utf8_lossy(&output.stdout).contains("OOM"),
        "the table says so"
    );
    assert!(
        !root.path().join("data").read_dir().unwrap().any(|_| true),
        "the killed child's files are removed"
    );
}

#[test]
fn a_bad_memory_limit_is_a_clear_error() {
    let root = tempfile::tempdir().unwrap();
    for bad in ["12parsecs", "1MiB"] {
        let output = run(root.path(), "steady-zipf", "lsm", "0.02", bad);
        let stderr = String::from_utf8_lossy(&output.stderr);
        assert!(!output.status.success());
        assert!(
            stderr.contains("memory") || stderr.contains("size"),
            "{stderr}"
        );
    }
}

/// A scenario file's `memory_limit` budgets its runs like `--memory-limit`.
#[test]
fn a_scenario_files_memory_limit_budgets_its_runs() {
    let root = tempfile::tempdir().unwrap();
    let built_in = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../workloads/scenarios/large-state.toml"
    );
    let text = std::fs::read_to_string(built_in).unwrap();
    let scenario = root.path().join("tight.toml");
    std::fs::write(
        &scenario,
        text.replace(
            "name = \"large-state\"",
            "name = \"tight\"\nmemory_limit = \"24MiB\"",
        ),
    )
    .unwrap();
    let output = leasehold(&[
        "run",
        "--scenario",
        scenario.to_str().unwrap(),
        "--scale",
        "0.2",
        "--engine",
        "memory",
        "--data-dir",
        root.path().join("data").to_str().unwrap(),
        "--out",
        root.path().join("results").to_str().unwrap(),
    ]);
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    let result = result(root.path(), "tight", "memory", "none");
    assert_eq!(result["memory"]["limit_bytes"], 24u64 << 20);
    assert!(result["out_of_memory"].is_object());
}
