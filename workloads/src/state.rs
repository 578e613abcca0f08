//! Actor state bytes without storing them: every save's state is a slice of
//! one seeded pool, picked by actor, version and length. Generation and replay
//! build the same pool from the trace's seed, so the bytes — and their SHA-256
//! — agree, while a trace stays a few bytes per op and replay hands the store
//! a zero-copy `Bytes` instead of building megabytes inside the timed path.

use bytes::Bytes;
use leasehold_core::rng::SplitMix64;

/// Pool bytes beyond the largest state, so large states still start at many
/// different offsets (and so differ between versions).
const POOL_SLACK_BYTES: usize = 1 << 20;

pub struct StatePool {
    pool: Bytes,
}

impl StatePool {
    pub fn new(seed: u64, state_bytes_max: u32) -> StatePool {
        let mut pool = vec![0u8; state_bytes_max as usize + POOL_SLACK_BYTES];
        SplitMix64::new(seed ^ 0x5747_4154_4553_0001).fill(&mut pool);
        StatePool {
            pool: Bytes::from(pool),
        }
    }

    /// The state `actor` writes as `version`, `len` bytes long (at most the
    /// pool's `state_bytes_max`).
    pub fn state(&self, actor: u32, version: u64, len: u32) -> Bytes {
        let len = (len as usize).min(self.pool.len() - POOL_SLACK_BYTES);
        let room = (self.pool.len() - len) as u64;
        let mut mix = SplitMix64::new((u64::from(actor) << 32) ^ version);
        let offset = (mix.next_u64() % room) as usize;
        self.pool.slice(offset..offset + len)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn states_are_deterministic_and_differ_between_versions() {
        let one = StatePool::new(7, 4096);
        let two = StatePool::new(7, 4096);
        assert_eq!(one.state(3, 1, 100), two.state(3, 1, 100));
        assert_ne!(one.state(3, 1, 100), one.state(3, 2, 100));
        assert_eq!(one.state(3, 1, 4096).len(), 4096);
    }
}
