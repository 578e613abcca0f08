//! One "node" of the multi-process contention test (`tests/contention.rs`):
//! for a bounded time it races the other processes for a few hot actors
//! through the object store — acquire, load, save, renew, release — and writes
//! one JSON line per operation to stdout for the checker. Now and then it
//! stalls past its lease without renewing (a GC pause, a partition) and then
//! tries to save anyway, so that takeovers and stale saves really happen.
//!
//! Usage: contender NODE SECONDS ACTORS LEASE_MS SEED, with
//! LEASEHOLD_CONTENTION_BACKEND (`s3` or `azure`), LEASEHOLD_CONTENTION_PREFIX
//! (the key prefix) and the server in the variables `scripts/s3-server` or
//! `scripts/azure-server` print.

use std::io::Write;
use std::time::{Duration, Instant};

use leasehold_core::rng::SplitMix64;
use leasehold_core::{
    Acquire, ActorKey, Clock, NodeId, SnapshotWrite, Store, StoreError, SystemClock,
};
use leasehold_objectstore::{backend, test_server, ObjectStoreBackend};
use serde_json::json;

fn setting(name: &str) -> Result<String, String> {
    std::env::var(name).map_err(|_| format!("environment variable {name} is not set"))
}

fn arg<T: std::str::FromStr>(args: &[String], index: usize, what: &str) -> Result<T, String> {
    args.get(index)
        .ok_or_else(|| format!("missing argument {what}"))?
        .parse()
        .map_err(|_| format!("argument {what} is not valid: {:?}", args[index]))
}

struct Log {
    node: String,
    out: std::io::StdoutLock<'static>,
}

impl Log {
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

fn main() -> Result<(), String> {
    let args: Vec<String> = std::env::args().collect();
    let node_name: String = arg(&args, 1, "NODE")?;
    let seconds: u64 = arg(&args, 2, "SECONDS")?;
    let actors: u64 = arg(&args, 3, "ACTORS")?;
    let lease = Duration::from_millis(arg(&args, 4, "LEASE_MS")?);
    let seed: u64 = arg(&args, 5, "SEED")?;
    let prefix = setting("LEASEHOLD_CONTENTION_PREFIX")?;
    let configured = match setting("LEASEHOLD_CONTENTION_BACKEND")?.as_str() {
        "s3" => backend::s3(&test_server::from_environment(&prefix)?),
        "azure" => backend::azure(&test_server::azure_from_environment(&prefix)?),
        other => return Err(format!("unknown backend {other:?} (s3 or azure)")),
    };
    let store = ObjectStoreBackend::open(configured.map_err(|err| err.to_string())?)
        .map_err(|err| err.to_string())?;
    let node = NodeId::new(node_name.clone());
    let mut rng = SplitMix64::new(seed);
    let mut log = Log {
        node: node_name.clone(),
        out: std::io::stdout().lock(),
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
    let stats = store.client_stats();
    eprintln!(
        "{node_name}: {} requests, {} refused conditions, {} fences",
        stats.requests.iter().map(|kind| kind.count).sum::<u64>(),
        stats.conditions_failed,
        store.fences_written()
    );
    Ok(())
}
