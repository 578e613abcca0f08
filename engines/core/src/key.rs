//! `ActorKey` and its order-preserving byte encoding.
//!
//! ```text
//! escaped(actor_type) 0x00 0x01 actor_id
//! ```
//! `escaped` writes every 0x00 byte of the type as 0x00 0xFF, so the terminator
//! 0x00 0x01 sorts below any continuation of the type. Byte order of encoded keys
//! is therefore (actor_type, actor_id) order, and one type's actors are one
//! contiguous range starting at `type_prefix(actor_type)`. Written to disk — do
//! not change.

use std::fmt;

use crate::codec::DecodeError;

/// Identifies one virtual actor.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct ActorKey {
    pub actor_type: String,
    pub actor_id: String,
}

const ESCAPE: u8 = 0x00;
const ESCAPED_ZERO: u8 = 0xff;
const TERMINATOR: u8 = 0x01;

impl ActorKey {
    pub fn new(actor_type: impl Into<String>, actor_id: impl Into<String>) -> Self {
        ActorKey {
            actor_type: actor_type.into(),
            actor_id: actor_id.into(),
        }
    }

    /// The order-preserving encoding.
    pub fn encode(&self) -> Vec<u8> {
        let mut out = type_prefix(&self.actor_type);
        out.extend_from_slice(self.actor_id.as_bytes());
        out
    }

    /// Inverse of `encode`.
    pub fn decode(bytes: &[u8]) -> Result<ActorKey, DecodeError> {
        let mut actor_type = Vec::new();
        let mut index = 0;
        loop {
            match bytes.get(index) {
                None => {
                    return Err(DecodeError {
                        offset: index,
                        reason: "actor key has no type terminator".into(),
                    })
                }
                Some(&ESCAPE) => match bytes.get(index + 1) {
                    Some(&ESCAPED_ZERO) => actor_type.push(0),
                    Some(&TERMINATOR) => break,
                    _ => {
                        return Err(DecodeError {
                            offset: index,
                            reason: "bad escape in actor type".into(),
                        })
                    }
                },
                Some(&byte) => {
                    actor_type.push(byte);
                    index += 1;
                    continue;
                }
            }
            index += 2;
        }
        let id_start = index + 2;
        let actor_type = String::from_utf8(actor_type).map_err(|_| DecodeError {
            offset: 0,
            reason: "actor type is not UTF-8".into(),
        })?;
        let actor_id = std::str::from_utf8(&bytes[id_start..]).map_err(|_| DecodeError {
            offset: id_start,
            reason: "actor id is not UTF-8".into(),
        })?;
        Ok(ActorKey {
            actor_type,
            actor_id: actor_id.to_owned(),
        })
    }
}

/// The encoded prefix shared by every key of `actor_type`.
pub fn type_prefix(actor_type: &str) -> Vec<u8> {
    let mut out = Vec::with_capacity(actor_type.len() + 2);
    for &byte in actor_type.as_bytes() {
        out.push(byte);
        if byte == ESCAPE {
            out.push(ESCAPED_ZERO);
        }
    }
    out.push(ESCAPE);
    out.push(TERMINATOR);
    out
}

impl fmt::Display for ActorKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.actor_type, self.actor_id)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn one_types_actors_are_contiguous_even_when_type_names_share_a_prefix() {
        let mut keys = [
            ActorKey::new("UserX", "a"),
            ActorKey::new("User", "zzz"),
            ActorKey::new("User", ""),
            ActorKey::new("Use", "\u{10ffff}"),
            ActorKey::new("User\0", "b"),
        ];
        keys.sort_by_key(|key| key.encode());
        let types: Vec<&str> = keys.iter().map(|key| key.actor_type.as_str()).collect();
        assert_eq!(types, ["Use", "User", "User", "User\0", "UserX"]);
        assert!(ActorKey::new("User", "zzz")
            .encode()
            .starts_with(&type_prefix("User")));
        assert!(!ActorKey::new("UserX", "a")
            .encode()
            .starts_with(&type_prefix("User")));
    }

    #[test]
    fn decode_rejects_keys_without_terminator_or_with_bad_escapes() {
        assert!(ActorKey::decode(b"abc").is_err());
        assert!(ActorKey::decode(&[b'a', 0x00, 0x07]).is_err());
    }

    proptest! {
        #[test]
        fn encoding_round_trips_and_preserves_order(a_type: String, a_id: String, b_type: String, b_id: String) {
            let a = ActorKey::new(a_type, a_id);
            let b = ActorKey::new(b_type, b_id);
            prop_assert_eq!(ActorKey::decode(&a.encode()).unwrap(), a.clone());
            prop_assert_eq!(a.encode().cmp(&b.encode()), a.cmp(&b));
        }

        #[test]
        fn decode_never_panics(bytes: Vec<u8>) {
            let _ = ActorKey::decode(&bytes);
        }
    }
}
