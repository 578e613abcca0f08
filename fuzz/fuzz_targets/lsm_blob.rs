//! Opening any bytes as a blob file (footer checked against the record the
//! manifest would hold) and reading values through any pointers.
#![no_main]

use std::path::Path;

use bytes::Bytes;
use leasehold_core::vfs::{write_all_at, SimVfs, Vfs};
use leasehold_lsm::blob::{describe, BlobFile, BlobMeta, BlobPointer, BLOB_FOOTER_LEN};
use libfuzzer_sys::fuzz_target;

fn u64_at(data: &[u8], at: usize) -> u64 {
    let mut raw = [0u8; 8];
    raw.copy_from_slice(&data[at..at + 8]);
    u64::from_le_bytes(raw)
}

fuzz_target!(|data: &[u8]| {
    let _ = describe(data, 8, &|key| format!("{key:?}"));
    // The footer's own counts as the manifest's, so cases get past the
    // open checks and into the records.
    let (count, record_bytes) = match data.len().checked_sub(BLOB_FOOTER_LEN) {
        Some(at) => (u64_at(data, at), u64_at(data, at + 8)),
        None => (0, 0),
    };
    let vfs = SimVfs::new(0);
    vfs.create_dir_all(Path::new("/f")).expect("dir");
    let file = vfs.create(Path::new("/f/000001.blob")).expect("create");
    write_all_at(file.as_ref(), data, 0).expect("write");
    let meta = BlobMeta {
        number: 1,
        size: data.len() as u64,
        count,
        record_bytes,
    };
    let Ok(blob) = BlobFile::open(&vfs, Path::new("/f"), &meta) else {
        return;
    };
    // Pointers made from the data itself, and one onto the first record.
    for start in [0, data.len() / 3, data.len() / 2] {
        if let Ok(pointer) = BlobPointer::decode(&Bytes::copy_from_slice(&data[start..])) {
            let _ = blob.read(b"key", &pointer);
        }
    }
    let first = BlobPointer {
        file: 1,
        offset: 0,
        length: record_bytes.min(1 << 20),
        value_length: 0,
        hint: Bytes::new(),
    };
    let _ = blob.read(b"key", &first);
});
