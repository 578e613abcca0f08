//! Which actor the next message goes to: uniform, or YCSB's scrambled Zipfian.
//!
//! The Zipfian sampler is the closed-form one of Gray et al. ("Quickly
//! generating billion-record synthetic databases", SIGMOD '94) that YCSB uses:
//! O(n) setup for ζ(n, θ), O(1) per sample. YCSB then scrambles the rank with
//! FNV-1a so the hot actors are spread over the key space instead of being
//! neighbours; so do we.

use leasehold_core::codec::fnv1a;
use leasehold_core::rng::SplitMix64;

use crate::scenario::Popularity;

pub enum Chooser {
    Uniform { actors: u32 },
    Zipf(ScrambledZipf),
}

impl Chooser {
    pub fn new(popularity: &Popularity, actors: u32) -> Chooser {
        match *popularity {
            Popularity::Uniform => Chooser::Uniform { actors },
            Popularity::Zipf { theta } => Chooser::Zipf(ScrambledZipf::new(actors, theta)),
        }
    }

    pub fn next(&self, rng: &mut SplitMix64) -> u32 {
        match self {
            Chooser::Uniform { actors } => rng.below(u64::from(*actors)) as u32,
            Chooser::Zipf(zipf) => zipf.next(rng),
        }
    }
}

pub struct ScrambledZipf {
    items: u32,
    theta: f64,
    alpha: f64,
    zeta_n: f64,
    eta: f64,
}

impl ScrambledZipf {
    /// `theta` within (0, 1), as scenario validation guarantees.
    pub fn new(items: u32, theta: f64) -> ScrambledZipf {
        assert!(
            items > 0 && theta > 0.0 && theta < 1.0,
            "zipf({items}, {theta})"
        );
        let zeta = |n: u32| (1..=n).map(|i| 1.0 / f64::from(i).powf(theta)).sum::<f64>();
        let zeta_n = zeta(items);
        let zeta_2 = zeta(2.min(items));
        let eta = (1.0 - (2.0 / f64::from(items)).powf(1.0 - theta)) / (1.0 - zeta_2 / zeta_n);
        ScrambledZipf {
            items,
            theta,
            alpha: 1.0 / (1.0 - theta),
            zeta_n,
            eta,
        }
    }

    /// The popularity rank (0 = hottest) before scrambling.
    pub fn rank(&self, rng: &mut SplitMix64) -> u32 {
        let u = (rng.next_u64() >> 11) as f64 / (1u64 << 53) as f64;
        let uz = u * self.zeta_n;
        if uz < 1.0 || self.items == 1 {
            return 0;
        }
        if uz < 1.0 + 0.5f64.powf(self.theta) {
            return 1;
        }
        let rank = f64::from(self.items) * (self.eta * u - self.eta + 1.0).powf(self.alpha);
        (rank as u32).min(self.items - 1)
    }

    pub fn next(&self, rng: &mut SplitMix64) -> u32 {
        let rank = self.rank(rng);
        (fnv1a(&u64::from(rank).to_le_bytes()) % u64::from(self.items)) as u32
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn zipf_ranks_follow_the_power_law() {
        let zipf = ScrambledZipf::new(1000, 0.99);
        let mut rng = SplitMix64::new(1);
        let mut counts = vec![0u32; 1000];
        for _ in 0..200_000 {
            counts[zipf.rank(&mut rng) as usize] += 1;
        }
        // P(rank 0) = 1/ζ(1000, 0.99) ≈ 0.13; rank 0 about twice rank 1.
        let top = f64::from(counts[0]) / 200_000.0;
        assert!((0.11..0.15).contains(&top), "rank 0 share {top}");
        let ratio = f64::from(counts[0]) / f64::from(counts[1]);
        assert!((1.6..2.4).contains(&ratio), "rank 0 / rank 1 = {ratio}");
        assert!(counts[500..].iter().all(|&count| count < counts[0] / 50));
    }

    #[test]
    fn scrambling_spreads_the_hot_actors() {
        let zipf = ScrambledZipf::new(10_000, 0.99);
        let mut rng = SplitMix64::new(2);
        let mut counts = std::collections::HashMap::new();
        for _ in 0..50_000 {
            *counts.entry(zipf.next(&mut rng)).or_insert(0u32) += 1;
        }
        let mut hot: Vec<(u32, u32)> = counts.into_iter().map(|(actor, n)| (n, actor)).collect();
        hot.sort_unstable_by(|a, b| b.cmp(a));
        let hottest: Vec<u32> = hot[..5].iter().map(|&(_, actor)| actor).collect();
        assert!(
            hottest.iter().any(|&actor| actor > 100),
            "hot actors {hottest:?} are all low ids"
        );
    }
}
