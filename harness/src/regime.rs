//! Regimes of a comparison: everything in memory (the scenarios at the
//! asked scale, no limit unless one is given), or beyond memory — each run in
//! a memory budget (384 MiB unless `--memory-limit` says otherwise) and each
//! scenario sized so its live data outgrows it: cold activations, real read
//! amplification, compaction and checkpoints under pressure.

use crate::{Error, Result};
use leasehold_workloads::Scenario;

/// The scenarios of the beyond-memory preset (when none is named).
pub const BEYOND_MEMORY_SCENARIOS: [&str; 3] = ["activation-storm", "snapshot-heavy", "ycsb-mix"];
/// The budget of the beyond-memory preset unless `--memory-limit` names one.
pub const BEYOND_MEMORY_BUDGET: u64 = 384 << 20;
/// Live data over the budget: the preloaded snapshots alone hold this many
/// budgets.
pub const DATA_OVER_BUDGET: f64 = 2.5;
/// At most this many messages per run, so the preset's runs are comparable
/// in length (the replaying child streams the trace: its length costs no
/// memory).
pub const MESSAGES_MAX: f64 = 150_000.0;
/// Each run of the preset stops this long after its replay began (the fill
/// included) unless `--time-cap-secs` says otherwise: redb beyond memory
/// replays at a few hundred ops/s and would take hours. A capped run reports
/// its figures over the ops it replayed and how far it got.
pub const BEYOND_MEMORY_TIME_CAP_SECS: u64 = 150;

#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, clap::ValueEnum)]
pub enum Regime {
    /// The scenarios at the asked scale; no memory limit unless one is given.
    #[default]
    InMemory,
    /// Each run in a memory budget, each scenario sized past it.
    BeyondMemory,
}

/// `scenario` sized for `budget`: actors scaled so its preloaded snapshots
/// hold `DATA_OVER_BUDGET` × `budget`, the message rate capped so the run
/// delivers at most `MESSAGES_MAX` messages. Returns the scenario to generate
/// (rate already capped) and the scale to generate it at.
pub fn beyond_memory(scenario: &Scenario, budget: u64) -> Result<(Scenario, f64)> {
    let bytes = scenario.preloaded_bytes();
    if bytes < 1.0 {
        return Err(Error::Usage(format!(
            "{} preloads no snapshots: it cannot be sized beyond memory (give it a \
             preloaded_share, or run it in memory)",
            scenario.name
        )));
    }
    let scale = DATA_OVER_BUDGET * budget as f64 / bytes;
    let mut capped = scenario.clone();
    let messages = capped.messages_per_sec * scale * capped.run_secs;
    if messages > MESSAGES_MAX {
        capped.messages_per_sec *= MESSAGES_MAX / messages;
    }
    Ok((capped, scale))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_preset_sizes_live_data_past_the_budget_and_caps_messages() {
        for name in BEYOND_MEMORY_SCENARIOS {
            let scenario = Scenario::find(name).unwrap_or_else(|err| panic!("{err}"));
            let (capped, scale) = beyond_memory(&scenario, BEYOND_MEMORY_BUDGET)
                .unwrap_or_else(|err| panic!("{err}"));
            let sized = capped.scaled(scale);
            assert!(sized.preloaded_bytes() >= 2.5 * BEYOND_MEMORY_BUDGET as f64 * 0.999);
            assert!(
                sized.messages() as f64 <= MESSAGES_MAX + 1.0,
                "{}",
                sized.messages()
            );
        }
    }
}
