//! The lease invariant, checked from a store's answers: no two nodes own one
//! actor at one instant. Fed every op in trace order (per actor), it counts
//! each grant that overlaps another node's unexpired, unreleased lease, and
//! each takeover whose epoch did not rise.

use std::collections::HashMap;

use crate::trace::{Answer, Op};

#[derive(Default)]
pub struct OwnershipCheck {
    owners: HashMap<u32, Owner>,
    /// Grants while another node's lease was live (must stay 0).
    pub duplicate_owners: u64,
    /// Takeovers that did not raise the fencing epoch (must stay 0).
    pub epochs_not_raised: u64,
}

#[derive(Clone, Copy)]
struct Owner {
    node: u32,
    epoch: u64,
    expires_at_ms: u64,
    released: bool,
}

impl OwnershipCheck {
    pub fn observe(&mut self, at_ms: u64, op: &Op, answer: &Answer, lease_ms: u64) {
        match (*op, *answer) {
            (Op::Acquire { actor, node }, Answer::Acquired { epoch }) => {
                if let Some(previous) = self.owners.get(&actor) {
                    let live = !previous.released && previous.expires_at_ms > at_ms;
                    if previous.node != node && live {
                        self.duplicate_owners += 1;
                    }
                    let same_grant = previous.node == node && live;
                    if !same_grant && epoch <= previous.epoch {
                        self.epochs_not_raised += 1;
                    }
                }
                let expires_at_ms = match self.owners.get(&actor) {
                    // A retry by the owner returns the lease unchanged.
                    Some(previous)
                        if previous.node == node
                            && previous.epoch == epoch
                            && !previous.released
                            && previous.expires_at_ms > at_ms =>
                    {
                        previous.expires_at_ms
                    }
                    _ => at_ms + lease_ms,
                };
                self.owners.insert(
                    actor,
                    Owner {
                        node,
                        epoch,
                        expires_at_ms,
                        released: false,
                    },
                );
            }
            (Op::Renew { actor, .. }, Answer::Renewed { expires_at_ms }) => {
                if let Some(owner) = self.owners.get_mut(&actor) {
                    owner.expires_at_ms = expires_at_ms;
                }
            }
            (Op::Release { actor, .. }, Answer::Released) => {
                if let Some(owner) = self.owners.get_mut(&actor) {
                    owner.released = true;
                }
            }
            _ => {}
        }
    }

    /// Takes over what `other` observed, about actors this check never saw
    /// (two checks fed disjoint sets of actors become the check of their
    /// union).
    pub fn absorb(&mut self, other: OwnershipCheck) {
        debug_assert!(other
            .owners
            .keys()
            .all(|actor| !self.owners.contains_key(actor)));
        self.owners.extend(other.owners);
        self.duplicate_owners += other.duplicate_owners;
        self.epochs_not_raised += other.epochs_not_raised;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_grant_over_a_live_lease_is_a_duplicate_owner() {
        let mut check = OwnershipCheck::default();
        let acquire = |node| Op::Acquire { actor: 1, node };
        check.observe(0, &acquire(0), &Answer::Acquired { epoch: 1 }, 100);
        check.observe(50, &acquire(1), &Answer::Acquired { epoch: 2 }, 100);
        assert_eq!(check.duplicate_owners, 1);
        // After expiry a takeover is fine, but only with a higher epoch.
        check.observe(500, &acquire(0), &Answer::Acquired { epoch: 2 }, 100);
        assert_eq!(check.duplicate_owners, 1);
        assert_eq!(check.epochs_not_raised, 1);
    }

    #[test]
    fn an_absorbed_check_keeps_judging_its_actors() {
        let acquire = |actor, node| Op::Acquire { actor, node };
        let mut first = OwnershipCheck::default();
        first.observe(0, &acquire(1, 0), &Answer::Acquired { epoch: 1 }, 100);
        let mut second = OwnershipCheck::default();
        second.observe(0, &acquire(2, 0), &Answer::Acquired { epoch: 4 }, 100);
        second.observe(10, &acquire(2, 1), &Answer::Acquired { epoch: 5 }, 100);
        first.absorb(second);
        assert_eq!(first.duplicate_owners, 1);
        // Actor 2's lease, seen by the absorbed check, is still live.
        first.observe(20, &acquire(2, 2), &Answer::Acquired { epoch: 6 }, 100);
        assert_eq!(first.duplicate_owners, 2);
        first.observe(500, &acquire(2, 0), &Answer::Acquired { epoch: 6 }, 100);
        assert_eq!(first.epochs_not_raised, 1);
    }
}
