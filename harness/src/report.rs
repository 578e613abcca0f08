//! Writes a comparison: one JSON file per run, `SUMMARY.md` with one table per
//! scenario (engines side by side, best of each durability in bold), and SVG
//! plots of throughput, latency percentiles and amplification.

use std::collections::BTreeMap;
use std::fmt::Write;
use std::path::Path;

use leasehold_workloads::{RuntimeStats, Scenario};

use crate::engines::DurabilityMode;
use crate::machine::Machine;
use crate::run::{result_path, RunResult};
use crate::svg::Chart;
use crate::{Error, Result};

pub struct ScenarioReport {
    pub scenario: Scenario,
    /// The same trace replayed against the no-op store: the harness's ceiling.
    pub harness_ops_per_sec: f64,
    pub scale: f64,
    pub runtime: RuntimeStats,
    pub ops_by_kind: BTreeMap<&'static str, u64>,
    pub results: Vec<RunResult>,
}

pub struct Report {
    pub command: String,
    pub machine: Machine,
    pub threads: usize,
    pub open_loop_rate: Option<f64>,
    pub started: String,
    pub scenarios: Vec<ScenarioReport>,
}

#[derive(serde::Serialize)]
struct RunFile<'a> {
    command: &'a str,
    machine: &'a Machine,
    started: &'a str,
    seed: u64,
    scale: f64,
    runtime: &'a RuntimeStats,
    result: &'a RunResult,
}

pub fn write(report: &Report, out: &Path) -> Result<()> {
    for scenario in &report.scenarios {
        for result in &scenario.results {
            let path = result_path(out, result);
            if let Some(parent) = path.parent() {
                std::fs::create_dir_all(parent).map_err(Error::file(parent))?;
            }
            let file = RunFile {
                command: &report.command,
                machine: &report.machine,
                started: &report.started,
                seed: scenario.scenario.seed,
                scale: scenario.scale,
                runtime: &scenario.runtime,
                result,
            };
            let json = serde_json::to_string_pretty(&file)?;
            std::fs::write(&path, json + "\n").map_err(Error::file(&path))?;
        }
        let plots = out.join("plots");
        std::fs::create_dir_all(&plots).map_err(Error::file(&plots))?;
        for (kind, chart) in charts(scenario) {
            let path = plots.join(format!("{}-{kind}.svg", scenario.scenario.name));
            std::fs::write(&path, chart.render()).map_err(Error::file(&path))?;
        }
    }
    let path = out.join("SUMMARY.md");
    std::fs::write(&path, summary(report)).map_err(Error::file(&path))
}

fn run_label(result: &RunResult) -> String {
    format!("{} ({})", result.engine.name(), result.durability.name())
}

fn charts(scenario: &ScenarioReport) -> Vec<(&'static str, Chart<'static>)> {
    let name = &scenario.scenario.name;
    let groups: Vec<String> = scenario.results.iter().map(run_label).collect();
    let per_run = |value: &dyn Fn(&RunResult) -> Option<f64>| -> Vec<Option<f64>> {
        scenario.results.iter().map(value).collect()
    };
    let all = |result: &RunResult, pick: fn(&crate::run::LatencySummary) -> f64| {
        result.latency.get("all").map(pick)
    };
    vec![
        (
            "throughput",
            Chart {
                title: format!("{name}: throughput"),
                unit: "ops/s",
                log: false,
                groups: groups.clone(),
                series: vec![(
                    "ops/s".to_owned(),
                    per_run(&|result| {
                        (result.out_of_memory.is_none() && result.ops > 0)
                            .then_some(result.throughput_ops_per_sec)
                    }),
                )],
                reference: None,
            },
        ),
        (
            "latency",
            Chart {
                title: format!("{name}: latency of all ops (log scale)"),
                unit: "µs",
                log: true,
                groups: groups.clone(),
                series: vec![
                    (
                        "p50".to_owned(),
                        per_run(&|result| all(result, |l| l.p50_us)),
                    ),
                    (
                        "p99".to_owned(),
                        per_run(&|result| all(result, |l| l.p99_us)),
                    ),
                    (
                        "p999".to_owned(),
                        per_run(&|result| all(result, |l| l.p999_us)),
                    ),
                    (
                        "max".to_owned(),
                        per_run(&|result| all(result, |l| l.max_us)),
                    ),
                ],
                reference: None,
            },
        ),
        (
            "amplification",
            Chart {
                title: format!("{name}: amplification"),
                unit: "× logical bytes",
                log: false,
                groups,
                series: vec![
                    (
                        "write (engine)".to_owned(),
                        per_run(&|result| result.write_amp_engine),
                    ),
                    (
                        "write (/proc)".to_owned(),
                        per_run(&|result| result.write_amp_os),
                    ),
                    ("space".to_owned(), per_run(&|result| result.space_amp)),
                ],
                reference: None,
            },
        ),
    ]
}

/// Which way is better for a column.
#[derive(Clone, Copy)]
enum Better {
    Higher,
    Lower,
    Neither,
}

struct Column {
    title: &'static str,
    better: Better,
    value: fn(&RunResult) -> Option<f64>,
    format: fn(f64) -> String,
}

fn fixed0(value: f64) -> String {
    format!("{value:.0}")
}

fn fixed1(value: f64) -> String {
    format!("{value:.1}")
}

fn fixed2(value: f64) -> String {
    format!("{value:.2}")
}

fn latency(
    result: &RunResult,
    kind: &str,
    pick: fn(&crate::run::LatencySummary) -> f64,
) -> Option<f64> {
    result.latency.get(kind).map(pick)
}

fn columns(budgeted: bool) -> Vec<Column> {
    let mut columns = vec![
        Column {
            title: "ops/s",
            better: Better::Higher,
            value: |r| Some(r.throughput_ops_per_sec),
            format: fixed0,
        },
        Column {
            title: "p50 µs",
            better: Better::Lower,
            value: |r| latency(r, "all", |l| l.p50_us),
            format: fixed1,
        },
        Column {
            title: "p99 µs",
            better: Better::Lower,
            value: |r| latency(r, "all", |l| l.p99_us),
            format: fixed1,
        },
        Column {
            title: "p999 µs",
            better: Better::Lower,
            value: |r| latency(r, "all", |l| l.p999_us),
            format: fixed0,
        },
        Column {
            title: "max µs",
            better: Better::Lower,
            value: |r| latency(r, "all", |l| l.max_us),
            format: fixed0,
        },
        Column {
            title: "save p99 µs",
            better: Better::Lower,
            value: |r| latency(r, "save", |l| l.p99_us),
            format: fixed1,
        },
        Column {
            title: "load p99 µs",
            better: Better::Lower,
            value: |r| latency(r, "load", |l| l.p99_us),
            format: fixed1,
        },
        Column {
            title: "write amp (engine)",
            better: Better::Lower,
            value: |r| r.write_amp_engine,
            format: fixed2,
        },
        Column {
            title: "write amp (/proc)",
            better: Better::Lower,
            value: |r| r.write_amp_os,
            format: fixed2,
        },
        Column {
            title: "space amp",
            better: Better::Lower,
            value: |r| r.space_amp,
            format: fixed2,
        },
        Column {
            title: "read amp",
            better: Better::Lower,
            value: |r| r.read_amp,
            format: fixed2,
        },
        Column {
            title: "fsyncs/op",
            better: Better::Neither,
            value: |r| (!r.engine_stats.io_uncounted).then_some(r.fsyncs_per_op),
            format: fixed2,
        },
        Column {
            title: "reopen ms",
            better: Better::Lower,
            value: |r| r.recovery.as_ref().map(|recovery| recovery.first_read_ms),
            format: fixed1,
        },
        Column {
            title: "peak RSS MiB",
            better: Better::Lower,
            value: |r| {
                r.peak_rss_bytes
                    .map(|bytes| bytes as f64 / (1 << 20) as f64)
            },
            format: fixed0,
        },
        Column {
            title: "lease conflicts",
            better: Better::Neither,
            value: |r| Some(r.lease_conflicts as f64),
            format: fixed0,
        },
        Column {
            title: "duplicate owners",
            better: Better::Neither,
            value: |r| Some(r.duplicate_owners as f64),
            format: fixed0,
        },
        Column {
            title: "wrong answers",
            better: Better::Neither,
            value: |r| Some(r.mismatches as f64),
            format: fixed0,
        },
    ];
    if budgeted {
        columns.push(Column {
            title: "cgroup peak MiB",
            better: Better::Lower,
            value: |r| {
                r.memory
                    .as_ref()
                    .and_then(|memory| memory.peak_bytes)
                    .map(|bytes| bytes as f64 / (1 << 20) as f64)
            },
            format: fixed0,
        });
    }
    columns
}

/// One markdown table: rows grouped by durability, the best durable engine
/// of each group in bold per column.
pub fn table(results: &[RunResult]) -> String {
    let columns = columns(results.iter().any(|result| result.memory.is_some()));
    let mut out = String::new();
    let _ = write!(out, "| engine | durability |");
    for column in &columns {
        let _ = write!(out, " {} |", column.title);
    }
    let _ = write!(out, "\n|---|---|");
    for _ in &columns {
        out.push_str("--:|");
    }
    out.push('\n');
    let mut ordered: Vec<&RunResult> = results.iter().collect();
    ordered.sort_by_key(|result| (result.durability, result.engine));
    for result in &ordered {
        let peers: Vec<&&RunResult> = ordered
            .iter()
            .filter(|peer| {
                peer.durability == result.durability
                    && peer.durability != DurabilityMode::None
                    && peer.out_of_memory.is_none()
                    && peer.ops > 0
            })
            .collect();
        let _ = write!(
            out,
            "| {} | {} |",
            result.engine.name(),
            result.durability.name()
        );
        let unmeasured = match (&result.out_of_memory, &result.time_capped) {
            (Some(oom), _) => Some(oom.describe()),
            (None, Some(capped)) if result.ops == 0 => {
                Some(format!("{}, before measurement began", capped.describe()))
            }
            _ => None,
        };
        if let Some(why) = unmeasured {
            let _ = write!(out, " {why} |");
            for _ in 1..columns.len() {
                out.push_str(" – |");
            }
            out.push('\n');
            continue;
        }
        for column in &columns {
            let Some(value) = (column.value)(result) else {
                out.push_str(" – |");
                continue;
            };
            let values = peers.iter().filter_map(|peer| (column.value)(peer));
            let best = match column.better {
                Better::Higher => values.fold(None, |best: Option<f64>, v| {
                    Some(best.map_or(v, |b| b.max(v)))
                }),
                Better::Lower => values.fold(None, |best: Option<f64>, v| {
                    Some(best.map_or(v, |b| b.min(v)))
                }),
                Better::Neither => None,
            };
            let text = (column.format)(value);
            if peers.len() > 1 && best == Some(value) {
                let _ = write!(out, " **{text}** |");
            } else {
                let _ = write!(out, " {text} |");
            }
        }
        out.push('\n');
    }
    let capped: Vec<String> = ordered
        .iter()
        .filter(|result| result.ops > 0)
        .filter_map(|result| {
            result.time_capped.as_ref().map(|capped| {
                format!(
                    "{} {} {}",
                    result.engine.name(),
                    result.durability.name(),
                    capped.describe()
                )
            })
        })
        .collect();
    if !capped.is_empty() {
        let _ = writeln!(
            out,
            "\nCapped runs (figures over the ops they replayed): {}.",
            capped.join("; ")
        );
    }
    out
}

fn summary(report: &Report) -> String {
    let mut out = String::new();
    let _ = writeln!(out, "# Leasehold comparison\n");
    let _ = writeln!(
        out,
        "Reproduce with `{}` (started {}).\n",
        report.command, report.started
    );
    let _ = writeln!(out, "- Machine: {}", report.machine.summary());
    let mut versions: Vec<(&str, &str)> = report
        .scenarios
        .iter()
        .flat_map(|scenario| &scenario.results)
        .map(|result| (result.engine.name(), result.engine_version.as_str()))
        .collect();
    versions.sort_unstable();
    versions.dedup();
    let versions: Vec<String> = versions
        .iter()
        .map(|(engine, version)| format!("{engine}: {version}"))
        .collect();
    let _ = writeln!(out, "- Engines: {}.", versions.join("; "));
    let _ = writeln!(
        out,
        "- Replay: {} thread(s), {}; the set-up before measurement (the preloaded snapshots) by {} threads, \
         so that its fsynced lease grants share fsyncs; each engine in a fresh directory; latency is wall \
         time per store call{}.",
        report.threads,
        match report.open_loop_rate {
            Some(rate) => format!("open loop at {rate:.0} ops/s"),
            None => "closed loop".to_owned(),
        },
        report.threads * crate::replay::SET_UP_THREADS_PER_THREAD,
        if report.open_loop_rate.is_some() { ", counted from each op's scheduled time" } else { "" }
    );
    let _ = writeln!(
        out,
        "- Durability: **buffered** = acknowledged before any fsync, never durable against power loss \
         (LSM and RocksDB: in the OS, so it survives a process crash; B+tree: up to `wal_buffer_size` in its \
         own buffer, lost with the process); lease grants are fsynced at every durability; \
         **sync** = fsynced before the answer (concurrent writers share fsyncs); \
         **none** = the volatile memory engine, the ceiling no durable engine can reach. Bold marks the best \
         engine within one durability."
    );
    let arenas = report
        .scenarios
        .iter()
        .flat_map(|scenario| &scenario.results)
        .filter_map(|result| result.memory.as_ref())
        .find_map(|memory| memory.malloc_arenas);
    let budgets: std::collections::BTreeSet<(u64, bool)> = report
        .scenarios
        .iter()
        .flat_map(|scenario| &scenario.results)
        .filter_map(|result| result.memory.as_ref())
        .map(|memory| (memory.limit_bytes, memory.page_cache_dropped))
        .collect();
    let _ =
        match budgets.iter().next() {
            None => writeln!(
                out,
                "- Memory: no limit; every engine ran in the harness's process (`--memory-limit` \
             gives each run its own child process in a memory cgroup). Peak RSS restarts at each \
             run from what the process holds then (freed heap trimmed first): heap that earlier \
             runs left fragmented still counts, so an engine's figure can be tens of MiB above \
             its figure alone; the budgeted runs measure each engine alone."
            ),
            Some(&(limit, dropped)) => writeln!(
            out,
            "- Memory: **{}** per run{} — each engine's replay in its own child process inside a \
             memory cgroup whose limit counts the page cache (swap limited too); the page cache \
             was {}dropped before each run{}. An engine the kernel killed for memory shows how far \
             it got (\"OOM at 61 % of the trace\"); cgroup peak = the most the group held.",
            crate::budget::format_size(limit),
            if budgets.len() > 1 { " (scenarios differ: see each result)" } else { "" },
            if dropped { "" } else { "not " },
            match arenas {
                Some(arenas) => format!(
                    "; glibc's malloc was held to {arenas} arena(s) (`MALLOC_ARENA_MAX`, one per \
                     core), so the budget measures what an engine holds rather than per-thread \
                     arenas' free memory"
                ),
                None => String::new(),
            }
        ),
        };
    let _ = writeln!(
        out,
        "- Write amp (engine) = bytes the engine wrote to its files / key+value bytes of its batches; \
         write amp (/proc) = the process's `/proc/self/io` write_bytes over the same logical bytes (writeback \
         the kernel had not started is missing, so buffered runs read low); space amp = bytes on disk after the \
         final sync / live key+value bytes; read amp = bytes the engine read from its files / state bytes loaded; \
         reopen = close, open, first read answered; wrong answers = answers that differ from the reference store's \
         (must be 0), duplicate owners = grants over another node's live lease (must be 0)."
    );
    for scenario in &report.scenarios {
        let spec = &scenario.scenario;
        let _ = writeln!(out, "\n## {}\n", spec.name);
        let _ = writeln!(out, "{}.\n", spec.description.trim_end_matches('.'));
        let ops: Vec<String> = scenario
            .ops_by_kind
            .iter()
            .map(|(kind, count)| format!("{count} {kind}"))
            .collect();
        let runtime = &scenario.runtime;
        let _ = writeln!(
            out,
            "Seed {}, scale {}: {} actors ({} with a snapshot from before the run), {} nodes, {} messages over {} s of \
             virtual time → {} measured store ops ({}). {} activations ({} takeovers after a node failure), {} lease \
             conflicts, renewals {:.0} % of lease ops.\n",
            spec.seed,
            scenario.scale,
            (f64::from(spec.actors) * scenario.scale).round().max(1.0),
            runtime.preloaded,
            spec.nodes,
            runtime.messages,
            spec.run_secs,
            scenario.ops_by_kind.values().sum::<u64>(),
            ops.join(", "),
            runtime.activations,
            runtime.takeovers,
            runtime.lease_conflicts,
            runtime.renewal_share() * 100.0,
        );
        out.push_str(&table(&scenario.results));
        let _ = writeln!(
            out,
            "\nThe harness alone (this trace against a store that does nothing, same threads): {:.0} ops/s.",
            scenario.harness_ops_per_sec
        );
        let reopening: Vec<&RunResult> = scenario
            .results
            .iter()
            .filter(|r| !r.reopens.is_empty())
            .collect();
        if !reopening.is_empty() {
            let _ = writeln!(out, "\nReopens during the run (log written since the previous open → time to first read):\n");
            let _ = writeln!(
                out,
                "| engine | durability | reopens (MiB of log → ms) |\n|---|---|---|"
            );
            for result in reopening {
                let points: Vec<String> = result
                    .reopens
                    .iter()
                    .map(|reopen| {
                        format!(
                            "{:.1} → {:.1}",
                            reopen.wal_bytes_since_open as f64 / (1 << 20) as f64,
                            reopen.first_read_ms
                        )
                    })
                    .collect();
                let _ = writeln!(
                    out,
                    "| {} | {} | {} |",
                    result.engine.name(),
                    result.durability.name(),
                    points.join(", ")
                );
            }
        }
        let _ = writeln!(
            out,
            "\n![throughput](plots/{0}-throughput.svg) ![latency](plots/{0}-latency.svg) ![amplification](plots/{0}-amplification.svg)",
            spec.name
        );
    }
    out
}
