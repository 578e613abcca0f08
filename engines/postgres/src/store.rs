//! `PostgresStore`: the `Store` on PostgreSQL. Every operation is one
//! statement or one transaction on a pooled connection (`ops` has the SQL and
//! the locking argument); the rules are `leasehold_core::rules`, as on every
//! engine.

use std::collections::BTreeMap;
use std::future::Future;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use crate::config::PostgresConfig;
use leasehold_core::blocking::BlockingRuntime;
use leasehold_core::instrumented::Instrumented;
use leasehold_core::metrics::{OpKind, StoreMetrics};
use leasehold_core::{
    Acquire, ActorKey, CommitOp, Durability, EngineStats, Health, KvError, Lease, LeaseFilter,
    NodeId, Snapshot, SnapshotInfo, SnapshotWrite, Store, StoreError, StoreResult, Timestamp,
};

use leasehold_core::kvstore::{lease_key, snapshot_key};
use leasehold_core::store::distinct_keys;

use crate::connect::{Conn, Pool};
use crate::ops;
use crate::schema::{self, SCHEMA_VERSION};
use crate::tx::{wrapped, Failure, Wrap};

mod inspect;

/// A probe slower than this makes `health()` report `Degraded`.
const SLOW_PROBE: Duration = Duration::from_secs(1);

/// The server's write counters (server-wide): WAL bytes and syncs
/// (`pg_stat_wal`, PostgreSQL 14 and later) and data pages written by the
/// checkpointer, the background writer and backends (`pg_stat_bgwriter`).
#[derive(Clone, Copy, Debug, Default)]
struct ServerWrites {
    wal_bytes: u64,
    wal_syncs: u64,
    page_bytes: u64,
}

/// Leases and snapshots in PostgreSQL tables.
pub struct PostgresStore {
    pool: Pool,
    schema: String,
    durability: Durability,
    max_retries: u32,
    metrics: Instrumented,
    /// Transactions run again after a serialization failure, a deadlock or a
    /// lost insert race.
    retries: AtomicU64,
    /// Key + record bytes of every row written, counted as `KvStore` counts
    /// a batch (engine key + encoded record): the denominator of write
    /// amplification, the same as on every engine.
    user_bytes: AtomicU64,
    /// The server's write counters when the store opened, so `metrics`
    /// shows this run's (the server's other clients included: they are
    /// server-wide).
    wal_at_open: Option<ServerWrites>,
    /// `synchronous_commit = off`: how late the server's WAL writer may
    /// flush an acknowledged commit (3 × `wal_writer_delay`).
    flush_bound: Option<Duration>,
    server_version: String,
}

impl PostgresStore {
    /// Connects, creates the schema when it is absent, and refuses a schema
    /// of a newer layout or one the store did not create.
    pub fn open(config: &PostgresConfig, durability: Durability) -> StoreResult<PostgresStore> {
        Self::open_with(config, durability, true)
    }

    /// As `open`, but a schema without the store's tables is an error, not
    /// created: the operator commands inspect what is there.
    pub fn open_existing(config: &PostgresConfig) -> StoreResult<PostgresStore> {
        Self::open_with(config, Durability::Sync, false)
    }

    fn open_with(
        config: &PostgresConfig,
        durability: Durability,
        create: bool,
    ) -> StoreResult<PostgresStore> {
        let threads = (config.pool_size as usize).clamp(1, 4);
        let runtime = Arc::new(BlockingRuntime::start("leasehold-postgres", threads)?);
        let mut store = PostgresStore {
            pool: Pool::new(runtime, config, durability)?,
            schema: config.schema.clone(),
            durability,
            max_retries: config.max_retries,
            metrics: Instrumented::default(),
            retries: AtomicU64::new(0),
            user_bytes: AtomicU64::new(0),
            wal_at_open: None,
            flush_bound: None,
            server_version: String::new(),
        };
        store.prepare_schema(create)?;
        store.wal_at_open = store.server_writes().ok();
        let (version, delay) = store.run(Wrap::Alone, |conn| async move {
            let version = conn.client.query_one("SHOW server_version", &[]).await?;
            let delay = conn
                .client
                .query_one(
                    "SELECT setting::bigint FROM pg_settings WHERE name = 'wal_writer_delay'",
                    &[],
                )
                .await?;
            Ok((
                version.try_get::<_, String>(0)?,
                delay.try_get::<_, i64>(0)?,
            ))
        })?;
        store.server_version = version;
        if durability != Durability::Sync {
            store.flush_bound = Some(Duration::from_millis(3 * delay.max(0) as u64));
        }
        Ok(store)
    }

    fn prepare_schema(&self, create: bool) -> StoreResult<()> {
        let schema_name = self.schema.clone();
        let found = self.run(Wrap::Transaction, move |conn| {
            let schema_name = schema_name.clone();
            async move {
                conn.client
                    .execute(schema::LOCK, &[&schema::lock_key()])
                    .await?;
                let tables: Vec<String> = conn
                    .client
                    .query(schema::EXISTING, &[&schema_name])
                    .await?
                    .iter()
                    .map(|row| row.try_get(0))
                    .collect::<Result<_, _>>()?;
                if tables.is_empty() && !create {
                    return Ok(Err(tables));
                }
                if tables.is_empty() {
                    conn.client
                        .batch_execute(&schema::create(&schema_name))
                        .await?;
                    return Ok(Ok(SCHEMA_VERSION));
                }
                if !tables.iter().any(|table| table == "meta") {
                    return Ok(Err(tables));
                }
                let sql = format!("SET LOCAL search_path = \"{schema_name}\"");
                conn.client.batch_execute(&sql).await?;
                let row = conn.client.query_opt(schema::READ_VERSION, &[]).await?;
                let version = row.map(|row| row.try_get::<_, i64>(0)).transpose()?;
                Ok(version.ok_or(tables))
            }
        })?;
        match found {
            Ok(SCHEMA_VERSION) => Ok(()),
            Ok(newer) if newer > SCHEMA_VERSION => {
                Err(StoreError::Engine(KvError::Unsupported(format!(
                    "schema \"{}\" is at layout version {newer}, newer than this build's \
                     {SCHEMA_VERSION}: open it with the Leasehold that wrote it",
                    self.schema
                ))))
            }
            Ok(older) => Err(StoreError::CorruptRecord {
                key: format!("schema \"{}\"", self.schema),
                reason: format!(
                    "layout version {older} was never written by any Leasehold (this build \
                     writes {SCHEMA_VERSION})"
                ),
            }),
            Err(tables) if tables.is_empty() => Err(StoreError::InvalidArgument(format!(
                "schema \"{}\" holds no Leasehold tables",
                self.schema
            ))),
            Err(tables) => Err(StoreError::InvalidArgument(format!(
                "schema \"{}\" holds tables named {} that Leasehold did not create (no \
                 schema_version row); choose another `schema`",
                self.schema,
                tables.join(", ")
            ))),
        }
    }

    /// Runs `body` on a lent connection, wrapped as `wrap`, again after each
    /// lost race up to `max_retries` times.
    fn run<T, F, Fut>(&self, wrap: Wrap, body: F) -> StoreResult<T>
    where
        T: Send + 'static,
        F: Fn(Arc<Conn>) -> Fut,
        Fut: Future<Output = Result<T, Failure>> + Send + 'static,
    {
        let mut attempt = 0;
        loop {
            let lent = self.pool.borrow()?;
            let conn = lent.conn();
            let work = wrapped(Arc::clone(&conn), wrap, body(conn));
            match self.pool.runtime().run(work)? {
                Ok(value) => return Ok(value),
                Err(Failure::Store(err)) => return Err(err),
                Err(Failure::Retry(reason)) => {
                    if attempt >= self.max_retries {
                        return Err(StoreError::Engine(KvError::io(
                            "a PostgreSQL transaction",
                            std::io::Error::other(format!(
                                "lost {} races in a row (last: {reason}); the actor is under \
                                 heavy contention",
                                attempt + 1
                            )),
                        )));
                    }
                    attempt += 1;
                    self.retries.fetch_add(1, Ordering::Relaxed);
                    drop(lent);
                    // A deadlock's victims back off by different amounts.
                    std::thread::sleep(Duration::from_micros(
                        200 * u64::from(attempt) * (1 + u64::from(std::process::id() % 4)),
                    ));
                }
            }
        }
    }

    /// A lease row written (or, for an already-owned grant, not: counted
    /// alike, a small overestimate on re-grants).
    fn count_lease(&self, lease: &Lease) {
        let bytes = lease_key(&lease.key).len() + lease.encode().len();
        self.user_bytes.fetch_add(bytes as u64, Ordering::Relaxed);
    }

    /// Transactions run again after a lost race, since open.
    pub fn retries(&self) -> u64 {
        self.retries.load(Ordering::Relaxed)
    }

    pub fn schema(&self) -> &str {
        &self.schema
    }

    /// What each durability promises here, and the server.
    pub fn describe(&self) -> String {
        let promise = match self.flush_bound {
            None => "synchronous_commit = on: acknowledged after the WAL flush".to_owned(),
            Some(bound) => format!(
                "synchronous_commit = off: acknowledged before the WAL flush, flushed by the \
                 server within {bound:?} (3 × wal_writer_delay); lease grants still wait for it"
            ),
        };
        format!(
            "PostgreSQL {}, schema \"{}\", durability {} ({promise})",
            self.server_version,
            self.schema,
            self.durability.name()
        )
    }

    fn apply(&self, ops: Vec<CommitOp>, now: Timestamp) -> StoreResult<Vec<Option<Snapshot>>> {
        let keys: u64 = distinct_keys(&ops)?
            .iter()
            .map(|key| snapshot_key(key).len() as u64)
            .sum();
        let results = self.run(Wrap::Transaction, |conn| ops::apply(conn, ops.clone(), now))?;
        let records: u64 = results
            .iter()
            .flatten()
            .map(|snapshot| snapshot.encoded_len() as u64)
            .sum();
        self.user_bytes.fetch_add(keys + records, Ordering::Relaxed);
        self.metrics.add_saved(&results);
        Ok(results)
    }
}

impl Store for PostgresStore {
    fn name(&self) -> &str {
        "postgres"
    }

    fn try_acquire_with_metadata(
        &self,
        key: &ActorKey,
        node: &NodeId,
        duration: Duration,
        metadata: BTreeMap<String, String>,
        now: Timestamp,
    ) -> StoreResult<Acquire> {
        let result = self.metrics.timed_acquire(|| {
            self.run(Wrap::DurableTransaction, |conn| {
                ops::acquire(
                    conn,
                    key.clone(),
                    node.clone(),
                    duration,
                    metadata.clone(),
                    now,
                )
            })
        });
        if let Ok(Acquire::Acquired(lease)) = &result {
            self.count_lease(lease);
        }
        result
    }

    fn renew(
        &self,
        key: &ActorKey,
        node: &NodeId,
        epoch: u64,
        now: Timestamp,
    ) -> StoreResult<Lease> {
        self.metrics.timed(OpKind::Renew, || {
            let lease = self.run(Wrap::Transaction, |conn| {
                ops::renew_or_release(conn, key.clone(), node.clone(), epoch, Some(now))
            })?;
            self.count_lease(&lease);
            Ok(lease)
        })
    }

    fn release(&self, key: &ActorKey, node: &NodeId, epoch: u64) -> StoreResult<Lease> {
        self.metrics.timed(OpKind::Release, || {
            let lease = self.run(Wrap::Transaction, |conn| {
                ops::renew_or_release(conn, key.clone(), node.clone(), epoch, None)
            })?;
            self.count_lease(&lease);
            Ok(lease)
        })
    }

    fn get_lease(&self, key: &ActorKey) -> StoreResult<Option<Lease>> {
        self.metrics.timed(OpKind::GetLease, || {
            self.run(Wrap::Alone, |conn| ops::get_lease(conn, key.clone()))
        })
    }

    fn list_leases(&self, filter: &LeaseFilter) -> StoreResult<Vec<Lease>> {
        self.metrics.timed(OpKind::ListLeases, || {
            self.run(Wrap::Alone, |conn| ops::list_leases(conn, filter.clone()))
        })
    }

    fn load(&self, key: &ActorKey, now: Timestamp) -> StoreResult<Option<Snapshot>> {
        self.metrics.timed(OpKind::Load, || {
            let stored = self.run(Wrap::Alone, |conn| ops::load(conn, key.clone()))?;
            Ok(self
                .metrics
                .loaded(leasehold_core::rules::load(stored, now)?))
        })
    }

    fn save(
        &self,
        snapshot: SnapshotWrite,
        expected_version: u64,
        fence_epoch: u64,
        now: Timestamp,
    ) -> StoreResult<Snapshot> {
        self.metrics
            .save_alone(snapshot, expected_version, fence_epoch, |op| {
                self.apply(vec![op], now)
            })
    }

    fn delete(
        &self,
        key: &ActorKey,
        expected_version: u64,
        fence_epoch: u64,
        now: Timestamp,
    ) -> StoreResult<()> {
        self.metrics
            .delete_alone(key, expected_version, fence_epoch, |op| {
                self.apply(vec![op], now)
            })
    }

    fn list(&self, actor_type: &str, now: Timestamp) -> StoreResult<Vec<SnapshotInfo>> {
        self.metrics.timed(OpKind::List, || {
            self.run(Wrap::Alone, |conn| {
                ops::list(conn, actor_type.to_owned(), now)
            })
        })
    }

    fn purge_expired(&self, now: Timestamp) -> StoreResult<u64> {
        self.metrics.timed(OpKind::PurgeExpired, || {
            self.run(Wrap::Alone, |conn| ops::purge_expired(conn, now))
        })
    }

    fn commit(&self, ops: Vec<CommitOp>, now: Timestamp) -> StoreResult<Vec<Option<Snapshot>>> {
        self.metrics.timed(OpKind::Commit, || self.apply(ops, now))
    }

    /// The server's WAL bytes, WAL syncs and data pages written since open
    /// (server-wide: exact only when this store is the server's one writer;
    /// pages still dirty in its buffers are not written yet) and the size of
    /// the tables.
    fn metrics(&self) -> StoreMetrics {
        let mut stats = EngineStats {
            user_bytes_written: self.user_bytes.load(Ordering::Relaxed),
            ..EngineStats::default()
        };
        match (self.wal_at_open, self.server_writes()) {
            (Some(start), Ok(now)) => {
                stats.wal_bytes_written = now.wal_bytes.saturating_sub(start.wal_bytes);
                stats.flush_bytes_written = now.page_bytes.saturating_sub(start.page_bytes);
                stats.device_bytes_written = stats.wal_bytes_written + stats.flush_bytes_written;
                stats.fsyncs = now.wal_syncs.saturating_sub(start.wal_syncs);
            }
            _ => stats.io_uncounted = true,
        }
        stats.disk_bytes = self.disk_bytes().unwrap_or(0);
        self.metrics.snapshot(Some(stats))
    }

    fn health(&self) -> Health {
        if let Some(closed) = self.metrics.closed_health() {
            return closed;
        }
        let started = Instant::now();
        match self.run(Wrap::Alone, |conn| async move {
            conn.client.query_one("SELECT 1", &[]).await?;
            Ok(())
        }) {
            Ok(()) if started.elapsed() > SLOW_PROBE => Health::Degraded(format!(
                "a SELECT 1 took {:?} (over {SLOW_PROBE:?})",
                started.elapsed()
            )),
            Ok(()) => Health::Healthy,
            Err(err) => Health::Failed(format!("PostgreSQL does not answer: {err}")),
        }
    }

    fn sync(&self) -> StoreResult<()> {
        self.metrics.check_open()?;
        self.run(Wrap::Alone, ops::flush_wal)
    }

    fn close(&self) -> StoreResult<()> {
        self.metrics.close();
        self.pool.close();
        Ok(())
    }
}
