//! LSM data/index blocks, framed and unframed, and bloom filters.
#![no_main]

use leasehold_lsm::sstable::block::{decode_on_disk, Block};
use leasehold_lsm::sstable::bloom::Bloom;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let _ = Block::decode(data);
    if let Ok(contents) = decode_on_disk(data) {
        let _ = Block::decode(&contents);
    }
    if let Ok(bloom) = Bloom::decode(data) {
        let _ = bloom.may_contain(0x1234_5678_9abc_def0);
    }
});
