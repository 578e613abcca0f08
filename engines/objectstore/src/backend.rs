//! From the seed's `[persistence.s3]` / `azure` / `gcs` sections to an
//! `object_store` client. Every request is signed: a section without
//! credentials is a configuration error, never an anonymous client, and
//! nothing falls back to another backend or to credentials found elsewhere.

use std::sync::Arc;
use std::time::Duration;

use crate::config::{AzureConfig, GcsConfig, ObjectStoreConfig, S3Config};
use leasehold_core::secret::Secret;
use leasehold_storage::config::ConfigError;
use object_store::aws::{AmazonS3Builder, S3ConditionalPut};
use object_store::azure::MicrosoftAzureBuilder;
use object_store::gcp::GoogleCloudStorageBuilder;
use object_store::{BackoffConfig, ClientOptions, ObjectStore, RetryConfig};

/// A configured object store and the key prefix the store writes under.
pub struct Backend {
    pub store: Arc<dyn ObjectStore>,
    pub prefix: String,
    /// "s3", "azure", "gcs" or "memory", for reports.
    pub kind: &'static str,
}

fn invalid(section: &str, message: impl Into<String>) -> ConfigError {
    ConfigError::Invalid {
        section: format!("persistence.{section}"),
        message: message.into(),
    }
}

fn required<'a>(section: &str, key: &str, value: Option<&'a str>) -> Result<&'a str, ConfigError> {
    match value {
        Some(text) if !text.is_empty() => Ok(text),
        _ => Err(invalid(
            section,
            format!("{key} is required: every request is signed, anonymous access is not offered"),
        )),
    }
}

/// Retries with exponential backoff on transient failures (5xx, timeouts,
/// dropped connections), `retry_count` times; every request has a timeout.
/// Plain HTTP only when the section asks for it.
fn transport(
    connection_timeout_seconds: u64,
    retry_count: u32,
    allow_http: bool,
) -> (ClientOptions, RetryConfig) {
    let timeout = Duration::from_secs(connection_timeout_seconds);
    let options = ClientOptions::new()
        .with_connect_timeout(timeout)
        .with_timeout(timeout)
        .with_allow_http(allow_http);
    let retry = RetryConfig {
        backoff: BackoffConfig {
            init_backoff: Duration::from_millis(50),
            max_backoff: Duration::from_secs(2),
            base: 2.0,
        },
        max_retries: retry_count as usize,
        retry_timeout: timeout * (retry_count + 1),
    };
    (options, retry)
}

fn prefix_of(section: &str, prefix: &str) -> Result<String, ConfigError> {
    let trimmed = prefix.trim_matches('/');
    if trimmed.is_empty() {
        return Err(invalid(section, "prefix must not be empty"));
    }
    object_store::path::Path::parse(trimmed)
        .map_err(|err| invalid(section, format!("prefix {prefix:?}: {err}")))?;
    Ok(trimmed.to_owned())
}

/// The backend a builder made, under the section's prefix.
fn finish<T: ObjectStore>(
    section: &'static str,
    built: object_store::Result<T>,
    prefix: &str,
) -> Result<Backend, ConfigError> {
    let store = built.map_err(|err| invalid(section, format!("cannot build the client: {err}")))?;
    Ok(Backend {
        store: Arc::new(store),
        prefix: prefix_of(section, prefix)?,
        kind: section,
    })
}

/// Plain HTTP is allowed to an endpoint named with `http://` (an emulator).
fn is_plain_http(endpoint: &Option<String>) -> bool {
    endpoint
        .as_deref()
        .is_some_and(|endpoint| endpoint.starts_with("http://"))
}

pub fn s3(config: &S3Config) -> Result<Backend, ConfigError> {
    let section = "s3";
    let (options, retry) = transport(
        config.connection_timeout_seconds,
        config.retry_count,
        !config.enable_ssl,
    );
    let mut builder = AmazonS3Builder::new()
        .with_bucket_name(&config.bucket)
        .with_region(&config.region)
        .with_access_key_id(required(
            section,
            "access_key_id",
            config.access_key_id.as_deref(),
        )?)
        .with_secret_access_key(required(
            section,
            "secret_access_key",
            config.secret_access_key.as_ref().map(Secret::expose),
        )?)
        .with_conditional_put(S3ConditionalPut::ETagMatch)
        .with_client_options(options)
        .with_retry(retry);
    if let Some(endpoint) = &config.endpoint {
        let endpoint = if endpoint.contains("://") {
            endpoint.clone()
        } else if config.enable_ssl {
            format!("https://{endpoint}")
        } else {
            format!("http://{endpoint}")
        };
        if config.enable_ssl && endpoint.starts_with("http://") {
            return Err(invalid(
                section,
                format!("endpoint {endpoint} is plain HTTP but enable_ssl is true"),
            ));
        }
        builder = builder.with_endpoint(endpoint);
    }
    finish(section, builder.build(), &config.prefix)
}

pub fn azure(config: &AzureConfig) -> Result<Backend, ConfigError> {
    let section = "azure";
    let (options, retry) = transport(
        config.connection_timeout_seconds,
        config.retry_count,
        is_plain_http(&config.endpoint),
    );
    let mut builder = MicrosoftAzureBuilder::new()
        .with_account(&config.account_name)
        .with_container_name(&config.container_name)
        .with_access_key(required(
            section,
            "account_key",
            config.account_key.as_ref().map(Secret::expose),
        )?)
        .with_client_options(options)
        .with_retry(retry);
    if let Some(endpoint) = &config.endpoint {
        builder = builder.with_endpoint(endpoint.clone());
    }
    finish(section, builder.build(), &config.prefix)
}

pub fn gcs(config: &GcsConfig) -> Result<Backend, ConfigError> {
    let section = "gcs";
    let (options, retry) = transport(
        config.connection_timeout_seconds,
        config.retry_count,
        is_plain_http(&config.endpoint),
    );
    let credentials = config
        .credentials_path
        .as_ref()
        .map(|path| path.to_string_lossy().into_owned());
    let mut builder = GoogleCloudStorageBuilder::new()
        .with_bucket_name(&config.bucket_name)
        .with_service_account_path(required(
            section,
            "credentials_path",
            credentials.as_deref(),
        )?)
        .with_client_options(options)
        .with_retry(retry);
    if let Some(endpoint) = &config.endpoint {
        builder = builder.with_base_url(endpoint);
    }
    finish(section, builder.build(), &config.prefix)
}

/// The backend an object-store section names.
pub fn from_config(config: &ObjectStoreConfig) -> Result<Backend, ConfigError> {
    match config {
        ObjectStoreConfig::S3(s3_config) => s3(s3_config),
        ObjectStoreConfig::Azure(azure_config) => azure(azure_config),
        ObjectStoreConfig::Gcs(gcs_config) => gcs(gcs_config),
    }
}

/// `object_store`'s in-memory store: same conditional-write semantics, no
/// server. For fast unit tests; the conformance run that counts is on S3.
pub fn in_memory(prefix: &str) -> Backend {
    Backend {
        store: Arc::new(object_store::memory::InMemory::new()),
        prefix: prefix.to_owned(),
        kind: "memory",
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)] // test code: a failure panics with its message
    use super::*;

    /// A `[persistence]` section of an object store, read as the
    /// configuration's parser reads it.
    fn parse(text: &str) -> ObjectStoreConfig {
        let mut root: toml::Table = text.parse().unwrap();
        let Some(toml::Value::Table(mut section)) = root.remove("persistence") else {
            panic!("no [persistence] in {text}")
        };
        let kind = section.remove("type").unwrap();
        let value = toml::Value::Table(section);
        match kind.as_str().unwrap() {
            "s3" => ObjectStoreConfig::S3(S3Config::from_section(value, "persistence").unwrap()),
            "azure" => {
                ObjectStoreConfig::Azure(AzureConfig::from_section(value, "persistence").unwrap())
            }
            "gcs" => ObjectStoreConfig::Gcs(GcsConfig::from_section(value, "persistence").unwrap()),
            other => panic!("not an object store: {other}"),
        }
    }

    fn s3_section(extra: &str) -> String {
        format!("[persistence]\ntype = \"s3\"\nbucket = \"b\"\nendpoint = \"http://127.0.0.1:1\"\n{extra}")
    }

    #[test]
    fn credentials_are_required() {
        let config = parse(&s3_section("enable_ssl = false\n"));
        let err = from_config(&config).err().expect("no credentials");
        assert!(
            err.to_string().contains("access_key_id is required"),
            "{err}"
        );
    }

    #[test]
    fn plain_http_needs_ssl_off() {
        let config = parse(&s3_section(
            "access_key_id = \"k\"\nsecret_access_key = \"s\"\n",
        ));
        let err = from_config(&config).err().expect("http with ssl on");
        assert!(err.to_string().contains("enable_ssl"), "{err}");
    }

    #[test]
    fn azure_and_gcs_need_their_credentials_too() {
        let azure = parse(
            "[persistence]\ntype = \"azure\"\naccount_name = \"a\"\ncontainer_name = \"c\"\n",
        );
        let err = from_config(&azure).err().expect("no key");
        assert!(err.to_string().contains("account_key is required"), "{err}");
        let gcs = parse("[persistence]\ntype = \"gcs\"\nbucket_name = \"b\"\n");
        let err = from_config(&gcs).err().expect("no credentials");
        assert!(
            err.to_string().contains("credentials_path is required"),
            "{err}"
        );
    }
}
