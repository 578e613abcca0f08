//! Settings shared by the B+tree's integration tests.

use std::path::PathBuf;

use leasehold_btree::config::BtreeConfig;

/// The crate's crash-test settings (see `leasehold_btree::crash_test_config`).
pub fn tiny_config(dir: impl Into<PathBuf>) -> BtreeConfig {
    leasehold_btree::crash_test_config(dir)
}
