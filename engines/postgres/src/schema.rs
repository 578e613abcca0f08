//! The store's tables, created and versioned by the store itself
//! (FORMAT.md has the argument for each column and index).
//!
//! Opening takes a transaction-scoped advisory lock, so two processes opening
//! one schema at once create it once. A schema at a newer version than this
//! build's is refused (never written with an older layout), and tables of
//! these names the store did not create are refused too (no `meta` row).

/// The layout this build reads and writes.
pub const SCHEMA_VERSION: i64 = 1;

/// The advisory-lock key under which schemas are created ("LEASEHOL").
const CREATE_LOCK: i64 = 0x4C45_4153_4548_4F4C;

/// Takes the creation lock (released at commit).
pub(crate) const LOCK: &str = "SELECT pg_advisory_xact_lock($1)";

pub(crate) fn lock_key() -> i64 {
    CREATE_LOCK
}

/// Which of the store's tables exist in `$1` (the schema).
pub(crate) const EXISTING: &str = "SELECT table_name::text FROM information_schema.tables \
     WHERE table_schema = $1 AND table_name IN ('meta', 'leases', 'snapshots')";

pub(crate) const READ_VERSION: &str = "SELECT value FROM meta WHERE name = 'schema_version'";

/// Everything, in one batch, for an empty schema. Identifiers are sorted
/// bytewise (`COLLATE "C"`), as `ActorKey`s are.
pub(crate) fn create(schema: &str) -> String {
    format!(
        r#"CREATE SCHEMA IF NOT EXISTS "{schema}";
SET LOCAL search_path = "{schema}";
CREATE TABLE meta (
    name text PRIMARY KEY,
    value bigint NOT NULL
);
CREATE TABLE leases (
    actor_type text COLLATE "C" NOT NULL,
    actor_id text COLLATE "C" NOT NULL,
    node_id text COLLATE "C",
    epoch bigint NOT NULL CHECK (epoch >= 0),
    version bigint NOT NULL CHECK (version >= 0),
    acquired_at timestamptz NOT NULL,
    expires_at timestamptz NOT NULL,
    duration_ms bigint NOT NULL CHECK (duration_ms >= 0),
    renewals bigint NOT NULL CHECK (renewals >= 0),
    metadata jsonb NOT NULL,
    PRIMARY KEY (actor_type, actor_id)
);
CREATE INDEX leases_by_node ON leases (node_id, actor_type, actor_id)
    WHERE node_id IS NOT NULL;
CREATE TABLE snapshots (
    actor_type text COLLATE "C" NOT NULL,
    actor_id text COLLATE "C" NOT NULL,
    snapshot_id text NOT NULL,
    version bigint NOT NULL CHECK (version >= 1),
    epoch bigint NOT NULL CHECK (epoch >= 0),
    state bytea NOT NULL,
    state_hash bytea NOT NULL CHECK (octet_length(state_hash) = 32),
    created_at timestamptz NOT NULL,
    updated_at timestamptz NOT NULL,
    ttl_ms bigint CHECK (ttl_ms >= 0),
    expires_at timestamptz,
    tags jsonb NOT NULL,
    PRIMARY KEY (actor_type, actor_id),
    CHECK ((ttl_ms IS NULL) = (expires_at IS NULL))
);
CREATE INDEX snapshots_by_expiry ON snapshots (expires_at) WHERE expires_at IS NOT NULL;
INSERT INTO meta (name, value) VALUES ('schema_version', {SCHEMA_VERSION});"#
    )
}
