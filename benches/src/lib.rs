//! Shared pieces of Leasehold's measurement programs (`src/bin/*-measure.rs`):
//! keys shaped like the store's, figures, the machine description, and the
//! report writer. criterion micro-benchmarks live in `benches/`.

#![allow(clippy::unwrap_used, clippy::expect_used)] // measurement tools: failing loudly is right

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
