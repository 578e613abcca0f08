//! The server the tests (and anyone trying the backend) run against:
//! `scripts/postgres-server` creates and starts a throwaway cluster on
//! 127.0.0.1 when the `LEASEHOLD_PG_*` variables do not already name one,
//! and prints them.

use std::collections::HashMap;
use std::process::Command;
use std::sync::OnceLock;

use crate::config::PostgresConfig;
use leasehold_core::secret::Secret;

/// The variables that name the server.
pub const VARIABLES: [&str; 5] = [
    "LEASEHOLD_PG_HOST",
    "LEASEHOLD_PG_PORT",
    "LEASEHOLD_PG_USER",
    "LEASEHOLD_PG_PASSWORD",
    "LEASEHOLD_PG_DBNAME",
];

/// The server's settings, from the environment or from starting it. Runs the
/// script at most once per process.
pub fn settings() -> Result<HashMap<String, String>, String> {
    static SETTINGS: OnceLock<Result<HashMap<String, String>, String>> = OnceLock::new();
    SETTINGS.get_or_init(|| start_or_find(&[])).clone()
}

/// Runs `scripts/postgres-server` with `args` (none: start or find; `kill`:
/// SIGKILL the server) and reads the settings it prints.
pub fn script(args: &[&str]) -> Result<HashMap<String, String>, String> {
    let script = format!(
        "{}/../../scripts/postgres-server",
        env!("CARGO_MANIFEST_DIR")
    );
    let output = Command::new("bash")
        .arg(&script)
        .args(args)
        .output()
        .map_err(|err| format!("cannot run {script}: {err}"))?;
    if !output.status.success() {
        return Err(format!(
            "{script} {args:?} failed:\n{}",
            String::from_utf8_lossy(&output.stderr)
        ));
    }
    Ok(String::from_utf8_lossy(&output.stdout)
        .lines()
        .filter_map(|line| line.split_once('='))
        .map(|(name, value)| (name.to_owned(), value.to_owned()))
        .collect())
}

/// Printed too, but not needed to connect: the CA of the server's TLS
/// certificate.
pub const OPTIONAL_VARIABLES: [&str; 1] = ["LEASEHOLD_PG_SSLROOTCERT"];

fn start_or_find(args: &[&str]) -> Result<HashMap<String, String>, String> {
    let from_env: HashMap<String, String> = VARIABLES
        .iter()
        .filter_map(|name| Some((name.to_string(), std::env::var(name).ok()?)))
        .collect();
    if from_env.len() == VARIABLES.len() {
        let optional = OPTIONAL_VARIABLES
            .iter()
            .filter_map(|name| Some((name.to_string(), std::env::var(name).ok()?)));
        return Ok(from_env.into_iter().chain(optional).collect());
    }
    let printed = script(args)?;
    match VARIABLES.iter().find(|name| !printed.contains_key(**name)) {
        Some(missing) => Err(format!("scripts/postgres-server did not print {missing}")),
        None => Ok(printed),
    }
}

/// The `[persistence.postgres]` settings of `settings` in `schema`.
pub fn config_from(
    settings: &HashMap<String, String>,
    schema: &str,
) -> Result<PostgresConfig, String> {
    let get = |name: &str| {
        settings
            .get(name)
            .cloned()
            .ok_or_else(|| format!("{name} is not set (scripts/postgres-server prints it)"))
    };
    let port = get("LEASEHOLD_PG_PORT")?;
    let mut config = PostgresConfig::new(
        &get("LEASEHOLD_PG_HOST")?,
        port.parse()
            .map_err(|_| format!("LEASEHOLD_PG_PORT {port:?} is not a port"))?,
        &get("LEASEHOLD_PG_USER")?,
        Secret::new(get("LEASEHOLD_PG_PASSWORD")?),
        &get("LEASEHOLD_PG_DBNAME")?,
    );
    config.schema = schema.to_owned();
    Ok(config)
}

/// The test server's settings in `schema`, starting it if need be.
pub fn config(schema: &str) -> Result<PostgresConfig, String> {
    config_from(&settings()?, schema)
}

/// The settings the `LEASEHOLD_PG_*` variables name, without starting
/// anything: an unset variable is an error naming it.
pub fn from_environment(schema: &str) -> Result<PostgresConfig, String> {
    let settings: HashMap<String, String> = VARIABLES
        .iter()
        .filter_map(|name| Some((name.to_string(), std::env::var(name).ok()?)))
        .collect();
    config_from(&settings, schema)
}
