//! Media damage at rest: the files of a closed store damaged one way at a
//! time — a byte flipped, a sector zeroed, a file truncated or removed — and
//! the store opened again. The rule every local engine must keep: the store
//! opens with every key right, or an open or a read fails with a typed error.
//! "Opened fine, data missing (or changed, or extra)" is the violation.
//!
//! The damage goes through the `Vfs` interface, so the same sweep runs on a
//! `SimVfs` image (fast, in engines' default tests and the crash campaign)
//! and on a copy of a real directory on `OsVfs`.

use std::fmt;
use std::io;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use leasehold_core::kv::KvEngine;
use leasehold_core::rng::SplitMix64;
use leasehold_core::vfs::{read_exact_at, write_all_at, Vfs};

use super::crash::collect_all;
use super::oracle::KvMap;

/// Sector size of the zeroing damage (a lost or unreadable device sector).
pub const SECTOR_BYTES: u64 = 512;

/// One way of damaging one file.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Damage {
    /// XOR `mask` (non-zero) into the byte at `offset`.
    Flip { offset: u64, mask: u8 },
    /// Zeros over the sector at `offset` (clipped to the file's end).
    ZeroSector { offset: u64 },
    /// The file cut to `len` bytes.
    Truncate { len: u64 },
    /// The file gone.
    Remove,
}

/// A damage to a named file of the store's directory.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct DamageCase {
    pub file: String,
    pub damage: Damage,
}

impl fmt::Display for DamageCase {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.damage {
            Damage::Flip { offset, mask } => {
                write!(f, "{}: byte {offset} flipped (^{mask:#04x})", self.file)
            }
            Damage::ZeroSector { offset } => write!(f, "{}: sector at {offset} zeroed", self.file),
            Damage::Truncate { len } => write!(f, "{}: truncated to {len} bytes", self.file),
            Damage::Remove => write!(f, "{}: removed", self.file),
        }
    }
}

/// How densely to damage: which files are metadata (CURRENT, manifests, meta
/// pages — where one byte names everything else), and how many offsets and
/// sectors to try elsewhere.
#[derive(Clone, Copy)]
pub struct Density<'a> {
    pub is_metadata: &'a dyn Fn(&str) -> bool,
    /// Offsets tried in a metadata file: every byte up to this many, else
    /// this many evenly spread.
    pub metadata_offsets: u64,
    /// Random offsets tried in any other file, besides its first and last 8
    /// bytes; also the most sectors zeroed in one file.
    pub sampled: usize,
}

/// The damage cases for a file of `len` bytes (see `Density`), plus
/// truncation to 0, half and all but one byte, and removal.
pub fn cases_for_file(
    file: &str,
    len: u64,
    density: Density<'_>,
    rng: &mut SplitMix64,
) -> Vec<DamageCase> {
    let mut offsets: Vec<u64> = if (density.is_metadata)(file) {
        let stride = len.div_ceil(density.metadata_offsets.max(1)).max(1);
        (0..len).step_by(stride as usize).collect()
    } else {
        let mut offsets: Vec<u64> = (0..8.min(len)).chain(len.saturating_sub(8)..len).collect();
        if len > 0 {
            offsets.extend((0..density.sampled).map(|_| rng.below(len)));
        }
        offsets
    };
    offsets.sort_unstable();
    offsets.dedup();
    let mut damages: Vec<Damage> = offsets
        .into_iter()
        .map(|offset| Damage::Flip {
            offset,
            mask: 1 << rng.below(8),
        })
        .collect();
    let sectors = len.div_ceil(SECTOR_BYTES);
    let mut zeroed: Vec<u64> = if sectors as usize <= density.sampled {
        (0..sectors).collect()
    } else {
        (0..density.sampled).map(|_| rng.below(sectors)).collect()
    };
    zeroed.sort_unstable();
    zeroed.dedup();
    damages.extend(zeroed.into_iter().map(|sector| Damage::ZeroSector {
        offset: sector * SECTOR_BYTES,
    }));
    let mut cuts = vec![0, len / 2, len.saturating_sub(1)];
    cuts.dedup();
    damages.extend(
        cuts.into_iter()
            .filter(|&cut| cut < len)
            .map(|len| Damage::Truncate { len }),
    );
    damages.push(Damage::Remove);
    damages
        .into_iter()
        .map(|damage| DamageCase {
            file: file.to_owned(),
            damage,
        })
        .collect()
}

/// Every file of `dir` and its cases (see `cases_for_file`).
pub fn cases_for_dir(
    vfs: &dyn Vfs,
    dir: &Path,
    density: Density<'_>,
    seed: u64,
) -> io::Result<Vec<DamageCase>> {
    let mut rng = SplitMix64::new(seed);
    let mut cases = Vec::new();
    for name in vfs.list(dir)? {
        let len = vfs.file_size(&dir.join(&name))?;
        cases.extend(cases_for_file(&name, len, density, &mut rng));
    }
    Ok(cases)
}

/// Applies `case` to `dir` on `vfs`, durably (as damage on the medium is).
pub fn apply(vfs: &dyn Vfs, dir: &Path, case: &DamageCase) -> io::Result<()> {
    let path = dir.join(&case.file);
    match case.damage {
        Damage::Flip { offset, mask } => {
            let file = vfs.open(&path)?;
            let mut byte = [0u8];
            read_exact_at(file.as_ref(), &mut byte, offset)?;
            write_all_at(file.as_ref(), &[byte[0] ^ mask], offset)?;
            file.sync()
        }
        Damage::ZeroSector { offset } => {
            let file = vfs.open(&path)?;
            let end = file.len()?.min(offset + SECTOR_BYTES);
            let zeros = vec![0u8; end.saturating_sub(offset) as usize];
            write_all_at(file.as_ref(), &zeros, offset)?;
            file.sync()
        }
        Damage::Truncate { len } => {
            let file = vfs.open(&path)?;
            file.set_len(len)?;
            file.sync()
        }
        Damage::Remove => {
            vfs.remove(&path)?;
            vfs.sync_dir(dir)
        }
    }
}

/// What a damaged store did.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Outcome {
    /// Opened, and every key read right (the damage touched nothing live).
    Intact,
    /// The open failed with a typed error.
    Refused(String),
    /// Opened, but a read, scan or `verify` reported the damage.
    ReadError(String),
}

/// Judges an open of a damaged store against `model`, the store's content
/// before the damage. `Err` is a violation: a key missing, changed or extra
/// with no error said.
pub fn judge<E: KvEngine>(
    opened: leasehold_core::KvResult<E>,
    model: &KvMap,
) -> Result<Outcome, String> {
    let engine = match opened {
        Ok(engine) => engine,
        Err(err) => return Ok(Outcome::Refused(err.to_string())),
    };
    let outcome = judge_open(&engine, model);
    let _ = engine.close();
    outcome
}

fn judge_open(engine: &dyn KvEngine, model: &KvMap) -> Result<Outcome, String> {
    for (key, value) in model {
        match engine.get(key) {
            Ok(Some(found)) if &found == value => {}
            Ok(found) => {
                return Err(format!(
                    "opened without error, but key {:?} reads {:?} (expected {} bytes)",
                    String::from_utf8_lossy(key),
                    found.map(|found| found.len()),
                    value.len()
                ))
            }
            Err(err) => return Ok(Outcome::ReadError(err.to_string())),
        }
    }
    match collect_all(engine) {
        Ok(all) if &all == model => {}
        Ok(all) => {
            let extra = all.keys().find(|key| !model.contains_key(*key));
            return Err(format!(
                "opened without error, but a scan holds {} entries for {} written (extra: {:?})",
                all.len(),
                model.len(),
                extra.map(|key| String::from_utf8_lossy(key).into_owned())
            ));
        }
        Err(err) => return Ok(Outcome::ReadError(err.to_string())),
    }
    match engine.verify() {
        Ok(report) if report.is_clean() => Ok(Outcome::Intact),
        Ok(report) => Ok(Outcome::ReadError(report.problems.join("; "))),
        Err(err) => Ok(Outcome::ReadError(err.to_string())),
    }
}

/// How a sweep went.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct DamageReport {
    pub cases: usize,
    pub intact: usize,
    pub refused: usize,
    pub read_errors: usize,
}

/// A fresh copy of a closed store to damage: the Vfs and the directory on it
/// holding the store (and, for a copy on the real disk, the temporary
/// directory that must live as long as the copy).
pub struct Copy {
    pub vfs: Arc<dyn Vfs>,
    pub dir: PathBuf,
    pub keep: Option<tempfile::TempDir>,
}

/// A copy of the closed store on `vfs` in `dir` into a new temporary
/// directory on the real disk (for sweeps on `OsVfs`).
pub fn copy_os_dir(dir: &Path) -> io::Result<Copy> {
    let keep = tempfile::tempdir()?;
    for entry in std::fs::read_dir(dir)? {
        let entry = entry?;
        if entry.file_type()?.is_file() {
            std::fs::copy(entry.path(), keep.path().join(entry.file_name()))?;
        }
    }
    Ok(Copy {
        vfs: Arc::new(leasehold_core::vfs::OsVfs::new()),
        dir: keep.path().to_path_buf(),
        keep: Some(keep),
    })
}

/// Opens an engine on a Vfs, in a directory.
pub type OpenAt<'a, E> = dyn Fn(Arc<dyn Vfs>, &Path) -> leasehold_core::KvResult<E> + 'a;

/// A copy of the closed store in `dir` on the simulated disk `vfs` (a
/// process-crash image: everything written, nothing lost).
pub fn copy_sim(vfs: &leasehold_core::vfs::SimVfs, dir: &Path) -> io::Result<Copy> {
    Ok(Copy {
        vfs: Arc::new(vfs.crash_image(leasehold_core::vfs::CrashPolicy::ProcessCrash, 0)),
        dir: dir.to_path_buf(),
        keep: None,
    })
}

/// Runs every case: `copy` gives a fresh copy of the closed store, the case
/// damages it, `open` opens it (on the copy's Vfs, in its directory), `judge`
/// decides. The first violation is the error, with its case.
pub fn sweep<E: KvEngine>(
    copy: &dyn Fn() -> io::Result<Copy>,
    open: &OpenAt<'_, E>,
    model: &KvMap,
    cases: &[DamageCase],
) -> Result<DamageReport, String> {
    let mut report = DamageReport::default();
    for case in cases {
        let copy = copy().map_err(|err| format!("{case}: cannot copy the store: {err}"))?;
        apply(copy.vfs.as_ref(), &copy.dir, case)
            .map_err(|err| format!("{case}: cannot damage: {err}"))?;
        match judge(open(Arc::clone(&copy.vfs), &copy.dir), model)
            .map_err(|reason| format!("{case}: {reason}"))?
        {
            Outcome::Intact => report.intact += 1,
            Outcome::Refused(_) => report.refused += 1,
            Outcome::ReadError(_) => report.read_errors += 1,
        }
        report.cases += 1;
    }
    Ok(report)
}

/// What one campaign case of the media-damage family did.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct DamageCaseReport {
    pub damage: DamageCase,
    pub outcome: Outcome,
    pub acknowledged: usize,
}

/// The damage a case applies: a file of the closed store picked uniformly,
/// then a byte flipped (half the cases), a sector zeroed, the file truncated
/// at a random length, or removed.
pub fn pick_damage(
    vfs: &dyn Vfs,
    dir: &Path,
    rng: &mut SplitMix64,
) -> io::Result<Option<DamageCase>> {
    let files = vfs.list(dir)?;
    if files.is_empty() {
        return Ok(None);
    }
    let file = files[rng.below(files.len() as u64) as usize].clone();
    let len = vfs.file_size(&dir.join(&file))?;
    let roll = rng.below(10);
    let damage = if len == 0 || roll == 9 {
        Damage::Remove
    } else if roll < 5 {
        Damage::Flip {
            offset: rng.below(len),
            mask: 1 << rng.below(8),
        }
    } else if roll < 7 {
        Damage::ZeroSector {
            offset: rng.below(len.div_ceil(SECTOR_BYTES)) * SECTOR_BYTES,
        }
    } else {
        Damage::Truncate {
            len: rng.below(len),
        }
    };
    Ok(Some(DamageCase { file, damage }))
}

/// A case of the campaign's media-damage family. The case's operations run
/// to the end on a fresh simulated disk (no crash); then a second open of
/// the live store must be refused with `Locked` (a second opener must never
/// touch a live directory); the store is closed; one damage picked from the
/// case's seed is applied to its directory `dir`; and the store is opened
/// again: every acknowledged key right, or a typed error (`judge`).
pub fn run_damage_case<E: KvEngine>(
    open: &dyn Fn(leasehold_core::vfs::SimVfs) -> leasehold_core::KvResult<E>,
    dir: &Path,
    case: &super::crash::CrashCase,
) -> Result<DamageCaseReport, super::oracle::Violation> {
    use super::crash::CrashOp;
    use super::oracle::Violation;
    let violation = |reason: String| Violation { reason };
    let failed = |what: &str, err: &dyn fmt::Display| {
        violation(format!("{what} failed on a healthy disk: {err}"))
    };
    let vfs = leasehold_core::vfs::SimVfs::new(case.seed);
    let mut engine = open(vfs.clone()).map_err(|err| failed("open", &err))?;
    let mut model = KvMap::new();
    let mut acknowledged = 0;
    for op in &case.ops {
        match op {
            CrashOp::Write { ops, durability } => {
                let batch = CrashOp::batch(ops);
                engine
                    .write(batch.clone(), *durability)
                    .map_err(|err| failed("write", &err))?;
                batch.apply_to(&mut model);
                acknowledged += 1;
            }
            CrashOp::Flush => engine.flush().map_err(|err| failed("flush", &err))?,
            CrashOp::Reopen => {
                engine.close().map_err(|err| failed("close", &err))?;
                drop(engine);
                engine = open(vfs.clone()).map_err(|err| failed("reopen", &err))?;
            }
        }
    }
    match open(vfs.clone()) {
        Err(leasehold_core::KvError::Locked { .. }) => {}
        Ok(_) => {
            return Err(violation(
                "a second open of a live store was allowed (it may delete the live store's files)"
                    .into(),
            ))
        }
        Err(err) => {
            return Err(violation(format!(
                "a second open of a live store failed with `{err}`, not Locked"
            )))
        }
    }
    if collect_all(&engine).map_err(|err| failed("scan", &err))? != model {
        return Err(violation(
            "the live store changed when a second open was refused".into(),
        ));
    }
    engine.close().map_err(|err| failed("close", &err))?;
    drop(engine);
    let mut rng = SplitMix64::new(case.seed ^ 0xda3a_6e00_0000_0001);
    let Some(damage) = pick_damage(&vfs, dir, &mut rng).map_err(|err| failed("list", &err))? else {
        return Err(violation(format!(
            "{} holds no file after a close",
            dir.display()
        )));
    };
    apply(&vfs, dir, &damage).map_err(|err| failed("damaging", &err))?;
    let outcome = judge(open(vfs.clone()), &model)
        .map_err(|reason| violation(format!("{damage}: {reason}")))?;
    Ok(DamageCaseReport {
        damage,
        outcome,
        acknowledged,
    })
}

/// `cases` random damage-family cases (`run_damage_case`) of at most `ops_max`
/// operations, on the engine `open` builds in `dir`; the shrunk failing case,
/// if any. Deterministic unless `LEASEHOLD_CRASH_SEED` is set.
pub fn search_damage<E: KvEngine>(
    open: &dyn Fn(leasehold_core::vfs::SimVfs) -> leasehold_core::KvResult<E>,
    dir: &Path,
    cases: u32,
    ops_max: usize,
) -> Result<(), (super::crash::CrashCase, String)> {
    super::crash::search_cases(cases, ops_max, &|case| {
        run_damage_case(open, dir, case).map(|_| ())
    })
}
