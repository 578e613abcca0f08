//! The operations as SQL, each an async function of one connection and
//! owned arguments: read the rows (locking them), let `leasehold_core::rules`
//! decide, write what it returned. The locks are what make the decision
//! hold until the commit (FORMAT.md, "Why the rules hold"):
//! - a lease row is read `FOR UPDATE` by acquire, renew and release, and
//!   `FOR SHARE` by saves and deletes, so a takeover waits for a save that
//!   already checked the old epoch to commit, and a save that starts after
//!   the takeover's commit reads the new epoch;
//! - a snapshot row is read `FOR UPDATE` by saves and deletes, so two writers
//!   of one actor check its version one after the other;
//! - a row that does not exist cannot be locked: an actor without a lease
//!   row is locked by a transaction-scoped advisory lock on its key before
//!   the lease is read again, and two inserts of one snapshot row meet as a
//!   unique violation (retried, then a version conflict).
//!   Actors of a multi-actor commit are locked in key order: no deadlock
//!   between commits.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use leasehold_core::rules;
use leasehold_core::{
    Acquire, ActorKey, CommitOp, Lease, LeaseFilter, NodeId, Snapshot, SnapshotInfo, StoreError,
    Timestamp,
};
use tokio_postgres::types::ToSql;

use crate::connect::Conn;
use crate::rows::{
    check_key, check_text, column_error, head_from, info_from, lease_from, now_param,
    snapshot_from, LeaseParams, SnapshotParams, HEAD_COLUMNS, LEASE_COLUMNS, SNAPSHOT_COLUMNS,
};
use crate::tx::Failure;

type Param<'a> = &'a (dyn ToSql + Sync);

#[derive(Clone, Copy)]
enum Lock {
    None,
    Share,
    Update,
}

impl Lock {
    fn clause(self) -> &'static str {
        match self {
            Lock::None => "",
            Lock::Share => " FOR SHARE",
            Lock::Update => " FOR UPDATE",
        }
    }
}

async fn read_lease(conn: &Conn, key: &ActorKey, lock: Lock) -> Result<Option<Lease>, Failure> {
    let sql = format!(
        "SELECT {LEASE_COLUMNS} FROM leases WHERE actor_type = $1 AND actor_id = $2{}",
        lock.clause()
    );
    let statement = conn.prepared(&sql).await?;
    let row = conn
        .client
        .query_opt(&statement, &[&key.actor_type, &key.actor_id])
        .await?;
    Ok(row
        .map(|row| lease_from(&row, 0, key.clone()))
        .transpose()?)
}

/// Serializes the transactions that meet `key` without a lease row (see the
/// module docs), until commit.
async fn lock_absent_actor(conn: &Conn, key: &ActorKey) -> Result<(), Failure> {
    let statement = conn
        .prepared("SELECT pg_advisory_xact_lock(hashtextextended($1 || '/' || $2, 0))")
        .await?;
    conn.client
        .execute(&statement, &[&key.actor_type, &key.actor_id])
        .await?;
    Ok(())
}

/// The lease, locked as `lock`; an absent one under the actor's advisory lock
/// (read again once it is held).
async fn locked_lease(conn: &Conn, key: &ActorKey, lock: Lock) -> Result<Option<Lease>, Failure> {
    if let Some(lease) = read_lease(conn, key, lock).await? {
        return Ok(Some(lease));
    }
    lock_absent_actor(conn, key).await?;
    read_lease(conn, key, lock).await
}

async fn write_lease(conn: &Conn, lease: &Lease, existed: bool) -> Result<(), Failure> {
    let params = LeaseParams::of(lease)?;
    let sql = if existed {
        "UPDATE leases SET node_id = $3, epoch = $4, version = $5, acquired_at = $6, \
         expires_at = $7, duration_ms = $8, renewals = $9, metadata = $10 \
         WHERE actor_type = $1 AND actor_id = $2"
    } else {
        "INSERT INTO leases (actor_type, actor_id, node_id, epoch, version, acquired_at, \
         expires_at, duration_ms, renewals, metadata) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10)"
    };
    let statement = conn.prepared(sql).await?;
    let written = conn.client.execute(&statement, &params.params()).await?;
    if written != 1 {
        // The row was locked (or known absent) by this transaction.
        return Err(Failure::Store(StoreError::CorruptRecord {
            key: format!("lease {}", lease.key),
            reason: format!("a locked lease row write changed {written} rows"),
        }));
    }
    Ok(())
}

pub(crate) async fn acquire(
    conn: Arc<Conn>,
    key: ActorKey,
    node: NodeId,
    duration: Duration,
    metadata: BTreeMap<String, String>,
    now: Timestamp,
) -> Result<Acquire, Failure> {
    check_key(&key)?;
    check_text(node.as_str(), "node id")?;
    let existing = locked_lease(&conn, &key, Lock::Update).await?;
    let decision = rules::acquire(existing.as_ref(), &key, &node, duration, metadata, now)?;
    let lease = match decision.into_write() {
        std::ops::ControlFlow::Continue(lease) => lease,
        std::ops::ControlFlow::Break(answer) => return Ok(answer),
    };
    write_lease(&conn, &lease, existing.is_some()).await?;
    Ok(Acquire::Acquired(lease))
}

/// Renew (`now` given) or release (`None`).
pub(crate) async fn renew_or_release(
    conn: Arc<Conn>,
    key: ActorKey,
    node: NodeId,
    epoch: u64,
    now: Option<Timestamp>,
) -> Result<Lease, Failure> {
    check_key(&key)?;
    let existing = read_lease(&conn, &key, Lock::Update).await?;
    let lease = match now {
        Some(now) => rules::renew(existing.as_ref(), &key, &node, epoch, now)?,
        None => rules::release(existing.as_ref(), &key, &node, epoch)?,
    };
    write_lease(&conn, &lease, true).await?;
    Ok(lease)
}

pub(crate) async fn get_lease(conn: Arc<Conn>, key: ActorKey) -> Result<Option<Lease>, Failure> {
    check_key(&key)?;
    read_lease(&conn, &key, Lock::None).await
}

/// The filter as a `WHERE` clause over indexed columns: the primary key for
/// an actor type, `leases_by_node` for a node.
pub(crate) async fn list_leases(
    conn: Arc<Conn>,
    filter: LeaseFilter,
) -> Result<Vec<Lease>, Failure> {
    let now = now_param(filter.now);
    let mut clauses = Vec::new();
    let mut params: Vec<Param<'_>> = Vec::new();
    if let Some(actor_type) = &filter.actor_type {
        check_text(actor_type, "actor type")?;
        params.push(actor_type);
        clauses.push(format!("actor_type = ${}", params.len()));
    }
    let node = filter.node_id.as_ref().map(|node| node.as_str().to_owned());
    if let Some(node) = &node {
        check_text(node, "node id")?;
        params.push(node);
        clauses.push(format!("node_id = ${}", params.len()));
    }
    if let Some(expired) = filter.expired {
        params.push(&now);
        let held = format!("(node_id IS NOT NULL AND expires_at > ${})", params.len());
        clauses.push(if expired { format!("NOT {held}") } else { held });
    }
    let sql = format!(
        "SELECT actor_type, actor_id, {LEASE_COLUMNS} FROM leases{}{} ORDER BY actor_type, actor_id",
        if clauses.is_empty() { "" } else { " WHERE " },
        clauses.join(" AND ")
    );
    let statement = conn.prepared(&sql).await?;
    let rows = conn.client.query(&statement, &params).await?;
    rows.iter()
        .map(|row| {
            let key = ActorKey::new(
                row.try_get::<_, String>(0).map_err(column_error)?,
                row.try_get::<_, String>(1).map_err(column_error)?,
            );
            Ok(lease_from(row, 2, key)?)
        })
        .collect()
}

pub(crate) async fn load(conn: Arc<Conn>, key: ActorKey) -> Result<Option<Snapshot>, Failure> {
    check_key(&key)?;
    let statement = conn
        .prepared(&format!(
            "SELECT {SNAPSHOT_COLUMNS} FROM snapshots WHERE actor_type = $1 AND actor_id = $2"
        ))
        .await?;
    let row = conn
        .client
        .query_opt(&statement, &[&key.actor_type, &key.actor_id])
        .await?;
    Ok(row.map(|row| snapshot_from(&row, &key)).transpose()?)
}

/// The live snapshots of a type, by the primary key's prefix.
pub(crate) async fn list(
    conn: Arc<Conn>,
    actor_type: String,
    now: Timestamp,
) -> Result<Vec<SnapshotInfo>, Failure> {
    check_text(&actor_type, "actor type")?;
    let statement = conn
        .prepared(
            "SELECT actor_id, version, epoch, octet_length(state)::bigint, updated_at, \
             expires_at FROM snapshots WHERE actor_type = $1 \
             AND (expires_at IS NULL OR expires_at > $2) ORDER BY actor_id",
        )
        .await?;
    let rows = conn
        .client
        .query(&statement, &[&actor_type, &now_param(now)])
        .await?;
    rows.iter()
        .map(|row| {
            let id: String = row.try_get(0).map_err(column_error)?;
            Ok(info_from(row, ActorKey::new(actor_type.clone(), id))?)
        })
        .collect()
}

/// Deletes every snapshot whose TTL ran out at `now`, by the expiry index.
pub(crate) async fn purge_expired(conn: Arc<Conn>, now: Timestamp) -> Result<u64, Failure> {
    let statement = conn
        .prepared("DELETE FROM snapshots WHERE expires_at <= $1")
        .await?;
    Ok(conn.client.execute(&statement, &[&now_param(now)]).await?)
}

async fn read_head(conn: &Conn, key: &ActorKey) -> Result<Option<Snapshot>, Failure> {
    let statement = conn
        .prepared(&format!(
            "SELECT {HEAD_COLUMNS} FROM snapshots WHERE actor_type = $1 AND actor_id = $2 FOR UPDATE"
        ))
        .await?;
    let row = conn
        .client
        .query_opt(&statement, &[&key.actor_type, &key.actor_id])
        .await?;
    Ok(row.map(|row| head_from(&row, key)).transpose()?)
}

async fn write_snapshot(conn: &Conn, snapshot: &Snapshot, existed: bool) -> Result<(), Failure> {
    let params = SnapshotParams::of(snapshot)?;
    let sql = if existed {
        "UPDATE snapshots SET snapshot_id = $3, version = $4, epoch = $5, state = $6, \
         state_hash = $7, created_at = $8, updated_at = $9, ttl_ms = $10, expires_at = $11, \
         tags = $12 WHERE actor_type = $1 AND actor_id = $2"
    } else {
        "INSERT INTO snapshots (actor_type, actor_id, snapshot_id, version, epoch, state, \
         state_hash, created_at, updated_at, ttl_ms, expires_at, tags) \
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12)"
    };
    let statement = conn.prepared(sql).await?;
    conn.client.execute(&statement, &params.params()).await?;
    Ok(())
}

async fn delete_snapshot(conn: &Conn, key: &ActorKey) -> Result<(), Failure> {
    let statement = conn
        .prepared("DELETE FROM snapshots WHERE actor_type = $1 AND actor_id = $2")
        .await?;
    conn.client
        .execute(&statement, &[&key.actor_type, &key.actor_id])
        .await?;
    Ok(())
}

/// Saves and deletes of one or more actors, in one transaction: `save`,
/// `delete` and `commit` all come here. Answers in op order.
pub(crate) async fn apply(
    conn: Arc<Conn>,
    ops: Vec<CommitOp>,
    now: Timestamp,
) -> Result<Vec<Option<Snapshot>>, Failure> {
    let mut order: Vec<usize> = (0..ops.len()).collect();
    order.sort_by(|&a, &b| ops[a].key().cmp(ops[b].key()));
    let mut results = vec![None; ops.len()];
    for index in order {
        let op = &ops[index];
        let key = op.key();
        check_key(key)?;
        // Both reads in one round trip: the connection sends them back to
        // back, and the server runs them in that order.
        let (lease, stored) =
            futures::try_join!(read_lease(&conn, key, Lock::Share), read_head(&conn, key))?;
        let lease = match lease {
            Some(lease) => Some(lease),
            None => {
                lock_absent_actor(&conn, key).await?;
                read_lease(&conn, key, Lock::Share).await?
            }
        };
        match rules::decide(op, lease.as_ref(), stored.as_ref(), now)? {
            Some(saved) => {
                write_snapshot(&conn, &saved, stored.is_some()).await?;
                results[index] = Some(saved);
            }
            // A delete of nothing writes nothing.
            None if stored.is_some() => delete_snapshot(&conn, key).await?,
            None => {}
        }
    }
    Ok(results)
}

/// Makes every commit acknowledged so far durable: a transaction that takes
/// a transaction id commits with `synchronous_commit = on`, and its flush
/// covers every earlier commit record in the WAL.
pub(crate) async fn flush_wal(conn: Arc<Conn>) -> Result<(), Failure> {
    conn.client
        .batch_execute("BEGIN; SET LOCAL synchronous_commit = on; SELECT txid_current(); COMMIT")
        .await?;
    Ok(())
}
