//! The object-store sections (`[persistence.s3]`, `.azure`, `.gcs`): their
//! keys, defaults, and `${ENV}` expansion of credentials.

use std::path::PathBuf;

use leasehold_core::secret::Secret;
use leasehold_storage::config::{deserialize_section, expand_env, ConfigError};
use serde::Deserialize;

#[derive(Clone, Debug, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct S3Config {
    #[serde(default)]
    pub endpoint: Option<String>,
    #[serde(default = "default_region")]
    pub region: String,
    pub bucket: String,
    #[serde(default)]
    pub access_key_id: Option<String>,
    #[serde(default)]
    pub secret_access_key: Option<Secret>,
    #[serde(default = "default_prefix")]
    pub prefix: String,
    #[serde(default = "default_true")]
    pub enable_ssl: bool,
    /// Seconds (TOML key `connection_timeout`, the seed's).
    #[serde(default = "default_timeout", rename = "connection_timeout")]
    pub connection_timeout_seconds: u64,
    #[serde(default = "default_retries")]
    pub retry_count: u32,
}

#[derive(Clone, Debug, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AzureConfig {
    pub account_name: String,
    #[serde(default)]
    pub account_key: Option<Secret>,
    pub container_name: String,
    #[serde(default)]
    pub endpoint: Option<String>,
    #[serde(default = "default_prefix")]
    pub prefix: String,
    /// Seconds (TOML key `connection_timeout`, the seed's).
    #[serde(default = "default_timeout", rename = "connection_timeout")]
    pub connection_timeout_seconds: u64,
    #[serde(default = "default_retries")]
    pub retry_count: u32,
}

#[derive(Clone, Debug, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct GcsConfig {
    #[serde(default)]
    pub project_id: Option<String>,
    pub bucket_name: String,
    #[serde(default)]
    pub credentials_path: Option<PathBuf>,
    /// Leasehold's own: the service's base URL instead of Google's (an
    /// emulator's, say); plain `http://` is allowed only when named here.
    #[serde(default)]
    pub endpoint: Option<String>,
    #[serde(default = "default_prefix")]
    pub prefix: String,
    /// Seconds (TOML key `connection_timeout`, the seed's).
    #[serde(default = "default_timeout", rename = "connection_timeout")]
    pub connection_timeout_seconds: u64,
    #[serde(default = "default_retries")]
    pub retry_count: u32,
}

fn default_region() -> String {
    "us-east-1".into()
}
fn default_prefix() -> String {
    "leasehold".into()
}
fn default_true() -> bool {
    true
}
fn default_timeout() -> u64 {
    30
}
fn default_retries() -> u32 {
    3
}

/// One object store's settings: the sections this crate opens.
#[derive(Clone, Debug, PartialEq)]
pub enum ObjectStoreConfig {
    S3(S3Config),
    Azure(AzureConfig),
    Gcs(GcsConfig),
}

impl S3Config {
    /// The section's table, read, with `${ENV}` expanded in the access key,
    /// the secret and the endpoint.
    pub fn from_section(value: toml::Value, section: &str) -> Result<S3Config, ConfigError> {
        let mut config: S3Config = deserialize_section(value, section)?;
        if let Some(text) = config.access_key_id.as_mut() {
            *text = expand_env(text, section, "access_key_id")?;
        }
        if let Some(secret) = config.secret_access_key.as_mut() {
            *secret = Secret::new(expand_env(secret.expose(), section, "secret_access_key")?);
        }
        if let Some(endpoint) = config.endpoint.as_mut() {
            *endpoint = expand_env(endpoint, section, "endpoint")?;
        }
        Ok(config)
    }
}

impl AzureConfig {
    /// The section's table, read, with `${ENV}` expanded in the account key.
    pub fn from_section(value: toml::Value, section: &str) -> Result<AzureConfig, ConfigError> {
        let mut config: AzureConfig = deserialize_section(value, section)?;
        if let Some(key) = config.account_key.as_mut() {
            *key = Secret::new(expand_env(key.expose(), section, "account_key")?);
        }
        Ok(config)
    }
}

impl GcsConfig {
    /// The section's table, read.
    pub fn from_section(value: toml::Value, section: &str) -> Result<GcsConfig, ConfigError> {
        deserialize_section(value, section)
    }
}
