//! User traces in an open format: one JSON object per line,
//!
//! ```text
//! {"t_ms": 1200, "node": "silo-2", "op": "save", "actor_type": "Grain", "actor_id": "g17", "size": 2048}
//! ```
//!
//! with `op` one of acquire, renew, release, load, save, delete (`size` for
//! saves; other fields ignored). Lines come in time order.
//!
//! Conversion plays the lines as a runtime would, against the reference store
//! (the memory engine under `KvStore`), and writes a framed trace with the
//! reference's answers, which replay then checks on every engine. Each node
//! keeps, per actor, the epoch of the lease it was granted and the version it
//! last saw (by a load or its own save): renew, release, save and delete carry
//! them, so a node that lost its lease is rejected like a real one.
//!
//! Names become indices, in order of first appearance: the trace replays the
//! n-th actor under the trace's generated key (`<actor_type of the first
//! line>/<n:08>`) and the n-th node as `node-<n>`. Which actor, when, what
//! size and in what order are kept; the key strings are not.
//!
//! The file is read twice, a line at a time (names, then ops), so memory
//! grows with the actors and nodes it names and their states in the reference
//! store, never with its length.

use std::collections::HashMap;
use std::io::{BufRead, Write};
use std::path::Path;
use std::time::Duration;

use leasehold_core::{NodeId, SnapshotWrite, Store, StoreError, Timestamp};

use crate::runtime::{
    actor_keys, answer_of_acquire, answer_of_load, node_ids, rejection, Reference,
};
use crate::state::StatePool;
use crate::trace::{Answer, Op, Trace, TraceHeader, TraceOp, TraceWriter};

/// Limits a JSONL trace must keep (those of the framed trace it becomes).
pub const ACTORS_MAX: usize = 10_000_000;
pub const NODES_MAX: usize = 1024;
pub const SIZE_MAX: u64 = 64 << 20;
/// A longer line is refused before it is parsed.
const LINE_BYTES_MAX: usize = 64 << 10;

#[derive(Debug, thiserror::Error)]
pub enum JsonlError {
    #[error("{path}: {source}")]
    Io {
        path: String,
        source: std::io::Error,
    },
    #[error("{path}, line {line}: {reason}")]
    Line {
        path: String,
        line: u64,
        reason: String,
    },
    #[error("{path}: {reason}")]
    File { path: String, reason: String },
    #[error("{path}: the reference store failed: {source}")]
    Reference {
        path: String,
        source: Box<StoreError>,
    },
}

/// How the lines are played.
#[derive(Clone, Debug)]
pub struct JsonlOptions {
    pub lease: Duration,
    /// Snapshots expire this long after their save; `None`: never.
    pub ttl: Option<Duration>,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Deserialize, serde::Serialize)]
#[serde(rename_all = "lowercase")]
enum LineOp {
    Acquire,
    Renew,
    Release,
    Load,
    Save,
    Delete,
}

#[derive(Debug, serde::Deserialize, serde::Serialize)]
struct Line {
    t_ms: u64,
    node: String,
    op: LineOp,
    actor_type: String,
    actor_id: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    size: Option<u64>,
}

/// What a conversion saw.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct JsonlStats {
    pub lines: u64,
    pub ops: u64,
    pub actors: u32,
    pub nodes: u32,
    pub rejected: u64,
}

/// The names of a file's actors and nodes, as indices.
#[derive(Default)]
struct Names {
    actors: HashMap<(String, String), u32>,
    nodes: HashMap<String, u32>,
    actor_type: Option<String>,
    size_max: u64,
}

/// Reads `path` line by line; `each` gets the line number and the parsed line.
fn each_line(
    path: &Path,
    mut each: impl FnMut(u64, Line) -> Result<(), JsonlError>,
) -> Result<u64, JsonlError> {
    let name = path.display().to_string();
    let file = std::fs::File::open(path).map_err(|source| JsonlError::Io {
        path: name.clone(),
        source,
    })?;
    let mut reader = std::io::BufReader::with_capacity(1 << 20, file);
    let mut text = String::new();
    let mut number = 0u64;
    let mut previous_ms = 0u64;
    loop {
        text.clear();
        let read = std::io::Read::take(&mut reader, LINE_BYTES_MAX as u64 + 1)
            .read_line(&mut text)
            .map_err(|source| match source.kind() {
                std::io::ErrorKind::InvalidData => JsonlError::Line {
                    path: name.clone(),
                    line: number + 1,
                    reason: "not UTF-8".to_owned(),
                },
                _ => JsonlError::Io {
                    path: name.clone(),
                    source,
                },
            })?;
        if read == 0 {
            return Ok(number);
        }
        number += 1;
        let at = |reason: String| JsonlError::Line {
            path: name.clone(),
            line: number,
            reason,
        };
        if text.len() > LINE_BYTES_MAX {
            return Err(at(format!("longer than {LINE_BYTES_MAX} bytes")));
        }
        if text.trim().is_empty() {
            continue;
        }
        let line: Line = serde_json::from_str(&text).map_err(|err| at(err.to_string()))?;
        if line.t_ms < previous_ms {
            return Err(at(format!(
                "t_ms {} is before the previous line's {previous_ms}: lines must be in time order",
                line.t_ms
            )));
        }
        previous_ms = line.t_ms;
        match (line.op, line.size) {
            (LineOp::Save, None) => return Err(at("a save needs a \"size\"".to_owned())),
            (_, Some(size)) if size > SIZE_MAX => {
                return Err(at(format!("size {size} is above {SIZE_MAX} bytes")))
            }
            _ => {}
        }
        if line.node.is_empty() || line.actor_type.is_empty() || line.actor_id.is_empty() {
            return Err(at(
                "node, actor_type and actor_id must not be empty".to_owned()
            ));
        }
        each(number, line)?;
    }
}

impl Names {
    fn learn(&mut self, path: &Path, number: u64, line: Line) -> Result<(), JsonlError> {
        let at = |reason: String| JsonlError::Line {
            path: path.display().to_string(),
            line: number,
            reason,
        };
        self.actor_type
            .get_or_insert_with(|| line.actor_type.clone());
        self.size_max = self.size_max.max(line.size.unwrap_or(0));
        let actors = self.actors.len();
        if let std::collections::hash_map::Entry::Vacant(vacant) =
            self.actors.entry((line.actor_type, line.actor_id))
        {
            if actors >= ACTORS_MAX {
                return Err(at(format!("more than {ACTORS_MAX} actors")));
            }
            vacant.insert(actors as u32);
        }
        let nodes = self.nodes.len();
        if let std::collections::hash_map::Entry::Vacant(vacant) = self.nodes.entry(line.node) {
            if nodes >= NODES_MAX {
                return Err(at(format!("more than {NODES_MAX} nodes")));
            }
            vacant.insert(nodes as u32);
        }
        Ok(())
    }
}

/// What one node knows of one actor.
#[derive(Clone, Copy, Default)]
struct Session {
    epoch: u64,
    version: u64,
}

/// Converts the JSONL file at `path` into a framed trace written to `out`,
/// with the reference store's answers. `name` becomes the trace's scenario
/// name.
pub fn convert<W: Write>(
    path: &Path,
    name: &str,
    options: &JsonlOptions,
    reference: Reference<'_>,
    out: W,
) -> Result<(W, JsonlStats), JsonlError> {
    let file = path.display().to_string();
    let mut names = Names::default();
    let lines = each_line(path, |number, line| names.learn(path, number, line))?;
    let Some(actor_type) = names.actor_type.clone() else {
        return Err(JsonlError::File {
            path: file,
            reason: "no ops (every line is blank)".to_owned(),
        });
    };
    let header = TraceHeader {
        scenario: name.to_owned(),
        seed: 0,
        scale: 1.0,
        actor_type,
        actors: names.actors.len() as u32,
        nodes: names.nodes.len() as u32,
        lease_ms: (options.lease.as_millis() as u64).max(1),
        ttl_ms: options.ttl.map_or(0, |ttl| ttl.as_millis() as u64),
        state_bytes_max: names.size_max.max(1) as u32,
    };
    let io = |source| JsonlError::Io {
        path: file.clone(),
        source,
    };
    let mut writer = TraceWriter::new(out, &header).map_err(io)?;
    let mut player = Player::new(&header, options, reference(header.actors));
    let mut stats = JsonlStats {
        lines,
        actors: header.actors,
        nodes: header.nodes,
        ..JsonlStats::default()
    };
    each_line(path, |_, line| {
        let actor = names.actors[&(line.actor_type.clone(), line.actor_id.clone())];
        let node = names.nodes[&line.node];
        let traced = player
            .play(
                line.t_ms,
                line.op,
                actor,
                node,
                line.size.unwrap_or(0) as u32,
            )
            .map_err(|source| JsonlError::Reference {
                path: file.clone(),
                source: Box::new(source),
            })?;
        if matches!(traced.answer, Answer::Rejected(_)) {
            stats.rejected += 1;
        }
        writer.push(traced).map_err(io)
    })?;
    stats.ops = writer.ops();
    let out = writer.finish().map_err(io)?;
    Ok((out, stats))
}

/// The runtime a JSONL file describes, played against the reference store.
struct Player {
    store: Box<dyn Store>,
    keys: Vec<leasehold_core::ActorKey>,
    nodes: Vec<NodeId>,
    pool: StatePool,
    lease: Duration,
    ttl: Option<Duration>,
    sessions: HashMap<(u32, u32), Session>,
}

impl Player {
    fn new(header: &TraceHeader, options: &JsonlOptions, store: Box<dyn Store>) -> Player {
        Player {
            store,
            keys: actor_keys(header),
            nodes: node_ids(header),
            pool: StatePool::new(header.seed, header.state_bytes_max),
            lease: options.lease,
            ttl: options.ttl,
            sessions: HashMap::new(),
        }
    }

    fn play(
        &mut self,
        at_ms: u64,
        op: LineOp,
        actor: u32,
        node: u32,
        size: u32,
    ) -> Result<TraceOp, StoreError> {
        let now = Timestamp::from_millis(at_ms);
        let key = &self.keys[actor as usize];
        let holder = &self.nodes[node as usize];
        let session = self.sessions.entry((node, actor)).or_default();
        let (epoch, version) = (session.epoch, session.version);
        let (op, result) = match op {
            LineOp::Acquire => (
                Op::Acquire { actor, node },
                self.store
                    .try_acquire(key, holder, self.lease, now)
                    .map(|acquire| answer_of_acquire(&acquire, &self.nodes)),
            ),
            LineOp::Renew => (
                Op::Renew { actor, node, epoch },
                self.store
                    .renew(key, holder, epoch, now)
                    .map(|lease| Answer::Renewed {
                        expires_at_ms: lease.expires_at.as_millis(),
                    }),
            ),
            LineOp::Release => (
                Op::Release { actor, node, epoch },
                self.store
                    .release(key, holder, epoch)
                    .map(|_| Answer::Released),
            ),
            LineOp::Load => (
                Op::Load { actor },
                self.store
                    .load(key, now)
                    .map(|loaded| answer_of_load(loaded.as_ref())),
            ),
            LineOp::Save => {
                let mut write =
                    SnapshotWrite::new(key.clone(), self.pool.state(actor, version + 1, size));
                if let Some(ttl) = self.ttl {
                    write = write.with_ttl(ttl);
                }
                (
                    Op::Save {
                        actor,
                        expected_version: version,
                        epoch,
                        state_bytes: size,
                    },
                    self.store
                        .save(write, version, epoch, now)
                        .map(|snapshot| Answer::Saved {
                            version: snapshot.version,
                        }),
                )
            }
            LineOp::Delete => (
                Op::Delete {
                    actor,
                    expected_version: version,
                    epoch,
                },
                self.store
                    .delete(key, version, epoch, now)
                    .map(|()| Answer::Deleted),
            ),
        };
        let answer = match result {
            Ok(answer) => answer,
            Err(err) => Answer::Rejected(rejection(&err).ok_or(err)?),
        };
        let session = self.sessions.entry((node, actor)).or_default();
        match answer {
            Answer::Acquired { epoch } => session.epoch = epoch,
            Answer::Released => session.epoch = 0,
            Answer::Loaded { version, .. } | Answer::Saved { version } => session.version = version,
            Answer::Missing | Answer::Deleted => session.version = 0,
            _ => {}
        }
        Ok(TraceOp { at_ms, op, answer })
    }
}

/// Writes `trace` as JSONL, one line per per-actor op (whole-store ops —
/// purge, sync, reopen, the measure marker — have no line): what a user's
/// trace looks like, and a way to replay a scenario's shape from a file.
/// Loads, saves and deletes carry no node in a trace; their line names the
/// node that last acquired the actor.
pub fn export<W: Write>(trace: &Trace, mut out: W) -> std::io::Result<W> {
    let keys = actor_keys(&trace.header);
    let nodes = node_ids(&trace.header);
    let mut holders: HashMap<u32, u32> = HashMap::new();
    for traced in &trace.ops {
        let (op, actor, node, size) = match traced.op {
            Op::Acquire { actor, node } => {
                if matches!(traced.answer, Answer::Acquired { .. }) {
                    holders.insert(actor, node);
                }
                (LineOp::Acquire, actor, node, None)
            }
            Op::Renew { actor, node, .. } => (LineOp::Renew, actor, node, None),
            Op::Release { actor, node, .. } => (LineOp::Release, actor, node, None),
            Op::Load { actor } => (LineOp::Load, actor, holder(&holders, actor), None),
            Op::Save {
                actor, state_bytes, ..
            } => (
                LineOp::Save,
                actor,
                holder(&holders, actor),
                Some(u64::from(state_bytes)),
            ),
            Op::Delete { actor, .. } => (LineOp::Delete, actor, holder(&holders, actor), None),
            Op::PurgeExpired | Op::Sync | Op::Reopen | Op::Measure => continue,
        };
        let key = &keys[actor as usize];
        let line = Line {
            t_ms: traced.at_ms,
            node: nodes[node as usize].to_string(),
            op,
            actor_type: key.actor_type.clone(),
            actor_id: key.actor_id.clone(),
            size,
        };
        serde_json::to_writer(&mut out, &line)?;
        out.write_all(b"\n")?;
    }
    out.flush()?;
    Ok(out)
}

fn holder(holders: &HashMap<u32, u32>, actor: u32) -> u32 {
    holders.get(&actor).copied().unwrap_or(0)
}
