//! The trace's vocabulary, shared by generation, replay and JSONL
//! conversion: the keys and node ids a trace's indices stand for, and a
//! store's answers in the trace's form.

use leasehold_core::{Acquire, ActorKey, NodeId, Snapshot, StoreError};

use crate::trace::{Answer, Rejection, TraceHeader};

/// The keys replay and generation use for a trace's actors and nodes.
pub fn actor_keys(header: &TraceHeader) -> Vec<ActorKey> {
    (0..header.actors)
        .map(|actor| actor_key(header, actor))
        .collect()
}

/// The key of one of a trace's actors (what `actor_keys` lists), built when
/// needed: a replay of a million actors does not hold a million keys.
pub fn actor_key(header: &TraceHeader, actor: u32) -> ActorKey {
    ActorKey::new(header.actor_type.clone(), format!("{actor:08}"))
}

pub fn node_ids(header: &TraceHeader) -> Vec<NodeId> {
    (0..header.nodes)
        .map(|node| NodeId::new(format!("node-{node}")))
        .collect()
}

/// Converts a store's answer to the trace's form. Errors other than the
/// lease and version rules are failures of the store, not answers.
pub fn answer_of_acquire(acquire: &Acquire, nodes: &[NodeId]) -> Answer {
    match acquire {
        Acquire::Acquired(lease) => Answer::Acquired { epoch: lease.epoch },
        Acquire::Held { holder, epoch, .. } => Answer::Held {
            holder: nodes
                .iter()
                .position(|node| node == holder)
                .unwrap_or(u32::MAX as usize) as u32,
            epoch: *epoch,
        },
    }
}

/// A load's answer: version, epoch and the first 8 bytes of the state's hash.
pub fn answer_of_load(loaded: Option<&Snapshot>) -> Answer {
    match loaded {
        Some(snapshot) => {
            let mut prefix = [0u8; 8];
            prefix.copy_from_slice(&snapshot.state_hash[..8]);
            Answer::Loaded {
                version: snapshot.version,
                epoch: snapshot.epoch,
                hash: u64::from_le_bytes(prefix),
            }
        }
        None => Answer::Missing,
    }
}

/// Rule rejections are answers; anything else is an error.
pub fn rejection(err: &StoreError) -> Option<Rejection> {
    match err {
        StoreError::VersionConflict { .. } => Some(Rejection::VersionConflict),
        StoreError::StaleEpoch { .. } => Some(Rejection::StaleEpoch),
        StoreError::NotOwner { .. } => Some(Rejection::NotOwner),
        StoreError::LeaseExpired { .. } => Some(Rejection::LeaseExpired),
        _ => None,
    }
}
