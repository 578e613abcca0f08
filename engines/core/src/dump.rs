//! How `leasehold dump` names an engine key: the Store's key spaces read
//! back (`lease player/42`). The engines' dumps (and the shared pieces in
//! `leasehold_storage::dump`) take it as their `KeyNamer`.

pub use leasehold_storage::dump::{describe_batch, describe_files, describe_wal, KeyNamer};

use crate::kvstore::RecordKey;

/// An engine key as a person reads it: `lease player/42`, `snapshot
/// player/42`, or escaped bytes for keys outside `KvStore`'s key spaces.
pub fn describe_key(key: &[u8]) -> String {
    match RecordKey::decode(key) {
        Some(RecordKey::Lease(actor)) => format!("lease {actor}"),
        Some(RecordKey::Snapshot(actor)) => format!("snapshot {actor}"),
        None => format!("raw {:?}", String::from_utf8_lossy(key)),
    }
}
