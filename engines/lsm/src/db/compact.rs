//! Compactions: a pick of tables merged into the next level, installed by one
//! manifest edit (FORMAT.md, "Compaction"), and the blob-file garbage
//! collection that rides on them ("Blob files"): every pointer a compaction
//! reads and does not write back out is garbage in its blob file; live values
//! met in old, garbage-heavy blob files are copied to a new one; a blob file
//! all garbage is deleted by the edit that made it so.

use std::collections::{BTreeMap, BTreeSet};

use super::*;
use crate::blob::{BlobMeta, BlobPointer};
use crate::manifest::BlobGarbage;

/// What a compaction wrote, and what it did to the blob files.
struct Merged {
    tables: Vec<FileMeta>,
    blobs: Vec<BlobMeta>,
    garbage: Vec<BlobGarbage>,
    relocated: u64,
}

/// (count, bytes) of blob records, per blob file.
type Refs = BTreeMap<u64, (u64, u64)>;

fn count_ref(refs: &mut Refs, pointer: &BlobPointer) {
    let entry = refs.entry(pointer.file).or_default();
    entry.0 += 1;
    entry.1 += pointer.length;
}

fn pointer_of(key: &[u8], value: &Bytes) -> KvResult<Option<BlobPointer>> {
    match format::split(key) {
        Some((_, _, ValueKind::Blob)) => BlobPointer::decode(value)
            .map(Some)
            .map_err(|err| KvError::corruption(Path::new("blob pointer"), 0, err.to_string())),
        _ => Ok(None),
    }
}

/// The blob files whose live values a compaction copies out: among the
/// oldest `blob_gc_age_cutoff` share, those at least `blob_gc_garbage_ratio`
/// garbage. A file outside it is left alone even if mostly garbage: its
/// values are young and likely to be overwritten before they are worth
/// copying (RocksDB's and fjall's age cutoff).
pub(super) fn relocation_candidates(version: &Version, config: &LsmConfig) -> BTreeSet<u64> {
    let oldest = (version.blobs.len() as f64 * config.blob_gc_age_cutoff).ceil() as usize;
    version
        .blobs
        .iter()
        .take(oldest)
        .filter(|(_, live)| live.garbage_ratio() >= config.blob_gc_garbage_ratio)
        .map(|(number, _)| *number)
        .collect()
}

impl Inner {
    /// Runs one compaction if one is due. False when none was.
    pub(super) fn compact_once(&self) -> KvResult<bool> {
        let _compactor = self.compactor.lock();
        let pick = {
            let versions = self.versions.lock();
            let version = Arc::clone(&self.state.read().version);
            compaction::pick(&version, &self.config, &versions.pointers)
        };
        let Some(pick) = pick else {
            return Ok(false);
        };
        self.run_pick(&pick)?;
        Ok(true)
    }

    /// Runs the compaction `pick`: merge, log the edit, install, delete
    /// inputs and blob files left all garbage. The caller holds `compactor`;
    /// a flush may install level-0 tables and new blob files meanwhile (newer
    /// than every input, so what the merge drops stays right, and no old blob
    /// file's garbage changes), and the edit applies to the version current
    /// then.
    pub(super) fn run_pick(&self, pick: &Pick) -> KvResult<()> {
        // Only a compaction changes blob garbage, and the caller holds
        // `compactor`: these counts stay current until the install.
        let version = Arc::clone(&self.state.read().version);
        let merged = self
            .run_compaction(pick, &version)
            .map_err(|err| self.fail(err))?;
        let blobs_deleted: Vec<u64> = merged
            .garbage
            .iter()
            .filter(|garbage| {
                version
                    .blobs
                    .get(&garbage.number)
                    .is_some_and(|live| live.garbage_count + garbage.count == live.file.meta.count)
            })
            .map(|garbage| garbage.number)
            .collect();
        let edit = VersionEdit {
            deleted: pick
                .all_inputs()
                .map(|(level, file)| (level, file.meta.number))
                .collect(),
            added: merged
                .tables
                .into_iter()
                .map(|meta| (pick.output_level, meta))
                .collect(),
            next_file_number: Some(self.file_numbers.load(Ordering::SeqCst)),
            blobs_added: merged.blobs,
            blob_garbage: merged.garbage,
            blobs_deleted,
            ..VersionEdit::default()
        };
        let mut versions = self.versions.lock();
        self.install(&mut versions, &edit, |_| {})?;
        if let Some(largest) = pick.inputs.iter().map(|file| file.largest_user_key()).max() {
            versions.pointers[pick.level] = largest.to_vec();
        }
        drop(versions);
        bump(&self.counters.compactions, 1);
        bump(&self.counters.blobs_relocated, merged.relocated);
        for (_, file) in pick.all_inputs() {
            self.cache.forget_file(file.meta.number);
            self.remove_file(&self.dir.join(table_name(file.meta.number)));
        }
        let mut obsolete_blobs: BTreeSet<u64> = edit.blobs_deleted.iter().copied().collect();
        if self.planted(PlantedBug::DeleteLiveBlob) {
            obsolete_blobs.extend(edit.blob_garbage.iter().map(|garbage| garbage.number));
        }
        for number in obsolete_blobs {
            self.remove_file(&self.dir.join(blob_name(number)));
        }
        Ok(())
    }

    /// Merges the inputs of `pick` into new tables and blob files (fsynced,
    /// directory synced). The caller holds `compactor`.
    fn run_compaction(&self, pick: &Pick, version: &Version) -> KvResult<Merged> {
        let mut sources: Vec<Source<'_>> = Vec::new();
        // Level-0 inputs may overlap: one source each, newest first.
        for file in &pick.inputs {
            sources.push(Box::new(file.table.iter_uncached()));
        }
        let next: Vec<Arc<TableFile>> = pick.next_inputs.clone();
        sources.push(Box::new(
            next.into_iter().flat_map(|file| file.table.iter_uncached()),
        ));
        let relocate = relocation_candidates(version, &self.config);
        // Pointers read from the inputs and written to the outputs, per old
        // blob file: garbage is the difference.
        let mut read_refs = Refs::new();
        let mut written_refs = Refs::new();
        let mut relocated = 0u64;
        let allocate = || self.allocate_file_number();
        let mut sink = BlobSink::new(
            self.vfs.as_ref(),
            &self.dir,
            &self.config,
            self.filter.as_deref(),
            &allocate,
        );
        let merged = MergeIter::new(sources).map(|entry| {
            let (key, value) = entry?;
            bump(
                &self.counters.compaction_read,
                (key.len() + value.len()) as u64,
            );
            if let Some(pointer) = pointer_of(&key, &value)? {
                count_ref(&mut read_refs, &pointer);
            }
            Ok((key, value))
        });
        let kept = newest_versions(merged).filter(|entry| match entry {
            Ok((key, value)) if pick.bottommost => match format::split(key) {
                Some((_, _, ValueKind::Delete)) => false,
                Some((user_key, _, ValueKind::Put)) => !self.drops(user_key, value),
                // A separated value is judged by the hint its pointer keeps.
                Some((user_key, _, ValueKind::Blob)) => {
                    BlobPointer::decode(value).map_or(true, |pointer| {
                        !self
                            .filter
                            .as_ref()
                            .is_some_and(|filter| filter.drops_by_hint(user_key, &pointer.hint))
                    })
                }
                None => true,
            },
            _ => true,
        });
        let written = kept.map(|entry| {
            let (key, value) = entry?;
            let Some(pointer) = pointer_of(&key, &value)? else {
                return Ok((key, value));
            };
            if !relocate.contains(&pointer.file) {
                count_ref(&mut written_refs, &pointer);
                return Ok((key, value));
            }
            let user_key = format::user_key(&key);
            let live = version.value_of(user_key, ValueKind::Blob, value)?;
            let pointer = sink.add(user_key, &live)?;
            relocated += 1;
            Ok((key, pointer))
        });
        let mut tables = Vec::new();
        let mut written = written.peekable();
        while written.peek().is_some() {
            let number = self.allocate_file_number();
            let target = self.config.target_file_size;
            let mut size = 0u64;
            let chunk = std::iter::from_fn(|| {
                if size >= target {
                    return None;
                }
                let entry = written.next()?;
                if let Ok((key, value)) = &entry {
                    size += (key.len() + value.len()) as u64;
                }
                Some(entry)
            });
            if let Some(meta) = write_table(
                self.vfs.as_ref(),
                &self.dir,
                &self.table_options,
                number,
                chunk,
            )? {
                bump(&self.counters.compaction_written, meta.size);
                tables.push(meta);
            }
        }
        drop(written);
        let blobs = sink.finish()?;
        for blob in &blobs {
            bump(&self.counters.compaction_written, blob.size);
            bump(&self.counters.blob_bytes_written, blob.size);
        }
        self.vfs
            .sync_dir(&self.dir)
            .map_err(io_error(format!("sync {}", self.dir.display())))?;
        let garbage = read_refs
            .into_iter()
            .filter_map(|(number, (count, bytes))| {
                let (kept_count, kept_bytes) =
                    written_refs.get(&number).copied().unwrap_or_default();
                (count > kept_count).then(|| BlobGarbage {
                    number,
                    count: count - kept_count,
                    bytes: bytes - kept_bytes,
                })
            })
            .collect();
        Ok(Merged {
            tables,
            blobs,
            garbage,
            relocated,
        })
    }

    /// The compaction filter's verdict on a bottom-level inline value.
    fn drops(&self, user_key: &[u8], value: &[u8]) -> bool {
        self.filter
            .as_ref()
            .is_some_and(|filter| filter.drops(user_key, value))
    }
}
