//! Bytes shared with the buffer they came from: a key or value decoded from
//! a page points into that page's one buffer, so decoding a page is one
//! allocation and copying a node (copy-on-write) copies no key or value.

use std::cmp::Ordering;
use std::fmt;
use std::ops::{Deref, Range};
use std::sync::Arc;

#[derive(Clone)]
pub struct Slice {
    buf: Arc<[u8]>,
    start: u32,
    end: u32,
}

impl Slice {
    /// `range` of `buf` (pages are at most 64 KiB, so `u32` offsets).
    pub fn of(buf: &Arc<[u8]>, range: Range<usize>) -> Slice {
        debug_assert!(range.end <= buf.len());
        Slice {
            buf: Arc::clone(buf),
            start: range.start as u32,
            end: range.end as u32,
        }
    }

    /// Bytes of their own (a key from a write, or a separator that must not
    /// keep a whole page alive).
    pub fn copied(bytes: &[u8]) -> Slice {
        let buf: Arc<[u8]> = Arc::from(bytes);
        Slice {
            start: 0,
            end: buf.len() as u32,
            buf,
        }
    }

    /// Where `part` (borrowed from `buf`) lies in it.
    pub fn within(buf: &Arc<[u8]>, part: &[u8]) -> Slice {
        let start = part.as_ptr() as usize - buf.as_ptr() as usize;
        Slice::of(buf, start..start + part.len())
    }

    /// Bytes of the buffer this slice keeps alive.
    pub fn buffer_len(&self) -> usize {
        self.buf.len()
    }

    /// Whether the slice is its whole buffer (bytes of its own, not a part
    /// of a page's).
    pub fn owns_buffer(&self) -> bool {
        self.start == 0 && self.end as usize == self.buf.len()
    }

    /// The buffer's identity: slices of one page share it.
    pub fn buffer_id(&self) -> usize {
        self.buf.as_ptr() as usize
    }
}

impl Deref for Slice {
    type Target = [u8];
    fn deref(&self) -> &[u8] {
        &self.buf[self.start as usize..self.end as usize]
    }
}

impl AsRef<[u8]> for Slice {
    fn as_ref(&self) -> &[u8] {
        self
    }
}

impl PartialEq for Slice {
    fn eq(&self, other: &Slice) -> bool {
        **self == **other
    }
}

impl Eq for Slice {}

impl PartialOrd for Slice {
    fn partial_cmp(&self, other: &Slice) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}

impl Ord for Slice {
    fn cmp(&self, other: &Slice) -> Ordering {
        (**self).cmp(&**other)
    }
}

impl fmt::Debug for Slice {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:?}", String::from_utf8_lossy(self))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_slice_reads_its_part_of_the_buffer_and_orders_by_bytes() {
        let buf: Arc<[u8]> = Arc::from(&b"abcdef"[..]);
        let part = Slice::within(&buf, &buf[2..4]);
        assert_eq!(&*part, b"cd");
        assert_eq!(part, Slice::copied(b"cd"));
        assert!(part < Slice::copied(b"d"));
        assert_eq!(part.buffer_len(), 6);
    }
}
