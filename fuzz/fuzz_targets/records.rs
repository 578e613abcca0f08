//! The records the store keeps in every engine: write batches, leases,
//! snapshots and actor keys. Decoding never panics, and the encodings are
//! canonical: what decodes re-encodes to the very same bytes.
#![no_main]

use leasehold_core::{ActorKey, Lease, Snapshot, WriteBatch};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if let Ok(batch) = WriteBatch::decode(data) {
        assert_eq!(batch.encode(), data);
    }
    if let Ok(lease) = Lease::decode(data) {
        assert_eq!(lease.encode(), data);
    }
    if let Ok(snapshot) = Snapshot::decode(data) {
        assert_eq!(snapshot.encode(), data);
    }
    if let Ok(key) = ActorKey::decode(data) {
        assert_eq!(key.encode(), data);
    }
});
