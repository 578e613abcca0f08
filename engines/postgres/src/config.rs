//! The `[persistence.postgres]` section: where the server is, how many
//! connections, how long a statement may run, and `${ENV}` expansion of the
//! password (and of a URL, which may carry one).

use std::path::PathBuf;

use leasehold_core::secret::Secret;
use leasehold_storage::config::{deserialize_section, expand_env, invalid, ConfigError};
use serde::Deserialize;

/// How the connection is encrypted (libpq's `sslmode`, three of its values).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum SslMode {
    /// Plain TCP (or a unix socket).
    Disable,
    /// TLS when the server offers it, else plain.
    Prefer,
    /// TLS or no connection. Unlike libpq's `require`, the server's
    /// certificate is always verified (against the system's roots, or
    /// `sslrootcert`): an unverified channel would carry the password to
    /// whoever answers.
    Require,
}

#[derive(Clone, Debug, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PostgresConfig {
    /// A libpq connection URL (`postgresql://user@host:port/db`) instead of
    /// the separate keys; it may hold the password, so it is a secret.
    #[serde(default)]
    pub url: Option<Secret>,
    /// A host name, an address, or a unix-socket directory (starts with `/`).
    #[serde(default)]
    pub host: Option<String>,
    #[serde(default)]
    pub port: Option<u16>,
    #[serde(default)]
    pub user: Option<String>,
    #[serde(default)]
    pub password: Option<Secret>,
    #[serde(default)]
    pub dbname: Option<String>,
    /// `disable`, `prefer` or `require`; unset, `disable` on a unix socket or
    /// a loopback address, else `prefer`.
    #[serde(default)]
    pub sslmode: Option<SslMode>,
    /// A PEM file of the CA that signed the server's certificate.
    #[serde(default)]
    pub sslrootcert: Option<PathBuf>,
    /// The schema the store's tables live in (created if absent).
    #[serde(default = "default_schema")]
    pub schema: String,
    /// Connections the store keeps open; callers beyond it wait for one.
    #[serde(default = "default_pool_size")]
    pub pool_size: u32,
    /// The server cancels a statement running longer (`statement_timeout`).
    #[serde(default = "default_statement_timeout_ms")]
    pub statement_timeout_ms: u64,
    #[serde(default = "default_connect_timeout_seconds")]
    pub connect_timeout_seconds: u64,
    /// How often one operation is retried after a serialization failure, a
    /// deadlock or a lost insert race before it reports the contention.
    #[serde(default = "default_max_retries")]
    pub max_retries: u32,
}

fn default_schema() -> String {
    "leasehold".into()
}
fn default_pool_size() -> u32 {
    8
}
fn default_statement_timeout_ms() -> u64 {
    30_000
}
fn default_connect_timeout_seconds() -> u64 {
    10
}
fn default_max_retries() -> u32 {
    32
}

/// The largest pool the store will open (PostgreSQL's default
/// `max_connections` is 100).
pub const POSTGRES_POOL_SIZE_MAX: u32 = 1000;

impl PostgresConfig {
    /// The settings of a server given by its parts (tests, the harness).
    pub fn new(host: &str, port: u16, user: &str, password: Secret, dbname: &str) -> Self {
        PostgresConfig {
            url: None,
            host: Some(host.into()),
            port: Some(port),
            user: Some(user.into()),
            password: Some(password),
            dbname: Some(dbname.into()),
            sslmode: None,
            sslrootcert: None,
            schema: default_schema(),
            pool_size: default_pool_size(),
            statement_timeout_ms: default_statement_timeout_ms(),
            connect_timeout_seconds: default_connect_timeout_seconds(),
            max_retries: default_max_retries(),
        }
    }

    /// Expands `${ENV}` in the URL, host, user and password, and checks the
    /// section is whole and in range.
    pub(super) fn validated(mut self, section: &str) -> Result<PostgresConfig, ConfigError> {
        if let Some(url) = self.url.as_mut() {
            *url = Secret::new(expand_env(url.expose(), section, "url")?);
        }
        if let Some(password) = self.password.as_mut() {
            *password = Secret::new(expand_env(password.expose(), section, "password")?);
        }
        for (key, value) in [("host", &mut self.host), ("user", &mut self.user)] {
            if let Some(text) = value.as_mut() {
                *text = expand_env(text, section, key)?;
            }
        }
        let parts = [
            ("host", self.host.is_some()),
            ("port", self.port.is_some()),
            ("user", self.user.is_some()),
            ("dbname", self.dbname.is_some()),
        ];
        match &self.url {
            Some(url) => {
                if let Some((key, _)) = parts.iter().find(|(_, set)| *set) {
                    return Err(invalid(
                        section,
                        format!("`url` and `{key}` both name the server; give one or the other"),
                    ));
                }
                let text = url.expose();
                if !(text.starts_with("postgresql://") || text.starts_with("postgres://")) {
                    // The URL stays out of the message: it may hold a password.
                    return Err(invalid(
                        section,
                        "url must start with postgresql:// (or postgres://)",
                    ));
                }
            }
            None => {
                for (key, set) in [("host", parts[0].1), ("user", parts[2].1)] {
                    if !set {
                        return Err(invalid(
                            section,
                            format!("`{key}` is missing (or give a `url`)"),
                        ));
                    }
                }
            }
        }
        let identifier = |name: &str| {
            let mut chars = name.chars();
            chars
                .next()
                .is_some_and(|first| first.is_ascii_lowercase() || first == '_')
                && chars.all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_')
                && name.len() <= 63
        };
        if !identifier(&self.schema) {
            return Err(invalid(
                section,
                format!(
                    "schema {:?} must be a lowercase SQL identifier (a-z, 0-9, _; at most 63)",
                    self.schema
                ),
            ));
        }
        if !(1..=POSTGRES_POOL_SIZE_MAX).contains(&self.pool_size) {
            return Err(invalid(
                section,
                format!(
                    "pool_size {} is not in 1..={POSTGRES_POOL_SIZE_MAX}",
                    self.pool_size
                ),
            ));
        }
        for (key, value) in [
            ("statement_timeout_ms", self.statement_timeout_ms),
            ("connect_timeout_seconds", self.connect_timeout_seconds),
        ] {
            if value == 0 {
                return Err(invalid(section, format!("{key} must be positive")));
            }
        }
        if self.statement_timeout_ms > i32::MAX as u64 {
            return Err(invalid(
                section,
                format!(
                    "statement_timeout_ms is over PostgreSQL's limit of {}",
                    i32::MAX
                ),
            ));
        }
        Ok(self)
    }
}

impl PostgresConfig {
    /// The section's table, read and checked (`${ENV}` expanded).
    pub fn from_section(value: toml::Value, section: &str) -> Result<PostgresConfig, ConfigError> {
        deserialize_section::<PostgresConfig>(value, section)?.validated(section)
    }
}
