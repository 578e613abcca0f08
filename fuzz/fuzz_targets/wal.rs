//! The shared WAL reader: any bytes give records or a Corruption error.
#![no_main]

use std::path::Path;

use leasehold_core::wal;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if let Ok(contents) = wal::read(Path::new("fuzz.wal"), data) {
        assert!(contents.valid_end as usize <= data.len());
    }
});
