//! The object-store sections (`[persistence.s3]`, `.azure`, `.gcs`): their
//! keys, defaults, and `${ENV}` expansion of credentials.

use super::*;

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

pub(super) fn default_region() -> String {
    "us-east-1".into()
}
pub(super) fn default_prefix() -> String {
    "leasehold".into()
}
pub(super) fn default_true() -> bool {
    true
}
pub(super) fn default_timeout() -> u64 {
    30
}
pub(super) fn default_retries() -> u32 {
    3
}

/// Replaces each `${NAME}` with the environment variable; unset is an error.
pub fn expand_env(text: &str, section: &str, key: &str) -> Result<String, ConfigError> {
    let mut out = String::with_capacity(text.len());
    let mut rest = text;
    while let Some(start) = rest.find("${") {
        out.push_str(&rest[..start]);
        let after = &rest[start + 2..];
        let Some(end) = after.find('}') else {
            // The text itself stays out of the message: it may be a secret.
            return Err(invalid(
                section,
                format!(
                    "{key}: unclosed ${{ in its value (at byte {})",
                    text.len() - rest.len() + start
                ),
            ));
        };
        let var = &after[..end];
        let value = std::env::var(var).map_err(|_| ConfigError::MissingEnv {
            section: section.into(),
            key: key.into(),
            var: var.into(),
        })?;
        out.push_str(&value);
        rest = &after[end + 1..];
    }
    out.push_str(rest);
    Ok(out)
}
