//! From TOML to a `PersistenceConfig`: the backend selector, the section it
//! names, unknown keys refused, each engine's settings validated.

use super::*;

pub(super) fn take_selector(root: &mut toml::Table) -> Result<Option<String>, ConfigError> {
    let Some(toml::Value::Table(server)) = root.get("server") else {
        return Ok(None);
    };
    match server.get("persistence_backend") {
        None => Ok(None),
        Some(toml::Value::String(name)) => Ok(Some(name.clone())),
        Some(_) => Err(invalid("server", "persistence_backend must be a string")),
    }
}

/// Picks the backend table: the flat `[persistence]` when it has a `type`, else
/// the sub-table named by `server.persistence_backend`, else the only one.
pub(super) fn choose_backend(
    mut persistence: toml::Table,
    selector: Option<&str>,
) -> Result<(String, toml::Table), ConfigError> {
    if persistence.contains_key("type") {
        return Ok(("persistence".into(), persistence));
    }
    let mut names: Vec<String> = persistence
        .iter()
        .filter(|(_, value)| value.is_table())
        .map(|(name, _)| name.clone())
        .collect();
    let name = match selector {
        Some(name) => name.to_owned(),
        None if names.len() == 1 => names.remove(0),
        None if names.is_empty() => {
            return Err(ConfigError::MissingType {
                section: "persistence".into(),
            })
        }
        None => {
            return Err(ConfigError::AmbiguousBackend(format!(
            "[persistence] has several backends ({}); choose one with [server] persistence_backend",
            names.join(", ")
        )))
        }
    };
    let section = format!("persistence.{name}");
    match persistence.remove(&name) {
        Some(toml::Value::Table(table)) => Ok((section, table)),
        _ => Err(ConfigError::AmbiguousBackend(format!(
            "[server] persistence_backend = {name:?} but there is no [{section}] table"
        ))),
    }
}

pub(super) fn parse_backend(
    section: &str,
    mut table: toml::Table,
) -> Result<PersistenceConfig, ConfigError> {
    let type_name = match table.remove("type") {
        Some(toml::Value::String(name)) => name,
        Some(_) => return Err(invalid(section, "type must be a string")),
        None => {
            return Err(ConfigError::MissingType {
                section: section.into(),
            })
        }
    };
    let value = toml::Value::Table(table);
    let config = match type_name.to_ascii_lowercase().as_str() {
        "lsm_tree" | "lsm" => {
            PersistenceConfig::LsmTree(validate_lsm(deserialize(value, section)?, section)?)
        }
        "cow_btree" | "btree" => {
            PersistenceConfig::CowBtree(validate_btree(deserialize(value, section)?, section)?)
        }
        "rocksdb" => {
            PersistenceConfig::RocksDb(validate_rocksdb(deserialize(value, section)?, section)?)
        }
        "memory" => PersistenceConfig::Memory(MemoryConfig::from_raw(
            deserialize(value, section)?,
            section,
        )?),
        "s3" => {
            let mut config: S3Config = deserialize(value, section)?;
            if let Some(text) = config.access_key_id.as_mut() {
                *text = expand_env(text, section, "access_key_id")?;
            }
            if let Some(secret) = config.secret_access_key.as_mut() {
                *secret = Secret::new(expand_env(secret.expose(), section, "secret_access_key")?);
            }
            if let Some(endpoint) = config.endpoint.as_mut() {
                *endpoint = expand_env(endpoint, section, "endpoint")?;
            }
            PersistenceConfig::S3(config)
        }
        "azure" => {
            let mut config: AzureConfig = deserialize(value, section)?;
            if let Some(key) = config.account_key.as_mut() {
                *key = Secret::new(expand_env(key.expose(), section, "account_key")?);
            }
            PersistenceConfig::Azure(config)
        }
        "gcs" | "gcp" | "googlecloud" => PersistenceConfig::Gcs(deserialize(value, section)?),
        "postgres" | "postgresql" => PersistenceConfig::Postgres(
            deserialize::<PostgresConfig>(value, section)?.validated(section)?,
        ),
        _ => return Err(ConfigError::UnknownType(type_name)),
    };
    Ok(config)
}

pub(super) fn deserialize<T: DeserializeOwned>(
    value: toml::Value,
    section: &str,
) -> Result<T, ConfigError> {
    value.clone().try_into().map_err(|err: toml::de::Error| {
        // toml names an unknown key but not a key whose value has the wrong
        // type; find it by deserializing each key alone (every section struct
        // defaults its other fields; if the empty table does not deserialize,
        // no single key can be blamed).
        let alone = |entries: &[(&String, &toml::Value)]| {
            let table: toml::Table = entries
                .iter()
                .map(|(key, value)| ((*key).clone(), (*value).clone()))
                .collect();
            toml::Value::Table(table).try_into::<T>().is_ok()
        };
        let culprit = value.as_table().filter(|_| alone(&[])).and_then(|table| {
            table
                .iter()
                .find(|(key, value)| !alone(&[(key, value)]))
                .map(|(key, _)| key.clone())
        });
        match culprit {
            Some(key) => invalid(section, format!("`{key}`: {}", err.message())),
            None => invalid(section, err.message().to_owned()),
        }
    })
}

pub(super) fn validate_lsm(config: LsmConfig, section: &str) -> Result<LsmConfig, ConfigError> {
    config.validate(section)?;
    Ok(config)
}

pub(super) fn validate_btree(
    config: BtreeConfig,
    section: &str,
) -> Result<BtreeConfig, ConfigError> {
    config.validate(section)?;
    Ok(config)
}

pub(super) fn validate_rocksdb(
    config: RocksDbConfig,
    section: &str,
) -> Result<RocksDbConfig, ConfigError> {
    if !["none", "snappy", "lz4", "zstd"].contains(&config.compression_type.as_str()) {
        return Err(invalid(
            section,
            format!(
                "compression_type {:?} is not one of none, snappy, lz4, zstd",
                config.compression_type
            ),
        ));
    }
    if !(0.0..=64.0).contains(&config.bloom_bits_per_key) {
        return Err(invalid(
            section,
            format!(
                "bloom_bits_per_key {} is not within 0..=64",
                config.bloom_bits_per_key
            ),
        ));
    }
    if config.write_buffer_size < 64 << 10 || config.write_buffer_size > 16 << 30 {
        return Err(invalid(
            section,
            format!(
                "write_buffer_size {} is not within 64 KiB..=16 GiB",
                config.write_buffer_size
            ),
        ));
    }
    if config.max_background_jobs == 0 || config.max_background_jobs > 256 {
        return Err(invalid(
            section,
            format!(
                "max_background_jobs {} is not within 1..=256",
                config.max_background_jobs
            ),
        ));
    }
    if config.blob_file_size < 1 << 20 || config.blob_file_size > 16 << 30 {
        return Err(invalid(
            section,
            format!(
                "blob_file_size {} is not within 1 MiB..=16 GiB",
                config.blob_file_size
            ),
        ));
    }
    if !(0.0..=1.0).contains(&config.blob_gc_age_cutoff) {
        return Err(invalid(
            section,
            format!(
                "blob_gc_age_cutoff {} is not within 0..=1",
                config.blob_gc_age_cutoff
            ),
        ));
    }
    if config.block_cache_size > 1 << 40 {
        return Err(invalid(
            section,
            format!(
                "block_cache_size {} is more than 1 TiB",
                config.block_cache_size
            ),
        ));
    }
    Ok(config)
}
