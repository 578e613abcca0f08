//! The memory engine's backup file: any bytes give entries or a Corruption
//! error, never a panic or an allocation a corrupt length asked for.
#![no_main]

use std::path::Path;

use leasehold_memory::backup;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let _ = backup::decode(Path::new("fuzz"), data);
    // Also behind a valid header, where the frame check is the first gate.
    let mut file = backup::BACKUP_MAGIC.to_vec();
    file.extend_from_slice(&backup::BACKUP_FORMAT_V1.to_le_bytes());
    file.extend_from_slice(data);
    let _ = backup::decode(Path::new("fuzz"), &file);
});
