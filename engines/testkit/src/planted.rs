//! The engines' planted-bug tests, written once: each bug an engine plants
//! must be caught, within a bounded run, by the family of cases that can
//! see it. An engine's test names its bugs by family and how to open it
//! with one planted; a bug that goes unnoticed fails the test.

use std::fmt::Debug;
use std::path::Path;

use leasehold_core::vfs::SimVfs;
use leasehold_core::{KvEngine, KvResult};

use crate::{crash, damage};

/// The cases that can see a kind of bug.
#[derive(Clone, Copy, Debug)]
pub enum Family<'a> {
    /// Crashes at every point of a run (an unsynced or early-acknowledged
    /// write).
    Crash,
    /// Read faults: I/O errors, flipped bits, short reads (a checksum not
    /// checked).
    ReadFaults,
    /// Damage at rest to the files under this directory, and a second
    /// opener (a lock not taken, a file taken at its word).
    Damage(&'a Path),
}

/// The cases each family gets to find a bug, of at most `OPS_MAX` ops.
pub const CASES: u32 = 2_000;
const OPS_MAX: usize = 32;

/// Asserts that `family` catches each of `bugs` within [`CASES`] cases,
/// the engine opened by `open(bug)`.
pub fn assert_caught<B, E, O>(family: Family<'_>, bugs: &[B], open: impl Fn(B) -> O)
where
    B: Copy + Debug,
    E: KvEngine,
    O: Fn(SimVfs) -> KvResult<E>,
{
    for &bug in bugs {
        let open = open(bug);
        let found = match family {
            Family::Crash => crash::search(&open, CASES, OPS_MAX),
            Family::ReadFaults => {
                crash::search_with(&open, CASES, OPS_MAX, Some(&crash::read_fault_config()))
            }
            Family::Damage(dir) => damage::search_damage(&open, dir, CASES, OPS_MAX),
        };
        assert!(
            found.is_err(),
            "{bug:?} went unnoticed by {CASES} {family:?} cases"
        );
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use super::*;
    use crate::toy::ToyLogEngine;

    fn toy(ack_before_fsync: bool) -> impl Fn(SimVfs) -> KvResult<ToyLogEngine> {
        move |vfs| ToyLogEngine::open(Arc::new(vfs), Path::new("/toy"), ack_before_fsync)
    }

    #[test]
    fn a_planted_bug_the_family_sees_is_caught() {
        assert_caught(Family::Crash, &[true], toy);
    }

    /// The check can fail: an engine without the bug is not "caught".
    #[test]
    #[should_panic(expected = "went unnoticed")]
    fn an_engine_without_the_bug_fails_the_check() {
        assert_caught(Family::Crash, &[false], toy);
    }
}
