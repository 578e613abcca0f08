//! What every configuration section shares: its error, and how a section is
//! read from its TOML table. Each engine owns its section (its settings type,
//! their defaults, their ranges, `from_section`); the application's parser
//! (`leasehold-config`) picks the section the file names and hands it over.

use std::fmt::Display;
use std::ops::RangeInclusive;

use serde::de::DeserializeOwned;

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
#[non_exhaustive]
pub enum ConfigError {
    #[error("config is not valid TOML: {0}")]
    Syntax(String),
    #[error("config has no [persistence] section")]
    MissingPersistence,
    #[error("[{section}] has no `type` key")]
    MissingType { section: String },
    #[error("unknown persistence type {0:?}; expected one of lsm_tree, cow_btree, rocksdb, memory, s3, azure, gcs, postgres")]
    UnknownType(String),
    #[error("{0}")]
    AmbiguousBackend(String),
    #[error("[{section}]: {message}")]
    Invalid { section: String, message: String },
    #[error("[{section}] {key}: environment variable {var} is not set")]
    MissingEnv {
        section: String,
        key: String,
        var: String,
    },
}

pub fn invalid(section: &str, message: impl Into<String>) -> ConfigError {
    ConfigError::Invalid {
        section: section.to_owned(),
        message: message.into(),
    }
}

/// `key`'s `value` must lie within `range`; `shown` is how the message names
/// the range ("64 KiB..=16 GiB").
pub fn within<T: PartialOrd + Display>(
    section: &str,
    key: &str,
    value: T,
    range: RangeInclusive<T>,
    shown: &str,
) -> Result<(), ConfigError> {
    if range.contains(&value) {
        Ok(())
    } else {
        Err(invalid(
            section,
            format!("{key} {value} is not within {shown}"),
        ))
    }
}

/// A settings type that is an engine's TOML section as it stands: read
/// (unknown keys and wrong types named), then its ranges checked. The engine
/// checks the same ranges at open, for a config built in code.
pub trait Section: DeserializeOwned {
    /// Refuses values out of range, naming the key.
    fn validate(&self, section: &str) -> Result<(), ConfigError>;

    /// The section's table, read and checked.
    fn from_section(value: toml::Value, section: &str) -> Result<Self, ConfigError> {
        let config: Self = deserialize_section(value, section)?;
        config.validate(section)?;
        Ok(config)
    }
}

/// Reads a section's table into its settings type, refusing unknown keys
/// and naming the key whose value has the wrong type.
pub fn deserialize_section<T: DeserializeOwned>(
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
