//! The harness's commands: `compare` (every scenario × engine × durability),
//! `run` (one of them), `record` and `replay` (traces as files).

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::Duration;

use indicatif::{ProgressBar, ProgressStyle};
use leasehold_workloads::trace::TraceHeader;
use leasehold_workloads::{generate, Generated, Op, Scenario, Trace};

use crate::budget;
use crate::engines::{self, DurabilityMode, EngineKind, EngineSettings};
use crate::isolated::{self, IsolatedRun};
use crate::machine::Machine;
use crate::regime::{self, Regime};
use crate::replay::ReplayOptions;
use crate::report::{self, Report, ScenarioReport};
use crate::run::{self, RunResult, RunSpec};
use crate::source::{InMemory, OpSource, Streamed};
use crate::ReplayArgs;
use crate::{Context, Error, Result};

pub struct CompareSpec {
    pub command: String,
    pub regime: Regime,
    pub scale: f64,
    pub scenarios: Vec<String>,
    pub engines: Vec<EngineKind>,
    pub durabilities: Vec<DurabilityMode>,
    pub replay: ReplayArgs,
    pub out: PathBuf,
}

fn options(args: &ReplayArgs) -> Result<ReplayOptions> {
    if args.threads == 0 || args.threads > 256 {
        return Err(Error::Usage(format!(
            "--threads must be 1..=256, got {}",
            args.threads
        )));
    }
    if let Some(rate) = args.open_loop {
        if !(rate.is_finite() && rate > 0.0) {
            return Err(Error::Usage(format!(
                "--open-loop must be a positive rate, got {rate}"
            )));
        }
    }
    if args.time_cap_secs == Some(0) {
        return Err(Error::usage("--time-cap-secs must be at least 1"));
    }
    Ok(ReplayOptions {
        threads: args.threads,
        open_loop_rate: args.open_loop,
        time_cap: args.time_cap_secs.map(Duration::from_secs),
    })
}

fn check_scale(scale: f64) -> Result<()> {
    if scale.is_finite() && scale > 0.0 && scale <= 1000.0 {
        Ok(())
    } else {
        Err(Error::Usage(format!(
            "--scale must be within (0, 1000], got {scale}"
        )))
    }
}

/// The measured ops of a trace by kind (set-up ops before `Measure` excluded).
fn ops_by_kind(trace: &Trace) -> BTreeMap<&'static str, u64> {
    let first_measured = trace
        .ops
        .iter()
        .position(|op| op.op == Op::Measure)
        .map_or(0, |index| index + 1);
    let mut counts = BTreeMap::new();
    for op in &trace.ops[first_measured..] {
        *counts.entry(op.op.kind()).or_insert(0) += 1;
    }
    counts
}

fn generate_checked(scenario: &Scenario, scale: f64) -> Result<Generated> {
    let generated = generate(scenario, scale, &crate::engines::reference_store)
        .with_context(|| scenario.name.clone())?;
    if generated.stats.duplicate_owners > 0 || generated.stats.unexpected_rejections > 0 {
        return Err(Error::Wrong(format!(
            "{}: the reference run broke a lease rule: {:?}",
            scenario.name, generated.stats
        )));
    }
    Ok(generated)
}

/// Now, as "2026-12-01 02:24 UTC".
pub fn started() -> String {
    let secs = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |elapsed| elapsed.as_secs());
    // UTC civil date from days since the epoch (Howard Hinnant's algorithm).
    let days = (secs / 86_400) as i64;
    let (z, rem) = (days + 719_468, secs % 86_400);
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + i64::from(month <= 2);
    format!(
        "{year:04}-{month:02}-{day:02} {:02}:{:02} UTC",
        rem / 3600,
        rem % 3600 / 60
    )
}

pub fn compare(spec: &CompareSpec) -> Result<()> {
    // The report says when the comparison began, not when it was written.
    let started_at = started();
    check_scale(spec.scale)?;
    let options = options(&spec.replay)?;
    let settings = EngineSettings::from_files(&spec.replay.configs)?;
    let scenarios: Vec<Scenario> = if spec.scenarios.is_empty() {
        match spec.regime {
            Regime::InMemory => Scenario::all_built_in()?,
            Regime::BeyondMemory => regime::BEYOND_MEMORY_SCENARIOS
                .iter()
                .map(|name| Scenario::find(name))
                .collect::<Result<_, _>>()?,
        }
    } else {
        spec.scenarios
            .iter()
            .map(|name| Scenario::find(name))
            .collect::<Result<_, _>>()?
    };
    let engines = if spec.engines.is_empty() {
        let mut engines = EngineKind::compared_by_default();
        // A server named in a config joins the default comparison.
        if settings.postgres.is_some() {
            engines.push(EngineKind::POSTGRES);
        }
        if settings.s3.is_some() {
            engines.push(EngineKind::S3);
        }
        engines
    } else {
        spec.engines.clone()
    };
    let durabilities = if spec.durabilities.is_empty() {
        vec![DurabilityMode::Buffered, DurabilityMode::Sync]
    } else {
        spec.durabilities.clone()
    };
    let mut plan = Vec::new();
    for engine in &engines {
        for durability in DurabilityMode::for_engine(*engine, &durabilities) {
            plan.push((*engine, durability));
        }
    }
    plan.sort();
    plan.dedup();
    let bar = ProgressBar::new((scenarios.len() * plan.len()) as u64);
    bar.set_style(
        ProgressStyle::with_template("{elapsed_precise} [{bar:30}] {pos}/{len} {msg}")
            .unwrap_or_else(|_| ProgressStyle::default_bar())
            .progress_chars("=> "),
    );
    let mut reports = Vec::new();
    for scenario in &scenarios {
        let limit = spec
            .replay
            .memory_limit
            .or(scenario
                .memory_limit
                .as_deref()
                .map(budget::parse_size)
                .transpose()?)
            .or((spec.regime == Regime::BeyondMemory).then_some(regime::BEYOND_MEMORY_BUDGET));
        // Beyond memory, each scenario is sized from its budget.
        let (scenario, scale) = match (spec.regime, limit) {
            (Regime::BeyondMemory, Some(limit)) => regime::beyond_memory(scenario, limit)?,
            _ => (scenario.clone(), spec.scale),
        };
        let scenario = &scenario;
        bar.set_message(format!("{}: generating", scenario.name));
        let generated = generate_checked(scenario, scale)?;
        // A budgeted run replays in a child process: it reads the trace from a file.
        let trace_file = match limit {
            Some(_) => Some(write_trace(&generated.trace, &spec.replay.data_dir)?),
            None => None,
        };
        let mut results = Vec::new();
        for &(engine, durability) in &plan {
            bar.set_message(format!(
                "{} on {} ({})",
                scenario.name,
                engine.name(),
                durability.name()
            ));
            let result = match (limit, &trace_file) {
                (Some(limit), Some(trace)) => isolated::run_isolated(&IsolatedRun {
                    scenario: &scenario.name,
                    trace,
                    trace_ops: generated.trace.ops.len() as u64,
                    engine,
                    durability,
                    limit,
                    replay: &spec.replay,
                })?,
                _ => in_process(
                    &mut InMemory::new(&generated.trace),
                    engine,
                    durability,
                    &settings,
                    &spec.replay,
                    options,
                )?,
            };
            let capped = result
                .time_capped
                .as_ref()
                .map_or(String::new(), |capped| format!("  ({})", capped.describe()));
            let line = match &result.out_of_memory {
                Some(oom) => format!(
                    "{:<17} {:<7} {:<9} {}",
                    scenario.name,
                    engine.name(),
                    durability.name(),
                    oom.describe()
                ),
                None => format!(
                    "{:<17} {:<7} {:<9} {:>9.0} ops/s  p99 {:>9.1} µs  wrong answers {}  duplicate owners {}{capped}",
                    scenario.name,
                    engine.name(),
                    durability.name(),
                    result.throughput_ops_per_sec,
                    result.latency.get("all").map_or(0.0, |latency| latency.p99_us),
                    result.mismatches,
                    result.duplicate_owners,
                ),
            };
            // Without a terminal the bar is hidden and so are its lines.
            if bar.is_hidden() {
                eprintln!("{line}");
            } else {
                bar.println(line);
            }
            results.push(result);
            bar.inc(1);
        }
        if let Some(trace) = &trace_file {
            let _ = std::fs::remove_file(trace);
        }
        // What the harness itself costs on this trace: the same replay with
        // a store that does nothing.
        let null_open = |_: &Path| {
            engines::open(
                EngineKind::NULL,
                DurabilityMode::None,
                &settings,
                Path::new(""),
                1,
            )
        };
        let harness_cost = run::run(
            &RunSpec {
                engine: EngineKind::NULL,
                durability: DurabilityMode::None,
                open: &null_open,
                dir: spec.replay.data_dir.join(format!("{}-null", scenario.name)),
                options: ReplayOptions {
                    time_cap: None,
                    ..options
                },
                metrics_file: None,
                keep_data: false,
            },
            &mut InMemory::new(&generated.trace),
        )?;
        reports.push(ScenarioReport {
            harness_ops_per_sec: harness_cost.throughput_ops_per_sec,
            scenario: scenario.clone(),
            scale,
            ops_by_kind: ops_by_kind(&generated.trace),
            runtime: generated.stats,
            results,
        });
    }
    bar.finish_and_clear();
    let report = Report {
        command: spec.command.clone(),
        machine: Machine::describe(&spec.replay.data_dir),
        threads: options.threads,
        open_loop_rate: options.open_loop_rate,
        started: started_at,
        scenarios: reports,
    };
    report::write(&report, &spec.out)?;
    println!(
        "{}",
        std::fs::read_to_string(spec.out.join("SUMMARY.md")).unwrap_or_default()
    );
    println!(
        "Results, summary and plots written to {}/",
        spec.out.display()
    );
    fail_on_wrong_answers(
        report
            .scenarios
            .iter()
            .flat_map(|scenario| &scenario.results),
    )
}

/// One run in this process, with no memory limit.
fn in_process(
    source: &mut dyn OpSource,
    engine: EngineKind,
    durability: DurabilityMode,
    settings: &EngineSettings,
    args: &ReplayArgs,
    options: ReplayOptions,
) -> Result<RunResult> {
    let actors = source.header().actors;
    let open = |dir: &Path| engines::open(engine, durability, settings, dir, actors);
    let dir = args.data_dir.join(format!(
        "{}-{}-{}",
        source.header().scenario,
        engine.name(),
        durability.name()
    ));
    run::run(
        &RunSpec {
            engine,
            durability,
            open: &open,
            dir,
            options,
            metrics_file: args.metrics_file.as_deref(),
            keep_data: args.keep_data,
        },
        source,
    )
}

/// The trace as a file for budgeted runs' child processes.
fn write_trace(trace: &Trace, data_dir: &Path) -> Result<PathBuf> {
    std::fs::create_dir_all(data_dir).map_err(Error::file(data_dir))?;
    let path = data_dir.join(format!("{}.trace", trace.header.scenario));
    trace.write(&path)?;
    Ok(path)
}

fn lost(result: &RunResult) -> u64 {
    result
        .recovery
        .as_ref()
        .map_or(0, |recovery| recovery.states_lost)
}

/// Wrong answers, duplicate owners and states lost over a clean reopen are
/// failures of an engine, not figures.
fn fail_on_wrong_answers<'a>(results: impl Iterator<Item = &'a RunResult>) -> Result<()> {
    let broken: Vec<String> = results
        // The null engine's answers are placeholders by design.
        .filter(|result| result.engine != EngineKind::NULL)
        .filter(|result| result.mismatches > 0 || result.duplicate_owners > 0 || lost(result) > 0)
        .map(|result| {
            format!(
                "{} on {} ({}): {} wrong answers, {} duplicate owners, {} states lost over a reopen; first: {}",
                result.scenario,
                result.engine.name(),
                result.durability.name(),
                result.mismatches,
                result.duplicate_owners,
                lost(result),
                result.first_mismatches.first().map_or("-", String::as_str)
            )
        })
        .collect();
    if broken.is_empty() {
        Ok(())
    } else {
        Err(Error::Wrong(broken.join("\n")))
    }
}

pub fn run_one(
    scenario: &str,
    engine: EngineKind,
    durability: DurabilityMode,
    scale: f64,
    args: &ReplayArgs,
    out: &Path,
) -> Result<()> {
    check_scale(scale)?;
    let scenario = Scenario::find(scenario)?;
    let generated = generate_checked(&scenario, scale)?;
    let limit = args.memory_limit.or(scenario
        .memory_limit
        .as_deref()
        .map(budget::parse_size)
        .transpose()?);
    let result = match limit {
        Some(limit) => {
            let trace = write_trace(&generated.trace, &args.data_dir)?;
            let result = measure_isolated(
                &trace,
                &generated.trace.header,
                generated.trace.ops.len() as u64,
                engine,
                durability,
                limit,
                args,
            );
            let _ = std::fs::remove_file(&trace);
            result?
        }
        None => measure_trace(
            &mut InMemory::new(&generated.trace),
            engine,
            durability,
            args,
        )?,
    };
    let path = run::result_path(out, &result);
    if let Some(parent) = path.parent() {
        std::fs::create_dir_all(parent).map_err(Error::file(parent))?;
    }
    let json = serde_json::to_string_pretty(&result)?;
    std::fs::write(&path, json + "\n").map_err(Error::file(&path))?;
    println!("{}", report::table(std::slice::from_ref(&result)));
    println!("Written to {}", path.display());
    fail_on_wrong_answers(std::iter::once(&result))
}

/// The durability `engine` runs at when asked for `durability` (the
/// volatile memory engine runs at none).
fn resolve(engine: EngineKind, durability: DurabilityMode) -> Result<DurabilityMode> {
    DurabilityMode::for_engine(engine, &[durability])
        .first()
        .copied()
        .ok_or_else(|| {
            Error::Usage(format!(
                "{} cannot run at {} durability",
                engine.name(),
                durability.name()
            ))
        })
}

fn measure_trace(
    source: &mut dyn OpSource,
    engine: EngineKind,
    durability: DurabilityMode,
    args: &ReplayArgs,
) -> Result<RunResult> {
    let durability = resolve(engine, durability)?;
    let mut settings = EngineSettings::from_files(&args.configs)?;
    if let Some(budget) = args.sized_for {
        settings.sized_for(budget);
    }
    in_process(source, engine, durability, &settings, args, options(args)?)
}

pub fn record(scenario: &str, scale: f64, out: &Path) -> Result<()> {
    check_scale(scale)?;
    let scenario = Scenario::find(scenario)?;
    let generated = generate_checked(&scenario, scale)?;
    generated.trace.write(out)?;
    let bytes = std::fs::metadata(out).map_or(0, |meta| meta.len());
    println!(
        "{}: {} ops ({:?}) in {} bytes → {}\n{:?}",
        scenario.name,
        generated.trace.ops.len(),
        ops_by_kind(&generated.trace),
        bytes,
        out.display(),
        generated.stats
    );
    Ok(())
}

/// `trace` (also in the file `path`) on `engine` in a child process limited
/// to `limit` bytes.
fn measure_isolated(
    path: &Path,
    header: &TraceHeader,
    trace_ops: u64,
    engine: EngineKind,
    durability: DurabilityMode,
    limit: u64,
    args: &ReplayArgs,
) -> Result<RunResult> {
    let durability = resolve(engine, durability)?;
    isolated::run_isolated(&IsolatedRun {
        scenario: &header.scenario,
        trace: path,
        trace_ops,
        engine,
        durability,
        limit,
        replay: args,
    })
}

pub fn replay_trace(
    path: &Path,
    engine: EngineKind,
    durability: DurabilityMode,
    args: &ReplayArgs,
    result_json: Option<&Path>,
) -> Result<()> {
    // Streamed: a replaying child holds a window of the trace, not all of it.
    let mut source = Streamed::open(path)?;
    let result = match args.memory_limit {
        Some(limit) => {
            let (header, total) = (source.header().clone(), source.total_ops());
            measure_isolated(path, &header, total, engine, durability, limit, args)?
        }
        None => measure_trace(&mut source, engine, durability, args)?,
    };
    if let Some(out) = result_json {
        let json = serde_json::to_string(&result)?;
        std::fs::write(out, json).map_err(Error::file(out))?;
    }
    println!("{}", report::table(std::slice::from_ref(&result)));
    for mismatch in &result.first_mismatches {
        println!("wrong answer: {mismatch}");
    }
    fail_on_wrong_answers(std::iter::once(&result))?;
    println!("every answer matched the recorded one");
    Ok(())
}
