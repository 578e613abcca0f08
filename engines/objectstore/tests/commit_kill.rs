//! Coordinators killed between the phases of their commits, on the real
//! servers: `committer` processes move units between the accounts of a small
//! bank with two-actor commits and die (`abort`) at random phases — after an
//! intent, after the record — and are started again, until at least 200
//! commits were acknowledged and at least 20 coordinators died. Then every
//! account is read (resolving every intent left standing) and the checker
//! proves all-or-nothing: the balances still sum to what they started at,
//! every transfer applied to one account is applied to the other, and every
//! acknowledged transfer is applied.
//!
//! `LEASEHOLD_COMMIT_KILL_COMMITS` (default 200) and
//! `LEASEHOLD_COMMIT_KILL_KILLS` (default 20) set the bar.

#![allow(clippy::unwrap_used, clippy::expect_used)] // test code: a failure panics with its message

mod common;

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use leasehold_core::{Acquire, ActorKey, NodeId, SnapshotWrite, Store, Timestamp};
use leasehold_testkit::conformance::StoreFactory;
use leasehold_testkit::contention::env_or;
use serde_json::{json, Value};

const ACCOUNTS: u64 = 4;
const OPENING_BALANCE: i64 = 100;
const CONCURRENT: usize = 3;

fn account(index: u64) -> ActorKey {
    ActorKey::new("Account", format!("acct-{index}"))
}

#[test]
fn coordinators_killed_between_phases_leave_no_partial_commit_on_s3() {
    run("s3", common::s3_settings(), common::ObjectFactory::s3_at);
}

#[test]
fn coordinators_killed_between_phases_leave_no_partial_commit_on_azure() {
    run(
        "azure",
        leasehold_objectstore::test_server::azure_settings().expect("the Azure emulator"),
        common::ObjectFactory::azure_at,
    );
}

fn run(
    backend: &str,
    settings: HashMap<String, String>,
    factory_at: fn(&str) -> common::ObjectFactory,
) {
    let prefix = common::unique_prefix("commit-kill");
    let store = factory_at(&prefix).open();
    let now = leasehold_core::Clock::now(&leasehold_core::SystemClock);
    for index in 0..ACCOUNTS {
        let key = account(index);
        let lease = store
            .try_acquire(&key, &NodeId::new("bank"), Duration::from_secs(3600), now)
            .unwrap();
        let Acquire::Acquired(lease) = lease else {
            panic!("{lease:?}")
        };
        let opening = json!({"balance": OPENING_BALANCE, "applied": []});
        store
            .save(
                SnapshotWrite::new(key, opening.to_string().into_bytes()),
                0,
                lease.epoch,
                now,
            )
            .unwrap();
    }
    let want_commits = env_or("LEASEHOLD_COMMIT_KILL_COMMITS", 200) as usize;
    let want_kills = env_or("LEASEHOLD_COMMIT_KILL_KILLS", 20) as usize;
    let mut envs = settings;
    envs.insert("LEASEHOLD_CONTENTION_BACKEND".into(), backend.into());
    envs.insert("LEASEHOLD_CONTENTION_PREFIX".into(), prefix.clone());
    let start = |serial: usize| -> Child {
        Command::new(env!("CARGO_BIN_EXE_committer"))
            .args([
                format!("c{serial}"),
                "4".into(),
                ACCOUNTS.to_string(),
                (7000 + serial).to_string(),
                // Three hook calls per commit: about one commit in ten dies.
                "30".into(),
                // Intents of the dead are aborted 300 ms after they began.
                "300".into(),
            ])
            .envs(&envs)
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("start a committer")
    };
    let mut acknowledged: BTreeMap<String, (u64, u64)> = BTreeMap::new();
    let (mut kills, mut serial) = (0, 0);
    let began = Instant::now();
    let mut running: Vec<Child> = Vec::new();
    while acknowledged.len() < want_commits || kills < want_kills {
        assert!(
            began.elapsed() < Duration::from_secs(240),
            "after 240 s: {} commits acknowledged, {kills} kills",
            acknowledged.len()
        );
        while running.len() < CONCURRENT {
            running.push(start(serial));
            serial += 1;
        }
        let child = running.remove(0);
        let output = child.wait_with_output().expect("committer ends");
        for line in String::from_utf8_lossy(&output.stdout).lines() {
            let parts: Vec<&str> = line.split(' ').collect();
            assert_eq!(parts[0], "ok", "{line}");
            acknowledged.insert(
                parts[1].to_owned(),
                (parts[2].parse().unwrap(), parts[3].parse().unwrap()),
            );
        }
        let stderr = String::from_utf8_lossy(&output.stderr);
        if output.status.success() {
            eprint!("{stderr}");
        } else {
            // Died at a phase (SIGABRT), or failed: a failure is not a kill.
            assert!(
                output.status.code().is_none(),
                "a committer failed: {:?}\n{stderr}",
                output.status
            );
            kills += 1;
        }
    }
    for child in running {
        let _ = child.wait_with_output();
    }

    // Read every account far past every deadline: intents still standing
    // are settled — forward or back — by these loads.
    let later = Timestamp(now.as_millis() + 3_600_000);
    let mut total = 0;
    let mut applied: BTreeMap<String, BTreeSet<u64>> = BTreeMap::new();
    for index in 0..ACCOUNTS {
        let snapshot = store.load(&account(index), later).unwrap().unwrap();
        let state: Value = serde_json::from_slice(&snapshot.state).unwrap();
        total += state["balance"].as_i64().unwrap();
        for entry in state["applied"].as_array().unwrap() {
            let entry = entry.as_str().unwrap();
            let (transfer, _) = entry.split_once(':').unwrap();
            applied
                .entry(transfer.to_owned())
                .or_default()
                .insert(index);
        }
    }
    let partial: Vec<_> = applied
        .iter()
        .filter(|(_, accounts)| accounts.len() != 2)
        .collect();
    let lost: Vec<_> = acknowledged
        .iter()
        .filter(|(transfer, (from, to))| {
            applied.get(*transfer) != Some(&BTreeSet::from([*from, *to]))
        })
        .collect();
    let report = store.verify_objects().unwrap();
    eprintln!(
        "commits on {backend}: {} acknowledged, {} applied ({} by coordinators that died \
         after their record), {kills} coordinators killed between phases, {} partial, {} \
         acknowledged but not applied; verify: {}",
        acknowledged.len(),
        applied.len(),
        applied.len() - acknowledged.len(),
        partial.len(),
        lost.len(),
        report.checked
    );
    assert!(partial.is_empty(), "partial commits: {partial:?}");
    assert!(lost.is_empty(), "acknowledged commits lost: {lost:?}");
    assert_eq!(
        total,
        OPENING_BALANCE * ACCOUNTS as i64,
        "money made or lost"
    );
    assert!(report.is_clean(), "{:?}", report.problems);
}
