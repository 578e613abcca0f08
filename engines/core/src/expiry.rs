//! When an engine may drop an expired snapshot while compacting.
//!
//! A Store is told the time by its caller (`now` on every operation), and a
//! replay runs on its trace's time, not the wall clock's; so a compaction
//! filter judging TTLs by the wall clock could drop a snapshot the Store
//! still serves, or keep forever one it expired long ago. The clock here is
//! the Store's own: the latest `now` any operation has brought, less a grace
//! for callers whose clocks run behind. A snapshot expired by that horizon is
//! invisible to every operation whose `now` is within the grace of the latest
//! — as `purge_expired` at that time would delete it — so dropping it changes
//! no answer such an operation gets. Nothing is dropped before the first
//! operation after an open (the clock is not persisted: it starts unset).

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use crate::codec::{get_varint, put_varint};
use crate::kvstore::{is_expired_snapshot_record, SNAPSHOT_TAG};
use crate::snapshot::{expired, Snapshot};
use crate::time::Timestamp;

/// The latest time a Store has been told, shared with its engine's
/// compaction filter.
#[derive(Clone, Debug)]
pub struct ExpiryClock {
    /// Unix ms of the latest `now` seen; 0 until the first.
    latest_ms: Arc<AtomicU64>,
    grace: Duration,
}

impl ExpiryClock {
    pub fn new(grace: Duration) -> Self {
        ExpiryClock {
            latest_ms: Arc::new(AtomicU64::new(0)),
            grace,
        }
    }

    /// Records that an operation ran at `now`.
    pub fn observe(&self, now: Timestamp) {
        self.latest_ms.fetch_max(now.as_millis(), Ordering::Relaxed);
    }

    /// The time by which a snapshot must have expired to be dropped: `None`
    /// before any operation, or while the latest time is within the grace of
    /// the epoch.
    pub fn horizon(&self) -> Option<Timestamp> {
        let latest = self.latest_ms.load(Ordering::Relaxed);
        let grace = u64::try_from(self.grace.as_millis()).unwrap_or(u64::MAX);
        (latest > 0)
            .then(|| latest.checked_sub(grace))
            .flatten()
            .map(Timestamp::from_millis)
    }

    /// Whether a compaction may drop this engine record: a snapshot expired
    /// by the horizon.
    pub fn may_drop(&self, engine_key: &[u8], value: &[u8]) -> bool {
        self.horizon()
            .is_some_and(|horizon| is_expired_snapshot_record(engine_key, value, horizon))
    }

    /// What an engine keeps of a record it moves out of its tables (an LSM's
    /// blob file), so that `may_drop_by_hint` judges it without reading it
    /// back: a snapshot's expiry as a varint of its Unix ms + 1 (0: none);
    /// nothing for other records, or a snapshot that does not decode.
    pub fn hint(engine_key: &[u8], value: &[u8]) -> Vec<u8> {
        if engine_key.first() != Some(&SNAPSHOT_TAG) {
            return Vec::new();
        }
        let Ok(expires_at) = Snapshot::expires_at_of_prefix(value) else {
            return Vec::new();
        };
        let mut hint = Vec::new();
        put_varint(
            &mut hint,
            expires_at.map_or(0, |at| at.as_millis().saturating_add(1)),
        );
        hint
    }

    /// `may_drop` for a record known by its `hint`.
    pub fn may_drop_by_hint(&self, engine_key: &[u8], hint: &[u8]) -> bool {
        let Some(horizon) = self.horizon() else {
            return false;
        };
        match get_varint(hint) {
            Ok((0, _)) | Err(_) => false,
            Ok((at, _)) => {
                engine_key.first() == Some(&SNAPSHOT_TAG)
                    && expired(Some(Timestamp::from_millis(at - 1)), horizon)
            }
        }
    }
}

/// The clock as a compaction filter: an engine that takes one (the LSM)
/// drops, at its bottom level, the snapshots the Store's own clock says
/// expired; a snapshot the engine keeps apart is judged by its expiry,
/// kept in its hint.
impl leasehold_storage::kv::CompactionFilter for ExpiryClock {
    fn drops(&self, user_key: &[u8], value: &[u8]) -> bool {
        self.may_drop(user_key, value)
    }

    fn hint(&self, user_key: &[u8], value: &[u8]) -> Vec<u8> {
        ExpiryClock::hint(user_key, value)
    }

    fn drops_by_hint(&self, user_key: &[u8], hint: &[u8]) -> bool {
        self.may_drop_by_hint(user_key, hint)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::kvstore::snapshot_key;
    use crate::snapshot::state_hash;
    use crate::{ActorKey, Snapshot};

    fn record(ttl_ms: u64, saved_at: u64) -> (Vec<u8>, Vec<u8>) {
        let key = ActorKey::new("T", "a");
        let state = bytes::Bytes::from_static(&[1, 2, 3]);
        let snapshot = Snapshot {
            key: key.clone(),
            snapshot_id: "s".into(),
            version: 1,
            epoch: 1,
            state_hash: state_hash(&state),
            state,
            created_at: Timestamp::from_millis(saved_at),
            updated_at: Timestamp::from_millis(saved_at),
            tags: Default::default(),
            ttl: Some(Duration::from_millis(ttl_ms)),
        };
        (snapshot_key(&key), snapshot.encode())
    }

    #[test]
    fn a_snapshot_is_droppable_once_expired_by_the_latest_time_less_the_grace() {
        let clock = ExpiryClock::new(Duration::from_secs(60));
        let (key, value) = record(10_000, 1_000_000);
        assert!(
            !clock.may_drop(&key, &value),
            "no operation yet: nothing goes"
        );
        clock.observe(Timestamp::from_millis(1_000_000 + 10_000 + 30_000));
        assert!(
            !clock.may_drop(&key, &value),
            "expired, but within the grace"
        );
        clock.observe(Timestamp::from_millis(1_000_000 + 10_000 + 60_001));
        assert!(clock.may_drop(&key, &value));
        clock.observe(Timestamp::from_millis(5));
        assert!(
            clock.may_drop(&key, &value),
            "an earlier time does not move it back"
        );
        assert!(
            !clock.may_drop(b"Lsome-lease", &value),
            "only snapshot records"
        );
    }

    /// A record moved out of the tables is judged by its hint exactly as by
    /// its value.
    #[test]
    fn the_hint_decides_as_the_value_would() {
        let clock = ExpiryClock::new(Duration::from_secs(60));
        let (key, value) = record(10_000, 1_000_000);
        let hint = ExpiryClock::hint(&key, &value);
        assert!(!hint.is_empty() && hint.len() <= 10);
        for now in [0, 1_000_000 + 70_000, 1_000_000 + 70_001, 9_000_000] {
            if now > 0 {
                clock.observe(Timestamp::from_millis(now));
            }
            assert_eq!(
                clock.may_drop_by_hint(&key, &hint),
                clock.may_drop(&key, &value),
                "at {now}"
            );
        }
        assert!(clock.may_drop_by_hint(&key, &hint));
        assert!(ExpiryClock::hint(b"Lsome-lease", &value).is_empty());
        assert!(!clock.may_drop_by_hint(b"Lsome-lease", &hint));
        assert!(!clock.may_drop_by_hint(&key, &[]));
    }
}
