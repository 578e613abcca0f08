//! What the operator commands and the tests ask of the store beyond the
//! `Store` trait: the server's counters and sizes, a full check of every
//! row, a probe, and writes around the protocol for damage drills.

use super::*;

impl PostgresStore {
    /// The server's write counters now. WAL bytes are the WAL insert
    /// position (exact at once); syncs and pages come from the statistics
    /// each backend publishes when it goes idle, so every idle connection of
    /// the pool is asked to publish first (`pg_stat_force_next_flush`,
    /// PostgreSQL 15).
    pub(super) fn server_writes(&self) -> StoreResult<ServerWrites> {
        for conn in self.pool.idle_connections() {
            // Best effort: a connection lost here is dropped at its next use.
            let _ = self.pool.runtime().run(async move {
                conn.client
                    .batch_execute("SELECT pg_stat_force_next_flush()")
                    .await
            });
        }
        self.run(Wrap::Alone, |conn| async move {
            conn.client
                .batch_execute("SELECT pg_stat_force_next_flush()")
                .await?;
            let row = conn
                .client
                .query_one(
                    "SELECT pg_wal_lsn_diff(pg_current_wal_insert_lsn(), '0/0')::bigint, \
                     (SELECT wal_sync FROM pg_stat_wal)::bigint, \
                     ((SELECT buffers_checkpoint + buffers_clean + buffers_backend \
                       FROM pg_stat_bgwriter) * current_setting('block_size')::bigint)::bigint",
                    &[],
                )
                .await?;
            let counter = |index: usize| {
                row.try_get::<_, i64>(index)
                    .map(|value| u64::try_from(value).unwrap_or(0))
            };
            Ok(ServerWrites {
                wal_bytes: counter(0)?,
                wal_syncs: counter(1)?,
                page_bytes: counter(2)?,
            })
        })
    }

    /// Bytes of the store's two tables with their indexes and TOAST.
    pub fn disk_bytes(&self) -> StoreResult<u64> {
        self.run(Wrap::Alone, |conn| async move {
            let row = conn
                .client
                .query_one(
                    "SELECT (pg_total_relation_size('leases') \
                     + pg_total_relation_size('snapshots'))::bigint",
                    &[],
                )
                .await?;
            Ok(u64::try_from(row.try_get::<_, i64>(0)?).unwrap_or(0))
        })
    }

    /// Reads every row back: each must decode and each state must match its
    /// SHA-256. Problems are reported, not repaired.
    pub fn verify_rows(&self) -> StoreResult<leasehold_core::VerifyReport> {
        self.metrics.check_open()?;
        let (leases, snapshots) = self.run(Wrap::Transaction, |conn| async move {
            // One consistent view of both tables.
            conn.client
                .batch_execute("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ, READ ONLY")
                .await?;
            let leases = conn
                .client
                .query(
                    &format!(
                        "SELECT actor_type, actor_id, {} FROM leases",
                        crate::rows::LEASE_COLUMNS
                    ),
                    &[],
                )
                .await?;
            let snapshots = conn
                .client
                .query(
                    &format!(
                        "SELECT {}, actor_type, actor_id FROM snapshots",
                        crate::rows::SNAPSHOT_COLUMNS
                    ),
                    &[],
                )
                .await?;
            Ok((leases, snapshots))
        })?;
        let mut report = leasehold_core::VerifyReport::default();
        for row in &leases {
            let names = (row.try_get::<_, String>(0), row.try_get::<_, String>(1));
            let (Ok(actor_type), Ok(actor_id)) = names else {
                report
                    .problems
                    .push("a lease row without a readable key".into());
                continue;
            };
            let key = ActorKey::new(actor_type, actor_id);
            if let Err(err) = crate::rows::lease_from(row, 2, key) {
                report.problems.push(err.to_string());
            }
        }
        for row in &snapshots {
            let names = (row.try_get::<_, String>(9), row.try_get::<_, String>(10));
            let (Ok(actor_type), Ok(actor_id)) = names else {
                report
                    .problems
                    .push("a snapshot row without a readable key".into());
                continue;
            };
            let key = ActorKey::new(actor_type, actor_id);
            match crate::rows::snapshot_from(row, &key) {
                Ok(snapshot) => {
                    if let Err((expected, actual)) = snapshot.verify_hash() {
                        report.problems.push(format!(
                            "snapshot {key}: state hash {actual} does not match the stored {expected}"
                        ));
                    }
                }
                Err(err) => report.problems.push(err.to_string()),
            }
        }
        report.checked = format!(
            "schema \"{}\" at layout version {SCHEMA_VERSION}: {} leases, {} snapshots",
            self.schema,
            leases.len(),
            snapshots.len()
        );
        Ok(report)
    }

    /// Replaces a stored state's bytes and leaves its hash: bit rot the
    /// server's own checksums did not see (tests and damage drills).
    pub fn tamper_state(&self, key: &ActorKey) -> StoreResult<u64> {
        let key = key.clone();
        self.run(Wrap::Alone, move |conn| {
            let key = key.clone();
            async move {
                Ok(conn
                    .client
                    .execute(
                        "UPDATE snapshots SET state = overlay(state placing \
                         set_byte(substring(state from 1 for 1), 0, get_byte(state, 0) # 1) \
                         from 1 for 1) WHERE actor_type = $1 AND actor_id = $2",
                        &[&key.actor_type, &key.actor_id],
                    )
                    .await?)
            }
        })
    }

    /// Runs `sql` in the store's schema, outside the protocol: tests and
    /// drills that damage or rearrange what the store wrote.
    pub fn execute_for_tests(&self, sql: &str) -> StoreResult<()> {
        let sql = sql.to_owned();
        self.run(Wrap::Alone, move |conn| {
            let sql = sql.clone();
            async move {
                conn.client.batch_execute(&sql).await?;
                Ok(())
            }
        })
    }

    /// Rows and their logical bytes: `(entries, bytes)`, a row counted as
    /// `KvStore` would store it (engine key + encoded record, to within a few
    /// bytes of varints), so space amplification compares with the engines'.
    pub fn live(&self) -> StoreResult<(u64, u64)> {
        self.metrics.check_open()?;
        self.run(Wrap::Alone, |conn| async move {
            let row = conn
                .client
                .query_one(
                    "SELECT (SELECT count(*) FROM leases) + (SELECT count(*) FROM snapshots), \
                     coalesce((SELECT sum(2 * (octet_length(actor_type) + octet_length(actor_id)) \
                       + coalesce(octet_length(node_id), 0) + octet_length(metadata::text) + 40) \
                       FROM leases), 0)::bigint \
                     + coalesce((SELECT sum(2 * (octet_length(actor_type) + octet_length(actor_id)) \
                       + octet_length(snapshot_id) + octet_length(state) \
                       + octet_length(tags::text) + 60) FROM snapshots), 0)::bigint",
                    &[],
                )
                .await?;
            Ok((
                u64::try_from(row.try_get::<_, i64>(0)?).unwrap_or(0),
                u64::try_from(row.try_get::<_, i64>(1)?).unwrap_or(0),
            ))
        })
    }

    /// Writes a probe row, reads it back and deletes it: the health check
    /// of the operator commands.
    pub fn probe(&self) -> StoreResult<Duration> {
        self.metrics.check_open()?;
        let started = Instant::now();
        let name = format!("probe-{}", std::process::id());
        let value = i64::from(std::process::id());
        let read = self.run(Wrap::Transaction, move |conn| {
            let name = name.clone();
            async move {
                conn.client
                    .execute(
                        "INSERT INTO meta (name, value) VALUES ($1, $2) \
                         ON CONFLICT (name) DO UPDATE SET value = $2",
                        &[&name, &value],
                    )
                    .await?;
                let read = conn
                    .client
                    .query_opt("SELECT value FROM meta WHERE name = $1", &[&name])
                    .await?
                    .map(|row| row.try_get::<_, i64>(0))
                    .transpose()?;
                conn.client
                    .execute("DELETE FROM meta WHERE name = $1", &[&name])
                    .await?;
                Ok(read)
            }
        })?;
        if read != Some(value) {
            return Err(StoreError::CorruptRecord {
                key: "the probe row".into(),
                reason: format!("wrote {value}, read back {read:?}"),
            });
        }
        Ok(started.elapsed())
    }

    /// Drops the store's schema with everything in it, and closes the
    /// store: the end of a benchmark run's data.
    pub fn drop_schema(&self) -> StoreResult<()> {
        self.metrics.check_open()?;
        let sql = format!("DROP SCHEMA IF EXISTS \"{}\" CASCADE", self.schema);
        self.run(Wrap::Alone, move |conn| {
            let sql = sql.clone();
            async move {
                conn.client.batch_execute(&sql).await?;
                Ok(())
            }
        })?;
        self.close()
    }

    /// Whether a connection of the pool runs over TLS (`pg_stat_ssl`).
    pub fn uses_tls(&self) -> StoreResult<bool> {
        self.run(Wrap::Alone, |conn| async move {
            let row = conn
                .client
                .query_one(
                    "SELECT coalesce((SELECT ssl FROM pg_stat_ssl WHERE pid = pg_backend_pid()), false)",
                    &[],
                )
                .await?;
            Ok(row.try_get::<_, bool>(0)?)
        })
    }
}
