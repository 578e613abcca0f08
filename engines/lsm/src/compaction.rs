//! Choosing what to compact (leveled, as in LevelDB) and the merge rule.
//!
//! - Level 0 is compacted into level 1 once it holds `compaction_threshold`
//!   tables: all of level 0 plus the level-1 tables they overlap.
//! - Level n ≥ 1 is compacted into n+1 once its bytes exceed its target
//!   (`level_base_bytes × level_size_ratio^(n-1)`): one table, taken round-robin
//!   through the key space, plus the level-n+1 tables it overlaps.
//! - Output keeps only the newest version of each user key. Tombstones (and
//!   entries the compaction filter rejects, such as expired snapshots) are
//!   dropped only when the output level is the bottom for that key range — no
//!   deeper level holds any of it — because above the bottom they still hide
//!   older versions below.

use std::sync::Arc;

use crate::config::LsmConfig;

use crate::manifest::LEVELS;
use crate::version::{TableFile, Version};

/// A chosen compaction.
#[derive(Debug)]
pub struct Pick {
    pub level: usize,
    pub inputs: Vec<Arc<TableFile>>,
    pub next_inputs: Vec<Arc<TableFile>>,
    pub output_level: usize,
    /// No level below the output holds any key in the inputs' range.
    pub bottommost: bool,
}

impl Pick {
    pub fn all_inputs(&self) -> impl Iterator<Item = (usize, &Arc<TableFile>)> {
        self.inputs.iter().map(|file| (self.level, file)).chain(
            self.next_inputs
                .iter()
                .map(|file| (self.output_level, file)),
        )
    }
}

/// The target size of `level` (≥ 1).
pub fn level_target(config: &LsmConfig, level: usize) -> u64 {
    let mut target = config.level_base_bytes;
    for _ in 1..level {
        target = target.saturating_mul(config.level_size_ratio);
    }
    target
}

/// The user-key range of `files`.
fn range_of(files: &[Arc<TableFile>]) -> Option<(Vec<u8>, Vec<u8>)> {
    let smallest = files.iter().map(|file| file.smallest_user_key()).min()?;
    let largest = files.iter().map(|file| file.largest_user_key()).max()?;
    Some((smallest.to_vec(), largest.to_vec()))
}

/// A manual compaction of every table of `level` (with what it overlaps one
/// level down) into `level + 1`.
pub fn pick_level(version: &Version, level: usize) -> Option<Pick> {
    if level + 1 >= LEVELS || version.levels[level].is_empty() {
        return None;
    }
    with_overlaps(version, level, version.levels[level].clone())
}

/// What to compact next, if anything. `pointers[n]` is the largest user key of
/// the last table compacted out of level n.
pub fn pick(version: &Version, config: &LsmConfig, pointers: &[Vec<u8>]) -> Option<Pick> {
    if !config.enable_compaction {
        return None;
    }
    if version.levels[0].len() >= config.compaction_threshold as usize {
        return with_overlaps(version, 0, version.levels[0].clone());
    }
    let level =
        (1..LEVELS - 1).find(|&level| version.level_bytes(level) > level_target(config, level))?;
    let files = &version.levels[level];
    let pointer = &pointers[level];
    let file = files
        .iter()
        .find(|file| pointer.is_empty() || file.smallest_user_key() > pointer.as_slice())
        .or_else(|| files.first())?;
    with_overlaps(version, level, vec![Arc::clone(file)])
}

/// `inputs` from `level` plus the tables of `level + 1` they overlap.
fn with_overlaps(version: &Version, level: usize, inputs: Vec<Arc<TableFile>>) -> Option<Pick> {
    let output_level = level + 1;
    let (smallest, largest) = range_of(&inputs)?;
    let next_inputs = version.overlapping(output_level, &smallest, &largest);
    let mut all = inputs.clone();
    all.extend(next_inputs.iter().cloned());
    let (smallest, largest) = range_of(&all)?;
    let bottommost = (output_level + 1..LEVELS)
        .all(|deeper| version.overlapping(deeper, &smallest, &largest).is_empty());
    Some(Pick {
        level,
        inputs,
        next_inputs,
        output_level,
        bottommost,
    })
}
