//! `leasehold ratios`: the picture a person wants from two comparisons —
//! per scenario, each engine's throughput and p99 as a ratio to RocksDB's at
//! the same durability, in memory and beyond it side by side. Reads the
//! result files `compare` wrote (`<dir>/<scenario>/<engine>-<durability>.json`)
//! and writes `RATIOS.md` and `plots/ratio-<scenario>-*.svg`.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::path::{Path, PathBuf};

use crate::engines::{DurabilityMode, EngineKind};
use crate::run::RunResult;
use crate::svg::Chart;
use crate::{Error, Result};

#[derive(clap::Args, Clone, Debug)]
pub struct RatiosArgs {
    /// Results of `leasehold compare` (in memory).
    #[arg(long, default_value = "results")]
    pub in_memory: PathBuf,
    /// Results of `leasehold compare --regime beyond-memory`.
    #[arg(long, default_value = "results/beyond-memory")]
    pub beyond_memory: PathBuf,
    /// Where RATIOS.md and plots/ go.
    #[arg(long, default_value = "results")]
    pub out: PathBuf,
}

/// Scenario → its runs, from one comparison's directory.
type Runs = BTreeMap<String, Vec<RunResult>>;

const REGIMES: [&str; 2] = ["in memory", "beyond memory"];
const DURABILITIES: [DurabilityMode; 2] = [DurabilityMode::Buffered, DurabilityMode::Sync];

/// The runs under `dir`: every `<scenario>/<engine>-<durability>.json`.
fn load(dir: &Path) -> Result<Runs> {
    let mut runs = Runs::new();
    let entries = std::fs::read_dir(dir).map_err(Error::file(dir))?;
    for entry in entries.flatten() {
        let scenario_dir = entry.path();
        let Ok(files) = std::fs::read_dir(&scenario_dir) else {
            continue;
        };
        for file in files.flatten() {
            let path = file.path();
            let Some(stem) = path
                .file_stem()
                .and_then(|stem| stem.to_str())
                .filter(|_| path.extension().is_some_and(|ext| ext == "json"))
            else {
                continue;
            };
            // Only the files compare names after a run.
            let is_run = EngineKind::compared_by_default().iter().any(|engine| {
                [
                    DurabilityMode::Buffered,
                    DurabilityMode::Sync,
                    DurabilityMode::None,
                ]
                .iter()
                .any(|mode| stem == format!("{}-{}", engine.name(), mode.name()))
            });
            if !is_run {
                continue;
            }
            let text = std::fs::read_to_string(&path).map_err(Error::file(&path))?;
            // compare wraps the run with its context; `run` writes it bare.
            let mut value: serde_json::Value =
                serde_json::from_str(&text).map_err(Error::parse(&path, "JSON"))?;
            let run = match value.get_mut("result") {
                Some(result) => result.take(),
                None => value,
            };
            let result: RunResult =
                serde_json::from_value(run).map_err(Error::parse(&path, "a run result"))?;
            runs.entry(result.scenario.clone())
                .or_default()
                .push(result);
        }
    }
    Ok(runs)
}

/// `value` of `engine` over RocksDB's at `durability`; `None` if either did
/// not measure (no run, killed for memory, capped before measuring).
fn ratio(
    runs: &[RunResult],
    engine: EngineKind,
    durability: DurabilityMode,
    value: fn(&RunResult) -> Option<f64>,
) -> Option<f64> {
    let measured = |engine: EngineKind| {
        runs.iter()
            .find(|run| run.engine == engine && run.durability == durability)
            .filter(|run| run.out_of_memory.is_none() && run.ops > 0)
            .and_then(value)
    };
    let (mine, yardstick) = (measured(engine)?, measured(EngineKind::ROCKSDB)?);
    (yardstick > 0.0).then(|| mine / yardstick)
}

fn throughput(run: &RunResult) -> Option<f64> {
    Some(run.throughput_ops_per_sec)
}

fn p99(run: &RunResult) -> Option<f64> {
    run.latency.get("all").map(|latency| latency.p99_us)
}

pub fn write(args: &RatiosArgs) -> Result<()> {
    let regimes = [load(&args.in_memory)?, load(&args.beyond_memory)?];
    let scenarios: Vec<&String> = regimes[0]
        .keys()
        .chain(regimes[1].keys())
        .collect::<std::collections::BTreeSet<_>>()
        .into_iter()
        .collect();
    if scenarios.is_empty() {
        return Err(Error::Usage(format!(
            "no results under {} or {}: run `leasehold compare` (and with --regime beyond-memory) first",
            args.in_memory.display(),
            args.beyond_memory.display()
        )));
    }
    let plots = args.out.join("plots");
    std::fs::create_dir_all(&plots).map_err(Error::file(&plots))?;
    let mut out = String::new();
    let _ = writeln!(
        out,
        "# Every engine as a ratio to RocksDB, in memory and beyond it\n"
    );
    let _ = writeln!(
        out,
        "From `{}` (in memory) and `{}` (beyond memory: each run in a memory cgroup, the live data \
         2.5× it); each figure is the engine's over RocksDB's in the same comparison at the same \
         durability (1 = RocksDB; throughput: higher is better, p99: lower is better). A dash: \
         the run did not measure (killed for memory, capped before measuring) or is not in that \
         comparison. Regenerate with `leasehold ratios` after both comparisons.\n",
        args.in_memory.join("SUMMARY.md").display(),
        args.beyond_memory.join("SUMMARY.md").display()
    );
    for scenario in scenarios {
        let runs: [&[RunResult]; 2] = [
            regimes[0].get(scenario).map_or(&[], Vec::as_slice),
            regimes[1].get(scenario).map_or(&[], Vec::as_slice),
        ];
        let engines: Vec<EngineKind> = EngineKind::compared_by_default()
            .iter()
            .copied()
            .filter(|engine| *engine != EngineKind::ROCKSDB && engine.durable())
            .filter(|engine| {
                runs.iter()
                    .any(|runs| runs.iter().any(|run| run.engine == *engine))
            })
            .collect();
        let _ = writeln!(out, "## {scenario}\n");
        let _ = writeln!(
            out,
            "| engine | durability | throughput in memory | beyond memory | p99 in memory | beyond memory |\n|---|---|--:|--:|--:|--:|"
        );
        let cell =
            |value: Option<f64>| value.map_or("–".to_owned(), |value| format!("{value:.2}"));
        for &engine in &engines {
            for durability in DURABILITIES {
                let _ = writeln!(
                    out,
                    "| {} | {} | {} | {} | {} | {} |",
                    engine.name(),
                    durability.name(),
                    cell(ratio(runs[0], engine, durability, throughput)),
                    cell(ratio(runs[1], engine, durability, throughput)),
                    cell(ratio(runs[0], engine, durability, p99)),
                    cell(ratio(runs[1], engine, durability, p99)),
                );
            }
        }
        for (what, value, log) in [
            (
                "throughput",
                throughput as fn(&RunResult) -> Option<f64>,
                false,
            ),
            ("p99", p99 as fn(&RunResult) -> Option<f64>, true),
        ] {
            let series = REGIMES
                .iter()
                .zip(runs)
                .flat_map(|(regime, runs)| {
                    let engines = &engines;
                    DURABILITIES.iter().map(move |&durability| {
                        (
                            format!("{regime}, {}", durability.name()),
                            engines
                                .iter()
                                .map(|&engine| ratio(runs, engine, durability, value))
                                .collect(),
                        )
                    })
                })
                .collect();
            let chart = Chart {
                title: format!("{scenario}: {what} ÷ RocksDB's (dashed line: RocksDB)"),
                unit: "× RocksDB",
                log,
                groups: engines
                    .iter()
                    .map(|engine| engine.name().to_owned())
                    .collect(),
                series,
                reference: Some(1.0),
            };
            let file = format!("ratio-{scenario}-{what}.svg");
            let path = plots.join(&file);
            std::fs::write(&path, chart.render()).map_err(Error::file(&path))?;
            let _ = writeln!(out, "\n![{scenario} {what}](plots/{file})");
        }
        out.push('\n');
    }
    let path = args.out.join("RATIOS.md");
    std::fs::write(&path, &out).map_err(Error::file(&path))?;
    println!("{out}Written to {}", path.display());
    Ok(())
}
