//! Checksummed record framing, the one way every engine puts a record on disk.
//!
//! ```text
//! +----------------+----------------+-------------------+
//! | checksum: u32  | length: u32    | payload           |
//! | little endian  | little endian  | `length` bytes    |
//! +----------------+----------------+-------------------+
//! ```
//!
//! `checksum` is the masked CRC-32 (crc32fast) of the length bytes followed by
//! the payload, so a torn or shifted length is caught as surely as a bad payload.
//! The mask (rotate and add a constant, as LevelDB does) keeps the CRC of a
//! record that itself embeds CRCs from being trivially related to them.
//! Written to disk — do not change.

/// Bytes before the payload.
pub const FRAME_HEADER_LEN: usize = 8;

/// Largest payload one frame may carry (written to disk as u32).
pub const FRAME_PAYLOAD_LEN_MAX: usize = u32::MAX as usize;

const MASK_DELTA: u32 = 0xa282_ead8;

/// The masked CRC-32 of `parts` taken in order.
pub fn checksum(parts: &[&[u8]]) -> u32 {
    let mut hasher = crc32fast::Hasher::new();
    for part in parts {
        hasher.update(part);
    }
    mask(hasher.finalize())
}

fn mask(crc: u32) -> u32 {
    crc.rotate_right(15).wrapping_add(MASK_DELTA)
}

/// Appends one frame holding `payload` to `out`.
///
/// Panics if the payload is longer than `FRAME_PAYLOAD_LEN_MAX`: callers bound
/// their records long before that (an internal invariant, not input checking):
/// every engine refuses batches above `kv::BATCH_BYTES_MAX` (2 GiB), and the
/// memory engine refuses writes that would grow its one-frame backup past it.
pub fn encode(payload: &[u8], out: &mut Vec<u8>) {
    encode_parts(&[payload], out);
}

/// `encode` of the payload that is `parts` joined, without joining them
/// first (the same bytes; a large value is copied once, into `out`).
pub fn encode_parts(parts: &[&[u8]], out: &mut Vec<u8>) {
    let len: usize = parts.iter().map(|part| part.len()).sum();
    assert!(len <= FRAME_PAYLOAD_LEN_MAX, "frame payload of {len} bytes");
    let length = (len as u32).to_le_bytes();
    let mut hasher = crc32fast::Hasher::new();
    hasher.update(&length);
    for part in parts {
        hasher.update(part);
    }
    out.reserve(FRAME_HEADER_LEN + len);
    out.extend_from_slice(&mask(hasher.finalize()).to_le_bytes());
    out.extend_from_slice(&length);
    for part in parts {
        out.extend_from_slice(part);
    }
}

/// Why the frame at `offset` could not be read.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum FrameError {
    /// The buffer ends inside the header or the payload (a torn tail, when it is
    /// the end of a log).
    Truncated { offset: usize },
    /// The checksum does not match the bytes.
    Checksum { offset: usize },
}

impl FrameError {
    pub fn offset(&self) -> usize {
        match self {
            FrameError::Truncated { offset } | FrameError::Checksum { offset } => *offset,
        }
    }

    pub fn reason(&self) -> &'static str {
        match self {
            FrameError::Truncated { .. } => "frame truncated",
            FrameError::Checksum { .. } => "frame checksum mismatch",
        }
    }
}

/// Decodes the frame starting at `offset`: its payload and the offset after it.
/// `Ok(None)` when `offset` is exactly the end of the buffer.
pub fn decode(buf: &[u8], offset: usize) -> Result<Option<(&[u8], usize)>, FrameError> {
    if offset == buf.len() {
        return Ok(None);
    }
    let header_end = offset
        .checked_add(FRAME_HEADER_LEN)
        .filter(|&end| end <= buf.len());
    let Some(header_end) = header_end else {
        return Err(FrameError::Truncated { offset });
    };
    let stored = u32::from_le_bytes([
        buf[offset],
        buf[offset + 1],
        buf[offset + 2],
        buf[offset + 3],
    ]);
    let length_bytes = &buf[offset + 4..header_end];
    let length = u32::from_le_bytes([
        length_bytes[0],
        length_bytes[1],
        length_bytes[2],
        length_bytes[3],
    ]) as usize;
    if length > buf.len() - header_end {
        return Err(FrameError::Truncated { offset });
    }
    let payload = &buf[header_end..header_end + length];
    if checksum(&[length_bytes, payload]) != stored {
        return Err(FrameError::Checksum { offset });
    }
    Ok(Some((payload, header_end + length)))
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn framed(payloads: &[&[u8]]) -> Vec<u8> {
        let mut out = Vec::new();
        for payload in payloads {
            encode(payload, &mut out);
        }
        out
    }

    #[test]
    fn frames_round_trip_in_sequence() {
        let buf = framed(&[b"one", b"", b"three"]);
        let (first, next) = decode(&buf, 0).unwrap().unwrap();
        assert_eq!(first, b"one");
        let (second, next) = decode(&buf, next).unwrap().unwrap();
        assert_eq!(second, b"");
        let (third, next) = decode(&buf, next).unwrap().unwrap();
        assert_eq!(third, b"three");
        assert_eq!(decode(&buf, next), Ok(None));
    }

    #[test]
    fn a_cut_frame_is_truncated_and_a_flipped_bit_is_a_checksum_error() {
        let buf = framed(&[b"payload"]);
        assert_eq!(
            decode(&buf[..buf.len() - 1], 0),
            Err(FrameError::Truncated { offset: 0 })
        );
        assert_eq!(
            decode(&buf[..3], 0),
            Err(FrameError::Truncated { offset: 0 })
        );
        let mut flipped = buf.clone();
        flipped[FRAME_HEADER_LEN + 2] ^= 0x10;
        assert_eq!(decode(&flipped, 0), Err(FrameError::Checksum { offset: 0 }));
        // A corrupted length that still fits the buffer is caught by the checksum.
        let mut two = framed(&[b"abcdef", b"gh"]);
        two[4] = 2;
        assert_eq!(decode(&two, 0), Err(FrameError::Checksum { offset: 0 }));
    }

    #[test]
    fn zeroed_space_is_not_a_valid_frame() {
        assert_eq!(
            decode(&[0u8; 64], 0),
            Err(FrameError::Checksum { offset: 0 })
        );
    }

    proptest! {
        #[test]
        fn decode_never_panics_and_only_accepts_what_was_encoded(bytes: Vec<u8>, payload: Vec<u8>) {
            let _ = decode(&bytes, 0);
            let buf = framed(&[&payload]);
            prop_assert_eq!(decode(&buf, 0), Ok(Some((&payload[..], buf.len()))));
        }

        #[test]
        fn any_single_bit_flip_is_detected(payload in proptest::collection::vec(any::<u8>(), 0..256), bit: usize) {
            let mut buf = framed(&[&payload]);
            let bit = bit % (buf.len() * 8);
            buf[bit / 8] ^= 1 << (bit % 8);
            prop_assert!(decode(&buf, 0).is_err());
        }
    }
}
