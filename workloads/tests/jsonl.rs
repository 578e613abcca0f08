#![allow(clippy::unwrap_used, clippy::expect_used)]
//! JSONL user traces: a scenario written as JSONL and converted back gives
//! the same ops and the same reference answers; a bad line is refused with
//! its line number.

use std::path::{Path, PathBuf};
use std::time::Duration;

use leasehold_workloads::jsonl::{convert, export, JsonlOptions};
use leasehold_workloads::scenario::Scenario;
use leasehold_workloads::trace::Trace;
use leasehold_workloads::{generate, Answer, Op};

fn temp(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("leasehold-jsonl-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    dir.join(name)
}

fn options(lease_ms: u64) -> JsonlOptions {
    JsonlOptions {
        lease: Duration::from_millis(lease_ms),
        ttl: None,
    }
}

fn converted(path: &Path, lease_ms: u64) -> Result<Trace, String> {
    let (bytes, _) = convert(path, "test", &options(lease_ms), &memory, Vec::new())
        .map_err(|err| err.to_string())?;
    Ok(Trace::decode(&bytes).unwrap())
}

/// The reference store of these traces: the volatile memory engine.
fn memory(actors: u32) -> Box<dyn leasehold_core::Store> {
    Box::new(leasehold_core::KvStore::new(
        leasehold_memory::MemoryEngine::volatile(u64::from(actors) * 2 + 16),
        leasehold_core::Durability::Buffered,
    ))
}

#[test]
fn a_scenario_as_jsonl_converts_back_to_its_ops_and_answers() {
    // Scenarios without a TTL: with one, the runtime knows a snapshot it
    // saw has expired and saves from version 0, while a JSONL save carries
    // the version the node last saw (and is refused, as a real one would be).
    for name in ["steady-zipf", "activation-storm", "snapshot-heavy"] {
        let scenario = Scenario::built_in(name).unwrap();
        let trace = generate(&scenario, 0.02, &memory).unwrap().trace;
        assert_eq!(trace.header.ttl_ms, 0, "{name}");
        let path = temp(&format!("{name}.jsonl"));
        export(&trace, std::fs::File::create(&path).unwrap()).unwrap();
        let back = converted(&path, trace.header.lease_ms).unwrap();
        let per_actor: Vec<_> = trace
            .ops
            .iter()
            .filter(|op| op.op.actor().is_some())
            .collect();
        assert_eq!(back.ops.len(), per_actor.len(), "{name}");
        assert!(per_actor.iter().any(|op| matches!(op.op, Op::Save { .. })));
        // Names become indices in order of first appearance: the same actor
        // and node throughout, under another number.
        let mut actors = Renaming::default();
        let mut nodes = Renaming::default();
        for (index, (got, want)) in back.ops.iter().zip(&per_actor).enumerate() {
            actors.same(want.op.actor(), got.op.actor(), name);
            nodes.same(node_of(&want.op), node_of(&got.op), name);
            assert_eq!(
                renumbered(got.op, got.op.actor(), node_of(&got.op)),
                renumbered(want.op, got.op.actor(), node_of(&got.op)),
                "{name}: op {index}"
            );
            // A state's bytes come from a pool seeded by the trace; the
            // converted trace's seed differs, so its loads' hashes do too.
            assert_eq!(
                without_hash(got.answer),
                without_hash(want.answer),
                "{name}: answer of op {index}"
            );
        }
    }
}

#[derive(Default)]
struct Renaming {
    forward: std::collections::HashMap<u32, u32>,
    backward: std::collections::HashMap<u32, u32>,
}

impl Renaming {
    fn same(&mut self, from: Option<u32>, to: Option<u32>, name: &str) {
        let (Some(from), Some(to)) = (from, to) else {
            assert_eq!(from.is_some(), to.is_some(), "{name}");
            return;
        };
        assert_eq!(
            *self.forward.entry(from).or_insert(to),
            to,
            "{name}: {from} renamed twice"
        );
        assert_eq!(
            *self.backward.entry(to).or_insert(from),
            from,
            "{name}: {to} named twice"
        );
    }
}

fn node_of(op: &Op) -> Option<u32> {
    match *op {
        Op::Acquire { node, .. } | Op::Renew { node, .. } | Op::Release { node, .. } => Some(node),
        _ => None,
    }
}

/// `op` with its actor and node numbers replaced.
fn renumbered(op: Op, actor: Option<u32>, node: Option<u32>) -> Op {
    let (a, n) = (actor.unwrap_or(0), node.unwrap_or(0));
    match op {
        Op::Acquire { .. } => Op::Acquire { actor: a, node: n },
        Op::Renew { epoch, .. } => Op::Renew {
            actor: a,
            node: n,
            epoch,
        },
        Op::Release { epoch, .. } => Op::Release {
            actor: a,
            node: n,
            epoch,
        },
        Op::Load { .. } => Op::Load { actor: a },
        Op::Save {
            expected_version,
            epoch,
            state_bytes,
            ..
        } => Op::Save {
            actor: a,
            expected_version,
            epoch,
            state_bytes,
        },
        Op::Delete {
            expected_version,
            epoch,
            ..
        } => Op::Delete {
            actor: a,
            expected_version,
            epoch,
        },
        other => other,
    }
}

fn without_hash(answer: Answer) -> Answer {
    match answer {
        Answer::Loaded { version, epoch, .. } => Answer::Loaded {
            version,
            epoch,
            hash: 0,
        },
        other => other,
    }
}

#[test]
fn a_node_that_lost_its_lease_is_rejected_like_a_real_one() {
    let path = temp("zombie.jsonl");
    let line = |t_ms: u64, node: &str, op: &str, size: Option<u64>| {
        let size = size.map_or(String::new(), |size| format!(r#", "size": {size}"#));
        format!(
            r#"{{"t_ms": {t_ms}, "node": "{node}", "op": "{op}", "actor_type": "Grain", "actor_id": "g1"{size}, "extra": [1, 2]}}"#
        )
    };
    let text = [
        line(0, "silo-1", "acquire", None),
        line(10, "silo-1", "save", Some(100)),
        String::new(),
        // silo-1 stalls past its 1 s lease; silo-2 takes the actor over.
        line(2_000, "silo-2", "acquire", None),
        line(2_010, "silo-2", "load", None),
        line(2_020, "silo-1", "save", Some(100)),
        line(2_030, "silo-2", "save", Some(100)),
    ]
    .join("\n");
    std::fs::write(&path, text).unwrap();
    let trace = converted(&path, 1_000).unwrap();
    let answers: Vec<String> = trace
        .ops
        .iter()
        .map(|op| format!("{:?}", op.answer))
        .collect();
    assert_eq!(trace.ops.len(), 6, "{answers:?}");
    assert!(answers[1].starts_with("Saved"), "{answers:?}");
    assert!(answers[2].starts_with("Acquired"), "{answers:?}");
    assert!(
        answers[4].starts_with("Rejected"),
        "zombie save: {answers:?}"
    );
    assert!(answers[5].starts_with("Saved"), "{answers:?}");
}

#[test]
fn a_bad_line_is_refused_with_its_number() {
    let good = r#"{"t_ms": 5, "node": "a", "op": "acquire", "actor_type": "T", "actor_id": "x"}"#;
    let cases = [
        ("not json", "line 3"),
        (
            r#"{"t_ms": 6, "node": "a", "op": "explode", "actor_type": "T", "actor_id": "x"}"#,
            "unknown variant",
        ),
        (
            r#"{"t_ms": 6, "node": "a", "op": "save", "actor_type": "T", "actor_id": "x"}"#,
            "needs a \"size\"",
        ),
        (
            r#"{"t_ms": 1, "node": "a", "op": "load", "actor_type": "T", "actor_id": "x"}"#,
            "time order",
        ),
        (
            r#"{"t_ms": 6, "op": "load", "actor_type": "T", "actor_id": "x"}"#,
            "missing field `node`",
        ),
        (
            r#"{"t_ms": 6, "node": "a", "op": "save", "actor_type": "T", "actor_id": "x", "size": 99999999999}"#,
            "above",
        ),
    ];
    for (bad, expected) in cases {
        let path = temp("bad.jsonl");
        std::fs::write(&path, format!("{good}\n{good}\n{bad}\n{good}\n")).unwrap();
        let err = converted(&path, 1_000).expect_err("refused");
        assert!(err.contains("line 3"), "{bad}: {err}");
        assert!(err.contains(expected), "{bad}: {err}");
    }
    let path = temp("empty.jsonl");
    std::fs::write(&path, "\n\n").unwrap();
    assert!(converted(&path, 1_000).unwrap_err().contains("no ops"));
}
