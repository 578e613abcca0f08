//! `bench --memory-limit`: each engine and level in a child process of its
//! own inside a memory cgroup (`budget::run_child`), its engine's caches
//! sized for the budget. The child is `leasehold bench` for that one engine
//! and level with a result file it rewrites after each workload; a child the
//! kernel killed for memory is a result (what it finished, and that it was
//! killed), not an error of the bench.

use std::path::Path;

use super::{BenchArgs, BenchMemory, BenchOutput, Level};
use crate::budget;
use crate::engines::EngineKind;
use crate::{Context, Error, Result};

/// Every engine at every level, one child each, one after the other.
pub fn run_all(
    args: &BenchArgs,
    engines: &[EngineKind],
    levels: &[Level],
    limit: u64,
) -> Result<BenchOutput> {
    let mut output = BenchOutput::default();
    for round in 0..args.repeat {
        for &engine in engines {
            for &level in levels {
                let child = run_one(args, engine, level, limit)?;
                output
                    .results
                    .extend(child.results.into_iter().map(|mut result| {
                        result.round = round;
                        result
                    }));
                output
                    .space
                    .extend(child.space.into_iter().map(|mut space| {
                        space.round = round;
                        space
                    }));
                output
                    .memory
                    .extend(child.memory.into_iter().map(|mut memory| {
                        memory.round = round;
                        memory
                    }));
            }
        }
    }
    Ok(output)
}

/// The arguments that make the child run as this process would, for one
/// engine and level.
fn child_args(
    args: &BenchArgs,
    engine: EngineKind,
    level: Level,
    limit: u64,
    result: &Path,
) -> Vec<String> {
    let mut child: Vec<String> = ["bench", "--engine", engine.name(), "--level", level.name()]
        .map(str::to_owned)
        .to_vec();
    for workload in args.workloads() {
        child.extend(["--workload".to_owned(), workload.name().to_owned()]);
    }
    for (flag, value) in [
        ("--records", args.records.to_string()),
        ("--ops", args.ops.to_string()),
        ("--threads", args.threads.to_string()),
        ("--seed", args.seed.to_string()),
        ("--value-bytes", args.value_bytes.to_string()),
        ("--compression-ratio", args.compression_ratio.to_string()),
        ("--seek-nexts", args.seek_nexts.to_string()),
        ("--data-dir", args.data_dir.display().to_string()),
        ("--result-json", result.display().to_string()),
        ("--sized-for", limit.to_string()),
    ] {
        child.extend([flag.to_owned(), value]);
    }
    for config in &args.configs {
        child.extend(["--config".to_owned(), config.display().to_string()]);
    }
    child
}

/// One engine and level in its cgroup: what it measured, and its memory.
fn run_one(args: &BenchArgs, engine: EngineKind, level: Level, limit: u64) -> Result<BenchOutput> {
    let label = format!("bench {} at the {} level", engine.name(), level.name());
    let work = args
        .data_dir
        .join(format!("bench-{}-{}.child", engine.name(), level.name()));
    let _ = std::fs::remove_dir_all(&work);
    std::fs::create_dir_all(&work).map_err(Error::file(&work))?;
    let (result_path, log_path) = (work.join("result.json"), work.join("child.log"));
    eprintln!("{label}: in a {} cgroup", budget::format_size(limit));
    let child = budget::run_child(
        limit,
        &child_args(args, engine, level, limit, &result_path),
        &log_path,
    )
    .with_context(|| label.clone())?;
    let killed_for_memory = child.usage.oom_kills > 0;
    if !child.status.success() && !killed_for_memory {
        return Err(Error::Child(format!(
            "{label}: the child failed ({}) without an OOM kill; its last output:\n{}",
            child.status,
            budget::log_tail(&log_path)
        )));
    }
    let mut output: BenchOutput = match std::fs::read_to_string(&result_path) {
        Ok(text) => serde_json::from_str(&text)
            .map_err(Error::parse(&result_path, "a bench result"))
            .with_context(|| label.clone())?,
        // Killed before its first workload ended.
        Err(_) if killed_for_memory => BenchOutput::default(),
        Err(err) => return Err(Error::file(&result_path)(err)).with_context(|| label.clone()),
    };
    output.memory.push(BenchMemory {
        engine,
        level,
        limit_bytes: limit,
        peak_bytes: child.usage.peak_bytes,
        killed_for_memory,
        peak_rss_bytes: output.child_peak_rss_bytes.take(),
        page_cache_dropped: child.page_cache_dropped,
        malloc_arenas: child.malloc_arenas,
        round: 0,
    });
    let _ = std::fs::remove_dir_all(&work);
    // A child killed for memory left its engines' directories behind.
    for suite in ["db_bench", "fillsync", "ycsb"] {
        let _ = std::fs::remove_dir_all(
            args.data_dir
                .join(format!("bench-{}-{suite}", engine.name())),
        );
    }
    Ok(output)
}
