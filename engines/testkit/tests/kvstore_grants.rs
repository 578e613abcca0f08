//! `KvStore` on a crashed disk (core's own tests cannot reach the toy
//! engine: it lives here, above core).

#![allow(clippy::unwrap_used, clippy::expect_used)] // test code: a failure panics with its message

use std::time::Duration;

use leasehold_core::{ActorKey, Durability, KvStore, NodeId, Timestamp};

/// L3: a grant acknowledged at Buffered durability and lost in a crash
/// let the next grant issue the same epoch to another node. (On the
/// testkit's toy engine, which `leasehold-core` cannot depend on.)
#[test]
fn a_grant_survives_power_loss_at_any_durability_so_no_epoch_is_issued_twice() {
    use leasehold_core::vfs::{CrashPolicy, SimVfs};
    use leasehold_core::Store;
    use leasehold_testkit::toy::ToyLogEngine;
    use std::path::Path;
    use std::sync::Arc;
    let vfs = SimVfs::new(1);
    let open = |vfs: &SimVfs| {
        let engine = ToyLogEngine::open(Arc::new(vfs.clone()), Path::new("/toy"), false);
        KvStore::new(engine.unwrap(), Durability::Buffered)
    };
    let key = ActorKey::new("T", "1");
    let term = Duration::from_secs(10);
    let store = open(&vfs);
    let first = match store.try_acquire(&key, &NodeId::new("a"), term, Timestamp(0)) {
        Ok(leasehold_core::Acquire::Acquired(lease)) => lease.epoch,
        other => panic!("{other:?}"),
    };
    let store = open(&vfs.crash_image(CrashPolicy::PowerLoss, 0));
    let later = Timestamp(60_000);
    match store.try_acquire(&key, &NodeId::new("b"), term, later) {
        Ok(leasehold_core::Acquire::Acquired(lease)) => assert!(lease.epoch > first, "{lease:?}"),
        other => panic!("{other:?}"),
    }
}
