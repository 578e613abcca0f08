//! Shared pieces of Leasehold's measurement programs (`src/bin/*-measure.rs`):
//! keys shaped like the store's, figures, the machine description, and the
//! report writer. criterion micro-benchmarks live in `benches/`.

#![allow(clippy::unwrap_used, clippy::expect_used)] // measurement tools: failing loudly is right

pub mod headline;

use std::fmt::Write as _;
use std::time::Duration;

use leasehold_core::rng::SplitMix64;
use leasehold_core::WriteBatch;

pub const VALUE_LEN: usize = 256;

/// A snapshot-record key for actor `index`, scattered over the key space like
/// hashed actor ids.
pub fn key(index: u64) -> Vec<u8> {
    format!(
        "S\u{1}UserActor\u{0}\u{1}user-{:012}",
        index.wrapping_mul(0x9e37_79b9_7f4a_7c15) % 1_000_000_000_000
    )
    .into_bytes()
}

/// A put of a `VALUE_LEN` value, half random so it compresses about 2:1 like
/// JSON state.
pub fn put(index: u64, rng: &mut SplitMix64) -> WriteBatch {
    let mut value = vec![0u8; VALUE_LEN];
    rng.fill(&mut value[..VALUE_LEN / 2]);
    let mut batch = WriteBatch::new();
    batch.put(key(index), value);
    batch
}

pub struct Figure {
    pub name: String,
    pub value: f64,
    pub unit: &'static str,
    pub note: String,
}

pub fn rate(count: u64, elapsed: Duration) -> f64 {
    count as f64 / elapsed.as_secs_f64()
}

/// CPUs, kernel and load average now.
pub fn machine() -> String {
    let load = std::fs::read_to_string("/proc/loadavg").unwrap_or_default();
    let cpus = std::thread::available_parallelism().map_or(0, |n| n.get());
    let kernel = std::fs::read_to_string("/proc/sys/kernel/osrelease").unwrap_or_default();
    format!(
        "{cpus} CPUs, kernel {}, load average {}",
        kernel.trim(),
        load.split_whitespace()
            .take(3)
            .collect::<Vec<_>>()
            .join(" ")
    )
}

/// Prints the figures and writes `results/<name>.{md,json}`.
pub fn report(name: &str, title: &str, command: &str, setup: &str, figures: &[Figure]) {
    let mut markdown = String::new();
    writeln!(markdown, "# {title}\n").unwrap();
    writeln!(
        markdown,
        "Command: `{command}`  \nMachine: {}  \nSetup: {setup}\n",
        machine()
    )
    .unwrap();
    writeln!(
        markdown,
        "| figure | value | unit | note |\n|---|---|---|---|"
    )
    .unwrap();
    for figure in figures {
        writeln!(
            markdown,
            "| {} | {:.4} | {} | {} |",
            figure.name, figure.value, figure.unit, figure.note
        )
        .unwrap();
    }
    print!("{markdown}");
    let json: Vec<String> = figures
        .iter()
        .map(|figure| {
            format!(
                "    {{\"name\": {:?}, \"value\": {}, \"unit\": {:?}, \"note\": {:?}}}",
                figure.name, figure.value, figure.unit, figure.note
            )
        })
        .collect();
    let json = format!(
        "{{\n  \"command\": {command:?},\n  \"machine\": {:?},\n  \"setup\": {setup:?},\n  \"figures\": [\n{}\n  ]\n}}\n",
        machine(),
        json.join(",\n")
    );
    std::fs::create_dir_all("results").unwrap();
    std::fs::write(format!("results/{name}.md"), markdown).unwrap();
    std::fs::write(format!("results/{name}.json"), json).unwrap();
}

/// Sync puts with one writer, then with four at once (group commit): two
/// figures. The engine is closed afterwards.
pub fn sync_puts<E: leasehold_core::KvEngine>(engine: E, figures: &mut Vec<Figure>) {
    use leasehold_core::{Durability, KvEngine};
    let engine = std::sync::Arc::new(engine);
    let count = 2_000u64;
    let mut rng = SplitMix64::new(7);
    let started = std::time::Instant::now();
    for index in 0..count {
        engine
            .write(put(index, &mut rng), Durability::Sync)
            .unwrap();
    }
    figures.push(Figure {
        name: "random put, Sync, 1 writer".into(),
        value: rate(count, started.elapsed()),
        unit: "puts/s",
        note: "an fsync per put".into(),
    });
    let fsyncs_before = engine.stats().fsyncs;
    let started = std::time::Instant::now();
    std::thread::scope(|scope| {
        for thread in 0..4u64 {
            let engine = &engine;
            scope.spawn(move || {
                let mut rng = SplitMix64::new(thread);
                for index in 0..count {
                    engine
                        .write(put(thread * 1_000_000 + index, &mut rng), Durability::Sync)
                        .unwrap();
                }
            });
        }
    });
    let elapsed = started.elapsed();
    let fsyncs = engine.stats().fsyncs - fsyncs_before;
    figures.push(Figure {
        name: "random put, Sync, 4 writers".into(),
        value: rate(4 * count, elapsed),
        unit: "puts/s",
        note: format!(
            "{:.2} puts per fsync (group commit)",
            (4 * count) as f64 / fsyncs.max(1) as f64
        ),
    });
    KvEngine::close(engine.as_ref()).unwrap();
}

/// `--dir D` from the command line, or `results/data/<name>`.
pub fn data_dir(name: &str) -> std::path::PathBuf {
    let args: Vec<String> = std::env::args().collect();
    let dir = args
        .iter()
        .position(|arg| arg == "--dir")
        .and_then(|index| args.get(index + 1))
        .map_or(
            std::path::PathBuf::from(format!("results/data/{name}")),
            std::path::PathBuf::from,
        );
    std::fs::create_dir_all(&dir).unwrap();
    dir
}
