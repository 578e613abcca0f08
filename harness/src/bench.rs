//! `leasehold bench`: the workloads others defined — db_bench's and YCSB's
//! (`bench/workload.rs`) — on every engine, at the key-value level and
//! through the Store (`bench/target.rs`), so the figures sit beside
//! published tables. Results: `results/bench/bench.json` and
//! `results/bench/SUMMARY.md` (ops/s with the ratio to RocksDB at the same
//! level, and p99 latency).
//!
//! Order, as the suites run them: db_bench fills an empty engine
//! (`fillrandom`, or `filluniquerandom` when named), then `overwrite`,
//! `readrandom`, `readmissing` and `seekrandom` run on what it filled;
//! `fillsync` gets an engine of its own. Each suite's engine is closed at
//! its end and its directory measured (bytes on disk beside the key and
//! value bytes written). YCSB loads its
//! records (the "load" column), then runs A, B, C, F, D, E on them (YCSB's
//! recommended sequence; D and E insert). One thread unless `--threads`
//! (both suites' default); writes buffered except fillsync's.
//!
//! With `--memory-limit`, each engine and level runs in a child process of
//! its own inside a memory cgroup (`bench/budgeted.rs`), and the report adds
//! each one's peak memory.

mod budgeted;
mod fresh;
mod output;
mod report;
mod target;
mod timed;
mod workload;

use std::path::PathBuf;

use crate::budget;
use crate::engines::{DurabilityMode, EngineKind, EngineSettings};
use crate::{Error, Result};
use fresh::Fresh;
use output::Sink;
pub use output::{BenchMemory, BenchOutput, BenchResult, BenchSpace};
pub use target::Level;
use target::{Target, Values};
use timed::{run, LoadPhase};
use workload::Requests;
pub use workload::Workload;

#[derive(clap::Args, Clone, Debug)]
pub struct BenchArgs {
    /// Workloads to run (default: all of db_bench's and YCSB's).
    #[arg(long = "workload", value_enum)]
    pub workloads: Vec<Workload>,
    /// Engines to run (default: every embedded one).
    #[arg(long = "engine", value_enum)]
    pub engines: Vec<EngineKind>,
    /// Levels to run at (default: both).
    #[arg(long = "level", value_enum)]
    pub levels: Vec<Level>,
    /// Records: db_bench's --num (keys fillrandom draws from), YCSB's
    /// recordcount.
    #[arg(long, default_value_t = 100_000)]
    pub records: u64,
    /// Requests per workload (fillsync: a thousandth, at least 1000;
    /// filluniquerandom and YCSB's load: one per record).
    #[arg(long, default_value_t = 100_000)]
    pub ops: u64,
    /// db_bench's value size (`--value_size`); YCSB's records stay 1000 bytes.
    #[arg(long, default_value_t = 100)]
    pub value_bytes: u32,
    /// db_bench's `--compression_ratio`: each value is a random run of about
    /// this share of its length, repeated (1.0: all random). YCSB's records
    /// are all random.
    #[arg(long, default_value_t = 0.5)]
    pub compression_ratio: f64,
    /// db_bench's `--seek_nexts`: entries seekrandom reads after its seek.
    #[arg(long, default_value_t = 0)]
    pub seek_nexts: usize,
    /// Run each engine and level in its own child process inside a memory
    /// cgroup of this size ("384MiB"; page cache counted; needs root), with
    /// every engine's caches sized for it, and report its peak memory.
    #[arg(long, value_parser = budget::parse_size)]
    pub memory_limit: Option<u64>,
    /// Run every engine this many times, one after the other in turn; the
    /// report gives each cell's median and the range of its ratios.
    #[arg(long, default_value_t = 1)]
    pub repeat: u32,
    /// The engine the report's ratios are to (at the same level, in the same
    /// round).
    #[arg(long, value_enum, default_value_t = EngineKind::ROCKSDB)]
    pub yardstick: EngineKind,
    /// A budgeted child's results, written after each workload.
    #[arg(long, hide = true)]
    pub result_json: Option<PathBuf>,
    /// The budget a child's engine caches are sized for.
    #[arg(long, hide = true, value_parser = budget::parse_size)]
    pub sized_for: Option<u64>,
    /// Every write at sync durability (fsynced before its answer), not
    /// buffered: the durability engines s3 and postgres are compared at.
    #[arg(long)]
    pub sync: bool,
    /// Client threads (db_bench's and YCSB's default is 1).
    #[arg(long, default_value_t = 1)]
    pub threads: usize,
    #[arg(long, default_value_t = 1)]
    pub seed: u64,
    /// Engine settings from the seed's TOML, as for compare.
    #[arg(long = "config")]
    pub configs: Vec<PathBuf>,
    /// Where engines keep their files while they run (removed after).
    #[arg(long, default_value = "results/data")]
    pub data_dir: PathBuf,
    #[arg(long, default_value = "results/bench")]
    pub out: PathBuf,
}

/// "load" is YCSB's load phase.
const LOAD: &str = "load";

pub fn bench(args: &BenchArgs, command: &str) -> Result<()> {
    if args.threads == 0 || args.threads > 64 || args.records == 0 || args.ops == 0 {
        return Err(Error::Usage(
            "--threads must be 1..=64; --records and --ops at least 1".to_owned(),
        ));
    }
    if !(1..=100).contains(&args.repeat) {
        return Err(Error::Usage("--repeat must be 1..=100".to_owned()));
    }
    if !(args.value_bytes >= 1 && args.value_bytes <= 1 << 20) {
        return Err(Error::Usage("--value-bytes must be 1..=1048576".to_owned()));
    }
    if !(args.compression_ratio > 0.0 && args.compression_ratio <= 1.0) {
        return Err(Error::Usage(
            "--compression-ratio must be above 0 and at most 1".to_owned(),
        ));
    }
    let workloads = args.workloads();
    if workloads.contains(&Workload::Fillrandom) && workloads.contains(&Workload::Filluniquerandom)
    {
        return Err(Error::Usage(
            "fillrandom and filluniquerandom both fill the db_bench suite's engine: \
                    name one"
                .to_owned(),
        ));
    }
    let engines: Vec<EngineKind> = if args.engines.is_empty() {
        EngineKind::compared_by_default()
    } else {
        args.engines.clone()
    };
    let levels = if args.levels.is_empty() {
        vec![Level::Kv, Level::Store]
    } else {
        args.levels.clone()
    };
    let started = crate::compare::started();
    let output = match (args.memory_limit, &args.result_json) {
        (Some(limit), None) => budgeted::run_all(args, &engines, &levels, limit)?,
        _ => {
            let mut settings = EngineSettings::from_files(&args.configs)?;
            if let Some(budget) = args.sized_for {
                settings.sized_for(budget);
            }
            let mut sink = Sink {
                output: BenchOutput::default(),
                path: args.result_json.clone(),
                round: 0,
            };
            for round in 0..args.repeat {
                sink.round = round;
                for &engine in &engines {
                    for &level in &levels {
                        run_engine(engine, level, &workloads, args, &settings, &mut sink)?;
                    }
                }
            }
            sink.flush()?;
            sink.output
        }
    };
    if args.result_json.is_some() {
        // A budgeted child: its parent reports.
        return Ok(());
    }
    std::fs::create_dir_all(&args.out).map_err(Error::file(&args.out))?;
    let json = serde_json::to_string_pretty(&output)?;
    let json_path = args.out.join("bench.json");
    std::fs::write(&json_path, json + "\n").map_err(Error::file(&json_path))?;
    let summary = report::summary(&output, args, command, &started);
    let summary_path = args.out.join("SUMMARY.md");
    std::fs::write(&summary_path, &summary).map_err(Error::file(&summary_path))?;
    println!("{summary}");
    println!(
        "Written to {} and {}",
        json_path.display(),
        summary_path.display()
    );
    Ok(())
}

impl BenchArgs {
    /// The workloads asked for, or the defaults.
    fn workloads(&self) -> Vec<Workload> {
        if self.workloads.is_empty() {
            Workload::defaults()
        } else {
            self.workloads.clone()
        }
    }

    /// The values db_bench's workloads write.
    fn db_bench_values(&self) -> Values {
        Values {
            bytes: self.value_bytes,
            compressible_to: self.compression_ratio,
        }
    }
}

/// Both suites on one engine at one level.
fn run_engine(
    engine: EngineKind,
    level: Level,
    workloads: &[Workload],
    args: &BenchArgs,
    settings: &EngineSettings,
    sink: &mut Sink,
) -> Result<()> {
    if level == Level::Kv && !engine.has_kv_engine() {
        // A store on a server has no key-value level: its cells stay empty.
        return Ok(());
    }
    let db_bench: Vec<Workload> = workloads
        .iter()
        .copied()
        .filter(|workload| !workload.is_ycsb())
        .filter(|workload| level == Level::Kv || *workload != Workload::Seekrandom)
        .collect();
    let ycsb: Vec<Workload> = workloads.iter().copied().filter(|w| w.is_ycsb()).collect();
    run_db_bench(engine, level, &db_bench, args, settings, sink)?;
    run_ycsb(engine, level, &ycsb, args, settings, sink)
}

/// The durability writes run at: buffered (sync with `--sync`, or for
/// fillsync), or none for the volatile memory engine (which cannot sync).
/// `None`: the engine has no such durability (s3 is never buffered).
fn durability_of(engine: EngineKind, sync: bool) -> Option<DurabilityMode> {
    let wanted = if sync {
        DurabilityMode::Sync
    } else {
        DurabilityMode::Buffered
    };
    DurabilityMode::for_engine(engine, &[wanted])
        .first()
        .copied()
        .filter(|mode| !sync || *mode == DurabilityMode::Sync)
}

fn run_db_bench(
    engine: EngineKind,
    level: Level,
    workloads: &[Workload],
    args: &BenchArgs,
    settings: &EngineSettings,
    sink: &mut Sink,
) -> Result<()> {
    let values = args.db_bench_values();
    let on_filled: Vec<Workload> = workloads
        .iter()
        .copied()
        .filter(|workload| *workload != Workload::Fillsync)
        .collect();
    if let (false, Some(durability)) = (on_filled.is_empty(), durability_of(engine, args.sync)) {
        let mut fresh = Fresh::open(engine, durability, settings, args, "db_bench", args.records)?;
        // Unmeasured, a fill still runs: the others need its keys.
        let fill = on_filled
            .iter()
            .copied()
            .find(|workload| workload.is_fill())
            .unwrap_or(Workload::Fillrandom);
        let mut target =
            Target::new(fresh.store.as_ref(), level, fill, values, args.records).syncing(args.sync);
        for workload in [
            fill,
            Workload::Overwrite,
            Workload::Readrandom,
            Workload::Readmissing,
            Workload::Seekrandom,
        ] {
            let measured = on_filled.contains(&workload);
            if !measured && workload != fill {
                continue;
            }
            target.set_workload(workload);
            let (result, _) = run(
                &target,
                engine,
                level,
                durability,
                workload.name(),
                args,
                |thread, threads| Box::new(requests(workload, args.records, args, thread, threads)),
            )?;
            if measured {
                sink.result(result)?;
            }
        }
        let logical_bytes = target.logical_bytes();
        drop(target);
        if let Some(space) = fresh.close_and_measure("db_bench", engine, level, logical_bytes)? {
            sink.space(space)?;
        }
    }
    if workloads.contains(&Workload::Fillsync) {
        // The volatile memory engine cannot sync: it has no fillsync.
        if let Some(durability) = durability_of(engine, true) {
            let fresh = Fresh::open(engine, durability, settings, args, "fillsync", args.records)?;
            let target = Target::new(
                fresh.store.as_ref(),
                level,
                Workload::Fillsync,
                values,
                args.records,
            );
            let (result, _) = run(
                &target,
                engine,
                level,
                durability,
                "fillsync",
                args,
                |thread, threads| {
                    Box::new(requests(
                        Workload::Fillsync,
                        args.records,
                        args,
                        thread,
                        threads,
                    ))
                },
            )?;
            sink.result(result)?;
        }
    }
    Ok(())
}

/// One client thread's requests of `workload` over `records`.
fn requests(
    workload: Workload,
    records: u64,
    args: &BenchArgs,
    thread: usize,
    threads: usize,
) -> Requests {
    Requests::new(workload, records, args.seed, (thread, threads)).with_seek_nexts(args.seek_nexts)
}

fn run_ycsb(
    engine: EngineKind,
    level: Level,
    workloads: &[Workload],
    args: &BenchArgs,
    settings: &EngineSettings,
    sink: &mut Sink,
) -> Result<()> {
    let Some(durability) = durability_of(engine, args.sync) else {
        return Ok(());
    };
    if workloads.is_empty() {
        return Ok(());
    }
    // Room for every record D and E may insert.
    let capacity = args.records + 2 * args.ops + 64;
    let mut fresh = Fresh::open(engine, durability, settings, args, "ycsb", capacity)?;
    // One target through the sequence: at the Store level it keeps each
    // record's version and lease from one workload to the next.
    let mut target = Target::new(
        fresh.store.as_ref(),
        level,
        Workload::YcsbA,
        Values::YCSB,
        capacity,
    )
    .syncing(args.sync);
    // YCSB's load phase: every record inserted once, in order.
    let (load, _) = run(&target, engine, level, durability, LOAD, args, |_, _| {
        Box::new(LoadPhase {
            next: 0,
            records: args.records,
        })
    })?;
    sink.result(load)?;
    let mut existing = args.records;
    for workload in [
        Workload::YcsbA,
        Workload::YcsbB,
        Workload::YcsbC,
        Workload::YcsbF,
        Workload::Transfer,
        Workload::YcsbD,
        Workload::YcsbE,
    ] {
        if !workloads.contains(&workload) {
            continue;
        }
        target.set_workload(workload);
        let (result, inserted) = run(
            &target,
            engine,
            level,
            durability,
            workload.name(),
            args,
            |thread, threads| Box::new(requests(workload, existing, args, thread, threads)),
        )?;
        // D's and E's inserts come after the records before them.
        existing += inserted;
        sink.result(result)?;
    }
    let logical_bytes = target.logical_bytes();
    drop(target);
    match fresh.close_and_measure("ycsb", engine, level, logical_bytes)? {
        Some(space) => sink.space(space),
        None => Ok(()),
    }
}
