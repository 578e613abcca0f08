//! results/crash-fuzz-<engine>-damage.{md,json}: what the media-damage family
//! did — per file kind and damage, how many cases opened with every key right,
//! were refused at open, or reported the damage on a read. (A case that opened
//! with data missing is a violation and stops the campaign.)

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::path::Path;
use std::time::Duration;

use leasehold_testkit::damage::{Damage, DamageCaseReport, Outcome};

use super::{file_kind, write_file, Coverage, Options};
use crate::engines::crash::CrashRow;
use crate::Result;

const OUTCOMES: [&str; 3] = ["intact", "refused at open", "error on read"];

/// (file kind, damage kind, outcome) of a case.
pub(super) fn classify(engine: &CrashRow, report: &DamageCaseReport) -> (String, String, String) {
    let damage = match report.damage.damage {
        Damage::Flip { .. } => "byte flipped",
        Damage::ZeroSector { .. } => "sector zeroed",
        Damage::Truncate { .. } => "truncated",
        Damage::Remove => "removed",
    };
    let outcome = match report.outcome {
        Outcome::Intact => OUTCOMES[0],
        Outcome::Refused(_) => OUTCOMES[1],
        Outcome::ReadError(_) => OUTCOMES[2],
    };
    (
        file_kind(engine, Path::new(&report.damage.file)),
        damage.to_owned(),
        outcome.to_owned(),
    )
}

pub(super) fn write(
    options: &Options,
    coverage: &Coverage,
    elapsed: Duration,
    summary: &str,
) -> Result<()> {
    let engine = options.engine.name();
    let command = format!(
        "cargo run --release -p leasehold -- crash-fuzz --engine {engine} --mode damage --seconds {} --seed {} --report",
        options.seconds, options.seed
    );
    let mut md = String::new();
    let _ = writeln!(md, "# Media damage at rest: {engine}\n");
    let _ = writeln!(md, "Command: `{command}`  \nResult: {summary}\n");
    let _ = writeln!(
        md,
        "Each case: random batches, flushes and clean reopens on the simulated disk, run to the end; \
         a second open of the live store (must be refused with `Locked`); close; one damage to one \
         file picked at random (a byte flipped, a 512-byte sector zeroed, the file truncated at a \
         random length, or removed); open again. Every acknowledged key must read right, or the \
         open or a read must fail with a typed error. Opening with a key missing, changed or extra \
         is a violation.\n"
    );
    let _ = writeln!(
        md,
        "| cases | writes acknowledged | cases/s |\n|---|---|---|\n| {} | {} | {:.0} |\n",
        coverage.cases,
        coverage.acknowledged,
        coverage.cases as f64 / elapsed.as_secs_f64().max(1e-9)
    );
    let _ = writeln!(md, "## Outcomes (file kind × damage)\n");
    let _ = writeln!(md, "| file | damage | {} |", OUTCOMES.join(" | "));
    let _ = writeln!(md, "|---|---|{}", "--:|".repeat(OUTCOMES.len()));
    let mut rows: BTreeMap<(String, String), [u64; 3]> = BTreeMap::new();
    for ((kind, damage, outcome), count) in &coverage.damage {
        let row = rows.entry((kind.clone(), damage.clone())).or_default();
        if let Some(index) = OUTCOMES.iter().position(|name| name == outcome) {
            row[index] += count;
        }
    }
    for ((kind, damage), counts) in &rows {
        let cells: Vec<String> = counts.iter().map(u64::to_string).collect();
        let _ = writeln!(md, "| {kind} | {damage} | {} |", cells.join(" | "));
    }
    let dir = Path::new("results");
    write_file(&dir.join(format!("crash-fuzz-{engine}-damage.md")), &md)?;
    let cells: Vec<serde_json::Value> = coverage
        .damage
        .iter()
        .map(|((kind, damage, outcome), count)| {
            serde_json::json!({"file": kind, "damage": damage, "outcome": outcome, "cases": count})
        })
        .collect();
    let json = serde_json::json!({
        "engine": engine,
        "mode": "damage",
        "command": command,
        "summary": summary,
        "cases": coverage.cases,
        "acknowledged": coverage.acknowledged,
        "seconds": elapsed.as_secs_f64(),
        "outcomes": cells,
    });
    write_file(
        &dir.join(format!("crash-fuzz-{engine}-damage.json")),
        &format!("{json:#}\n"),
    )
}
