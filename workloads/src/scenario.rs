//! Scenario files: everything that determines a generated workload.
//!
//! A scenario is a TOML file (`workloads/scenarios/*.toml`); the built-in ones
//! are embedded in the binary so `leasehold compare` needs no files. Two runs
//! of one scenario with one seed and one scale produce byte-identical traces.
//! Unknown keys, wrong types and out-of-range values are errors naming the key.

use std::path::Path;

use serde::Deserialize;

/// The scenarios that ship with the kit, in the order reports list them.
pub const BUILT_IN: [(&str, &str); 9] = [
    ("steady-zipf", include_str!("../scenarios/steady-zipf.toml")),
    (
        "activation-storm",
        include_str!("../scenarios/activation-storm.toml"),
    ),
    (
        "snapshot-heavy",
        include_str!("../scenarios/snapshot-heavy.toml"),
    ),
    ("churn", include_str!("../scenarios/churn.toml")),
    (
        "lease-contention",
        include_str!("../scenarios/lease-contention.toml"),
    ),
    ("large-state", include_str!("../scenarios/large-state.toml")),
    ("recovery", include_str!("../scenarios/recovery.toml")),
    (
        "orbit-preset",
        include_str!("../scenarios/orbit-preset.toml"),
    ),
    ("ycsb-mix", include_str!("../scenarios/ycsb-mix.toml")),
];

#[derive(Debug, thiserror::Error)]
pub enum ScenarioError {
    #[error("cannot read scenario {path}: {source}")]
    Io {
        path: String,
        source: std::io::Error,
    },
    #[error("scenario {name}: {reason}")]
    Parse { name: String, reason: String },
    #[error("scenario {name}: `{field}` {reason}")]
    Invalid {
        name: String,
        field: &'static str,
        reason: String,
    },
    #[error("no built-in scenario {0:?} (known: steady-zipf, activation-storm, snapshot-heavy, churn, lease-contention, large-state, recovery, orbit-preset, ycsb-mix)")]
    Unknown(String),
}

#[derive(Clone, Debug, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct Scenario {
    pub name: String,
    #[serde(default)]
    pub description: String,
    pub seed: u64,
    pub actors: u32,
    #[serde(default = "default_actor_type")]
    pub actor_type: String,
    pub nodes: u32,
    /// Messages per second of virtual time, over all actors (Poisson arrivals).
    pub messages_per_sec: f64,
    /// Virtual run length at scale 1.
    pub run_secs: f64,
    /// Share of actors that already have a snapshot when the run starts (a
    /// cluster that ran before). Their previous owner's leases have expired.
    #[serde(default)]
    pub preloaded_share: f64,
    #[serde(default)]
    pub popularity: Popularity,
    #[serde(default)]
    pub state: StateSize,
    #[serde(default)]
    pub snapshots: Snapshots,
    #[serde(default)]
    pub leases: Leases,
    #[serde(default)]
    pub lifecycle: Lifecycle,
    #[serde(default)]
    pub node_failures: Vec<NodeFailure>,
    #[serde(default)]
    pub recovery: Recovery,
    /// The memory each engine's run gets ("384MiB"; a cgroup limit counting
    /// the page cache, `leasehold compare --memory-limit` overrides it).
    /// The harness parses it; none: unlimited.
    #[serde(default)]
    pub memory_limit: Option<String>,
}

fn default_actor_type() -> String {
    "actor".to_owned()
}

/// Which actor a message goes to.
#[derive(Clone, Debug, Deserialize, PartialEq)]
#[serde(deny_unknown_fields, tag = "kind", rename_all = "kebab-case")]
pub enum Popularity {
    Uniform,
    /// YCSB's scrambled Zipfian: Zipf(θ) ranks hashed over the key space so
    /// the hot actors are not neighbours.
    Zipf {
        theta: f64,
    },
}

impl Default for Popularity {
    fn default() -> Self {
        Popularity::Zipf { theta: 0.99 }
    }
}

#[derive(Clone, Copy, Debug, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "kebab-case")]
pub enum SizeDistribution {
    Fixed,
    Uniform,
    /// Uniform in log space: as many actors between 64 KiB and 128 KiB as
    /// between 2 MiB and 4 MiB.
    LogUniform,
}

/// Each actor gets one state size, drawn once from this distribution.
#[derive(Clone, Debug, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct StateSize {
    pub min_bytes: u32,
    pub max_bytes: u32,
    pub distribution: SizeDistribution,
}

impl StateSize {
    /// The mean state size the distribution draws.
    pub fn mean_bytes(&self) -> f64 {
        let (min, max) = (f64::from(self.min_bytes), f64::from(self.max_bytes));
        match self.distribution {
            SizeDistribution::Fixed => max,
            SizeDistribution::Uniform => (min + max) / 2.0,
            SizeDistribution::LogUniform if max > min && min > 0.0 => {
                (max - min) / (max / min).ln()
            }
            SizeDistribution::LogUniform => max,
        }
    }
}

impl Default for StateSize {
    fn default() -> Self {
        StateSize {
            min_bytes: 256,
            max_bytes: 2048,
            distribution: SizeDistribution::Uniform,
        }
    }
}

#[derive(Clone, Debug, Deserialize, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct Snapshots {
    /// Save after this many messages changed the state (0: never by count).
    pub every_messages: u32,
    /// Save changed state at least this often (0: never by time).
    pub interval_secs: f64,
    /// Snapshots expire this long after they are written (0: never).
    pub ttl_secs: f64,
}

impl Default for Snapshots {
    fn default() -> Self {
        Snapshots {
            every_messages: 10,
            interval_secs: 0.0,
            ttl_secs: 0.0,
        }
    }
}

#[derive(Clone, Debug, Deserialize, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct Leases {
    pub duration_secs: f64,
    /// The owner renews once this share of the lease has run (0.85 = at 85 %).
    pub renew_at: f64,
    /// How many nodes race to activate an inactive actor when a message for it
    /// arrives (1: no race).
    pub race: u32,
}

impl Default for Leases {
    fn default() -> Self {
        Leases {
            duration_secs: 30.0,
            renew_at: 0.5,
            race: 1,
        }
    }
}

#[derive(Clone, Debug, Deserialize, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct Lifecycle {
    /// An actor without messages for this long deactivates: final snapshot, release.
    pub idle_timeout_secs: f64,
    /// Share of deactivations that delete the actor's state instead (tombstones).
    pub delete_share: f64,
    /// Purge expired snapshots this often (0: never).
    pub purge_interval_secs: f64,
}

impl Default for Lifecycle {
    fn default() -> Self {
        Lifecycle {
            idle_timeout_secs: 60.0,
            delete_share: 0.0,
            purge_interval_secs: 0.0,
        }
    }
}

/// A node stops at `at_secs` (no renewals, no snapshots, its unsaved state is
/// lost); its leases run out and other nodes take its actors over.
#[derive(Clone, Debug, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct NodeFailure {
    pub at_secs: f64,
    pub node: u32,
    /// The node rejoins (empty) this long after it failed (absent: never).
    #[serde(default)]
    pub recover_after_secs: Option<f64>,
}

#[derive(Clone, Debug, Default, Deserialize, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct Recovery {
    /// Close and reopen the store this often (0: never); the harness times
    /// each reopen up to the first read.
    pub reopen_every_secs: f64,
}

impl Scenario {
    /// Parses and validates a scenario; `name` is used in errors only.
    pub fn parse(name: &str, text: &str) -> Result<Scenario, ScenarioError> {
        let scenario: Scenario = toml::from_str(text).map_err(|err| ScenarioError::Parse {
            name: name.to_owned(),
            reason: err.to_string(),
        })?;
        scenario.validate()?;
        Ok(scenario)
    }

    pub fn load(path: &Path) -> Result<Scenario, ScenarioError> {
        let text = std::fs::read_to_string(path).map_err(|source| ScenarioError::Io {
            path: path.display().to_string(),
            source,
        })?;
        Scenario::parse(&path.display().to_string(), &text)
    }

    pub fn built_in(name: &str) -> Result<Scenario, ScenarioError> {
        let (_, text) = BUILT_IN
            .iter()
            .find(|(known, _)| *known == name)
            .ok_or_else(|| ScenarioError::Unknown(name.to_owned()))?;
        Scenario::parse(name, text)
    }

    /// A built-in name, or else a path to a TOML file.
    pub fn find(name_or_path: &str) -> Result<Scenario, ScenarioError> {
        if BUILT_IN.iter().any(|(known, _)| *known == name_or_path) {
            Scenario::built_in(name_or_path)
        } else if Path::new(name_or_path).exists() {
            Scenario::load(Path::new(name_or_path))
        } else {
            Err(ScenarioError::Unknown(name_or_path.to_owned()))
        }
    }

    pub fn all_built_in() -> Result<Vec<Scenario>, ScenarioError> {
        BUILT_IN
            .iter()
            .map(|(name, text)| Scenario::parse(name, text))
            .collect()
    }

    /// The scenario with `scale` times the actors and the message rate: the
    /// same virtual timeline (failures, lease terms, idle timeouts) and the
    /// same traffic per actor, with `scale` times the operations.
    pub fn scaled(&self, scale: f64) -> Scenario {
        let mut scaled = self.clone();
        scaled.actors = ((f64::from(self.actors) * scale).round() as u32).max(1);
        scaled.messages_per_sec = self.messages_per_sec * scale;
        scaled
    }

    /// The state bytes its preloaded snapshots hold (at scale 1): a lower
    /// bound of its live data, since actors saved during the run add theirs.
    pub fn preloaded_bytes(&self) -> f64 {
        f64::from(self.actors) * self.preloaded_share * self.state.mean_bytes()
    }

    /// Messages delivered over the run.
    pub fn messages(&self) -> u64 {
        (self.messages_per_sec * self.run_secs).round() as u64
    }

    fn validate(&self) -> Result<(), ScenarioError> {
        let invalid = |field: &'static str, reason: String| ScenarioError::Invalid {
            name: self.name.clone(),
            field,
            reason,
        };
        let positive = |field: &'static str, value: f64| {
            if value.is_finite() && value > 0.0 {
                Ok(())
            } else {
                Err(invalid(field, format!("must be > 0, got {value}")))
            }
        };
        let non_negative = |field: &'static str, value: f64| {
            if value.is_finite() && value >= 0.0 {
                Ok(())
            } else {
                Err(invalid(field, format!("must be >= 0, got {value}")))
            }
        };
        let share = |field: &'static str, value: f64| {
            if (0.0..=1.0).contains(&value) {
                Ok(())
            } else {
                Err(invalid(field, format!("must be within 0..=1, got {value}")))
            }
        };
        if self.actors == 0 || self.actors > 10_000_000 {
            return Err(invalid(
                "actors",
                format!("must be 1..=10000000, got {}", self.actors),
            ));
        }
        if self.nodes == 0 || self.nodes > 1024 {
            return Err(invalid(
                "nodes",
                format!("must be 1..=1024, got {}", self.nodes),
            ));
        }
        if self.actor_type.is_empty() {
            return Err(invalid("actor_type", "must not be empty".to_owned()));
        }
        positive("messages_per_sec", self.messages_per_sec)?;
        positive("run_secs", self.run_secs)?;
        share("preloaded_share", self.preloaded_share)?;
        if let Popularity::Zipf { theta } = self.popularity {
            if !(theta > 0.0 && theta < 1.0) {
                return Err(invalid(
                    "popularity.theta",
                    format!("must be within (0, 1), got {theta}"),
                ));
            }
        }
        let state = &self.state;
        if state.min_bytes == 0 || state.min_bytes > state.max_bytes || state.max_bytes > 64 << 20 {
            return Err(invalid(
                "state",
                format!(
                    "needs 1 <= min_bytes <= max_bytes <= 64 MiB, got {}..{}",
                    state.min_bytes, state.max_bytes
                ),
            ));
        }
        non_negative("snapshots.interval_secs", self.snapshots.interval_secs)?;
        non_negative("snapshots.ttl_secs", self.snapshots.ttl_secs)?;
        positive("leases.duration_secs", self.leases.duration_secs)?;
        if !(self.leases.renew_at > 0.0 && self.leases.renew_at < 1.0) {
            return Err(invalid(
                "leases.renew_at",
                format!("must be within (0, 1), got {}", self.leases.renew_at),
            ));
        }
        if self.leases.race == 0 || self.leases.race > self.nodes {
            return Err(invalid(
                "leases.race",
                format!(
                    "must be 1..=nodes ({}), got {}",
                    self.nodes, self.leases.race
                ),
            ));
        }
        positive(
            "lifecycle.idle_timeout_secs",
            self.lifecycle.idle_timeout_secs,
        )?;
        share("lifecycle.delete_share", self.lifecycle.delete_share)?;
        non_negative(
            "lifecycle.purge_interval_secs",
            self.lifecycle.purge_interval_secs,
        )?;
        non_negative(
            "recovery.reopen_every_secs",
            self.recovery.reopen_every_secs,
        )?;
        for failure in &self.node_failures {
            if failure.node >= self.nodes {
                return Err(invalid(
                    "node_failures.node",
                    format!(
                        "{} is not a node (nodes are 0..{})",
                        failure.node, self.nodes
                    ),
                ));
            }
            non_negative("node_failures.at_secs", failure.at_secs)?;
            if let Some(after) = failure.recover_after_secs {
                positive("node_failures.recover_after_secs", after)?;
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_built_in_scenario_parses_and_is_named_after_its_file() {
        for (name, text) in BUILT_IN {
            let scenario = Scenario::parse(name, text).unwrap();
            assert_eq!(scenario.name, name);
        }
    }

    #[test]
    fn unknown_keys_and_bad_values_name_the_field() {
        let base =
            "name = \"x\"\nseed = 1\nactors = 10\nnodes = 2\nmessages_per_sec = 10\nrun_secs = 1\n";
        assert!(Scenario::parse("x", base).is_ok());
        let err = Scenario::parse("x", &format!("{base}colour = 3\n")).unwrap_err();
        assert!(err.to_string().contains("colour"), "{err}");
        let err = Scenario::parse("x", &format!("{base}[leases]\nrace = 3\n")).unwrap_err();
        assert!(err.to_string().contains("leases.race"), "{err}");
        let err = Scenario::parse("x", &base.replace("actors = 10", "actors = 0")).unwrap_err();
        assert!(err.to_string().contains("actors"), "{err}");
        let err = Scenario::parse(
            "x",
            &format!("{base}[popularity]\nkind = \"zipf\"\ntheta = 1.5\n"),
        )
        .unwrap_err();
        assert!(err.to_string().contains("theta"), "{err}");
    }
}
