//! Where an actor's objects live: `<prefix>/leases/<type>/<id>` and
//! `<prefix>/snapshots/<type>/<id>`, commit records at
//! `<prefix>/commits/<commit id>` (FORMAT.md, "Keys").

use leasehold_core::rules;
use leasehold_core::{ActorKey, StoreError, StoreResult};
use object_store::path::Path;

/// Where an actor's objects live under the configured prefix.
#[derive(Clone, Debug)]
pub struct Layout {
    prefix: Path,
}

impl Layout {
    pub fn new(prefix: &str) -> Layout {
        Layout {
            prefix: Path::from_iter(prefix.split('/').filter(|part| !part.is_empty())),
        }
    }

    pub fn leases(&self) -> Path {
        self.prefix.clone().join("leases")
    }

    pub fn snapshots(&self) -> Path {
        self.prefix.clone().join("snapshots")
    }

    pub fn lease(&self, key: &ActorKey) -> Path {
        self.leases()
            .join(key.actor_type.as_str())
            .join(key.actor_id.as_str())
    }

    pub fn snapshot(&self, key: &ActorKey) -> Path {
        self.snapshots()
            .join(key.actor_type.as_str())
            .join(key.actor_id.as_str())
    }

    pub fn commits(&self) -> Path {
        self.prefix.clone().join("commits")
    }

    /// The commit record of a multi-actor commit.
    pub fn commit(&self, id: &str) -> Path {
        self.commits().join(id)
    }

    pub(crate) fn probe(&self, name: &str) -> Path {
        self.prefix.clone().join("health").join(name)
    }
}

/// An actor key the object layout can name: `ActorKey`'s own rule plus a
/// non-empty id (an object key cannot end in an empty segment).
pub(crate) fn validate(key: &ActorKey) -> StoreResult<()> {
    rules::validate_key(key)?;
    if key.actor_id.is_empty() {
        return Err(StoreError::InvalidArgument(format!(
            "actor key {key:?} has an empty actor id, which the object-store layout cannot name"
        )));
    }
    Ok(())
}
