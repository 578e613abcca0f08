//! Leases and snapshots to and from rows: counters as `bigint`, times as
//! `timestamptz`, tags and metadata as `jsonb` objects of strings. What does
//! not fit a column (a counter over `i64::MAX`, a time past PostgreSQL's
//! year 294276, a NUL in text) is refused before any statement is sent; a
//! row that does not read back as a record is `CorruptRecord`.

use std::collections::BTreeMap;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use bytes::Bytes;
use leasehold_core::snapshot::STATE_HASH_LEN;
use leasehold_core::{
    ActorKey, Lease, NodeId, Snapshot, SnapshotInfo, StoreError, StoreResult, Timestamp,
};
use tokio_postgres::Row;

/// The latest instant a `timestamptz` holds, in ms since 1970.
pub const TIMESTAMP_MAX_MS: u64 = 9_224_318_015_999_999;

/// Lease columns after the key, in the order every statement names them.
pub(crate) const LEASE_COLUMNS: &str =
    "node_id, epoch, version, acquired_at, expires_at, duration_ms, renewals, metadata";

/// Snapshot columns a save's checks need (no state).
pub(crate) const HEAD_COLUMNS: &str = "snapshot_id, version, epoch, created_at, updated_at, ttl_ms";

/// Every snapshot column after the key.
pub(crate) const SNAPSHOT_COLUMNS: &str =
    "snapshot_id, version, epoch, created_at, updated_at, ttl_ms, state, state_hash, tags";

fn corrupt(key: &ActorKey, what: &str, reason: impl std::fmt::Display) -> StoreError {
    StoreError::CorruptRecord {
        key: format!("{what} {key}"),
        reason: reason.to_string(),
    }
}

/// A counter as a `bigint`.
pub(crate) fn to_bigint(value: u64, key: &ActorKey, what: &str) -> StoreResult<i64> {
    i64::try_from(value).map_err(|_| {
        StoreError::InvalidArgument(format!(
            "{what} {value} of {key} is over PostgreSQL's bigint"
        ))
    })
}

fn from_bigint(value: i64, key: &ActorKey, what: &str) -> StoreResult<u64> {
    u64::try_from(value).map_err(|_| corrupt(key, what, format!("negative {what} {value}")))
}

pub(crate) fn to_time(at: Timestamp, key: &ActorKey, what: &str) -> StoreResult<SystemTime> {
    if at.as_millis() > TIMESTAMP_MAX_MS {
        return Err(StoreError::InvalidArgument(format!(
            "{what} of {key} ({at}) is past PostgreSQL's latest timestamp"
        )));
    }
    Ok(UNIX_EPOCH + Duration::from_millis(at.as_millis()))
}

/// `now` as a `timestamptz` parameter (clamped: a comparison with the
/// latest instant is the same as with any later one).
pub(crate) fn now_param(now: Timestamp) -> SystemTime {
    UNIX_EPOCH + Duration::from_millis(now.as_millis().min(TIMESTAMP_MAX_MS))
}

fn from_time(at: SystemTime, key: &ActorKey, what: &str) -> StoreResult<Timestamp> {
    let since = at
        .duration_since(UNIX_EPOCH)
        .map_err(|_| corrupt(key, what, "a time before 1970"))?;
    Ok(Timestamp(
        u64::try_from(since.as_millis()).unwrap_or(u64::MAX),
    ))
}

/// Text PostgreSQL can hold (no NUL).
pub(crate) fn check_text(text: &str, what: &str) -> StoreResult<()> {
    if text.contains('\0') {
        return Err(StoreError::InvalidArgument(format!(
            "{what} {text:?} holds a NUL character, which PostgreSQL text cannot store"
        )));
    }
    Ok(())
}

pub(crate) fn check_key(key: &ActorKey) -> StoreResult<()> {
    check_text(&key.actor_type, "actor type")?;
    check_text(&key.actor_id, "actor id")
}

pub(crate) fn to_json(
    map: &BTreeMap<String, String>,
    what: &str,
) -> StoreResult<serde_json::Value> {
    for (name, value) in map {
        check_text(name, what)?;
        check_text(value, what)?;
    }
    Ok(serde_json::Value::Object(
        map.iter()
            .map(|(name, value)| (name.clone(), serde_json::Value::String(value.clone())))
            .collect(),
    ))
}

fn from_json(
    value: serde_json::Value,
    key: &ActorKey,
    what: &str,
) -> StoreResult<BTreeMap<String, String>> {
    let serde_json::Value::Object(object) = value else {
        return Err(corrupt(key, what, "not a JSON object"));
    };
    object
        .into_iter()
        .map(|(name, value)| match value {
            serde_json::Value::String(text) => Ok((name, text)),
            other => Err(corrupt(
                key,
                what,
                format!("{name} is {other}, not a string"),
            )),
        })
        .collect()
}

fn column<'a, T: tokio_postgres::types::FromSql<'a>>(
    row: &'a Row,
    index: usize,
    key: &ActorKey,
    what: &str,
) -> StoreResult<T> {
    row.try_get(index)
        .map_err(|err| corrupt(key, what, format!("column {index}: {err}")))
}

/// A lease from `LEASE_COLUMNS` starting at column `at`.
pub(crate) fn lease_from(row: &Row, at: usize, key: ActorKey) -> StoreResult<Lease> {
    let what = "lease";
    let node: Option<String> = column(row, at, &key, what)?;
    Ok(Lease {
        node_id: node.map(NodeId::new),
        epoch: from_bigint(column(row, at + 1, &key, what)?, &key, "epoch")?,
        version: from_bigint(column(row, at + 2, &key, what)?, &key, "version")?,
        acquired_at: from_time(column(row, at + 3, &key, what)?, &key, "acquired_at")?,
        expires_at: from_time(column(row, at + 4, &key, what)?, &key, "expires_at")?,
        duration: Duration::from_millis(from_bigint(
            column(row, at + 5, &key, what)?,
            &key,
            "duration",
        )?),
        renewals: from_bigint(column(row, at + 6, &key, what)?, &key, "renewals")?,
        metadata: from_json(column(row, at + 7, &key, what)?, &key, "metadata")?,
        key,
    })
}

/// The parameters of a lease row, key first (`$1`..`$10`).
pub(crate) struct LeaseParams {
    pub actor_type: String,
    pub actor_id: String,
    pub node_id: Option<String>,
    pub epoch: i64,
    pub version: i64,
    pub acquired_at: SystemTime,
    pub expires_at: SystemTime,
    pub duration_ms: i64,
    pub renewals: i64,
    pub metadata: serde_json::Value,
}

impl LeaseParams {
    pub fn of(lease: &Lease) -> StoreResult<LeaseParams> {
        let key = &lease.key;
        check_key(key)?;
        if let Some(node) = &lease.node_id {
            check_text(node.as_str(), "node id")?;
        }
        let duration_ms = u64::try_from(lease.duration.as_millis()).unwrap_or(u64::MAX);
        Ok(LeaseParams {
            actor_type: key.actor_type.clone(),
            actor_id: key.actor_id.clone(),
            node_id: lease.node_id.as_ref().map(|node| node.as_str().to_owned()),
            epoch: to_bigint(lease.epoch, key, "epoch")?,
            version: to_bigint(lease.version, key, "lease version")?,
            acquired_at: to_time(lease.acquired_at, key, "acquired_at")?,
            expires_at: to_time(lease.expires_at, key, "the lease's expiry")?,
            duration_ms: to_bigint(duration_ms, key, "lease duration (ms)")?,
            renewals: to_bigint(lease.renewals, key, "renewals")?,
            metadata: to_json(&lease.metadata, "lease metadata")?,
        })
    }

    pub fn params(&self) -> [&(dyn tokio_postgres::types::ToSql + Sync); 10] {
        [
            &self.actor_type,
            &self.actor_id,
            &self.node_id,
            &self.epoch,
            &self.version,
            &self.acquired_at,
            &self.expires_at,
            &self.duration_ms,
            &self.renewals,
            &self.metadata,
        ]
    }
}

/// The stored snapshot as a save's checks see it: from `HEAD_COLUMNS` at
/// column 0, its state left empty (the rules read only version, epoch and
/// times; the state is never read to be overwritten).
pub(crate) fn head_from(row: &Row, key: &ActorKey) -> StoreResult<Snapshot> {
    snapshot_parts(row, key, Bytes::new(), [0; STATE_HASH_LEN], BTreeMap::new())
}

fn snapshot_parts(
    row: &Row,
    key: &ActorKey,
    state: Bytes,
    state_hash: [u8; STATE_HASH_LEN],
    tags: BTreeMap<String, String>,
) -> StoreResult<Snapshot> {
    let what = "snapshot";
    let ttl: Option<i64> = column(row, 5, key, what)?;
    Ok(Snapshot {
        key: key.clone(),
        snapshot_id: column(row, 0, key, what)?,
        version: from_bigint(column(row, 1, key, what)?, key, "version")?,
        epoch: from_bigint(column(row, 2, key, what)?, key, "epoch")?,
        created_at: from_time(column(row, 3, key, what)?, key, "created_at")?,
        updated_at: from_time(column(row, 4, key, what)?, key, "updated_at")?,
        ttl: ttl
            .map(|ms| from_bigint(ms, key, "ttl").map(Duration::from_millis))
            .transpose()?,
        state,
        state_hash,
        tags,
    })
}

/// A whole snapshot from `SNAPSHOT_COLUMNS` at column 0 (hash not checked
/// here: `rules::load` does).
pub(crate) fn snapshot_from(row: &Row, key: &ActorKey) -> StoreResult<Snapshot> {
    let state: Vec<u8> = column(row, 6, key, "snapshot")?;
    let hash: Vec<u8> = column(row, 7, key, "snapshot")?;
    let state_hash: [u8; STATE_HASH_LEN] = hash
        .as_slice()
        .try_into()
        .map_err(|_| corrupt(key, "snapshot", format!("a {}-byte state hash", hash.len())))?;
    let tags = from_json(column(row, 8, key, "snapshot")?, key, "tags")?;
    snapshot_parts(row, key, Bytes::from(state), state_hash, tags)
}

/// A state as a `bytea` parameter, sent from the caller's buffer (no copy).
#[derive(Debug)]
pub(crate) struct StateBytes(pub Bytes);

impl tokio_postgres::types::ToSql for StateBytes {
    fn to_sql(
        &self,
        ty: &tokio_postgres::types::Type,
        out: &mut bytes::BytesMut,
    ) -> Result<tokio_postgres::types::IsNull, Box<dyn std::error::Error + Sync + Send>> {
        self.0.as_ref().to_sql(ty, out)
    }

    fn accepts(ty: &tokio_postgres::types::Type) -> bool {
        <&[u8] as tokio_postgres::types::ToSql>::accepts(ty)
    }

    tokio_postgres::types::to_sql_checked!();
}

/// The parameters of a snapshot row, key first (`$1`..`$12`).
pub(crate) struct SnapshotParams {
    pub actor_type: String,
    pub actor_id: String,
    pub snapshot_id: String,
    pub version: i64,
    pub epoch: i64,
    pub state: StateBytes,
    pub state_hash: Vec<u8>,
    pub created_at: SystemTime,
    pub updated_at: SystemTime,
    pub ttl_ms: Option<i64>,
    pub expires_at: Option<SystemTime>,
    pub tags: serde_json::Value,
}

impl SnapshotParams {
    pub fn of(snapshot: &Snapshot) -> StoreResult<SnapshotParams> {
        let key = &snapshot.key;
        check_key(key)?;
        check_text(&snapshot.snapshot_id, "snapshot id")?;
        let ttl_ms = snapshot
            .ttl
            .map(|ttl| {
                to_bigint(
                    u64::try_from(ttl.as_millis()).unwrap_or(u64::MAX),
                    key,
                    "ttl (ms)",
                )
            })
            .transpose()?;
        Ok(SnapshotParams {
            actor_type: key.actor_type.clone(),
            actor_id: key.actor_id.clone(),
            snapshot_id: snapshot.snapshot_id.clone(),
            version: to_bigint(snapshot.version, key, "snapshot version")?,
            epoch: to_bigint(snapshot.epoch, key, "epoch")?,
            state: StateBytes(snapshot.state.clone()),
            state_hash: snapshot.state_hash.to_vec(),
            created_at: to_time(snapshot.created_at, key, "created_at")?,
            updated_at: to_time(snapshot.updated_at, key, "updated_at")?,
            ttl_ms,
            expires_at: snapshot
                .expires_at()
                .map(|at| to_time(at, key, "the snapshot's expiry"))
                .transpose()?,
            tags: to_json(&snapshot.tags, "tags")?,
        })
    }

    pub fn params(&self) -> [&(dyn tokio_postgres::types::ToSql + Sync); 12] {
        [
            &self.actor_type,
            &self.actor_id,
            &self.snapshot_id,
            &self.version,
            &self.epoch,
            &self.state,
            &self.state_hash,
            &self.created_at,
            &self.updated_at,
            &self.ttl_ms,
            &self.expires_at,
            &self.tags,
        ]
    }
}

/// A column that is not of the type the layout says.
pub(crate) fn column_error(err: tokio_postgres::Error) -> StoreError {
    StoreError::CorruptRecord {
        key: "a row".into(),
        reason: err.to_string(),
    }
}

/// `list`'s answer from `actor_id, version, epoch, octet_length(state),
/// updated_at, expires_at`.
pub(crate) fn info_from(row: &Row, key: ActorKey) -> StoreResult<SnapshotInfo> {
    let what = "snapshot";
    let expires_at: Option<SystemTime> = column(row, 5, &key, what)?;
    Ok(SnapshotInfo {
        version: from_bigint(column(row, 1, &key, what)?, &key, "version")?,
        epoch: from_bigint(column(row, 2, &key, what)?, &key, "epoch")?,
        state_len: from_bigint(column(row, 3, &key, what)?, &key, "state length")?,
        updated_at: from_time(column(row, 4, &key, what)?, &key, "updated_at")?,
        expires_at: expires_at
            .map(|at| from_time(at, &key, "expires_at"))
            .transpose()?,
        key,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key() -> ActorKey {
        ActorKey::new("T", "1")
    }

    #[test]
    fn what_a_column_cannot_hold_is_refused_and_what_it_holds_round_trips() {
        assert!(matches!(
            to_time(Timestamp(TIMESTAMP_MAX_MS + 1), &key(), "t"),
            Err(StoreError::InvalidArgument(_))
        ));
        let at = Timestamp(1_700_000_000_123);
        assert_eq!(
            from_time(to_time(at, &key(), "t").unwrap(), &key(), "t").unwrap(),
            at
        );
        assert!(matches!(
            to_bigint(u64::MAX, &key(), "epoch"),
            Err(StoreError::InvalidArgument(_))
        ));
        assert!(matches!(
            from_bigint(-1, &key(), "epoch"),
            Err(StoreError::CorruptRecord { .. })
        ));
        assert!(check_text("a\0b", "tag").is_err());
        let tags = BTreeMap::from([("k".to_owned(), "v".to_owned())]);
        assert_eq!(
            from_json(to_json(&tags, "tags").unwrap(), &key(), "tags").unwrap(),
            tags
        );
        let not_strings = serde_json::json!({"k": 1});
        assert!(matches!(
            from_json(not_strings, &key(), "tags"),
            Err(StoreError::CorruptRecord { .. })
        ));
    }
}
