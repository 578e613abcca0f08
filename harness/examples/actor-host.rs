//! A virtual-actor host on tokio over the store a seed TOML names: actors
//! activated (lease + load) as messages arrive, snapshots every interval,
//! renewals, idle deactivation, and a second host taking over after the
//! first crashes — while the crashed host's zombie is fenced out
//! (`leasehold::actor_host` has the story).
//!
//!     cargo run --example actor-host -- --config orbit.toml [--seconds 12]

use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

fn main() -> ExitCode {
    let mut args = std::env::args().skip(1);
    let (mut config, mut seconds) = (None, 12u64);
    while let Some(arg) = args.next() {
        match (arg.as_str(), args.next()) {
            ("--config", Some(path)) => config = Some(PathBuf::from(path)),
            ("--seconds", Some(text)) => match text.parse() {
                Ok(value) if value >= 3 => seconds = value,
                _ => {
                    eprintln!("--seconds takes a whole number, at least 3");
                    return ExitCode::from(2);
                }
            },
            _ => {
                eprintln!("usage: actor-host --config FILE.toml [--seconds N]");
                return ExitCode::from(2);
            }
        }
    }
    let Some(config) = config else {
        eprintln!("usage: actor-host --config FILE.toml [--seconds N]");
        return ExitCode::from(2);
    };
    match leasehold::actor_host::run_from_config(&config, Duration::from_secs(seconds)) {
        Ok(report) => {
            for event in &report.events {
                println!("{event}");
            }
            println!(
                "{} messages processed; {} activations ({} takeovers), {} deactivations, {} \
                 snapshots, {} renewals; {} messages lost in the crash since their snapshots; \
                 zombie saves refused: {}; counters read back: {} (before the run: {})",
                report.processed,
                report.activations,
                report.takeovers,
                report.deactivations,
                report.snapshots,
                report.renewals,
                report.lost_in_crash,
                report.zombie_saves_refused,
                report.final_total,
                report.initial_total
            );
            match report.check() {
                Ok(()) => ExitCode::SUCCESS,
                Err(problem) => {
                    eprintln!("actor-host: {problem}");
                    ExitCode::from(1)
                }
            }
        }
        Err(err) => {
            eprintln!("actor-host: {err}");
            ExitCode::from(2)
        }
    }
}
