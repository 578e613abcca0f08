//! `leasehold bench`: db_bench's and YCSB's workloads at both levels, the
//! reads checked against what was written, space measured at each suite's
//! end, and — under `--memory-limit` — each engine in a cgroup of its own
//! with its peak memory reported (needs root and a cgroup memory
//! controller, as the budget tests).

#![allow(clippy::unwrap_used, clippy::expect_used)] // test code: a failure panics with its message

use std::path::Path;
use std::process::Command;

fn bench(args: &[&str], root: &Path) -> serde_json::Value {
    let output = Command::new(env!("CARGO_BIN_EXE_leasehold"))
        .arg("bench")
        .args(args)
        .arg("--data-dir")
        .arg(root.join("data"))
        .arg("--out")
        .arg(root.join("bench"))
        .output()
        .unwrap();
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    serde_json::from_str(&std::fs::read_to_string(root.join("bench/bench.json")).unwrap()).unwrap()
}

fn summary(root: &Path) -> String {
    std::fs::read_to_string(root.join("bench/SUMMARY.md")).unwrap()
}

fn find(
    output: &serde_json::Value,
    workload: &str,
    engine: &str,
    level: &str,
) -> serde_json::Value {
    output["results"]
        .as_array()
        .unwrap()
        .iter()
        .find(|result| {
            result["workload"] == workload && result["engine"] == engine && result["level"] == level
        })
        .unwrap_or_else(|| panic!("no {workload} {engine} {level}"))
        .clone()
}

#[test]
fn bench_runs_db_bench_and_ycsb_at_both_levels_and_reads_find_what_was_written() {
    let dir = tempfile::tempdir().unwrap();
    let output = bench(
        &[
            "--records",
            "600",
            "--ops",
            "600",
            "--engine",
            "memory",
            "--engine",
            "lsm",
            "--engine",
            "rocksdb",
        ],
        dir.path(),
    );
    let summary = summary(dir.path());
    for heading in [
        "## db_bench",
        "## YCSB",
        "| kv | lsm |",
        "| store | lsm |",
        "ycsb-e",
        "fillsync",
        "readmissing",
        "## Space and memory",
    ] {
        assert!(summary.contains(heading), "{heading} missing:\n{summary}");
    }
    for level in ["kv", "store"] {
        // Every loaded record is there to read.
        let c = find(&output, "ycsb-c", "lsm", level);
        assert_eq!(c["found"], c["reads"], "{c}");
        assert!(c["reads"].as_u64().unwrap() >= 600, "{c}");
        // Keys between the written ones are never there.
        let missing = find(&output, "readmissing", "lsm", level);
        assert_eq!(missing["found"], 0, "{missing}");
        assert_eq!(missing["reads"], 600, "{missing}");
    }
    // db_bench draws keys with replacement: most, not all, reads find one.
    let read = find(&output, "readrandom", "rocksdb", "kv");
    let (found, reads) = (
        read["found"].as_f64().unwrap(),
        read["reads"].as_f64().unwrap(),
    );
    assert!(found > 0.5 * reads && found < reads, "{read}");
    // The volatile memory engine cannot sync: no fillsync row for it.
    assert!(output["results"]
        .as_array()
        .unwrap()
        .iter()
        .all(|r| !(r["workload"] == "fillsync" && r["engine"] == "memory")));
    // Space at each suite's end: the records written, and files holding them.
    let space = output["space"].as_array().unwrap();
    let lsm_db_bench = space
        .iter()
        .find(|s| s["engine"] == "lsm" && s["level"] == "kv" && s["suite"] == "db_bench")
        .unwrap();
    let logical = lsm_db_bench["logical_bytes"].as_u64().unwrap();
    // About 63 % of 600 records of 16 + 100 bytes.
    assert!(logical > 300 * 116 && logical < 600 * 116, "{lsm_db_bench}");
    assert!(lsm_db_bench["disk_bytes"].as_u64().unwrap() > 0);
}

#[test]
fn filluniquerandom_writes_every_record_and_seekrandom_reads_its_nexts() {
    let dir = tempfile::tempdir().unwrap();
    let output = bench(
        &[
            "--records",
            "2000",
            "--ops",
            "500",
            "--engine",
            "btree",
            "--level",
            "kv",
            "--workload",
            "filluniquerandom",
            "--workload",
            "readrandom",
            "--workload",
            "seekrandom",
            "--value-bytes",
            "1024",
            "--seek-nexts",
            "49",
        ],
        dir.path(),
    );
    let fill = find(&output, "filluniquerandom", "btree", "kv");
    assert_eq!(fill["requests"], 2000, "{fill}");
    // Every record exists: every read finds one.
    let read = find(&output, "readrandom", "btree", "kv");
    assert_eq!(read["found"], read["reads"], "{read}");
    let seek = find(&output, "seekrandom", "btree", "kv");
    assert_eq!(seek["found"], seek["reads"], "{seek}");
    let space = &output["space"][0];
    assert_eq!(space["logical_bytes"], 2000 * (16 + 1024), "{space}");
    // The engine's own counters over each workload: the fill's bytes, and
    // reads that wrote nothing.
    let counters = &fill["engine_counters"];
    assert_eq!(
        counters["user_bytes_written"],
        2000 * (16 + 1024),
        "{counters}"
    );
    assert!(
        counters["engine_bytes_written"].as_u64().unwrap() > 0,
        "{counters}"
    );
    assert_eq!(read["engine_counters"]["user_bytes_written"], 0, "{read}");
    assert!(summary(dir.path()).contains("× written"));
    // Two fills at once are refused.
    let refused = Command::new(env!("CARGO_BIN_EXE_leasehold"))
        .args(["bench", "--workload", "fillrandom", "--workload"])
        .arg("filluniquerandom")
        .output()
        .unwrap();
    assert!(!refused.status.success());
    assert!(String::from_utf8_lossy(&refused.stderr).contains("name one"));
}

#[test]
fn a_budgeted_bench_runs_each_engine_in_its_cgroup_and_reports_its_peak() {
    let dir = tempfile::tempdir().unwrap();
    let output = bench(
        &[
            "--records",
            "3000",
            "--ops",
            "500",
            "--engine",
            "btree",
            "--engine",
            "memory",
            "--level",
            "kv",
            "--workload",
            "filluniquerandom",
            "--workload",
            "readrandom",
            "--value-bytes",
            "1024",
            "--memory-limit",
            "64MiB",
        ],
        dir.path(),
    );
    let memory = output["memory"].as_array().unwrap();
    assert_eq!(memory.len(), 2, "{output}");
    for row in memory {
        assert_eq!(row["limit_bytes"], 64 << 20, "{row}");
        let peak = row["peak_bytes"].as_u64().unwrap();
        assert!(peak > 1 << 20 && peak <= 64 << 20, "{row}");
        assert_eq!(row["killed_for_memory"], false, "{row}");
        let rss = row["peak_rss_bytes"].as_u64().unwrap();
        assert!(rss > 1 << 20 && rss < 64 << 20, "{row}");
    }
    let read = find(&output, "readrandom", "btree", "kv");
    assert_eq!(read["found"], read["reads"], "{read}");
    let summary = summary(dir.path());
    assert!(summary.contains("64 MiB memory cgroup"), "{summary}");
    assert!(summary.contains("| kv | btree | 64 MiB |"), "{summary}");
}

#[test]
fn repeated_rounds_report_medians_and_ratios_to_the_chosen_yardstick() {
    let dir = tempfile::tempdir().unwrap();
    let output = bench(
        &[
            "--records",
            "500",
            "--ops",
            "300",
            "--engine",
            "memory",
            "--engine",
            "lsm",
            "--level",
            "kv",
            "--workload",
            "fillrandom",
            "--workload",
            "readrandom",
            "--repeat",
            "3",
            "--yardstick",
            "memory",
        ],
        dir.path(),
    );
    let rounds: std::collections::BTreeSet<u64> = output["results"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|r| r["engine"] == "lsm" && r["workload"] == "readrandom")
        .map(|r| r["round"].as_u64().unwrap())
        .collect();
    assert_eq!(rounds, [0, 1, 2].into());
    let summary = summary(dir.path());
    assert!(
        summary.contains("median of the rounds' ratios to memory"),
        "{summary}"
    );
    // The lsm's cells carry a median ratio and its range; memory's none.
    let lsm = summary
        .lines()
        .find(|line| line.starts_with("| kv | lsm |"))
        .unwrap();
    assert!(lsm.contains("(×") && lsm.contains('–'), "{lsm}");
    let memory = summary
        .lines()
        .find(|line| line.starts_with("| kv | memory |"))
        .unwrap();
    assert!(!memory.contains("(×"), "{memory}");
}
