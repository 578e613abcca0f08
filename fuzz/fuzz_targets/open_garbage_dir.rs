//! Opening a directory whose files hold arbitrary bytes as each engine: an
//! error or a working engine, never a panic or a hang.
#![no_main]

use std::path::Path;
use std::sync::Arc;

use leasehold_btree::BtreeEngine;
use leasehold_btree::BtreeConfig;
use leasehold_lsm::LsmConfig;
use leasehold_core::vfs::{write_all_at, SimVfs, Vfs};
use leasehold_core::{KeyRange, KvEngine};
use leasehold_lsm::LsmEngine;
use libfuzzer_sys::fuzz_target;

/// Names the engines look for; the first byte of input picks which files exist.
const NAMES: [&str; 6] = [
    "CURRENT",
    "MANIFEST-000002",
    "000001.log",
    "000003.sst",
    "data.db",
    "000001.wal",
];

fuzz_target!(|data: &[u8]| {
    let Some((&mask, rest)) = data.split_first() else {
        return;
    };
    let vfs = SimVfs::new(0);
    vfs.create_dir_all(Path::new("/db")).expect("dir");
    let chunk = rest.len() / NAMES.len() + 1;
    for (index, name) in NAMES.iter().enumerate() {
        if mask & (1 << index) != 0 {
            let file = vfs.create(&Path::new("/db").join(name)).expect("create");
            let bytes = rest
                .get(index * chunk..((index + 1) * chunk).min(rest.len()))
                .unwrap_or_default();
            write_all_at(file.as_ref(), bytes, 0).expect("write");
        }
    }
    let lsm = LsmConfig {
        data_dir: "/db".into(),
        background_threads: false,
        ..LsmConfig::default()
    };
    if let Ok(engine) = LsmEngine::open(&lsm, Arc::new(vfs.clone())) {
        let _ = engine.verify();
    }
    let btree = BtreeConfig {
        data_dir: "/db".into(),
        background_threads: false,
        page_size: 1024,
        ..BtreeConfig::default()
    };
    if let Ok(engine) = BtreeEngine::open(&btree, Arc::new(vfs)) {
        let _ = engine.verify();
        // Pages are read on demand: a scan reaches what open did not read.
        let _ = engine.scan(&KeyRange::all(), &mut |_, _| std::ops::ControlFlow::Continue(()));
    }
});
