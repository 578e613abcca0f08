//! `leasehold`: the command line of the Leasehold kit.
//!
//! Today it has `compare`, which runs the built-in activation workload on every
//! engine that has landed and prints what each cost, and `crash-fuzz`, the
//! crash-recovery campaign. The scenario harness, `run`, `record` / `replay`
//! and the operator commands join as their issues land (see README.md).

use std::process::ExitCode;
use std::sync::Arc;
use std::time::Duration;

use clap::{Parser, Subcommand};

use leasehold_btree::BtreeEngine;
use leasehold_core::config::{BackupCompression, BtreeConfig, LsmConfig, MemoryConfig};
use leasehold_core::metrics::OpKind;
use leasehold_core::vfs::CrashPolicy;
use leasehold_core::vfs::OsVfs;
use leasehold_core::{Durability, KvStore, Store};
use leasehold_lsm::LsmEngine;
use leasehold_memory::MemoryEngine;
use leasehold_workloads::activation;

mod crash_fuzz;

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
enum Command {
    /// Run the built-in activation workload on every engine and compare.
    /// Crash-recovery fuzzing of an engine on the simulated disk.
    CrashFuzz {
        #[arg(long, value_enum)]
        engine: crash_fuzz::Engine,
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
    },
    Compare {
        /// Number of actors (Zipf θ = 0.99 popularity).
        #[arg(long, default_value_t = 5_000)]
        actors: u32,
        /// Messages delivered (virtual time, 1 ms apart).
        #[arg(long, default_value_t = 100_000)]
        messages: u64,
        #[arg(long, default_value_t = 42)]
        seed: u64,
        /// Where engines with files keep them (a fresh subdirectory per run).
        #[arg(long, default_value = "results/data")]
        data_dir: std::path::PathBuf,
    },
}

struct Row {
    engine: String,
    durability: &'static str,
    outcome: activation::Outcome,
    metrics: leasehold_core::metrics::StoreMetrics,
}

fn parse_policy(name: &str) -> Result<CrashPolicy, String> {
    CrashPolicy::parse(name).ok_or_else(|| {
        let names: Vec<&str> = CrashPolicy::ALL
            .iter()
            .map(|policy| policy.name())
            .collect();
        format!(
            "unknown crash policy {name:?}; expected one of {}",
            names.join(", ")
        )
    })
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    match cli.command {
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
            };
            eprintln!("crash-fuzz {engine:?}, seed {seed}, {mode:?} mode");
            match crash_fuzz::run(&options) {
                Ok(summary) => {
                    println!("{summary}");
                    ExitCode::SUCCESS
                }
                Err(failure) => {
                    eprintln!("{failure}");
                    ExitCode::FAILURE
                }
            }
        }
        Command::Compare {
            actors,
            messages,
            seed,
            data_dir,
        } => {
            let workload = activation::Workload {
                actors,
                messages,
                seed,
                ..activation::Workload::default()
            };
            match compare(&workload, &data_dir) {
                Ok(rows) => {
                    print_table(&workload, &rows);
                    ExitCode::SUCCESS
                }
                Err(err) => {
                    eprintln!("leasehold compare: {err}");
                    ExitCode::FAILURE
                }
            }
        }
    }
}

/// Every landed engine on the workload, grouped by durability so rows that
/// sit together promise the same thing.
fn compare(
    workload: &activation::Workload,
    data_dir: &std::path::Path,
) -> Result<Vec<Row>, String> {
    let run_dir = data_dir.join(format!("compare-{}", std::process::id()));
    let max_entries = u64::from(workload.actors) * 4;
    let lsm = |name: &str, durability: Durability| -> Result<KvStore<LsmEngine>, String> {
        let config = LsmConfig {
            data_dir: run_dir.join(name),
            memtable_size_limit: 4 << 20,
            ..LsmConfig::default()
        };
        let engine =
            LsmEngine::open(&config, Arc::new(OsVfs::new())).map_err(|err| err.to_string())?;
        Ok(KvStore::new(engine, durability))
    };
    let btree = |name: &str, durability: Durability| -> Result<KvStore<BtreeEngine>, String> {
        let config = BtreeConfig {
            data_dir: run_dir.join(name),
            ..BtreeConfig::default()
        };
        let engine =
            BtreeEngine::open(&config, Arc::new(OsVfs::new())).map_err(|err| err.to_string())?;
        Ok(KvStore::new(engine, durability))
    };
    let memory_backup = |name: &str, interval: Duration| -> Result<KvStore<MemoryEngine>, String> {
        let config = MemoryConfig {
            max_entries,
            backup_path: Some(run_dir.join(name).join("backup.lz4")),
            sync_interval: interval,
            compression: BackupCompression::Lz4,
        };
        let engine =
            MemoryEngine::open(&config, Arc::new(OsVfs::new())).map_err(|err| err.to_string())?;
        Ok(KvStore::new(engine, Durability::Group))
    };
    let mut rows = Vec::new();
    let mut run =
        |engine: &str, durability: &'static str, store: &dyn Store| -> Result<(), String> {
            rows.push(measure(engine, durability, store, workload)?);
            store.close().map_err(|err| err.to_string())
        };
    run(
        "memory (volatile)",
        "buffered",
        &KvStore::new(MemoryEngine::volatile(max_entries), Durability::Buffered),
    )?;
    run(
        "lsm",
        "buffered",
        &lsm("lsm-buffered", Durability::Buffered)?,
    )?;
    run(
        "btree",
        "buffered",
        &btree("btree-buffered", Durability::Buffered)?,
    )?;
    run(
        "memory + lz4 backup",
        "group (1 s)",
        &memory_backup("memory-group", Duration::from_secs(1))?,
    )?;
    run(
        "lsm",
        "group (20 ms)",
        &lsm("lsm-group", Durability::Group)?,
    )?;
    run("lsm", "sync", &lsm("lsm-sync", Durability::Sync)?)?;
    run("btree", "sync", &btree("btree-sync", Durability::Sync)?)?;
    // Best effort: the run directory is scratch space.
    let _ = std::fs::remove_dir_all(&run_dir);
    Ok(rows)
}

fn measure(
    engine: &str,
    durability: &'static str,
    store: &dyn Store,
    workload: &activation::Workload,
) -> Result<Row, String> {
    eprintln!(
        "running {} messages over {} actors on {engine} ...",
        workload.messages, workload.actors
    );
    let outcome = activation::run(store, workload).map_err(|err| format!("{engine}: {err}"))?;
    Ok(Row {
        engine: engine.to_owned(),
        durability,
        outcome,
        metrics: store.metrics(),
    })
}

fn micros(duration: Duration) -> String {
    format!("{:.1}", duration.as_secs_f64() * 1e6)
}

fn print_table(workload: &activation::Workload, rows: &[Row]) {
    println!(
        "\nBuilt-in activation workload: {} messages, {} actors (Zipf 0.99), {} nodes, snapshot every {} messages, {} B states, seed {}",
        workload.messages, workload.actors, workload.nodes, workload.snapshot_every, workload.state_bytes, workload.seed
    );
    println!("Latencies are wall-clock µs on this machine; time in the workload is virtual.\n");
    println!("| engine | durability | msgs/s | activations | snapshots | acquire p50/p99 | load p50/p99 | save p50/p99 | fsyncs | write amp | lost updates | duplicate owners |");
    println!("|---|---|---|---|---|---|---|---|---|---|---|---|");
    for row in rows {
        let op = |kind: OpKind| {
            row.metrics.op(kind).map_or("-".to_owned(), |op| {
                format!("{} / {}", micros(op.p50), micros(op.p99))
            })
        };
        let engine = row.metrics.engine.clone().unwrap_or_default();
        let write_amp = engine
            .write_amplification()
            .map_or("-".to_owned(), |amp| format!("{amp:.2}"));
        println!(
            "| {} | {} | {:.0} | {} | {} | {} | {} | {} | {} | {} | {} | {} |",
            row.engine,
            row.durability,
            row.outcome.messages as f64 / row.outcome.elapsed.as_secs_f64(),
            row.outcome.activations,
            row.outcome.snapshots,
            op(OpKind::Acquire),
            op(OpKind::Load),
            op(OpKind::Save),
            engine.fsyncs,
            write_amp,
            row.outcome.lost_updates,
            row.outcome.duplicate_owners,
        );
    }
}
