//! User traces in JSONL (`leasehold_workloads::jsonl`): `record --from-jsonl`
//! converts one into a framed trace with the reference store's answers,
//! `replay --jsonl` converts and replays it like any trace, and
//! `record --format jsonl` writes a scenario's ops as JSONL lines.

use std::path::{Path, PathBuf};
use std::time::Duration;

use crate::{Error, Result};
use leasehold_workloads::jsonl::{self, JsonlOptions, JsonlStats};
use leasehold_workloads::Scenario;

/// How a JSONL trace's lines are played (a JSONL line carries neither).
#[derive(clap::Args, Clone, Debug)]
pub struct JsonlArgs {
    /// Lease length a JSONL trace's acquires ask for, in ms.
    #[arg(long, default_value_t = 30_000)]
    pub lease_ms: u64,
    /// Snapshot TTL of a JSONL trace's saves, in ms; 0: never expire.
    #[arg(long, default_value_t = 0)]
    pub ttl_ms: u64,
}

impl JsonlArgs {
    fn options(&self) -> Result<JsonlOptions> {
        if self.lease_ms == 0 {
            return Err(Error::usage("--lease-ms must be at least 1"));
        }
        Ok(JsonlOptions {
            lease: Duration::from_millis(self.lease_ms),
            ttl: (self.ttl_ms > 0).then(|| Duration::from_millis(self.ttl_ms)),
        })
    }
}

/// What a trace file holds, for `record --format`.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, clap::ValueEnum)]
pub enum TraceFormat {
    /// The framed trace replay reads, with the reference answers.
    #[default]
    Trace,
    /// One JSON object per op, the format `replay --jsonl` reads.
    Jsonl,
}

/// Converts the JSONL file `input` into the framed trace `out`.
pub fn convert(input: &Path, args: &JsonlArgs, out: &Path) -> Result<JsonlStats> {
    let options = args.options()?;
    let name = format!(
        "jsonl:{}",
        input
            .file_stem()
            .map_or("trace".into(), |stem| stem.to_string_lossy())
    );
    let file = std::fs::File::create(out).map_err(Error::file(out))?;
    let converted = jsonl::convert(
        input,
        &name,
        &options,
        &crate::engines::reference_store,
        std::io::BufWriter::new(file),
    );
    match converted {
        Ok((_, stats)) => Ok(stats),
        Err(err) => {
            // A half-written trace is no trace.
            let _ = std::fs::remove_file(out);
            Err(err.into())
        }
    }
}

/// `record --from-jsonl`.
pub fn record_from_jsonl(input: &Path, args: &JsonlArgs, out: &Path) -> Result<()> {
    let stats = convert(input, args, out)?;
    println!(
        "{}: {} lines → {} ops ({} rejected by the lease and version rules), {} actors, {} nodes → {}",
        input.display(),
        stats.lines,
        stats.ops,
        stats.rejected,
        stats.actors,
        stats.nodes,
        out.display()
    );
    Ok(())
}

/// Where `replay --jsonl` puts the converted trace (removed after the replay).
pub fn converted_path(input: &Path, data_dir: &Path) -> Result<PathBuf> {
    std::fs::create_dir_all(data_dir).map_err(Error::file(data_dir))?;
    let stem = input
        .file_stem()
        .map_or("trace".into(), |stem| stem.to_string_lossy());
    Ok(data_dir.join(format!("{stem}.from-jsonl.trace")))
}

/// `record --scenario S --format jsonl`: the scenario's per-actor ops as JSONL.
pub fn export(scenario: &str, scale: f64, out: &Path) -> Result<()> {
    let scenario = Scenario::find(scenario)?;
    let generated =
        leasehold_workloads::generate(&scenario, scale, &crate::engines::reference_store)?;
    let file = std::fs::File::create(out).map_err(Error::file(out))?;
    jsonl::export(&generated.trace, std::io::BufWriter::new(file)).map_err(Error::file(out))?;
    println!(
        "{}: {} ops as JSONL (whole-store ops have no line; lease {} ms, TTL {} ms: pass them as \
         --lease-ms/--ttl-ms to replay it) → {}",
        scenario.name,
        generated.trace.ops.len(),
        generated.trace.header.lease_ms,
        generated.trace.header.ttl_ms,
        out.display()
    );
    Ok(())
}
