//! `leasehold`: the command line of the Leasehold kit.
//!
//! `compare` (the main job: every scenario on every engine, results and plots
//! written), `run`, `record` / `replay` of traces, and `crash-fuzz`. The
//! operator commands join with their issue (see README.md).

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Parser, Subcommand};

use leasehold::{
    bench, compare, crash_fuzz, engines, operator, ratios, regime, user_trace, ReplayArgs,
};
use leasehold::{Error, Result};
use leasehold_core::vfs::CrashPolicy;

use engines::{DurabilityMode, EngineKind};

#[derive(Parser)]
#[command(
    name = "leasehold",
    version,
    about = "Storage engines for virtual-actor leases and snapshots, compared"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum ActorCommand {
    /// The leases in a store: owner, epoch, version, expiry, renewals.
    ListLeases {
        #[command(flatten)]
        target: operator::TargetArgs,
        #[arg(long)]
        node_id: Option<String>,
        #[arg(long)]
        actor_type: Option<String>,
        /// Only leases not held now (expired or released).
        #[arg(long)]
        expired: bool,
        #[arg(long)]
        json: bool,
        /// Judge expiry at this time (Unix ms) instead of now.
        #[arg(long)]
        at: Option<u64>,
    },
    /// One actor's lease and snapshot: version, epoch, sizes, times, tags,
    /// TTL, hash verified, and the state (as JSON when it is JSON, else hex).
    InspectState {
        #[command(flatten)]
        target: operator::TargetArgs,
        #[arg(long)]
        actor_type: String,
        #[arg(long)]
        actor_id: String,
        /// Bytes of the state to show (of its pretty JSON, when it is JSON).
        #[arg(long, default_value_t = 1024)]
        max_bytes: usize,
        /// Judge TTL and lease expiry at this time (Unix ms) instead of now.
        #[arg(long)]
        at: Option<u64>,
    },
}

#[derive(Subcommand)]
enum Command {
    /// Inspect actors' leases and state in a store's files (read-only).
    Actor {
        #[command(subcommand)]
        command: ActorCommand,
    },
    /// A running replay's metrics (--file, from --metrics-file), or what a
    /// store's files hold (--engine/--dir or --config).
    Metrics {
        #[command(flatten)]
        target: operator::TargetArgs,
        #[arg(long, conflicts_with_all = ["config", "engine", "dir"])]
        file: Option<PathBuf>,
        /// Refresh in place until interrupted.
        #[arg(long)]
        watch: bool,
        #[arg(long, default_value = "1s", value_parser = operator::parse_interval)]
        interval: std::time::Duration,
        #[arg(long, hide = true)]
        count: Option<u64>,
    },
    /// Probes a store (open, engine health, a write/read/delete round trip,
    /// verify, disk space): prints each and exits 0 Healthy, 1 Degraded, 2 Failed.
    /// It writes (and deletes) a probe key: not for a directory another process has open.
    HealthCheck {
        #[command(flatten)]
        target: operator::TargetArgs,
    },
    /// The engine's full structural check, read-only; exit 1 if it finds a problem.
    Verify {
        #[command(flatten)]
        target: operator::TargetArgs,
    },
    /// Every file of a store as a person reads it — WAL records, table blocks
    /// and index, manifest edits, B+tree pages and meta slots — with each
    /// checksum shown valid or INVALID; exit 1 if anything is damaged.
    Dump {
        #[command(flatten)]
        target: operator::TargetArgs,
        /// Only this file of the directory.
        #[arg(long)]
        file: Option<String>,
        /// Entries shown per block, page or log.
        #[arg(long, default_value_t = 5)]
        max_entries: usize,
    },
    /// Every scenario on every engine at buffered and sync durability: JSON per
    /// run, results/SUMMARY.md and SVG plots.
    Compare {
        /// About one minute instead of about ten (scale 0.1).
        #[arg(long, conflicts_with_all = ["scale", "regime"])]
        quick: bool,
        /// in-memory (default), or beyond-memory: each run in a memory budget
        /// (384MiB unless --memory-limit names one), each scenario sized so its
        /// preloaded snapshots hold 2.5× it (activation-storm,
        /// snapshot-heavy and ycsb-mix unless --scenario names others; each run
        /// capped at 150 s); results/beyond-memory/.
        #[arg(
            long,
            value_enum,
            default_value = "in-memory",
            conflicts_with = "scale"
        )]
        regime: regime::Regime,
        /// Actors and message rate × this (the virtual timeline stays the same).
        #[arg(long)]
        scale: Option<f64>,
        /// Built-in scenario names or TOML files (default: all built-in).
        #[arg(long = "scenario")]
        scenarios: Vec<String>,
        /// Engines to run (default: all).
        #[arg(long = "engine", value_enum)]
        engines: Vec<EngineKind>,
        /// Durabilities to run (default: buffered and sync).
        #[arg(long = "durability", value_enum)]
        durabilities: Vec<DurabilityMode>,
        #[command(flatten)]
        replay: ReplayArgs,
        /// Where results go (default: results/, or results/quick/ with --quick so a
        /// quick run never overwrites a full one).
        #[arg(long)]
        out: Option<PathBuf>,
    },
    /// One scenario on one engine; writes results/<scenario>/<engine>-<durability>.json.
    Run {
        #[arg(long)]
        scenario: String,
        #[arg(long, value_enum)]
        engine: EngineKind,
        #[arg(long, value_enum, default_value = "buffered")]
        durability: DurabilityMode,
        #[arg(long, default_value_t = 1.0)]
        scale: f64,
        #[command(flatten)]
        replay: ReplayArgs,
        #[arg(long, default_value = "results")]
        out: PathBuf,
    },
    /// Generate a scenario's store operations, with the reference answers, into a trace file.
    Record {
        /// A built-in scenario or a TOML file to generate the trace from.
        #[arg(long, required_unless_present = "from_jsonl")]
        scenario: Option<String>,
        #[arg(long, default_value_t = 1.0)]
        scale: f64,
        /// Convert this JSONL trace (one op per line, README "User traces")
        /// instead: played against the reference store for its answers.
        #[arg(long, conflicts_with_all = ["scenario", "format"])]
        from_jsonl: Option<PathBuf>,
        #[command(flatten)]
        jsonl: user_trace::JsonlArgs,
        /// What to write: the framed trace, or the scenario's ops as JSONL.
        #[arg(long, value_enum)]
        format: Option<user_trace::TraceFormat>,
        #[arg(long)]
        out: PathBuf,
    },
    /// Replay a trace against an engine; fails if any answer differs from the recorded one.
    Replay {
        #[arg(long, required_unless_present = "jsonl")]
        trace: Option<PathBuf>,
        /// A JSONL trace (one op per line, README "User traces"): converted
        /// into a trace beside the engine data (answers from the reference
        /// store), then replayed like any trace.
        #[arg(long, conflicts_with = "trace")]
        jsonl: Option<PathBuf>,
        #[command(flatten)]
        jsonl_args: user_trace::JsonlArgs,
        #[arg(long, value_enum)]
        engine: EngineKind,
        #[arg(long, value_enum, default_value = "buffered")]
        durability: DurabilityMode,
        #[command(flatten)]
        replay: ReplayArgs,
        /// Also write the run's result as JSON here (before the answers are
        /// judged); how a budgeted run's child reports to its parent.
        #[arg(long, hide = true)]
        result_json: Option<PathBuf>,
    },
    /// The standard workloads others defined — db_bench's fillrandom,
    /// overwrite, readrandom, seekrandom, fillsync and YCSB A–F — on every
    /// engine, at the key-value level and through the Store:
    /// results/bench/SUMMARY.md and bench.json.
    Bench {
        #[command(flatten)]
        args: bench::BenchArgs,
    },
    /// Every engine's throughput and p99 as a ratio to RocksDB's, in memory
    /// and beyond it side by side, from two comparisons' results:
    /// RATIOS.md and plots/ratio-*.svg.
    Ratios {
        #[command(flatten)]
        args: ratios::RatiosArgs,
    },
    /// Crash-recovery fuzzing of an engine on the simulated disk.
    CrashFuzz {
        #[arg(long, value_enum)]
        engine: EngineKind,
        /// How long to search (ignored with --exhaustive or --replay).
        #[arg(long, default_value_t = 60)]
        seconds: u64,
        /// First seed; round n uses seed + n. Default: from the clock (printed).
        #[arg(long)]
        seed: Option<u64>,
        /// Crash policies to use (default: all).
        #[arg(long = "policy", value_parser = parse_policy)]
        policies: Vec<CrashPolicy>,
        #[arg(long, value_enum, default_value = "crash")]
        mode: crash_fuzz::Mode,
        /// Every crash point of a fixed set of short sequences, under each policy.
        #[arg(long)]
        exhaustive: bool,
        /// Rerun a reproducer written by an earlier failure.
        #[arg(long)]
        replay: Option<std::path::PathBuf>,
        /// Where to write a failure's reproducer (default results/crash-fuzz/<engine>-<seed>.json).
        #[arg(long)]
        out: Option<std::path::PathBuf>,
        /// Write what the campaign covered to results/crash-fuzz-<engine>.{md,json} (crash mode).
        #[arg(long)]
        report: bool,
        /// Plant this bug (e.g. skip-wal-sync) and hunt for it: exit 0 once a
        /// case catches it, 1 if --seconds pass without. Needs a build with
        /// `--features planted-bugs`.
        #[arg(long)]
        planted: Option<String>,
    },
}

fn parse_policy(name: &str) -> Result<CrashPolicy> {
    CrashPolicy::parse(name).ok_or_else(|| {
        let names: Vec<&str> = CrashPolicy::ALL
            .iter()
            .map(|policy| policy.name())
            .collect();
        Error::Usage(format!(
            "unknown crash policy {name:?}; expected one of {}",
            names.join(", ")
        ))
    })
}

fn main() -> ExitCode {
    // Die quietly on a closed pipe (`leasehold actor list-leases | head`), as
    // Unix tools do, instead of panicking in println!.
    // SAFETY: restoring the default action of a signal has no preconditions.
    unsafe {
        libc::signal(libc::SIGPIPE, libc::SIG_DFL);
    }
    let cli = Cli::parse();
    let outcome = match cli.command {
        Command::Compare {
            quick,
            regime,
            scale,
            scenarios,
            engines,
            durabilities,
            replay,
            out,
        } => {
            let scale = scale.unwrap_or(if quick { 0.1 } else { 1.0 });
            let mut replay = replay;
            if regime == regime::Regime::BeyondMemory {
                replay
                    .time_cap_secs
                    .get_or_insert(regime::BEYOND_MEMORY_TIME_CAP_SECS);
            }
            let out = out.unwrap_or_else(|| {
                PathBuf::from(match (quick, regime) {
                    (true, _) => "results/quick",
                    (false, regime::Regime::BeyondMemory) => "results/beyond-memory",
                    (false, regime::Regime::InMemory) => "results",
                })
            });
            let mut command = std::env::args().collect::<Vec<_>>();
            command[0] = "leasehold".to_owned();
            compare::compare(&compare::CompareSpec {
                command: command.join(" "),
                regime,
                scale,
                scenarios,
                engines,
                durabilities,
                replay,
                out,
            })
            .map(|()| 0)
        }
        Command::Run {
            scenario,
            engine,
            durability,
            scale,
            replay,
            out,
        } => compare::run_one(&scenario, engine, durability, scale, &replay, &out).map(|()| 0),
        Command::Record {
            scenario,
            scale,
            from_jsonl,
            jsonl,
            format,
            out,
        } => match (from_jsonl, scenario, format.unwrap_or_default()) {
            (Some(input), _, _) => user_trace::record_from_jsonl(&input, &jsonl, &out),
            (None, Some(scenario), user_trace::TraceFormat::Trace) => {
                compare::record(&scenario, scale, &out)
            }
            (None, Some(scenario), user_trace::TraceFormat::Jsonl) => {
                user_trace::export(&scenario, scale, &out)
            }
            (None, None, _) => Err(Error::usage("--scenario or --from-jsonl is required")),
        }
        .map(|()| 0),
        Command::Replay {
            trace,
            jsonl,
            jsonl_args,
            engine,
            durability,
            replay,
            result_json,
        } => replay_command(
            trace,
            jsonl,
            &jsonl_args,
            engine,
            durability,
            &replay,
            result_json.as_deref(),
        )
        .map(|()| 0),
        Command::Ratios { args } => ratios::write(&args).map(|()| 0),
        Command::Bench { args } => {
            let mut command = std::env::args().collect::<Vec<_>>();
            command[0] = "leasehold".to_owned();
            bench::bench(&args, &command.join(" ")).map(|()| 0)
        }
        Command::Actor { command } => match command {
            ActorCommand::ListLeases {
                target,
                node_id,
                actor_type,
                expired,
                json,
                at,
            } => operator::list_leases(
                &target,
                &operator::ListLeases {
                    node_id,
                    actor_type,
                    expired,
                    json,
                    at,
                },
            ),
            ActorCommand::InspectState {
                target,
                actor_type,
                actor_id,
                max_bytes,
                at,
            } => operator::inspect_state(
                &target,
                &operator::InspectState {
                    actor_type,
                    actor_id,
                    max_bytes,
                    at,
                },
            ),
        },
        Command::Metrics {
            target,
            file,
            watch,
            interval,
            count,
        } => operator::metrics(
            &target,
            &operator::MetricsOptions {
                file: file.as_deref(),
                watch,
                interval,
                count,
            },
        ),
        Command::HealthCheck { target } => operator::health_check(&target),
        Command::Verify { target } => operator::verify(&target),
        Command::Dump {
            target,
            file,
            max_entries,
        } => operator::dump(&target, file.as_deref(), max_entries),
        Command::CrashFuzz {
            engine,
            seconds,
            seed,
            policies,
            mode,
            exhaustive,
            replay,
            out,
            report,
            planted,
        } => {
            let seed = seed.unwrap_or_else(|| {
                std::time::SystemTime::now()
                    .duration_since(std::time::UNIX_EPOCH)
                    .map_or(0, |elapsed| elapsed.as_secs())
            });
            let policies = if policies.is_empty() {
                CrashPolicy::ALL.to_vec()
            } else {
                policies
            };
            let options = crash_fuzz::Options {
                engine,
                seconds,
                seed,
                policies,
                mode,
                exhaustive,
                replay,
                out,
                report,
                planted,
            };
            eprintln!("crash-fuzz {engine:?}, seed {seed}, {mode:?} mode");
            match crash_fuzz::run(&options) {
                Ok(summary) => {
                    println!("{summary}");
                    Ok(0)
                }
                Err(failure) => Err(failure),
            }
        }
    };
    match outcome {
        Ok(code) => ExitCode::from(code),
        Err(err) => {
            eprintln!("leasehold: {err}");
            ExitCode::FAILURE
        }
    }
}

/// `replay --trace F` or `replay --jsonl F` (converted first, into a trace
/// file that is removed afterwards).
fn replay_command(
    trace: Option<PathBuf>,
    jsonl: Option<PathBuf>,
    jsonl_args: &user_trace::JsonlArgs,
    engine: EngineKind,
    durability: DurabilityMode,
    replay: &ReplayArgs,
    result_json: Option<&std::path::Path>,
) -> Result<()> {
    match (trace, jsonl) {
        (Some(trace), _) => compare::replay_trace(&trace, engine, durability, replay, result_json),
        (None, Some(input)) => {
            let converted = user_trace::converted_path(&input, &replay.data_dir)?;
            let stats = user_trace::convert(&input, jsonl_args, &converted)?;
            println!(
                "{}: {} lines → {} ops, {} actors, {} nodes",
                input.display(),
                stats.lines,
                stats.ops,
                stats.actors,
                stats.nodes
            );
            let replayed =
                compare::replay_trace(&converted, engine, durability, replay, result_json);
            let _ = std::fs::remove_file(&converted);
            replayed
        }
        (None, None) => Err(Error::usage("--trace or --jsonl is required")),
    }
}
