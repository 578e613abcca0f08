//! Internal keys: a user key, the sequence number of the write, and whether it
//! is a value or a tombstone.
//!
//! ```text
//! encoded = user_key | trailer: u64 little-endian = sequence << 8 | kind
//! kind    = 0 delete | 1 put (the value inline) | 2 blob (the value in a blob
//!           file; the entry holds a `blob::BlobPointer`)
//! ```
//! Internal keys sort by user key ascending, then sequence descending, so the
//! newest version of a key comes first. Encoded keys are compared with
//! `compare_encoded` (never bytewise: user keys vary in length). Written to
//! disk — do not change.

use std::cmp::Ordering;

/// An encoded internal key and its value (shared: a slice of a cached block
/// or a memtable's copy, never copied again on its way to a reader).
pub type Entry = (Vec<u8>, bytes::Bytes);

/// Sequence numbers use 56 bits.
pub const SEQUENCE_MAX: u64 = (1 << 56) - 1;
pub const TRAILER_LEN: usize = 8;

#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum ValueKind {
    Delete = 0,
    Put = 1,
    /// A put whose value lives in a blob file: the entry's value is a
    /// `blob::BlobPointer`. Only tables hold these (flushes write them).
    Blob = 2,
}

impl ValueKind {
    pub fn from_byte(byte: u8) -> Option<ValueKind> {
        match byte {
            0 => Some(ValueKind::Delete),
            1 => Some(ValueKind::Put),
            2 => Some(ValueKind::Blob),
            _ => None,
        }
    }

    /// A value, inline or in a blob file (not a tombstone).
    pub fn is_value(self) -> bool {
        self != ValueKind::Delete
    }
}

/// The kind a seek key carries: at one sequence the highest kind sorts
/// first, so a seek at an entry's sequence lands on it whatever its kind.
pub const SEEK_KIND: ValueKind = ValueKind::Blob;

/// An owned internal key.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct InternalKey {
    pub user_key: Vec<u8>,
    pub sequence: u64,
    pub kind: ValueKind,
}

impl InternalKey {
    pub fn new(user_key: impl Into<Vec<u8>>, sequence: u64, kind: ValueKind) -> Self {
        debug_assert!(sequence <= SEQUENCE_MAX);
        InternalKey {
            user_key: user_key.into(),
            sequence,
            kind,
        }
    }

    /// The smallest internal key of `user_key` visible at `sequence`: seeks
    /// land on the newest version not newer than `sequence`.
    pub fn seek_key(user_key: &[u8], sequence: u64) -> Self {
        InternalKey {
            user_key: user_key.to_vec(),
            sequence,
            kind: SEEK_KIND,
        }
    }

    pub fn encode(&self) -> Vec<u8> {
        let mut out = Vec::with_capacity(self.user_key.len() + TRAILER_LEN);
        self.encode_into(&mut out);
        out
    }

    pub fn encode_into(&self, out: &mut Vec<u8>) {
        out.extend_from_slice(&self.user_key);
        out.extend_from_slice(&trailer(self.sequence, self.kind).to_le_bytes());
    }

    pub fn decode(encoded: &[u8]) -> Option<InternalKey> {
        let (user_key, sequence, kind) = split(encoded)?;
        Some(InternalKey {
            user_key: user_key.to_vec(),
            sequence,
            kind,
        })
    }
}

/// The 8 bytes after the user key, as a number: higher sorts first.
pub fn trailer(sequence: u64, kind: ValueKind) -> u64 {
    (sequence << 8) | kind as u64
}

/// Splits an encoded internal key; `None` if it is too short or its kind
/// byte is unknown.
pub fn split(encoded: &[u8]) -> Option<(&[u8], u64, ValueKind)> {
    let user_len = encoded.len().checked_sub(TRAILER_LEN)?;
    let mut trailer = [0u8; TRAILER_LEN];
    trailer.copy_from_slice(&encoded[user_len..]);
    let trailer = u64::from_le_bytes(trailer);
    let kind = ValueKind::from_byte((trailer & 0xff) as u8)?;
    Some((&encoded[..user_len], trailer >> 8, kind))
}

/// Rewrites the kind of an encoded internal key in place (its trailer's low
/// byte), as a flush does when it moves the value to a blob file.
pub fn set_kind(encoded: &mut [u8], kind: ValueKind) {
    if let Some(at) = encoded.len().checked_sub(TRAILER_LEN) {
        encoded[at] = kind as u8;
    }
}

/// The user-key part of an encoded internal key (all of it if too short).
pub fn user_key(encoded: &[u8]) -> &[u8] {
    &encoded[..encoded.len().saturating_sub(TRAILER_LEN)]
}

impl Ord for InternalKey {
    fn cmp(&self, other: &Self) -> Ordering {
        self.user_key
            .cmp(&other.user_key)
            .then_with(|| other.sequence.cmp(&self.sequence))
            .then_with(|| (other.kind as u8).cmp(&(self.kind as u8)))
    }
}

impl PartialOrd for InternalKey {
    fn partial_cmp(&self, other: &Self) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}

/// Compares encoded internal keys as `InternalKey::cmp` would; malformed keys
/// (which decoders reject before they get here) compare bytewise.
pub fn compare_encoded(a: &[u8], b: &[u8]) -> Ordering {
    match (split(a), split(b)) {
        (Some((a_user, a_seq, a_kind)), Some((b_user, b_seq, b_kind))) => a_user
            .cmp(b_user)
            .then_with(|| b_seq.cmp(&a_seq))
            .then_with(|| (b_kind as u8).cmp(&(a_kind as u8))),
        _ => a.cmp(b),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn newest_version_sorts_first_and_short_keys_before_their_extensions() {
        let old = InternalKey::new(&b"a"[..], 5, ValueKind::Put);
        let new = InternalKey::new(&b"a"[..], 9, ValueKind::Delete);
        let longer = InternalKey::new(&b"ab"[..], 1, ValueKind::Put);
        assert!(new < old && old < longer);
        assert_eq!(
            compare_encoded(&new.encode(), &old.encode()),
            Ordering::Less
        );
        assert_eq!(
            compare_encoded(&old.encode(), &longer.encode()),
            Ordering::Less
        );
        assert!(InternalKey::seek_key(b"a", 7) < old);
        assert!(InternalKey::seek_key(b"a", 7) > new);
        // A seek at exactly an entry's sequence lands on it, whatever its kind.
        for kind in [ValueKind::Delete, ValueKind::Put, ValueKind::Blob] {
            assert!(InternalKey::seek_key(b"a", 5) <= InternalKey::new(&b"a"[..], 5, kind));
        }
    }

    proptest! {
        #[test]
        fn encoded_order_matches_key_order(
            a_key: Vec<u8>, a_seq in 0..SEQUENCE_MAX, a_put: bool,
            b_key: Vec<u8>, b_seq in 0..SEQUENCE_MAX, b_put: bool,
        ) {
            let kind = |put| if put { ValueKind::Put } else { ValueKind::Delete };
            let a = InternalKey::new(a_key, a_seq, kind(a_put));
            let b = InternalKey::new(b_key, b_seq, kind(b_put));
            prop_assert_eq!(compare_encoded(&a.encode(), &b.encode()), a.cmp(&b));
            prop_assert_eq!(InternalKey::decode(&a.encode()), Some(a));
        }
    }
}
