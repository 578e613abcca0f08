//! The varint codec and a bounds-checked reader/writer for records.
//!
//! Every decoder of bytes that came from disk uses `Reader`: each length is
//! checked against what is left before anything is sliced or allocated, so a
//! corrupt length yields a `DecodeError`, never a panic or a huge allocation.

use std::fmt;

/// Where and why decoding failed; callers attach the file or key.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct DecodeError {
    /// Byte offset inside the buffer being decoded.
    pub offset: usize,
    pub reason: String,
}

impl fmt::Display for DecodeError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} (at byte {})", self.reason, self.offset)
    }
}

impl std::error::Error for DecodeError {}

/// FNV-1a, 64-bit: a stable, cheap hash for sharding and lock striping (never
/// for anything on disk or adversarial).
pub fn fnv1a(bytes: &[u8]) -> u64 {
    let mut hash: u64 = 0xcbf2_9ce4_8422_2325;
    for &byte in bytes {
        hash ^= u64::from(byte);
        hash = hash.wrapping_mul(0x0100_0000_01b3);
    }
    hash
}

/// A LEB128 u64 takes at most ten bytes.
pub const VARINT_LEN_MAX: usize = 10;

/// Appends `value` as an unsigned LEB128 varint.
/// Bytes `put_varint` writes for `value`.
pub fn varint_len(value: u64) -> usize {
    (64 - value.max(1).leading_zeros() as usize).div_ceil(7)
}

pub fn put_varint(out: &mut Vec<u8>, mut value: u64) {
    while value >= 0x80 {
        out.push((value as u8) | 0x80);
        value >>= 7;
    }
    out.push(value as u8);
}

/// Decodes a varint at the start of `buf`: the value and the bytes it took.
/// Rejects truncation, more than ten bytes, bits beyond 64, and overlong
/// encodings (so every value has exactly one encoding).
pub fn get_varint(buf: &[u8]) -> Result<(u64, usize), &'static str> {
    let mut value: u64 = 0;
    for (index, &byte) in buf.iter().enumerate().take(VARINT_LEN_MAX) {
        let payload = u64::from(byte & 0x7f);
        let shift = 7 * index as u32;
        if index == VARINT_LEN_MAX - 1 && byte > 1 {
            return Err("varint overflows 64 bits");
        }
        value |= payload << shift;
        if byte & 0x80 == 0 {
            // One value, one encoding: a trailing zero group is padding.
            if byte == 0 && index > 0 {
                return Err("overlong varint");
            }
            return Ok((value, index + 1));
        }
    }
    if buf.len() >= VARINT_LEN_MAX {
        Err("varint longer than ten bytes")
    } else {
        Err("truncated varint")
    }
}

/// Builds a record; the counterpart of `Reader`.
#[derive(Default, Debug)]
pub struct Writer {
    buf: Vec<u8>,
}

impl Writer {
    pub fn new() -> Self {
        Writer::default()
    }

    pub fn with_capacity(capacity: usize) -> Self {
        Writer {
            buf: Vec::with_capacity(capacity),
        }
    }

    pub fn u8(&mut self, value: u8) -> &mut Self {
        self.buf.push(value);
        self
    }

    pub fn u32_le(&mut self, value: u32) -> &mut Self {
        self.buf.extend_from_slice(&value.to_le_bytes());
        self
    }

    pub fn u64_le(&mut self, value: u64) -> &mut Self {
        self.buf.extend_from_slice(&value.to_le_bytes());
        self
    }

    pub fn varint(&mut self, value: u64) -> &mut Self {
        put_varint(&mut self.buf, value);
        self
    }

    /// A varint length followed by the bytes.
    pub fn bytes(&mut self, value: &[u8]) -> &mut Self {
        self.varint(value.len() as u64);
        self.buf.extend_from_slice(value);
        self
    }

    pub fn str(&mut self, value: &str) -> &mut Self {
        self.bytes(value.as_bytes())
    }

    /// Raw bytes, no length.
    pub fn raw(&mut self, value: &[u8]) -> &mut Self {
        self.buf.extend_from_slice(value);
        self
    }

    pub fn len(&self) -> usize {
        self.buf.len()
    }

    pub fn is_empty(&self) -> bool {
        self.buf.is_empty()
    }

    pub fn finish(self) -> Vec<u8> {
        self.buf
    }
}

/// Reads a record, checking every length against what remains.
#[derive(Debug)]
pub struct Reader<'a> {
    buf: &'a [u8],
    pos: usize,
}

impl<'a> Reader<'a> {
    pub fn new(buf: &'a [u8]) -> Self {
        Reader { buf, pos: 0 }
    }

    pub fn position(&self) -> usize {
        self.pos
    }

    pub fn remaining(&self) -> usize {
        self.buf.len() - self.pos
    }

    pub fn is_at_end(&self) -> bool {
        self.pos == self.buf.len()
    }

    pub fn error(&self, reason: impl Into<String>) -> DecodeError {
        DecodeError {
            offset: self.pos,
            reason: reason.into(),
        }
    }

    /// Fails unless every byte was consumed: trailing garbage is corruption.
    pub fn expect_end(&self, what: &str) -> Result<(), DecodeError> {
        if self.is_at_end() {
            Ok(())
        } else {
            Err(self.error(format!("{} trailing bytes after {what}", self.remaining())))
        }
    }

    pub fn raw(&mut self, len: usize, what: &str) -> Result<&'a [u8], DecodeError> {
        if len > self.remaining() {
            return Err(self.error(format!(
                "{what}: needs {len} bytes, {} left",
                self.remaining()
            )));
        }
        let slice = &self.buf[self.pos..self.pos + len];
        self.pos += len;
        Ok(slice)
    }

    pub fn u8(&mut self, what: &str) -> Result<u8, DecodeError> {
        Ok(self.raw(1, what)?[0])
    }

    pub fn u32_le(&mut self, what: &str) -> Result<u32, DecodeError> {
        let bytes = self.raw(4, what)?;
        Ok(u32::from_le_bytes([bytes[0], bytes[1], bytes[2], bytes[3]]))
    }

    pub fn u64_le(&mut self, what: &str) -> Result<u64, DecodeError> {
        let bytes = self.raw(8, what)?;
        let mut array = [0u8; 8];
        array.copy_from_slice(bytes);
        Ok(u64::from_le_bytes(array))
    }

    pub fn varint(&mut self, what: &str) -> Result<u64, DecodeError> {
        match get_varint(&self.buf[self.pos..]) {
            Ok((value, len)) => {
                self.pos += len;
                Ok(value)
            }
            Err(reason) => Err(self.error(format!("{what}: {reason}"))),
        }
    }

    /// A varint that must fit `limit`; for counts and lengths.
    pub fn varint_at_most(&mut self, limit: u64, what: &str) -> Result<u64, DecodeError> {
        let start = self.pos;
        let value = self.varint(what)?;
        if value > limit {
            return Err(DecodeError {
                offset: start,
                reason: format!("{what}: {value} exceeds limit {limit}"),
            });
        }
        Ok(value)
    }

    /// A length-prefixed byte string.
    pub fn bytes(&mut self, what: &str) -> Result<&'a [u8], DecodeError> {
        let len = self.varint_at_most(self.remaining() as u64, what)?;
        self.raw(len as usize, what)
    }

    pub fn str(&mut self, what: &str) -> Result<&'a str, DecodeError> {
        let start = self.pos;
        let bytes = self.bytes(what)?;
        std::str::from_utf8(bytes).map_err(|_| DecodeError {
            offset: start,
            reason: format!("{what}: not UTF-8"),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn varint_len_is_what_put_varint_writes() {
        for value in [
            0,
            1,
            127,
            128,
            16_383,
            16_384,
            u64::from(u32::MAX),
            u64::MAX,
        ] {
            let mut out = Vec::new();
            put_varint(&mut out, value);
            assert_eq!(varint_len(value), out.len(), "{value}");
        }
    }
    use proptest::prelude::*;

    #[test]
    fn varint_edges_round_trip() {
        for value in [0, 1, 127, 128, 16_383, 16_384, u32::MAX as u64, u64::MAX] {
            let mut buf = Vec::new();
            put_varint(&mut buf, value);
            assert_eq!(get_varint(&buf), Ok((value, buf.len())));
        }
    }

    #[test]
    fn varint_rejects_truncation_and_overflow() {
        assert_eq!(get_varint(&[0x80]), Err("truncated varint"));
        assert_eq!(get_varint(&[]), Err("truncated varint"));
        assert!(get_varint(&[0xff; 11]).is_err());
        // Ten bytes whose last carries more than the 64th bit.
        let mut too_big = vec![0xff; 9];
        too_big.push(0x02);
        assert_eq!(get_varint(&too_big), Err("varint overflows 64 bits"));
        // Found by the records fuzz target: 0xbd 0x00 is 0x3d padded.
        assert_eq!(get_varint(&[0xbd, 0x00]), Err("overlong varint"));
        assert_eq!(get_varint(&[0x00]), Ok((0, 1)));
    }

    #[test]
    fn reader_refuses_lengths_beyond_the_buffer() {
        let mut writer = Writer::new();
        writer.varint(1_000_000).raw(b"abc");
        let buf = writer.finish();
        let mut reader = Reader::new(&buf);
        let err = reader.bytes("state").unwrap_err();
        assert!(err.reason.contains("exceeds limit"), "{err}");
    }

    proptest! {
        #[test]
        fn varint_round_trips(value: u64) {
            let mut buf = Vec::new();
            put_varint(&mut buf, value);
            prop_assert_eq!(get_varint(&buf), Ok((value, buf.len())));
        }

        #[test]
        fn reader_never_panics_on_garbage(bytes: Vec<u8>) {
            let mut reader = Reader::new(&bytes);
            let _ = reader.str("a");
            let _ = reader.bytes("b");
            let _ = reader.varint("c");
            let _ = reader.u64_le("d");
        }
    }
}
