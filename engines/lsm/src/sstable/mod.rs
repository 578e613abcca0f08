//! Sorted string tables: immutable files of internal keys in order.
//!
//! ```text
//! table  = data_block* filter_block index_block footer
//! block  = frame(compression: u8 | contents)      (core framing; see block.rs)
//! footer = 56 bytes, see table.rs
//! ```

pub mod block;
pub mod bloom;
pub mod builder;
pub mod cache;
pub mod describe;
pub mod table;

/// Where a block lies in its file: offset and framed length.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct BlockHandle {
    pub offset: u64,
    pub len: u64,
}
