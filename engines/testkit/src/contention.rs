//! The multi-process contention test every networked backend runs: N
//! processes race for a few hot actors — acquire, load, save, renew, release,
//! with stalls past the lease (a GC pause, a partition) followed by a save
//! anyway — each writing one JSON line per operation; a checker over all the
//! logs proves the lease rules held across processes: never two owners of an
//! actor at one instant, epochs only rising, no stale save landing after a
//! newer grant (nor after the new owner read the state), no update lost.
//!
//! A backend plugs in with a small binary that opens its store and calls
//! `contend`, and a test that calls `race` with that binary.

use std::collections::{BTreeMap, HashMap};
use std::io::Write;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use serde::Deserialize;
use serde_json::json;

use leasehold_core::rng::SplitMix64;
use leasehold_core::{
    Acquire, ActorKey, Clock, NodeId, SnapshotWrite, Store, StoreError, SystemClock,
};

/// One contender's part: its node name, how long, how many hot actors, the
/// lease, the seed.
#[derive(Clone, Debug)]
pub struct Plan {
    pub node: String,
    pub seconds: u64,
    pub actors: u64,
    pub lease: Duration,
    pub seed: u64,
}

impl Plan {
    /// From a contender's arguments: NODE SECONDS ACTORS LEASE_MS SEED.
    pub fn from_args(args: &[String]) -> Result<Plan, String> {
        fn arg<T: std::str::FromStr>(
            args: &[String],
            index: usize,
            what: &str,
        ) -> Result<T, String> {
            let text = args
                .get(index)
                .ok_or_else(|| format!("missing argument {what}"))?;
            text.parse()
                .map_err(|_| format!("argument {what} is not valid: {text:?}"))
        }
        Ok(Plan {
            node: arg(args, 1, "NODE")?,
            seconds: arg(args, 2, "SECONDS")?,
            actors: arg(args, 3, "ACTORS")?,
            lease: Duration::from_millis(arg(args, 4, "LEASE_MS")?),
            seed: arg(args, 5, "SEED")?,
        })
    }
}

struct Log<W: Write> {
    node: String,
    out: W,
}

impl<W: Write> Log<W> {
    fn op(&mut self, op: &str, actor: &ActorKey, start: u64, fields: serde_json::Value) {
        let mut line = json!({
            "node": self.node,
            "op": op,
            "actor": actor.actor_id,
            "start": start,
            "end": SystemClock.now().as_millis(),
        });
        if let (Some(line), serde_json::Value::Object(fields)) = (line.as_object_mut(), fields) {
            line.extend(fields);
        }
        // A node that cannot write its log cannot be checked: stop loudly.
        writeln!(self.out, "{line}").unwrap_or_else(|err| panic!("log write failed: {err}"));
    }
}

fn error_kind(err: &StoreError) -> &'static str {
    match err {
        StoreError::StaleEpoch { .. } => "stale",
        StoreError::VersionConflict { .. } => "version_conflict",
        StoreError::NotOwner { .. } => "not_owner",
        StoreError::LeaseExpired { .. } => "expired",
        _ => "error",
    }
}

/// Races for the plan's hot actors through `store` until its time is up,
/// logging every operation to `out`.
pub fn contend(store: &dyn Store, plan: &Plan, out: impl Write) {
    let (node_name, seconds, actors, lease, seed) = (
        plan.node.clone(),
        plan.seconds,
        plan.actors,
        plan.lease,
        plan.seed,
    );
    let node = NodeId::new(node_name.clone());
    let mut rng = SplitMix64::new(seed);
    let mut log = Log {
        node: node_name.clone(),
        out,
    };
    let clock = SystemClock;
    let deadline = Instant::now() + Duration::from_secs(seconds);
    while Instant::now() < deadline {
        let key = ActorKey::new("Hot", format!("actor-{}", rng.below(actors)));
        let start = clock.now().as_millis();
        let epoch = match store.try_acquire(&key, &node, lease, clock.now()) {
            Ok(Acquire::Acquired(granted)) => {
                log.op(
                    "acquire",
                    &key,
                    start,
                    json!({"ok": true, "epoch": granted.epoch, "expires_at": granted.expires_at.as_millis()}),
                );
                granted.epoch
            }
            Ok(Acquire::Held { holder, epoch, .. }) => {
                log.op(
                    "acquire",
                    &key,
                    start,
                    json!({"ok": false, "held_by": holder.as_str(), "epoch": epoch}),
                );
                std::thread::sleep(Duration::from_millis(rng.below(20)));
                continue;
            }
            Err(err) => {
                log.op(
                    "acquire",
                    &key,
                    start,
                    json!({"ok": false, "error": err.to_string()}),
                );
                continue;
            }
        };
        let start = clock.now().as_millis();
        let mut version = match store.load(&key, clock.now()) {
            Ok(found) => {
                let version = found.map_or(0, |snapshot| snapshot.version);
                log.op(
                    "load",
                    &key,
                    start,
                    json!({"ok": true, "epoch": epoch, "version": version}),
                );
                version
            }
            Err(err) => {
                log.op(
                    "load",
                    &key,
                    start,
                    json!({"ok": false, "epoch": epoch, "error": err.to_string()}),
                );
                continue;
            }
        };
        let mut released = false;
        for _ in 0..1 + rng.below(4) {
            // One turn in six stalls past the lease: someone may take over,
            // and the save that follows must then be refused.
            if rng.below(6) == 0 {
                std::thread::sleep(lease + Duration::from_millis(50 + rng.below(100)));
            }
            let state = format!("{node_name} epoch {epoch} after version {version}");
            let start = clock.now().as_millis();
            match store.save(
                SnapshotWrite::new(key.clone(), state.into_bytes()),
                version,
                epoch,
                clock.now(),
            ) {
                Ok(saved) => {
                    version = saved.version;
                    log.op(
                        "save",
                        &key,
                        start,
                        json!({"ok": true, "epoch": epoch, "version": saved.version, "expected": saved.version - 1}),
                    );
                }
                Err(err) => {
                    log.op(
                        "save",
                        &key,
                        start,
                        json!({"ok": false, "epoch": epoch, "expected": version, "kind": error_kind(&err)}),
                    );
                    released = true; // lost the actor: stop using it
                    break;
                }
            }
            let start = clock.now().as_millis();
            match store.renew(&key, &node, epoch, clock.now()) {
                Ok(renewed) => log.op(
                    "renew",
                    &key,
                    start,
                    json!({"ok": true, "epoch": epoch, "expires_at": renewed.expires_at.as_millis()}),
                ),
                Err(err) => {
                    log.op(
                        "renew",
                        &key,
                        start,
                        json!({"ok": false, "epoch": epoch, "kind": error_kind(&err)}),
                    );
                    released = true;
                    break;
                }
            }
        }
        // Most of the time the node deactivates cleanly; sometimes it walks
        // away as if it had crashed, and the lease must run out.
        if !released && rng.below(4) != 0 {
            let start = clock.now().as_millis();
            let result = store.release(&key, &node, epoch);
            log.op(
                "release",
                &key,
                start,
                json!({"ok": result.is_ok(), "epoch": epoch}),
            );
        }
    }
}

#[derive(Clone, Debug, Deserialize)]
pub struct Entry {
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

/// A numeric environment variable, or `default`.
pub fn env_or(name: &str, default: u64) -> u64 {
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

/// What a checked race did.
#[derive(Clone, Debug, Default)]
pub struct Summary {
    pub acquisitions: usize,
    pub takeovers: usize,
    pub saves: usize,
    pub stale_rejected: usize,
}

/// Runs `nodes` processes of `binary` for `seconds` on 3 hot actors with
/// 300 ms leases, with `envs`, and checks their logs; `label` names the
/// backend in the printed figures.
pub fn race(
    binary: &str,
    envs: &HashMap<String, String>,
    label: &str,
    nodes: u64,
    seconds: u64,
) -> Summary {
    let children: Vec<_> = (0..nodes)
        .map(|index| {
            Command::new(binary)
                .args([
                    format!("node-{index}"),
                    seconds.to_string(),
                    "3".into(),
                    "300".into(),
                    (1000 + index).to_string(),
                ])
                .envs(envs)
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
        "contention on {label}: {nodes} processes x {seconds} s on 3 actors: {} acquisitions ({} takeovers \
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
    Summary {
        acquisitions: count("acquire", true),
        takeovers,
        saves: count("save", true),
        stale_rejected,
    }
}
