//! What a campaign covered, written to results/: the crash matrix
//! (file × operation × policy, run and recovery) and the fault matrices
//! (fault × file kind × phase).

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::path::Path;
use std::time::Duration;

use leasehold_core::vfs::Fault;

use super::{damage_report, faults_of, mode_name, Coverage, Mode, Options};
use crate::{Error, Result};

pub(crate) fn write_file(path: &Path, text: &str) -> Result<()> {
    if let Some(dir) = path.parent() {
        std::fs::create_dir_all(dir).map_err(Error::file(dir))?;
    }
    std::fs::write(path, text).map_err(Error::file(path))
}

/// results/crash-fuzz-<engine>-<mode>.{md,json}: the matrix of fault × file
/// kind × phase a fault campaign injected, and the faults it never managed to.
pub(super) fn write_fault_report(
    options: &Options,
    coverage: &Coverage,
    elapsed: Duration,
    summary: &str,
) -> Result<()> {
    let engine = options.engine.name();
    let mode = mode_name(options.mode);
    let command = format!(
        "cargo run --release -p leasehold -- crash-fuzz --engine {engine} --mode {mode} --seconds {} --seed {} --report",
        options.seconds, options.seed
    );
    let injected: u64 = coverage.faults.values().sum();
    let mut md = String::new();
    let _ = writeln!(
        md,
        "# Fault campaign: {engine}, {mode}
"
    );
    let _ = writeln!(md, "Command: `{command}`  \nResult: {summary}\n");
    let _ = writeln!(
        md,
        "| cases | cases with a fault | faults injected | writes acknowledged | cases/s |\n|---|---|---|---|---|"
    );
    let _ = writeln!(
        md,
        "| {} | {} | {injected} | {} | {:.0} |\n",
        coverage.cases,
        coverage.cases_with_faults,
        coverage.acknowledged,
        coverage.cases as f64 / elapsed.as_secs_f64().max(1e-9)
    );
    let phases: Vec<&str> = ["write", "flush", "recovery", "read"]
        .into_iter()
        .filter(|phase| coverage.faults.keys().any(|(_, _, seen)| seen == phase))
        .collect();
    let _ = writeln!(md, "## Faults injected (fault × file kind × phase)\n");
    let _ = writeln!(md, "| fault | file | {} |", phases.join(" | "));
    let _ = writeln!(md, "|---|---|{}", "--:|".repeat(phases.len()));
    let mut rows: BTreeMap<(String, String), Vec<u64>> = BTreeMap::new();
    for ((fault, kind, phase), count) in &coverage.faults {
        let row = rows
            .entry((fault.clone(), kind.clone()))
            .or_insert_with(|| vec![0; phases.len()]);
        if let Some(index) = phases.iter().position(|name| name == phase) {
            row[index] += count;
        }
    }
    for ((fault, kind), counts) in &rows {
        let cells: Vec<String> = counts.iter().map(u64::to_string).collect();
        let _ = writeln!(md, "| {fault} | {kind} | {} |", cells.join(" | "));
    }
    let never: Vec<&str> = faults_of(options.mode)
        .into_iter()
        .map(Fault::name)
        .filter(|name| !coverage.faults.keys().any(|(fault, _, _)| fault == name))
        .collect();
    let _ = writeln!(
        md,
        "\nFaults of this mode never injected: {}.",
        if never.is_empty() {
            "none".to_owned()
        } else {
            never.join(", ")
        }
    );
    let dir = Path::new("results");
    write_file(&dir.join(format!("crash-fuzz-{engine}-{mode}.md")), &md)?;
    let faults: Vec<serde_json::Value> = coverage
        .faults
        .iter()
        .map(|((fault, kind, phase), count)| {
            serde_json::json!({"fault": fault, "file": kind, "phase": phase, "injected": count})
        })
        .collect();
    let json = serde_json::json!({
        "engine": engine,
        "mode": mode,
        "command": command,
        "summary": summary,
        "cases": coverage.cases,
        "cases_with_faults": coverage.cases_with_faults,
        "acknowledged": coverage.acknowledged,
        "seconds": elapsed.as_secs_f64(),
        "faults": faults,
        "never_injected": never,
    });
    write_file(
        &dir.join(format!("crash-fuzz-{engine}-{mode}.json")),
        &format!("{json:#}\n"),
    )
}

pub(super) fn write_report(
    options: &Options,
    coverage: &Coverage,
    elapsed: Duration,
    summary: &str,
) -> Result<()> {
    if options.mode == Mode::Damage {
        return damage_report::write(options, coverage, elapsed, summary);
    }
    if options.mode != Mode::Crash {
        return write_fault_report(options, coverage, elapsed, summary);
    }
    let engine = options.engine.name();
    let command = format!(
        "cargo run --release -p leasehold -- crash-fuzz --engine {engine} --seconds {} --seed {} --report",
        options.seconds, options.seed
    );
    let mut md = String::new();
    let _ = writeln!(md, "# Crash-recovery campaign: {engine}\n");
    let _ = writeln!(md, "Command: `{command}`  \nResult: {summary}\n");
    let _ = writeln!(
        md,
        "Each case: random batches (Sync / Group / Buffered), flushes and clean reopens on the simulated disk; a crash at a random mutation under one policy; recovery checked by the oracle (durable floor plus a prefix of the acknowledged tail, batches whole, `verify()` clean); then recovery itself crashed at a random mutation under a second policy and rerun, which must give the same state.\n"
    );
    let _ = writeln!(
        md,
        "| cases | crashed mid-run | writes acknowledged | tail batches recovered | cases/s |"
    );
    let _ = writeln!(md, "|---|---|---|---|---|");
    let _ = writeln!(
        md,
        "| {} | {} | {} | {} | {:.0} |\n",
        coverage.cases,
        coverage.crashed_mid_run,
        coverage.acknowledged,
        coverage.tail_batches_recovered,
        coverage.cases as f64 / elapsed.as_secs_f64().max(1e-9)
    );
    let policies: Vec<String> = options
        .policies
        .iter()
        .map(|policy| policy.name().to_owned())
        .collect();
    let _ = writeln!(
        md,
        "## Where the run's crash struck (file × operation × policy)\n"
    );
    let _ = writeln!(md, "| file | operation | {} |", policies.join(" | "));
    let _ = writeln!(md, "|---|---|{}", "---|".repeat(policies.len()));
    let mut rows: BTreeMap<(String, String), Vec<u64>> = BTreeMap::new();
    for ((kind, operation, policy), count) in &coverage.sites {
        let row = rows
            .entry((kind.clone(), operation.clone()))
            .or_insert_with(|| vec![0; policies.len()]);
        if let Some(index) = policies.iter().position(|name| name == policy) {
            row[index] += count;
        }
    }
    for ((kind, operation), counts) in &rows {
        let cells: Vec<String> = counts.iter().map(u64::to_string).collect();
        let _ = writeln!(md, "| {kind} | {operation} | {} |", cells.join(" | "));
    }
    let _ = writeln!(md, "\n## Where the crash inside recovery struck\n");
    let _ = writeln!(md, "| file | operation | cases |\n|---|---|---|");
    for ((kind, operation), count) in &coverage.recovery_sites {
        let _ = writeln!(md, "| {kind} | {operation} | {count} |");
    }
    let dir = Path::new("results");
    write_file(&dir.join(format!("crash-fuzz-{engine}.md")), &md)?;
    let sites: Vec<serde_json::Value> = coverage
        .sites
        .iter()
        .map(|((kind, operation, policy), count)| {
            serde_json::json!({"file": kind, "operation": operation, "policy": policy, "cases": count})
        })
        .collect();
    let recovery_sites: Vec<serde_json::Value> = coverage
        .recovery_sites
        .iter()
        .map(|((kind, operation), count)| serde_json::json!({"file": kind, "operation": operation, "cases": count}))
        .collect();
    let json = serde_json::json!({
        "engine": engine,
        "command": command,
        "summary": summary,
        "cases": coverage.cases,
        "crashed_mid_run": coverage.crashed_mid_run,
        "acknowledged": coverage.acknowledged,
        "tail_batches_recovered": coverage.tail_batches_recovered,
        "seconds": elapsed.as_secs_f64(),
        "sites": sites,
        "recovery_sites": recovery_sites,
    });
    write_file(
        &dir.join(format!("crash-fuzz-{engine}.json")),
        &format!("{json:#}\n"),
    )
}
