//! Opening any bytes as an SSTable (footer, index, filter) and reading it all.
#![no_main]

use std::path::{Path, PathBuf};
use std::sync::Arc;

use leasehold_core::vfs::{write_all_at, SimVfs, Vfs};
use leasehold_lsm::sstable::cache::BlockCache;
use leasehold_lsm::sstable::table::Table;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let vfs = SimVfs::new(0);
    vfs.create_dir_all(Path::new("/f")).expect("dir");
    let file = vfs.create(Path::new("/f/1.sst")).expect("create");
    write_all_at(file.as_ref(), data, 0).expect("write");
    if let Ok(table) = Table::open(
        file,
        PathBuf::from("/f/1.sst"),
        1,
        data.len() as u64,
        Arc::new(BlockCache::new(1 << 20)),
    ) {
        let table = Arc::new(table);
        let _ = table.check_all();
        let _ = table.get(b"key", u64::MAX >> 8);
    }
});
