//! The servers the tests (and anyone trying the backend) run against:
//! `scripts/s3-server` starts Ceph's radosgw on 127.0.0.1 when the
//! `LEASEHOLD_S3_*` variables do not already name a server, and prints them;
//! `scripts/azure-server` does the same for Azurite (`LEASEHOLD_AZURE_*`).

use std::collections::HashMap;
use std::process::Command;
use std::sync::OnceLock;

use crate::config::{AzureConfig, S3Config};

/// The variables that name the S3 server.
pub const VARIABLES: [&str; 4] = [
    "LEASEHOLD_S3_ENDPOINT",
    "LEASEHOLD_S3_BUCKET",
    "LEASEHOLD_S3_ACCESS_KEY_ID",
    "LEASEHOLD_S3_SECRET_ACCESS_KEY",
];

/// The variables that name the Azure emulator.
pub const AZURE_VARIABLES: [&str; 4] = [
    "LEASEHOLD_AZURE_ENDPOINT",
    "LEASEHOLD_AZURE_ACCOUNT",
    "LEASEHOLD_AZURE_KEY",
    "LEASEHOLD_AZURE_CONTAINER",
];

/// The S3 server's settings (the `LEASEHOLD_S3_*` variables), from the
/// environment or from starting it. Runs the script at most once per process.
pub fn settings() -> Result<HashMap<String, String>, String> {
    static SETTINGS: OnceLock<Result<HashMap<String, String>, String>> = OnceLock::new();
    SETTINGS
        .get_or_init(|| start_or_find("s3-server", &VARIABLES))
        .clone()
}

/// Azurite's settings (the `LEASEHOLD_AZURE_*` variables), likewise.
pub fn azure_settings() -> Result<HashMap<String, String>, String> {
    static SETTINGS: OnceLock<Result<HashMap<String, String>, String>> = OnceLock::new();
    SETTINGS
        .get_or_init(|| start_or_find("azure-server", &AZURE_VARIABLES))
        .clone()
}

fn start_or_find(script: &str, variables: &[&str]) -> Result<HashMap<String, String>, String> {
    let from_env: HashMap<String, String> = variables
        .iter()
        .filter_map(|name| Some((name.to_string(), std::env::var(name).ok()?)))
        .collect();
    if from_env.len() == variables.len() {
        return Ok(from_env);
    }
    let script = format!("{}/../../scripts/{script}", env!("CARGO_MANIFEST_DIR"));
    let output = Command::new("bash")
        .arg(&script)
        .output()
        .map_err(|err| format!("cannot run {script}: {err}"))?;
    if !output.status.success() {
        return Err(format!(
            "{script} failed:\n{}",
            String::from_utf8_lossy(&output.stderr)
        ));
    }
    let printed: HashMap<String, String> = String::from_utf8_lossy(&output.stdout)
        .lines()
        .filter_map(|line| line.split_once('='))
        .map(|(name, value)| (name.to_owned(), value.to_owned()))
        .collect();
    match variables.iter().find(|name| !printed.contains_key(**name)) {
        Some(missing) => Err(format!("{script} did not print {missing}")),
        None => Ok(printed),
    }
}

/// The `[persistence.azure]` settings of the emulator under `prefix`,
/// starting it if need be.
pub fn azure_config(prefix: &str) -> Result<AzureConfig, String> {
    Ok(azure_config_from(&azure_settings()?, prefix))
}

fn azure_config_from(settings: &HashMap<String, String>, prefix: &str) -> AzureConfig {
    AzureConfig {
        account_name: settings["LEASEHOLD_AZURE_ACCOUNT"].clone(),
        account_key: Some(settings["LEASEHOLD_AZURE_KEY"].clone().into()),
        container_name: settings["LEASEHOLD_AZURE_CONTAINER"].clone(),
        endpoint: Some(settings["LEASEHOLD_AZURE_ENDPOINT"].clone()),
        prefix: prefix.to_owned(),
        connection_timeout_seconds: 10,
        retry_count: 3,
    }
}

/// The `[persistence.s3]` settings of the test server under `prefix`,
/// starting the server if need be.
pub fn s3_config(prefix: &str) -> Result<S3Config, String> {
    Ok(config_from(&settings()?, prefix))
}

/// The `[persistence.s3]` settings the `LEASEHOLD_S3_*` variables name,
/// without starting anything: an unset variable is an error naming it.
pub fn from_environment(prefix: &str) -> Result<S3Config, String> {
    Ok(config_from(&read_environment(&VARIABLES)?, prefix))
}

/// The `[persistence.azure]` settings the `LEASEHOLD_AZURE_*` variables name,
/// likewise.
pub fn azure_from_environment(prefix: &str) -> Result<AzureConfig, String> {
    Ok(azure_config_from(
        &read_environment(&AZURE_VARIABLES)?,
        prefix,
    ))
}

fn read_environment(variables: &[&str]) -> Result<HashMap<String, String>, String> {
    variables
        .iter()
        .map(|name| {
            let value = std::env::var(name).map_err(|_| {
                format!("{name} is not set (scripts/s3-server and scripts/azure-server print them)")
            })?;
            Ok((name.to_string(), value))
        })
        .collect()
}

fn config_from(settings: &HashMap<String, String>, prefix: &str) -> S3Config {
    S3Config {
        endpoint: Some(settings["LEASEHOLD_S3_ENDPOINT"].clone()),
        region: "us-east-1".into(),
        bucket: settings["LEASEHOLD_S3_BUCKET"].clone(),
        access_key_id: Some(settings["LEASEHOLD_S3_ACCESS_KEY_ID"].clone()),
        secret_access_key: Some(settings["LEASEHOLD_S3_SECRET_ACCESS_KEY"].clone().into()),
        prefix: prefix.to_owned(),
        enable_ssl: false,
        connection_timeout_seconds: 10,
        retry_count: 3,
    }
}

/// The store a test's child process (a contender, a committer) opens: the
/// backend `LEASEHOLD_CONTENTION_BACKEND` names (`s3` or `azure`), under
/// `LEASEHOLD_CONTENTION_PREFIX`, on the server the environment names.
pub fn open_for_child() -> Result<crate::ObjectStoreBackend, String> {
    let setting = |name: &str| {
        std::env::var(name).map_err(|_| format!("environment variable {name} is not set"))
    };
    let prefix = setting("LEASEHOLD_CONTENTION_PREFIX")?;
    let configured = match setting("LEASEHOLD_CONTENTION_BACKEND")?.as_str() {
        "s3" => crate::backend::s3(&from_environment(&prefix)?),
        "azure" => crate::backend::azure(&azure_from_environment(&prefix)?),
        other => return Err(format!("unknown backend {other:?} (s3 or azure)")),
    };
    crate::ObjectStoreBackend::open(configured.map_err(|err| err.to_string())?)
        .map_err(|err| err.to_string())
}
