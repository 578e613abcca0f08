//! Judges a replay's answers as they come.

use leasehold_workloads::ownership::OwnershipCheck;
use leasehold_workloads::trace::{Answer, TraceOp};

use super::{Mismatch, MISMATCHES_KEPT};

/// Judges answers as they come — each compared with the reference's, the
/// lease rules checked per actor — so no answer is kept: a replay's memory
/// is the trace's. Each replay thread has its own judge for the actors it
/// replays (in order, across segments); whole-store ops have one more.
#[derive(Default)]
pub(super) struct Judge {
    pub check: OwnershipCheck,
    pub judged: usize,
    pub mismatch_count: u64,
    pub mismatches: Vec<Mismatch>,
    pub lease_conflicts: u64,
    pub last_ms: u64,
}

impl Judge {
    pub fn judge(&mut self, index: usize, traced: &TraceOp, actual: Answer, lease_ms: u64) {
        self.judged += 1;
        self.last_ms = self.last_ms.max(traced.at_ms);
        self.check
            .observe(traced.at_ms, &traced.op, &actual, lease_ms);
        if matches!(actual, Answer::Held { .. }) {
            self.lease_conflicts += 1;
        }
        if actual != traced.answer {
            self.mismatch_count += 1;
            if self.mismatches.len() < MISMATCHES_KEPT {
                self.mismatches.push(Mismatch {
                    index,
                    op: traced.op,
                    expected: traced.answer,
                    actual,
                });
            }
        }
    }

    /// Takes over what `other` judged, about actors this judge never saw.
    pub fn absorb(&mut self, other: Judge) {
        self.check.absorb(other.check);
        self.judged += other.judged;
        self.mismatch_count += other.mismatch_count;
        let room = MISMATCHES_KEPT.saturating_sub(self.mismatches.len());
        self.mismatches
            .extend(other.mismatches.into_iter().take(room));
        self.lease_conflicts += other.lease_conflicts;
        self.last_ms = self.last_ms.max(other.last_ms);
    }
}
