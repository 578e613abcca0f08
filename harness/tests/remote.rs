//! Stores that keep their data on a server — object storage (S3 on radosgw,
//! Azure Blob on Azurite) and PostgreSQL — in the harness's runs and under
//! the operator commands, each named by the config section an operator
//! would write.

#![allow(clippy::unwrap_used, clippy::expect_used)] // test code: a failure panics with its message

use std::process::{Command, Output};

fn leasehold_with(envs: &[(&str, &str)], args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_leasehold"))
        .args(args)
        .envs(envs.iter().copied())
        .output()
        .unwrap()
}

fn stdout(output: &Output) -> String {
    String::from_utf8_lossy(&output.stdout).into_owned()
}

fn stderr(output: &Output) -> String {
    String::from_utf8_lossy(&output.stderr).into_owned()
}

/// The `[persistence]` section an operator writes for `config`'s server and
/// schema, with `password` as given (a `${VAR}` or the password itself).
fn postgres_section(config: &leasehold_config::PostgresConfig, password: &str) -> String {
    format!(
        "[persistence]\ntype = \"postgres\"\nhost = \"{}\"\nport = {}\nuser = \"{}\"\n\
         password = \"{password}\"\ndbname = \"{}\"\nschema = \"{}\"\n",
        config.host.as_deref().unwrap(),
        config.port.unwrap(),
        config.user.as_deref().unwrap(),
        config.dbname.as_deref().unwrap(),
        config.schema,
    )
}

/// A unique prefix per test run on a shared server.
fn object_prefix() -> String {
    format!(
        "test/operator-{}-{}",
        std::process::id(),
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .as_millis()
    )
}

/// Saves one actor into `store`, writes `section` (a `[persistence]` TOML) as
/// a config and runs every operator command on it (with `envs` set); `checked`
/// is what `verify` must say it checked, `unit` what `metrics` counts.
fn operator_commands_read(
    store: &dyn leasehold_core::Store,
    section: String,
    envs: &[(&str, &str)],
    checked: &str,
    unit: &str,
) {
    use leasehold_core::{ActorKey, NodeId, SnapshotWrite, Timestamp};
    let key = ActorKey::new("player", "p-1");
    let now = Timestamp(1_700_000_000_000);
    let lease = store
        .try_acquire(
            &key,
            &NodeId::new("node-7"),
            std::time::Duration::from_secs(60),
            now,
        )
        .unwrap();
    let epoch = lease.lease().unwrap().epoch;
    store
        .save(SnapshotWrite::new(key, &b"{\"hp\":42}"[..]), 0, epoch, now)
        .unwrap();

    let root = tempfile::tempdir().unwrap();
    let config = root.path().join("store.toml");
    std::fs::write(&config, section).unwrap();
    let config = config.to_str().unwrap();
    let at = "1700000010000";

    let listed = leasehold_with(
        envs,
        &["actor", "list-leases", "--config", config, "--at", at],
    );
    assert!(listed.status.success(), "{}", stderr(&listed));
    assert!(
        stdout(&listed).contains("p-1") && stdout(&listed).contains("node-7"),
        "{}",
        stdout(&listed)
    );
    let inspected = leasehold_with(
        envs,
        &[
            "actor",
            "inspect-state",
            "--config",
            config,
            "--actor-type",
            "player",
            "--actor-id",
            "p-1",
            "--at",
            at,
        ],
    );
    assert!(inspected.status.success(), "{}", stderr(&inspected));
    assert!(
        stdout(&inspected).contains("(verified)"),
        "{}",
        stdout(&inspected)
    );
    let verified = leasehold_with(envs, &["verify", "--config", config]);
    assert!(
        verified.status.success() && stdout(&verified).contains(checked),
        "{}",
        stdout(&verified)
    );
    let health = leasehold_with(envs, &["health-check", "--config", config]);
    assert_eq!(health.status.code(), Some(0), "{}", stdout(&health));
    assert!(stdout(&health).contains("not local"), "{}", stdout(&health));
    let at_rest = leasehold_with(envs, &["metrics", "--config", config]);
    assert!(
        at_rest.status.success() && stdout(&at_rest).contains(unit),
        "{}",
        stdout(&at_rest)
    );
}

#[test]
fn the_operator_commands_read_an_s3_store_named_by_its_config() {
    let prefix = object_prefix();
    let s3 = leasehold_objectstore::test_server::s3_config(&prefix).expect("the S3 test server");
    let store = leasehold_objectstore::ObjectStoreBackend::open(
        leasehold_objectstore::backend::s3(&s3).unwrap(),
    )
    .unwrap();
    let section = format!(
        "[persistence]\ntype = \"s3\"\nendpoint = \"{}\"\nbucket = \"{}\"\n\
         access_key_id = \"{}\"\nsecret_access_key = \"{}\"\nprefix = \"{prefix}\"\n\
         enable_ssl = false\n",
        s3.endpoint.as_deref().unwrap(),
        s3.bucket,
        s3.access_key_id.as_deref().unwrap(),
        s3.secret_access_key.as_ref().unwrap().expose(),
    );
    operator_commands_read(
        &store,
        section,
        &[],
        "1 lease objects, 1 snapshots",
        "objects",
    );
    // A directory cannot name an S3 store.
    let refused = leasehold_with(&[], &["verify", "--engine", "s3", "--dir", "/tmp"]);
    assert!(!refused.status.success());
    assert!(
        stderr(&refused).contains("--config"),
        "{}",
        stderr(&refused)
    );
}

/// The same on Azure Blob storage (Azurite): every object-store section,
/// not only S3's, names a store the commands open.
#[test]
fn the_operator_commands_read_an_azure_store_named_by_its_config() {
    let prefix = object_prefix();
    let azure =
        leasehold_objectstore::test_server::azure_config(&prefix).expect("the Azure test server");
    let store = leasehold_objectstore::ObjectStoreBackend::open(
        leasehold_objectstore::backend::azure(&azure).unwrap(),
    )
    .unwrap();
    let section = format!(
        "[persistence]\ntype = \"azure\"\naccount_name = \"{}\"\naccount_key = \"{}\"\n\
         container_name = \"{}\"\nendpoint = \"{}\"\nprefix = \"{prefix}\"\n",
        azure.account_name,
        azure.account_key.as_ref().unwrap().expose(),
        azure.container_name,
        azure.endpoint.as_deref().unwrap(),
    );
    operator_commands_read(
        &store,
        section,
        &[],
        "1 lease objects, 1 snapshots",
        "objects",
    );
}

/// PostgreSQL: the section as an operator writes it, the password from the
/// environment; verify checks every row and a tampered state is found.
#[test]
fn the_operator_commands_read_a_postgres_store_named_by_its_config() {
    let settings = leasehold_postgres::test_server::settings().expect("the PostgreSQL test server");
    let schema = format!("operator_{}", std::process::id());
    let config = leasehold_postgres::test_server::config_from(&settings, &schema).unwrap();
    let store =
        leasehold_postgres::PostgresStore::open(&config, leasehold_core::Durability::Sync).unwrap();
    let section = postgres_section(&config, "${LEASEHOLD_OPERATOR_TEST_PG_PASSWORD}");
    let password = config.password.as_ref().unwrap().expose();
    let envs = [("LEASEHOLD_OPERATOR_TEST_PG_PASSWORD", password)];
    operator_commands_read(
        &store,
        section.clone(),
        &envs,
        "1 leases, 1 snapshots",
        "rows",
    );

    // A state changed behind the store's back: verify names it, exit 1.
    store
        .tamper_state(&leasehold_core::ActorKey::new("player", "p-1"))
        .unwrap();
    let root = tempfile::tempdir().unwrap();
    let path = root.path().join("pg.toml");
    std::fs::write(&path, &section).unwrap();
    let verified = leasehold_with(&envs, &["verify", "--config", path.to_str().unwrap()]);
    assert_eq!(verified.status.code(), Some(1), "{}", stdout(&verified));
    assert!(
        stdout(&verified).contains("player/p-1") && stdout(&verified).contains("state hash"),
        "{}",
        stdout(&verified)
    );
    assert!(!stdout(&verified).contains(password) && !stderr(&verified).contains(password));

    // A schema that holds nothing is reported, never created.
    let absent = section.replace(&schema, &format!("{schema}_absent"));
    std::fs::write(&path, absent).unwrap();
    let verified = leasehold_with(&envs, &["verify", "--config", path.to_str().unwrap()]);
    assert_eq!(verified.status.code(), Some(1), "{}", stdout(&verified));
    assert!(
        stdout(&verified).contains("holds no Leasehold tables"),
        "{}",
        stdout(&verified)
    );
}

#[test]
fn engine_s3_runs_a_scenario_through_the_s3_server_with_every_answer_checked() {
    let settings = leasehold_objectstore::test_server::settings().expect("the S3 test server");
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("results");
    let output = Command::new(env!("CARGO_BIN_EXE_leasehold"))
        .args([
            "run",
            "--scenario",
            "recovery",
            "--engine",
            "s3",
            "--durability",
            "sync",
            "--scale",
            "0.01",
        ])
        .arg("--out")
        .arg(&out)
        .arg("--data-dir")
        .arg(dir.path().join("data"))
        .envs(&settings)
        .output()
        .unwrap();
    assert!(
        output.status.success(),
        "stderr: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    let json: serde_json::Value = serde_json::from_str(
        &std::fs::read_to_string(out.join("recovery").join("s3-sync.json")).unwrap(),
    )
    .unwrap();
    let result = &json;
    assert_eq!(result["mismatches"], 0);
    assert_eq!(result["duplicate_owners"], 0);
    assert!(!result["reopens"].as_array().unwrap().is_empty());
    // The data is on the server: local-disk figures are not given.
    assert!(result["space_amp"].is_null(), "{result}");
    // Buffered durability does not exist for a PUT.
    let refused = Command::new(env!("CARGO_BIN_EXE_leasehold"))
        .args(["run", "--scenario", "recovery", "--engine", "s3"])
        .envs(&settings)
        .output()
        .unwrap();
    assert!(!refused.status.success());
    assert!(String::from_utf8_lossy(&refused.stderr).contains("cannot run at buffered"));
}

/// Engine postgres in a run: every answer checked against the reference,
/// reopened with every actor's state back, at sync and buffered; its space
/// amplification is its tables' size on the server over the live rows.
#[test]
fn engine_postgres_runs_a_scenario_with_every_answer_checked() {
    let settings = leasehold_postgres::test_server::settings().expect("the PostgreSQL test server");
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("results");
    for durability in ["sync", "buffered"] {
        let output = Command::new(env!("CARGO_BIN_EXE_leasehold"))
            .args(["run", "--scenario", "recovery", "--engine", "postgres"])
            .args(["--durability", durability, "--scale", "0.01"])
            .arg("--out")
            .arg(&out)
            .arg("--data-dir")
            .arg(dir.path().join("data"))
            .envs(&settings)
            .output()
            .unwrap();
        assert!(output.status.success(), "stderr: {}", stderr(&output));
        let path = out
            .join("recovery")
            .join(format!("postgres-{durability}.json"));
        let result: serde_json::Value =
            serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap();
        assert_eq!(result["mismatches"], 0, "{result}");
        assert_eq!(result["duplicate_owners"], 0, "{result}");
        assert!(!result["reopens"].as_array().unwrap().is_empty());
        assert!(result["space_amp"].as_f64().unwrap() > 0.5, "{result}");
        assert!(
            result["write_amp_engine"].as_f64().unwrap() > 0.0,
            "{result}"
        );
    }
}

/// `bench --sync --workload transfer`: two-actor commits through the Store
/// on PostgreSQL and on an embedded engine, beside the embedded engine's
/// two-key batches; a store on a server has no kv level.
#[test]
fn bench_transfers_commit_two_actors_at_sync_on_postgres() {
    let settings = leasehold_postgres::test_server::settings().expect("the PostgreSQL test server");
    let dir = tempfile::tempdir().unwrap();
    let output = Command::new(env!("CARGO_BIN_EXE_leasehold"))
        .args([
            "bench",
            "--sync",
            "--workload",
            "transfer",
            "--engine",
            "lsm",
        ])
        .args(["--engine", "postgres", "--records", "100", "--ops", "200"])
        .arg("--data-dir")
        .arg(dir.path().join("data"))
        .arg("--out")
        .arg(dir.path().join("bench"))
        .envs(&settings)
        .output()
        .unwrap();
    assert!(output.status.success(), "{}", stderr(&output));
    let json: serde_json::Value = serde_json::from_str(
        &std::fs::read_to_string(dir.path().join("bench/bench.json")).unwrap(),
    )
    .unwrap();
    let rows: Vec<(String, String)> = json["results"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|result| result["workload"] == "transfer")
        .map(|result| {
            assert!(result["ops_per_sec"].as_f64().unwrap() > 0.0, "{result}");
            assert_eq!(result["durability"], "sync", "{result}");
            (
                result["engine"].as_str().unwrap().to_owned(),
                result["level"].as_str().unwrap().to_owned(),
            )
        })
        .collect();
    for expected in [("lsm", "kv"), ("lsm", "store"), ("postgres", "store")] {
        assert!(
            rows.contains(&(expected.0.to_owned(), expected.1.to_owned())),
            "{rows:?}"
        );
    }
    assert!(!rows.contains(&("postgres".to_owned(), "kv".to_owned())));
}

/// The actor-host example's run on PostgreSQL, named by a
/// `[persistence.postgres]` section: the same promise as on the LSM.
#[test]
fn hosts_on_postgres_keep_every_snapshotted_message_across_a_crash() {
    let settings = leasehold_postgres::test_server::settings().expect("the PostgreSQL test server");
    let schema = format!("actor_host_{}", std::process::id());
    let config = leasehold_postgres::test_server::config_from(&settings, &schema).unwrap();
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("orbit.toml");
    std::fs::write(
        &path,
        format!(
            "{}[actor_management]\nlease_duration_seconds = 1\nsnapshot_interval_seconds = 1\n\
             idle_timeout_seconds = 2\n",
            postgres_section(&config, config.password.as_ref().unwrap().expose())
        ),
    )
    .unwrap();
    let report =
        leasehold::actor_host::run_from_config(&path, std::time::Duration::from_secs(5)).unwrap();
    report.check().unwrap();
    assert!(report.takeovers > 0 && report.processed > 0, "{report:?}");
}
