//! `leasehold crash-fuzz`: the crash oracle as a campaign. Random operation
//! sequences run on the simulated disk, crash at random points (inside
//! flushes, compactions, checkpoints and recovery) under the chosen crash
//! policies, and recover; every result is checked by the oracle. A failure is
//! shrunk, printed and written as a JSON reproducer that `--replay` reruns.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::Mutex;
use std::time::{Duration, Instant};

use indicatif::{ProgressBar, ProgressStyle};
use leasehold_testkit::crash::{self, CrashCase};
use leasehold_testkit::damage;
use leasehold_testkit::oracle::Violation;

mod background;
mod damage_report;
mod group_bound;
mod report;
use leasehold_core::vfs::{CrashPolicy, Fault, SimVfs};
use leasehold_core::{KvEngine, KvResult};
use report::{write_file, write_report};

use crate::engines::crash::{CrashRow, Setting};
use crate::engines::{registry, EngineKind};
use crate::{Error, Result};

/// What each case checks.
#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub enum Mode {
    /// Crash, recover, check; crash recovery itself and check again.
    Crash,
    /// As `crash`, then recover on a device that fails and corrupts reads.
    ReadFaults,
    /// Run on a device that fails writes and fsyncs, then recover cleanly.
    DeviceFaults,
    /// Run to the end; a second open of the live store must be refused
    /// (`Locked`); close; damage one file at rest (a byte flipped, a sector
    /// zeroed, the file truncated or removed); open again: every key right,
    /// or a typed error — never a smaller store.
    Damage,
    /// The lease protocol across a crash: nodes acquire, renew, save and
    /// release through `KvStore` (any durability), the disk crashes anywhere;
    /// no epoch may be granted twice, no Sync save lost, no stale save let in.
    Lease,
    /// Background threads on, with `compact_all` (LSM), checkpoints (B+tree)
    /// or flushes (memory) racing the workers while the case writes; the live
    /// state, then the recovery of a crash image, checked by the oracle.
    /// Threads interleave as the OS schedules them: a seed fixes the
    /// operations, not the interleaving.
    Background,
    /// Group's time bound, threads on: a burst of Group writes, silence, a
    /// crash image at a random moment; every write acknowledged more than
    /// the interval (plus slack) before it must be recovered.
    GroupBound,
}

#[derive(Clone, Debug)]
pub struct Options {
    /// An engine with a `crash` part in its registry row.
    pub engine: EngineKind,
    pub seconds: u64,
    pub seed: u64,
    pub policies: Vec<CrashPolicy>,
    pub mode: Mode,
    pub exhaustive: bool,
    pub replay: Option<PathBuf>,
    pub out: Option<PathBuf>,
    /// Write what the campaign covered to results/crash-fuzz-<engine>.{md,json}.
    pub report: bool,
    /// Plant this bug (kebab-case name) and hunt for it: success is finding it.
    pub planted: Option<String>,
}

/// What a campaign covered, for `--report`.
#[derive(Debug, Default)]
struct Coverage {
    cases: u64,
    crashed_mid_run: u64,
    acknowledged: u64,
    tail_batches_recovered: u64,
    /// (file kind, operation, policy) the run's crash struck → cases.
    sites: BTreeMap<(String, String, String), u64>,
    /// (file kind, operation) the crash inside recovery struck → cases.
    recovery_sites: BTreeMap<(String, String), u64>,
    /// (fault, file kind, phase) → faults injected.
    faults: BTreeMap<(String, String, String), u64>,
    /// Cases in which at least one device fault fired.
    cases_with_faults: u64,
    /// (file kind, damage, outcome) → cases, in damage mode.
    damage: BTreeMap<(String, String, String), u64>,
}

/// What one case did, by mode.
enum CaseOutcome {
    Crash(crash::CaseReport),
    Damage(damage::DamageCaseReport),
}

/// What kind of file of the engine's a path is, as the engine names its own
/// files; a temporary or the directory lock whatever the engine.
pub(crate) fn file_kind(engine: &CrashRow, path: &Path) -> String {
    let name = path
        .file_name()
        .map(|name| name.to_string_lossy().into_owned())
        .unwrap_or_default();
    let kind = if name.ends_with(".tmp") {
        Some("temporary")
    } else if name == leasehold_core::vfs::LOCK_FILE {
        Some("LOCK")
    } else {
        (engine.describe_file)(&name)
    };
    kind.unwrap_or("directory").to_owned()
}

/// The engine's part in the campaign, or why it has none.
pub(crate) fn crash_row(engine: EngineKind) -> Result<&'static CrashRow> {
    engine.row().crash.ok_or_else(|| {
        Error::Usage(format!(
            "engine {engine} is not in the crash campaign: it does its own file I/O or keeps \
             no files, so the simulated disk cannot crash under it (engines with a crash row: {})",
            registry::ROWS
                .iter()
                .filter(|row| row.crash.is_some())
                .map(|row| row.name)
                .collect::<Vec<_>>()
                .join(", ")
        ))
    })
}

/// Cases per search round; each round has its own seed (seed + round).
const ROUND_CASES: u32 = 200;
const OPS_MAX: usize = 32;

pub fn run(options: &Options) -> Result<String> {
    if options.mode == Mode::Lease && (options.planted.is_some() || options.replay.is_some()) {
        return Err(Error::usage(
            "--mode lease takes neither --planted nor --replay: it runs Store-level cases \
             (the engines' tests plant a grant acknowledged before it is durable)",
        ));
    }
    if options.mode == Mode::Background {
        return background::campaign(options);
    }
    if options.mode == Mode::GroupBound {
        return group_bound::campaign(options);
    }
    if let Some(bug) = &options.planted {
        return hunt(options, bug);
    }
    run_row(options, crash_row(options.engine)?)
}

/// The default campaign (any mode but the threaded ones) on a crash row;
/// `options.engine` only names it in reports.
pub(crate) fn run_row(options: &Options, engine: &CrashRow) -> Result<String> {
    campaign(options, engine, &|vfs: SimVfs| {
        (engine.open)(vfs, Setting::Inline, None)
    })
}

/// Runs the campaign on an engine with `bug` planted until a case catches it.
fn hunt(options: &Options, bug: &str) -> Result<String> {
    let engine = crash_row(options.engine)?;
    engine.check_planted(options.engine.name(), bug)?;
    hunt_with(options, engine, bug, &|vfs: SimVfs| {
        (engine.open)(vfs, Setting::Inline, Some(bug))
    })
}

fn hunt_with<E: KvEngine>(
    options: &Options,
    engine: &CrashRow,
    name: &str,
    open: &dyn Fn(SimVfs) -> KvResult<E>,
) -> Result<String> {
    let started = Instant::now();
    let deadline = started + Duration::from_secs(options.seconds);
    let mut rounds = 0u64;
    while Instant::now() < deadline {
        let seed = options.seed.wrapping_add(rounds);
        let result = crash::search_seeded(seed, ROUND_CASES, OPS_MAX, &options.policies, &|case| {
            run_one(open, Path::new(engine.dir), options.mode, case).map(|_| ())
        });
        rounds += 1;
        if let Err((_, reason)) = result {
            return Ok(format!(
                "planted {name} caught within {} cases ({:?} mode) in {:.1?}: {reason}",
                rounds * u64::from(ROUND_CASES),
                options.mode,
                started.elapsed()
            ));
        }
    }
    Err(Error::NotCaught {
        bug: name.to_owned(),
        cases: rounds * u64::from(ROUND_CASES),
        mode: format!("{:?}", options.mode),
        elapsed: started.elapsed(),
    })
}

fn run_one<E: KvEngine>(
    open: &dyn Fn(SimVfs) -> KvResult<E>,
    dir: &Path,
    mode: Mode,
    case: &CrashCase,
) -> Result<CaseOutcome, Violation> {
    match mode {
        Mode::Crash => crash::run_case(open, case).map(CaseOutcome::Crash),
        Mode::ReadFaults => crash::run_case_with(open, case, Some(&crash::read_fault_config()))
            .map(CaseOutcome::Crash),
        Mode::DeviceFaults => {
            crash::run_device_fault_case(open, case, &crash::device_fault_config())
                .map(CaseOutcome::Crash)
        }
        Mode::Damage => damage::run_damage_case(open, dir, case).map(CaseOutcome::Damage),
        // `run` sends these modes elsewhere before any case runs.
        Mode::Lease | Mode::Background | Mode::GroupBound => Err(Violation {
            reason: format!("{mode:?} mode runs its own cases, not the crash cases"),
        }),
    }
}

fn campaign<E: KvEngine>(
    options: &Options,
    engine: &CrashRow,
    open: &dyn Fn(SimVfs) -> KvResult<E>,
) -> Result<String> {
    let dir = Path::new(engine.dir);
    if let Some(path) = &options.replay {
        let text = std::fs::read_to_string(path).map_err(Error::file(path))?;
        let case: CrashCase =
            serde_json::from_str(&text).map_err(Error::parse(path, "a crash case"))?;
        return match run_one(open, dir, options.mode, &case) {
            Ok(_) => Ok(format!("{}: the case passes", path.display())),
            Err(violation) => Err(Error::Violation(format!(
                "{}: {}",
                path.display(),
                violation.reason
            ))),
        };
    }
    if options.mode == Mode::Lease {
        return lease_campaign(options, open);
    }
    if options.exhaustive {
        let bar = ProgressBar::new_spinner();
        bar.set_style(
            ProgressStyle::with_template("{spinner} {elapsed} exhaustive: {pos} crash points")
                .unwrap_or_else(|_| ProgressStyle::default_spinner()),
        );
        let result = crash::run_exhaustive(open, &options.policies, |points| {
            bar.set_position(points as u64)
        });
        bar.finish_and_clear();
        return match result {
            Ok(points) => Ok(format!(
                "exhaustive: {points} crash points of {} sequences under {} policies, no violation",
                crash::exhaustive_sequences().len(),
                options.policies.len()
            )),
            Err((case, reason)) => Err(Error::Violation(report_failure(options, &case, &reason))),
        };
    }
    let coverage = Mutex::new(Coverage::default());
    let deadline = Instant::now() + Duration::from_secs(options.seconds);
    let bar = ProgressBar::new(options.seconds);
    bar.set_style(
        ProgressStyle::with_template("{bar:40} {elapsed}/{len}s {msg}")
            .unwrap_or_else(|_| ProgressStyle::default_bar()),
    );
    let started = Instant::now();
    let mut rounds = 0u64;
    while Instant::now() < deadline {
        let seed = options.seed.wrapping_add(rounds);
        let result = crash::search_seeded(seed, ROUND_CASES, OPS_MAX, &options.policies, &|case| {
            let report = run_one(open, dir, options.mode, case)?;
            if options.report {
                record(&coverage, engine, options.mode, case, &report);
            }
            Ok(())
        });
        rounds += 1;
        bar.set_position(started.elapsed().as_secs().min(options.seconds));
        bar.set_message(format!("{} cases", rounds * u64::from(ROUND_CASES)));
        if let Err((case, reason)) = result {
            bar.finish_and_clear();
            return Err(Error::Violation(report_failure(options, &case, &reason)));
        }
    }
    bar.finish_and_clear();
    let summary = format!(
        "{} cases ({:?} mode, seeds {}..{}) in {:.0?}: no violation",
        rounds * u64::from(ROUND_CASES),
        options.mode,
        options.seed,
        options.seed.wrapping_add(rounds),
        started.elapsed()
    );
    if options.report {
        let coverage = coverage
            .into_inner()
            .map_err(|_| Error::Thread("a case panicked holding the coverage".to_owned()))?;
        write_report(options, &coverage, started.elapsed(), &summary)?;
    }
    Ok(summary)
}

fn record(
    coverage: &Mutex<Coverage>,
    engine: &CrashRow,
    mode: Mode,
    case: &CrashCase,
    outcome: &CaseOutcome,
) {
    let Ok(mut coverage) = coverage.lock() else {
        return;
    };
    coverage.cases += 1;
    let report = match outcome {
        CaseOutcome::Crash(report) => report,
        CaseOutcome::Damage(damaged) => {
            coverage.acknowledged += damaged.acknowledged as u64;
            let key = damage_report::classify(engine, damaged);
            *coverage.damage.entry(key).or_default() += 1;
            return;
        }
    };
    coverage.cases_with_faults += u64::from(!report.faults.is_empty());
    for hit in &report.faults {
        *coverage
            .faults
            .entry((
                hit.fault.name().to_owned(),
                file_kind(engine, &hit.path),
                hit.phase.to_owned(),
            ))
            .or_default() += 1;
    }
    if mode != Mode::Crash {
        // The crash after a fault run is not what that mode is about.
        coverage.acknowledged += report.acknowledged as u64;
        return;
    }
    coverage.crashed_mid_run += u64::from(report.crashed_during_run);
    coverage.acknowledged += report.acknowledged as u64;
    coverage.tail_batches_recovered += report.tail_batches_recovered as u64;
    let (kind, operation) = match &report.crash_site {
        Some((operation, path)) => (file_kind(engine, path), operation.name().to_owned()),
        None => ("(after the run)".to_owned(), "-".to_owned()),
    };
    *coverage
        .sites
        .entry((kind, operation, case.policy.name().to_owned()))
        .or_default() += 1;
    let recovery = match &report.recovery_crash_site {
        Some((operation, path)) => (file_kind(engine, path), operation.name().to_owned()),
        None => ("(after recovery)".to_owned(), "-".to_owned()),
    };
    *coverage.recovery_sites.entry(recovery).or_default() += 1;
}

/// The faults each fault mode injects.
fn faults_of(mode: Mode) -> Vec<Fault> {
    match mode {
        Mode::Crash => Vec::new(),
        Mode::ReadFaults => vec![Fault::ReadEio, Fault::ReadBitFlip, Fault::ShortRead],
        Mode::DeviceFaults => Fault::ALL.to_vec(),
        Mode::Damage | Mode::Lease | Mode::Background | Mode::GroupBound => Vec::new(),
    }
}

fn mode_name(mode: Mode) -> &'static str {
    match mode {
        Mode::Crash => "crash",
        Mode::ReadFaults => "read-faults",
        Mode::DeviceFaults => "device-faults",
        Mode::Damage => "damage",
        Mode::Lease => "lease",
        Mode::Background => "background",
        Mode::GroupBound => "group-bound",
    }
}

/// `--mode lease`: Store-level crash cases in rounds until the time is up.
/// A failing case is printed whole (its seed reruns it).
fn lease_campaign<E: KvEngine>(
    options: &Options,
    open: &dyn Fn(SimVfs) -> KvResult<E>,
) -> Result<String> {
    use leasehold_testkit::store_crash::search_store_crashes;
    const LEASE_ROUND: u32 = 500;
    let started = Instant::now();
    let deadline = started + Duration::from_secs(options.seconds);
    let mut cases = 0u64;
    let mut rounds = 0u64;
    while Instant::now() < deadline {
        let seed = options.seed.wrapping_add(rounds);
        if let Err((case, reason)) = search_store_crashes(open, seed, LEASE_ROUND) {
            return Err(Error::Violation(format!(
                "lease rules broken across a crash: {reason}\ncase: {case:?}"
            )));
        }
        cases += u64::from(LEASE_ROUND);
        rounds += 1;
    }
    Ok(format!(
        "{cases} cases (Lease mode, seeds {}..{}) in {:.0?}: no violation",
        options.seed,
        options.seed.wrapping_add(rounds),
        started.elapsed()
    ))
}

/// Writes the shrunk case and describes the failure.
fn report_failure(options: &Options, case: &CrashCase, reason: &str) -> String {
    let path = options.out.clone().unwrap_or_else(|| {
        Path::new("results/crash-fuzz").join(format!("{}-{}.json", options.engine, options.seed))
    });
    let written = serde_json::to_string_pretty(case)
        .map_err(Error::from)
        .and_then(|json| write_file(&path, &json));
    let saved = match written {
        Ok(()) => format!(
            "reproducer written to {}; rerun with --replay {}",
            path.display(),
            path.display()
        ),
        Err(err) => format!(
            "could not write the reproducer to {}: {err}",
            path.display()
        ),
    };
    format!(
        "violation (seed {}): {reason}\nshrunk case: {case:?}\n{saved}",
        options.seed
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use leasehold_testkit::crash::CrashOp;

    #[test]
    fn a_failure_leaves_a_reproducer_that_reads_back() {
        let dir = tempfile::tempdir().expect("temp dir");
        let out = dir.path().join("nested").join("case.json");
        let options = Options {
            engine: EngineKind::LSM,
            seconds: 1,
            seed: 4,
            policies: CrashPolicy::ALL.to_vec(),
            mode: Mode::Crash,
            exhaustive: false,
            replay: None,
            out: Some(out.clone()),
            report: false,
            planted: None,
        };
        let case = CrashCase {
            ops: vec![CrashOp::Flush],
            crash_after: 1,
            policy: CrashPolicy::Subset,
            seed: 4,
            recovery_crash_after: 1,
            recovery_policy: CrashPolicy::PowerLoss,
        };
        let message = report_failure(&options, &case, "lost a key");
        assert!(
            message.contains("lost a key") && message.contains("--replay"),
            "{message}"
        );
        let text = std::fs::read_to_string(&out).expect("reproducer written");
        assert_eq!(
            serde_json::from_str::<CrashCase>(&text).expect("parses"),
            case
        );
    }
}
