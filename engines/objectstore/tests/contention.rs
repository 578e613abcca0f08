//! Separate processes race for the same hot actors through the S3 server (and
//! through Azurite), and a checker over their logs proves the server's
//! conditional writes kept the lease rules: never two owners of an actor at
//! one instant, epochs only rising, no save with a stale epoch landing, no
//! update lost.
//!
//! `LEASEHOLD_CONTENTION_SECONDS` (default 20) and
//! `LEASEHOLD_CONTENTION_NODES` (default 4) bound the run.

#![allow(clippy::unwrap_used, clippy::expect_used)] // test code: a failure panics with its message

mod common;

use std::collections::BTreeMap;
use std::process::{Command, Stdio};

use serde::Deserialize;

#[derive(Clone, Debug, Deserialize)]
struct Entry {
    node: String,
    op: String,
    actor: String,
    start: u64,
    end: u64,
    ok: bool,
    #[serde(default)]
    epoch: Option<u64>,
    #[serde(default)]
    expires_at: Option<u64>,
    #[serde(default)]
    version: Option<u64>,
    #[serde(default)]
    kind: Option<String>,
    #[serde(default)]
    error: Option<String>,
}

fn env_or(name: &str, default: u64) -> u64 {
    std::env::var(name)
        .ok()
        .and_then(|text| text.parse().ok())
        .unwrap_or(default)
}

/// One epoch's time of validity: from the end of its acquire to its last
/// known expiry, or to the start of its release.
#[derive(Debug)]
struct Tenure {
    node: String,
    epoch: u64,
    from: u64,
    until: u64,
}

fn tenures(entries: &[&Entry]) -> Vec<Tenure> {
    let mut by_epoch: BTreeMap<u64, Tenure> = BTreeMap::new();
    for entry in entries.iter().filter(|entry| entry.ok) {
        let epoch = entry.epoch.unwrap();
        match entry.op.as_str() {
            "acquire" => {
                let tenure = by_epoch.entry(epoch).or_insert_with(|| Tenure {
                    node: entry.node.clone(),
                    epoch,
                    from: entry.end,
                    until: entry.expires_at.unwrap(),
                });
                // A node that walked away and came back while its lease still
                // ran gets the same lease back (already owned): same tenure.
                assert_eq!(
                    tenure.node, entry.node,
                    "epoch {epoch} of {} granted to two nodes",
                    entry.actor
                );
                tenure.from = tenure.from.min(entry.end);
                tenure.until = tenure.until.max(entry.expires_at.unwrap());
            }
            "renew" => {
                let tenure = by_epoch.get_mut(&epoch).unwrap();
                tenure.until = tenure.until.max(entry.expires_at.unwrap());
            }
            _ => {}
        }
    }
    for entry in entries
        .iter()
        .filter(|entry| entry.ok && entry.op == "release")
    {
        let tenure = by_epoch.get_mut(&entry.epoch.unwrap()).unwrap();
        tenure.until = tenure.until.min(entry.start);
    }
    by_epoch.into_values().collect()
}

#[test]
fn separate_processes_never_share_an_actor_on_s3() {
    race("s3", &common::s3_settings());
}

#[test]
fn separate_processes_never_share_an_actor_on_azure() {
    race(
        "azure",
        &leasehold_objectstore::test_server::azure_settings().expect("the Azure emulator"),
    );
}

/// Runs the contender processes against `backend` and checks their logs.
fn race(backend: &str, settings: &std::collections::HashMap<String, String>) {
    let prefix = common::unique_prefix("contention");
    let seconds = env_or("LEASEHOLD_CONTENTION_SECONDS", 20);
    let nodes = env_or("LEASEHOLD_CONTENTION_NODES", 4);
    let children: Vec<_> = (0..nodes)
        .map(|index| {
            Command::new(env!("CARGO_BIN_EXE_contender"))
                .args([
                    format!("node-{index}"),
                    seconds.to_string(),
                    "3".into(),
                    "300".into(),
                    (1000 + index).to_string(),
                ])
                .envs(settings)
                .env("LEASEHOLD_CONTENTION_BACKEND", backend)
                .env("LEASEHOLD_CONTENTION_PREFIX", &prefix)
                .stdout(Stdio::piped())
                .stderr(Stdio::piped())
                .spawn()
                .expect("start a contender process")
        })
        .collect();
    let mut entries = Vec::new();
    for child in children {
        let output = child.wait_with_output().expect("contender finishes");
        let stderr = String::from_utf8_lossy(&output.stderr);
        assert!(output.status.success(), "a contender failed: {stderr}");
        eprint!("{stderr}");
        for line in String::from_utf8_lossy(&output.stdout).lines() {
            let entry: Entry = serde_json::from_str(line).expect("a log line parses");
            entries.push(entry);
        }
    }
    let errors: Vec<&Entry> = entries
        .iter()
        .filter(|entry| entry.error.is_some())
        .collect();
    assert!(errors.is_empty(), "requests failed: {errors:?}");

    let mut by_actor: BTreeMap<&str, Vec<&Entry>> = BTreeMap::new();
    for entry in &entries {
        by_actor
            .entry(entry.actor.as_str())
            .or_default()
            .push(entry);
    }
    let (mut takeovers, mut duplicate_owners) = (0, 0);
    for (actor, log) in &by_actor {
        // Never two owners at one instant.
        let tenures = tenures(log);
        for pair in tenures.windows(2) {
            if pair[1].from < pair[0].until {
                duplicate_owners += 1;
                eprintln!("{actor}: tenures overlap: {:?} and {:?}", pair[0], pair[1]);
            }
            if !log.iter().any(|entry| {
                entry.ok && entry.op == "release" && entry.epoch == Some(pair[0].epoch)
            }) {
                takeovers += 1;
            }
        }
        // Epochs only rise: an acquire that ended before another began has
        // the lower epoch.
        let acquires: Vec<&&Entry> = log
            .iter()
            .filter(|entry| entry.ok && entry.op == "acquire")
            .collect();
        for a in &acquires {
            for b in &acquires {
                // The same node getting its own unexpired lease back keeps
                // the epoch; anyone else's later grant has a higher one.
                let regrant = a.node == b.node && a.epoch == b.epoch;
                if a.end < b.start && !regrant {
                    assert!(a.epoch < b.epoch, "{actor}: epoch fell from {a:?} to {b:?}");
                }
            }
        }
        let saves: Vec<&&Entry> = log
            .iter()
            .filter(|entry| entry.ok && entry.op == "save")
            .collect();
        // No lost update: every version was written once.
        let mut versions: Vec<(u64, u64)> = saves
            .iter()
            .map(|save| (save.version.unwrap(), save.epoch.unwrap()))
            .collect();
        versions.sort_unstable();
        for pair in versions.windows(2) {
            assert_ne!(pair[0].0, pair[1].0, "{actor}: version written twice");
            assert!(
                pair[0].1 <= pair[1].1,
                "{actor}: version {} under epoch {} after epoch {}",
                pair[1].0,
                pair[1].1,
                pair[0].1
            );
        }
        for save in &saves {
            // No stale save landed after a newer epoch was granted...
            for acquire in &acquires {
                assert!(
                    !(acquire.epoch > save.epoch && acquire.end < save.start),
                    "{actor}: save {save:?} landed after {acquire:?}"
                );
            }
            // ...nor after the new owner had read the state.
            for load in log.iter().filter(|entry| entry.ok && entry.op == "load") {
                assert!(
                    !(save.epoch < load.epoch && save.version > load.version),
                    "{actor}: stale save {save:?} landed after the new owner's {load:?}"
                );
            }
        }
    }
    let count = |op: &str, ok: bool| {
        entries
            .iter()
            .filter(|entry| entry.op == op && entry.ok == ok)
            .count()
    };
    let stale_rejected = entries
        .iter()
        .filter(|entry| entry.op == "save" && entry.kind.as_deref() == Some("stale"))
        .count();
    eprintln!(
        "contention on {backend}: {nodes} processes x {seconds} s on 3 actors: {} acquisitions ({} takeovers \
         of unreleased leases), {} refused as held, {} saves, {} stale saves rejected, {} version \
         conflicts, {} renewals ({} refused), {} releases, duplicate owners {duplicate_owners}",
        count("acquire", true),
        takeovers,
        count("acquire", false),
        count("save", true),
        stale_rejected,
        entries
            .iter()
            .filter(|entry| entry.kind.as_deref() == Some("version_conflict"))
            .count(),
        count("renew", true),
        count("renew", false),
        count("release", true),
    );
    assert_eq!(duplicate_owners, 0, "two owners of one actor at once");
    // The run must have exercised what it checks.
    assert!(takeovers > 0, "no lease was ever taken over");
    assert!(stale_rejected > 0, "no stale save was ever attempted");
}
