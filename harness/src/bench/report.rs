//! The bench's report: one table per suite of ops/s (with the ratio to the
//! yardstick engine, RocksDB unless told, at the same level), and one of p99
//! latency. With `--repeat`, a cell is the median over the rounds, and its
//! ratio the median of each round's ratio, with their range.

use std::collections::BTreeMap;
use std::fmt::Write as _;

use super::output::WorkloadCounters;
use super::target::{self, Level};
use super::workload::Workload;
use super::{BenchArgs, BenchOutput, BenchResult, LOAD};
use crate::budget;
use crate::engines::EngineKind;
use crate::machine::Machine;

pub fn summary(output: &BenchOutput, args: &BenchArgs, command: &str, started: &str) -> String {
    let results = &output.results;
    let machine = Machine::describe(&args.data_dir);
    let mut out = String::new();
    let _ = writeln!(out, "# Standard workloads: db_bench and YCSB\n");
    let _ = writeln!(out, "Reproduce with `{command}` (started {started}).\n");
    let _ = writeln!(out, "- Machine: {}", machine.summary());
    let mut versions: Vec<String> = results
        .iter()
        .map(|result| format!("{}: {}", result.engine.name(), result.engine_version))
        .collect();
    versions.sort_unstable();
    versions.dedup();
    let _ = writeln!(out, "- Engines: {}.", versions.join("; "));
    let memory = match args.memory_limit {
        Some(limit) => format!(
            "Each engine and level ran in a child process of its own inside a {} memory cgroup \
             (page cache counted, swap limited, page cache dropped before each; glibc malloc held \
             to one arena per core), every engine's caches sized for it (a quarter for block or \
             page cache, a sixteenth for write buffers).",
            budget::format_size(limit)
        ),
        None => "No memory limit; each engine's default caches.".to_owned(),
    };
    let _ = writeln!(
        out,
        "- {} records, {} requests per workload (fillsync: {}), {} client thread(s), seed {}. \
         {} the memory engine is volatile (`none`) and has no fillsync. {memory}",
        args.records,
        args.ops,
        Workload::Fillsync.requests(args.ops, args.records),
        args.threads,
        args.seed,
        if args.sync {
            "Every write synced (`--sync`; engines without a sync durability are left out);"
        } else {
            "Writes buffered (acknowledged before any fsync; redb: `Durability::None`) except \
             fillsync's, which are synced;"
        }
    );
    let _ = writeln!(
        out,
        "- **kv**: the `KvEngine` (get, write, scan) — what db_bench and YCSB measure of a \
         key-value store. **store**: through the Store, as an actor runtime calls it — a record \
         is an actor, a read a `load`, a write a `save` under the actor's lease (acquired at its \
         first write, and a lease grant is fsynced at every durability: the Store's fills pay an \
         fsync per record), a scan a `list` of the actor type the record belongs to ({} records to a \
         type), YCSB D's reads of the latest records are lease renewals; db_bench's seekrandom \
         has no Store form (the Store has no seek).",
        target::STORE_GROUP
    );
    let yardstick = args.yardstick.name();
    let cells = if args.repeat > 1 {
        format!(
            "- Cells: the median ops/s of {} rounds (each round runs every engine once, in \
             turn) and the median of the rounds' ratios to {yardstick} at the same level, with \
             their lowest and highest; the second table of each suite gives the median p99 µs.",
            args.repeat
        )
    } else {
        format!(
            "- Cells: ops/s (× {yardstick} at the same level); the second table of each suite \
             gives p99 µs."
        )
    };
    let _ = writeln!(out, "{cells}");
    for (title, ycsb, note) in [
        (
            "db_bench",
            false,
            &*format!(
                "16-byte keys, {}-byte values compressible to about {:.0} % (a random run \
                 repeated, as db_bench's `--compression_ratio`); fillrandom (keys drawn with \
                 replacement, so about 63 % of the records exist, as in db_bench) or \
                 filluniquerandom (every record once, scrambled) into an empty engine, then \
                 overwrite, readrandom (of every record: misses where none was written), \
                 readmissing (keys between the written ones: all misses) and seekrandom (a seek \
                 and {} more entries) on it.",
                args.value_bytes,
                args.compression_ratio * 100.0,
                args.seek_nexts
            ),
        ),
        (
            "YCSB",
            true,
            "1000-byte records, scrambled Zipfian(0.99) unless stated: load = the load phase; \
             A 50/50 read/update, B 95/5, C read-only, F 50/50 read/read-modify-write, D 95/5 \
             read-latest/insert, E 95/5 scan (1–100 records)/insert — run in YCSB's order \
             (load, A, B, C, F, D, E) on one engine; transfer (not YCSB's, when named, after F) \
             reads two Zipfian records and writes both atomically: one two-actor `commit` at \
             the store level, one two-key batch at the kv level.",
        ),
    ] {
        let rows: Vec<&BenchResult> = results
            .iter()
            .filter(|result| (result.workload == LOAD || is_ycsb_name(&result.workload)) == ycsb)
            .collect();
        if rows.is_empty() {
            continue;
        }
        let _ = writeln!(out, "\n## {title}\n\n{note}\n");
        table(&mut out, &rows, |rounds| {
            let ops = median(rounds.iter().map(|result| result.ops_per_sec));
            let ratios: Vec<f64> = rounds
                .iter()
                .filter(|result| result.engine != args.yardstick)
                .filter_map(|result| {
                    let peer = rows.iter().find(|peer| {
                        peer.engine == args.yardstick
                            && peer.level == result.level
                            && peer.workload == result.workload
                            && peer.round == result.round
                    })?;
                    Some(result.ops_per_sec / peer.ops_per_sec.max(1e-9))
                })
                .collect();
            match ratios.len() {
                0 => format!("{ops:.0}"),
                1 => format!("{ops:.0} (×{:.2})", ratios[0]),
                _ => format!(
                    "{ops:.0} (×{:.2}, {:.2}–{:.2})",
                    median(ratios.iter().copied()),
                    ratios.iter().copied().fold(f64::INFINITY, f64::min),
                    ratios.iter().copied().fold(0.0, f64::max)
                ),
            }
        });
        let _ = writeln!(out);
        table(&mut out, &rows, |rounds| {
            format!("{:.1}", median(rounds.iter().map(|result| result.p99_us)))
        });
        if rows.iter().any(|result| result.engine_counters.is_some()) {
            let _ = writeln!(
                out,
                "\nThe engines' own counters over each workload (medians): for writes, bytes \
                 the engine wrote (log, flushes, compactions) per byte written, and time \
                 writers stalled; for reads, block-cache hits and bytes read from the device. \
                 Background work a workload left behind counts in the next one.\n"
            );
            table(&mut out, &rows, counters_cell);
        }
    }
    space_and_memory(&mut out, output);
    out
}

/// One cell of the counters table.
fn counters_cell(rounds: &[&BenchResult]) -> String {
    let counters: Vec<&WorkloadCounters> = rounds
        .iter()
        .filter_map(|result| result.engine_counters.as_ref())
        .collect();
    if counters.is_empty() {
        return "–".into();
    }
    let of = |value: fn(&WorkloadCounters) -> f64| median(counters.iter().map(|c| value(c)));
    if of(|c| c.user_bytes_written as f64) > 0.0 {
        format!(
            "{:.2}× written, {:.0} ms stalled",
            of(|c| c.engine_bytes_written as f64 / c.user_bytes_written.max(1) as f64),
            of(|c| c.stall_micros as f64 / 1000.0)
        )
    } else {
        format!(
            "{:.0} % cache hits, {:.0} MiB read",
            of(|c| {
                100.0 * c.block_cache_hits as f64
                    / (c.block_cache_hits + c.block_cache_misses).max(1) as f64
            }),
            of(|c| c.device_bytes_read as f64 / f64::from(1 << 20))
        )
    }
}

/// Bytes on disk at each suite's end and, under a budget, peak memory.
fn space_and_memory(out: &mut String, output: &BenchOutput) {
    if output.space.is_empty() && output.memory.is_empty() {
        return;
    }
    let _ = writeln!(
        out,
        "\n## Space and memory\n\nOn disk: the allocated bytes of the engine's directory \
         after the suite, the engine closed; logical: key and value bytes of every record \
         written at least once. Peak: the most the engine's cgroup held (page cache \
         included: with data larger than the budget it reaches the budget); peak RSS: the \
         child's own resident memory at its highest (VmHWM: the engine's caches, buffers \
         and heap, without the page cache).\n"
    );
    let _ = writeln!(
        out,
        "| level | engine | suite | on disk | logical | disk ÷ logical |\n|---|---|---|--:|--:|--:|"
    );
    let mib = |bytes: u64| format!("{:.1} MiB", bytes as f64 / f64::from(1 << 20));
    let rounds = output.results.iter().map(|result| result.round).max() > Some(0);
    let round = |round: u32| {
        if rounds {
            format!(" (round {})", round + 1)
        } else {
            String::new()
        }
    };
    for space in &output.space {
        let _ = writeln!(
            out,
            "| {} | {} | {}{} | {} | {} | {:.2} |",
            space.level.name(),
            space.engine.name(),
            space.suite,
            round(space.round),
            mib(space.disk_bytes),
            mib(space.logical_bytes),
            space.disk_bytes as f64 / space.logical_bytes.max(1) as f64
        );
    }
    if output.memory.is_empty() {
        return;
    }
    let _ = writeln!(
        out,
        "\n| level | engine | budget | peak | peak RSS | outcome |\n|---|---|--:|--:|--:|---|"
    );
    for memory in &output.memory {
        let ran: Vec<&str> = output
            .results
            .iter()
            .filter(|result| {
                result.engine == memory.engine
                    && result.level == memory.level
                    && result.round == memory.round
            })
            .map(|result| result.workload.as_str())
            .collect();
        let outcome = if memory.killed_for_memory {
            format!(
                "**killed for memory** after {}",
                if ran.is_empty() {
                    "nothing finished".to_owned()
                } else {
                    ran.join(", ")
                }
            )
        } else {
            "completed".to_owned()
        } + &round(memory.round);
        let _ = writeln!(
            out,
            "| {} | {} | {} | {} | {} | {outcome} |",
            memory.level.name(),
            memory.engine.name(),
            budget::format_size(memory.limit_bytes),
            memory.peak_bytes.map_or("–".to_owned(), mib),
            memory.peak_rss_bytes.map_or("–".to_owned(), mib),
        );
    }
}

fn is_ycsb_name(name: &str) -> bool {
    name.starts_with("ycsb-") || name == Workload::Transfer.name()
}

/// The median of `values` (the mean of the middle two for an even count).
fn median(values: impl Iterator<Item = f64>) -> f64 {
    let mut values: Vec<f64> = values.collect();
    values.sort_by(f64::total_cmp);
    match values.len() {
        0 => f64::NAN,
        len if len % 2 == 1 => values[len / 2],
        len => (values[len / 2 - 1] + values[len / 2]) / 2.0,
    }
}

/// Rows: engine and level; columns: workloads in the order they ran; a
/// cell from the results of every round.
fn table(out: &mut String, rows: &[&BenchResult], cell: impl Fn(&[&BenchResult]) -> String) {
    let mut columns: Vec<&str> = Vec::new();
    for result in rows {
        if !columns.contains(&result.workload.as_str()) {
            columns.push(&result.workload);
        }
    }
    let mut rounds: BTreeMap<(Level, EngineKind), BTreeMap<&str, Vec<&BenchResult>>> =
        BTreeMap::new();
    for result in rows {
        rounds
            .entry((result.level, result.engine))
            .or_default()
            .entry(&result.workload)
            .or_default()
            .push(result);
    }
    let grid: BTreeMap<(Level, EngineKind), BTreeMap<&str, String>> = rounds
        .into_iter()
        .map(|(row, cells)| {
            let cells = cells
                .into_iter()
                .map(|(workload, results)| (workload, cell(&results)))
                .collect();
            (row, cells)
        })
        .collect();
    let _ = write!(out, "| level | engine |");
    for column in &columns {
        let _ = write!(out, " {column} |");
    }
    let _ = write!(out, "\n|---|---|");
    for _ in &columns {
        out.push_str("--:|");
    }
    out.push('\n');
    for ((level, engine), cells) in &grid {
        let _ = write!(out, "| {} | {} |", level.name(), engine.name());
        for column in &columns {
            let _ = write!(out, " {} |", cells.get(column).map_or("–", String::as_str));
        }
        out.push('\n');
    }
}
