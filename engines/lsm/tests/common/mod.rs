//! Settings shared by the LSM's integration tests.

use std::path::PathBuf;

use leasehold_lsm::config::LsmConfig;

/// The crate's crash-test settings (see `leasehold_lsm::crash_test_config`).
pub fn tiny_config(dir: impl Into<PathBuf>) -> LsmConfig {
    leasehold_lsm::crash_test_config(dir)
}
