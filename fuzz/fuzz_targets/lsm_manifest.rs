//! Manifest logs, version edits, and CURRENT.
#![no_main]

use std::path::Path;

use leasehold_lsm::manifest::{parse_current, read, VersionEdit};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let _ = read(Path::new("MANIFEST-1"), data);
    if let Ok(edit) = VersionEdit::decode(data) {
        assert_eq!(VersionEdit::decode(&edit.encode()).ok(), Some(edit));
    }
    let _ = parse_current(Path::new("CURRENT"), data);
});
