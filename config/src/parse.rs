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
    // Each engine reads and checks its own section.
    let config = match type_name.to_ascii_lowercase().as_str() {
        "lsm_tree" | "lsm" => PersistenceConfig::LsmTree(LsmConfig::from_section(value, section)?),
        "cow_btree" | "btree" => {
            PersistenceConfig::CowBtree(BtreeConfig::from_section(value, section)?)
        }
        "rocksdb" => PersistenceConfig::RocksDb(RocksDbConfig::from_section(value, section)?),
        "memory" => PersistenceConfig::Memory(MemoryConfig::from_section(value, section)?),
        "s3" => PersistenceConfig::S3(S3Config::from_section(value, section)?),
        "azure" => PersistenceConfig::Azure(AzureConfig::from_section(value, section)?),
        "gcs" | "gcp" | "googlecloud" => {
            PersistenceConfig::Gcs(GcsConfig::from_section(value, section)?)
        }
        "postgres" | "postgresql" => {
            PersistenceConfig::Postgres(PostgresConfig::from_section(value, section)?)
        }
        _ => return Err(ConfigError::UnknownType(type_name)),
    };
    Ok(config)
}
