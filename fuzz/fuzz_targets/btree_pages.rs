//! B+tree pages and every payload they carry: meta, leaf, branch, overflow,
//! free list.
#![no_main]

use leasehold_btree::layout::{decode_branch, decode_leaf, decode_overflow, decompress};
use leasehold_btree::meta::{decode_freelist, Meta};
use leasehold_btree::page;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if let Ok(opened) = page::open(data, 2) {
        let _ = Meta::decode(opened.payload, opened.txn);
        let _ = decode_leaf(opened.payload);
    }
    let _ = Meta::decode(data, 1);
    let _ = decode_leaf(data);
    let _ = decode_branch(data);
    let _ = decode_overflow(data);
    let _ = decode_freelist(data);
    if data.len() > 4 {
        let raw_len = u32::from_le_bytes([data[0], data[1], data[2], data[3]]);
        let _ = decompress(Some(u64::from(raw_len)), &data[4..]);
    }
});
