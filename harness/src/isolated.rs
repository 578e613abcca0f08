//! One engine's replay in a child process inside a memory cgroup (`budget`):
//! the parent has written the trace to a file; the child is
//! `leasehold replay --trace F --result-json R …` in a fresh cgroup, and the
//! parent reads its `RunResult` back. A child the kernel killed for memory is
//! a result — how far it got, from the progress it published each second —
//! not an error of the comparison.

use std::path::{Path, PathBuf};

use crate::budget;
use crate::engines::{DurabilityMode, EngineKind};
use crate::run::{MemoryBudget, OutOfMemory, RunResult};
use crate::ReplayArgs;
use crate::{Context, Error, Result};

/// One budgeted run.
pub struct IsolatedRun<'a> {
    pub scenario: &'a str,
    pub trace: &'a Path,
    pub trace_ops: u64,
    pub engine: EngineKind,
    pub durability: DurabilityMode,
    pub limit: u64,
    pub replay: &'a ReplayArgs,
}

/// The arguments that make the child replay as this process would.
fn child_args(run: &IsolatedRun, result: &Path, metrics: &Path) -> Vec<String> {
    let path = |path: &Path| path.display().to_string();
    let mut args = vec![
        "replay".to_owned(),
        "--trace".to_owned(),
        path(run.trace),
        "--engine".to_owned(),
        run.engine.name().to_owned(),
        "--durability".to_owned(),
        run.durability.name().to_owned(),
        "--threads".to_owned(),
        run.replay.threads.to_string(),
        "--data-dir".to_owned(),
        path(&run.replay.data_dir),
        "--metrics-file".to_owned(),
        path(metrics),
        "--result-json".to_owned(),
        path(result),
        "--sized-for".to_owned(),
        run.limit.to_string(),
    ];
    if let Some(secs) = run.replay.time_cap_secs {
        args.extend(["--time-cap-secs".to_owned(), secs.to_string()]);
    }
    if let Some(rate) = run.replay.open_loop {
        args.extend(["--open-loop".to_owned(), rate.to_string()]);
    }
    for config in &run.replay.configs {
        args.extend(["--config".to_owned(), path(config)]);
    }
    if run.replay.keep_data {
        args.push("--keep-data".to_owned());
    }
    args
}

/// Runs `run` in its own cgroup and returns its result (figures, or how far
/// it got before the kernel killed it for memory).
pub fn run_isolated(run: &IsolatedRun) -> Result<RunResult> {
    let label = format!(
        "{} {} {}",
        run.scenario,
        run.engine.name(),
        run.durability.name()
    );
    let work: PathBuf = run.replay.data_dir.join(format!(
        "{}-{}-{}.child",
        run.scenario,
        run.engine.name(),
        run.durability.name()
    ));
    let _ = std::fs::remove_dir_all(&work);
    std::fs::create_dir_all(&work).map_err(Error::file(&work))?;
    let (result_path, metrics_path, log_path) = (
        work.join("result.json"),
        work.join("metrics.json"),
        work.join("child.log"),
    );
    let child = budget::run_child(
        run.limit,
        &child_args(run, &result_path, &metrics_path),
        &log_path,
    )
    .with_context(|| label.clone())?;
    let (status, usage) = (child.status, child.usage);
    let memory = MemoryBudget {
        limit_bytes: run.limit,
        peak_bytes: usage.peak_bytes,
        page_cache_dropped: child.page_cache_dropped,
        malloc_arenas: Some(child.malloc_arenas),
    };
    let outcome = if let Ok(text) = std::fs::read_to_string(&result_path) {
        // Written before the child judged its answers: a wrong answer is
        // in the result, and the comparison fails on it as for any run.
        let mut result: RunResult = serde_json::from_str(&text)
            .map_err(Error::parse(&result_path, "a run result"))
            .with_context(|| label.clone())?;
        result.memory = Some(memory);
        Ok(result)
    } else if usage.oom_kills > 0 {
        let trace_position = crate::metrics::read(&metrics_path)
            .ok()
            .and_then(|view| view.trace_position);
        Ok(RunResult::killed_for_memory(
            run.scenario,
            run.engine,
            run.durability,
            run.replay.threads,
            memory,
            OutOfMemory {
                trace_position,
                trace_ops: run.trace_ops,
            },
        ))
    } else {
        Err(Error::Child(format!(
            "{label}: the child process failed ({status}) without a result and without an \
             OOM kill; its last output:\n{}",
            budget::log_tail(&log_path)
        )))
    };
    if outcome.is_ok() && !run.replay.keep_data {
        let _ = std::fs::remove_dir_all(&work);
        // A child killed for memory left its engine's files behind.
        let _ = std::fs::remove_dir_all(run.replay.data_dir.join(format!(
            "{}-{}-{}",
            run.scenario,
            run.engine.name(),
            run.durability.name()
        )));
    }
    outcome
}
