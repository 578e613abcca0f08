//! The crash oracle: a reference model of what an engine acknowledged.
//!
//! `floor` is the state every durable acknowledgement covers; `tail` holds the
//! batches acknowledged (or attempted) after it, in order. An engine recovered
//! after a crash must equal `floor` plus some prefix of `tail`: nothing durable
//! lost, nothing invented, batches whole, order kept. A batch whose write
//! returned an error is *uncertain*: it may or may not have taken effect, so the
//! check accepts it either way (it never makes what follows it optional).

use std::collections::BTreeMap;
use std::fmt;

use leasehold_core::kv::WriteBatch;

pub type KvMap = BTreeMap<Vec<u8>, Vec<u8>>;

#[derive(Clone, Debug)]
struct TailEntry {
    batch: WriteBatch,
    uncertain: bool,
}

/// The reference model.
#[derive(Clone, Debug, Default)]
pub struct Model {
    floor: KvMap,
    tail: Vec<TailEntry>,
    /// Tail entries a recovered state must include: those up to the last
    /// durable acknowledgement (non-zero only behind an uncertain batch, which
    /// keeps the tail from folding into the floor).
    durable_len: usize,
}

/// Most uncertain batches the check will branch over (2^n states).
const UNCERTAIN_MAX: usize = 10;

/// What the oracle found wrong.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Violation {
    pub reason: String,
}

impl fmt::Display for Violation {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.reason)
    }
}

impl std::error::Error for Violation {}

impl Model {
    pub fn new() -> Self {
        Model::default()
    }

    /// `batch` was acknowledged; `durable` when the acknowledgement promised
    /// durability (which, by the engine contract, covers every earlier batch).
    pub fn acknowledge(&mut self, batch: WriteBatch, durable: bool) {
        self.tail.push(TailEntry {
            batch,
            uncertain: false,
        });
        if durable {
            self.mark_durable();
        }
    }

    /// A write of `batch` failed: it may or may not have taken effect.
    pub fn uncertain(&mut self, batch: WriteBatch) {
        self.tail.push(TailEntry {
            batch,
            uncertain: true,
        });
    }

    /// Everything acknowledged so far is durable (a successful flush / sync).
    /// Uncertain batches stay uncertain: a flush does not settle them.
    pub fn mark_durable(&mut self) {
        if self.tail.iter().any(|entry| entry.uncertain) {
            // The floor cannot absorb a batch that may not have happened.
            self.durable_len = self.tail.len();
            return;
        }
        for entry in std::mem::take(&mut self.tail) {
            entry.batch.apply_to(&mut self.floor);
        }
        self.durable_len = 0;
    }

    /// What a reader must see now, when no write is uncertain.
    pub fn expected(&self) -> KvMap {
        let mut state = self.floor.clone();
        for entry in &self.tail {
            entry.batch.apply_to(&mut state);
        }
        state
    }

    pub fn floor(&self) -> &KvMap {
        &self.floor
    }

    pub fn tail_len(&self) -> usize {
        self.tail.len()
    }

    /// Checks a recovered state; on success returns how many tail batches it
    /// holds.
    pub fn check_recovered(&self, recovered: &KvMap) -> Result<usize, Violation> {
        let uncertain = self.tail.iter().filter(|entry| entry.uncertain).count();
        assert!(
            uncertain <= UNCERTAIN_MAX,
            "{uncertain} uncertain batches: the oracle cannot branch that far"
        );
        // States reachable after each prefix, each with the number of batches applied.
        let mut states: Vec<KvMap> = vec![self.floor.clone()];
        if self.durable_len == 0 && &self.floor == recovered {
            return Ok(0);
        }
        for (index, entry) in self.tail.iter().enumerate() {
            let mut next = Vec::with_capacity(states.len() * 2);
            for state in states {
                let mut applied = state.clone();
                entry.batch.apply_to(&mut applied);
                if entry.uncertain {
                    next.push(state);
                }
                next.push(applied);
            }
            next.dedup();
            if index + 1 >= self.durable_len && next.iter().any(|state| state == recovered) {
                return Ok(index + 1);
            }
            states = next;
        }
        Err(Violation {
            reason: self.describe_mismatch(recovered),
        })
    }

    /// A readable account of how `recovered` differs from the floor and from the
    /// full acknowledged state.
    fn describe_mismatch(&self, recovered: &KvMap) -> String {
        let lost: Vec<String> = self
            .floor
            .iter()
            .filter(|(key, value)| {
                let recovered_value = recovered.get(*key);
                recovered_value != Some(*value) && !self.tail_could_set(key, recovered_value)
            })
            .map(|(key, _)| show_key(key))
            .collect();
        let full = self.expected();
        let invented: Vec<String> = recovered
            .iter()
            .filter(|(key, value)| {
                full.get(*key) != Some(*value) && self.floor.get(*key) != Some(*value)
            })
            .map(|(key, _)| show_key(key))
            .collect();
        format!(
            "recovered state ({} keys) is not the durable floor ({} keys) plus a prefix of the {} acknowledged batches after it; \
             durable keys lost or changed: [{}]; keys with values never acknowledged: [{}]",
            recovered.len(),
            self.floor.len(),
            self.tail.len(),
            lost.join(", "),
            invented.join(", ")
        )
    }
}

impl Model {
    /// True if some tail batch leaves `key` at `value` (`None`: deleted).
    fn tail_could_set(&self, key: &[u8], value: Option<&Vec<u8>>) -> bool {
        self.tail
            .iter()
            .flat_map(|entry| &entry.batch.ops)
            .any(|op| match op {
                leasehold_core::kv::BatchOp::Put {
                    key: put_key,
                    value: put_value,
                } => put_key == key && value.is_some_and(|value| put_value == value),
                leasehold_core::kv::BatchOp::Delete { key: deleted } => {
                    deleted == key && value.is_none()
                }
            })
    }
}

fn show_key(key: &[u8]) -> String {
    String::from_utf8(key.to_vec()).unwrap_or_else(|_| format!("{key:?}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn put(key: &str, value: &str) -> WriteBatch {
        let mut batch = WriteBatch::new();
        batch.put(key.as_bytes(), value.as_bytes());
        batch
    }

    fn map(entries: &[(&str, &str)]) -> KvMap {
        entries
            .iter()
            .map(|(key, value)| (key.as_bytes().to_vec(), value.as_bytes().to_vec()))
            .collect()
    }

    #[test]
    fn recovered_must_be_floor_plus_a_prefix_of_the_tail() {
        let mut model = Model::new();
        model.acknowledge(put("a", "1"), true);
        model.acknowledge(put("b", "1"), false);
        model.acknowledge(put("a", "2"), false);
        assert_eq!(model.check_recovered(&map(&[("a", "1")])), Ok(0));
        assert_eq!(
            model.check_recovered(&map(&[("a", "1"), ("b", "1")])),
            Ok(1)
        );
        assert_eq!(
            model.check_recovered(&map(&[("a", "2"), ("b", "1")])),
            Ok(2)
        );
        // Lost durable data.
        let err = model.check_recovered(&map(&[])).unwrap_err();
        assert!(err.reason.contains("lost or changed: [a]"), "{err}");
        // Out of order: the second tail batch without the first.
        assert!(model.check_recovered(&map(&[("a", "2")])).is_err());
        // Invented value.
        let err = model
            .check_recovered(&map(&[("a", "1"), ("z", "9")]))
            .unwrap_err();
        assert!(err.reason.contains("never acknowledged: [z]"), "{err}");
    }

    #[test]
    fn a_half_applied_batch_is_a_violation() {
        let mut model = Model::new();
        let mut batch = put("a", "1");
        batch.put(b"b".to_vec(), b"1".to_vec());
        model.acknowledge(batch, false);
        assert!(model.check_recovered(&map(&[("a", "1")])).is_err());
        assert_eq!(
            model.check_recovered(&map(&[("a", "1"), ("b", "1")])),
            Ok(1)
        );
    }

    #[test]
    fn uncertain_batches_may_go_either_way_but_nothing_after_them_may_skip() {
        let mut model = Model::new();
        model.acknowledge(put("a", "1"), true);
        model.uncertain(put("b", "1"));
        assert_eq!(model.check_recovered(&map(&[("a", "1")])), Ok(0));
        assert_eq!(
            model.check_recovered(&map(&[("a", "1"), ("b", "1")])),
            Ok(1)
        );
        model.acknowledge(put("c", "1"), true);
        // c is durable; b still optional.
        assert!(model.check_recovered(&map(&[("a", "1")])).is_err());
        assert!(model
            .check_recovered(&map(&[("a", "1"), ("c", "1")]))
            .is_ok());
        assert!(model
            .check_recovered(&map(&[("a", "1"), ("b", "1"), ("c", "1")]))
            .is_ok());
    }
}
