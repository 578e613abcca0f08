//! Human-readable descriptions of the on-disk pieces every engine shares —
//! write batches, write-ahead logs, a directory of files — for `leasehold
//! dump`. Each engine's own dump (its tables, pages, manifests) builds on
//! these. Keys are named by the caller (`KeyNamer`): this layer knows bytes,
//! the layer above knows that a key is an actor's lease or snapshot.

use std::fmt::Write;
use std::path::Path;

use crate::error::{KvError, KvResult};
use crate::kv::{BatchOp, WriteBatch};
use crate::vfs::{read_all, Vfs};
use crate::wal::{self, WalEnd};

/// How a dump names a key (`lease player/42`, or escaped bytes).
pub type KeyNamer<'a> = &'a dyn Fn(&[u8]) -> String;

/// One line per op of a write batch (at most `max_ops`).
pub fn describe_batch(
    batch: &WriteBatch,
    max_ops: usize,
    indent: &str,
    name_key: KeyNamer<'_>,
) -> String {
    let mut out = String::new();
    for op in batch.ops.iter().take(max_ops) {
        let _ = match op {
            BatchOp::Put { key, value } => {
                writeln!(
                    out,
                    "{indent}put    {} ({} value bytes)",
                    name_key(key),
                    value.len()
                )
            }
            BatchOp::Delete { key } => writeln!(out, "{indent}delete {}", name_key(key)),
        };
    }
    if batch.ops.len() > max_ops {
        let _ = writeln!(out, "{indent}… {} more ops", batch.ops.len() - max_ops);
    }
    out
}

/// A write-ahead log of `WriteBatch` records: each record (at most
/// `max_records`, each with at most `max_records` ops), then how the file ends
/// — clean, a torn (unsynced) tail, or corruption in synced bytes.
pub fn describe_wal(
    path: &Path,
    bytes: &[u8],
    max_records: usize,
    name_key: KeyNamer<'_>,
) -> String {
    let mut out = String::new();
    match wal::read(path, bytes) {
        Ok(contents) => {
            let _ = writeln!(
                out,
                "  {} records (checksums valid) in {} bytes",
                contents.records.len(),
                contents.valid_end
            );
            for (index, record) in contents.records.iter().take(max_records).enumerate() {
                match WriteBatch::decode(record) {
                    Ok(batch) => {
                        let _ = writeln!(out, "  record {index}: batch of {} ops", batch.ops.len());
                        out.push_str(&describe_batch(&batch, max_records, "    ", name_key));
                    }
                    Err(err) => {
                        let _ = writeln!(out, "  record {index}: NOT A BATCH: {err}");
                    }
                }
            }
            if contents.records.len() > max_records {
                let _ = writeln!(
                    out,
                    "  … {} more records",
                    contents.records.len() - max_records
                );
            }
            let _ = match contents.end {
                WalEnd::Clean => writeln!(out, "  ends clean"),
                WalEnd::Torn { offset } => writeln!(
                    out,
                    "  ends torn at offset {offset}: {} bytes of an unsynced tail (recovery drops them)",
                    bytes.len() as u64 - offset
                ),
            };
        }
        Err(err) => {
            let _ = writeln!(out, "  CORRUPT: {err}");
        }
    }
    out
}

/// Every file of `dir` in name order (only the one named `only`, if given),
/// each under a `== name (N bytes)` heading followed by what `describe` says
/// of its bytes. The engines' dumps differ only in `describe`.
pub fn describe_files(
    vfs: &dyn Vfs,
    dir: &Path,
    only: Option<&str>,
    describe: &dyn Fn(&str, &Path, &[u8]) -> String,
) -> KvResult<String> {
    let mut names = vfs
        .list(dir)
        .map_err(|err| KvError::io(format!("list {}", dir.display()), err))?;
    names.sort();
    if let Some(only) = only {
        if !names.iter().any(|name| name == only) {
            return Err(KvError::InvalidArgument(format!(
                "{} has no file {only}",
                dir.display()
            )));
        }
        names.retain(|name| name == only);
    }
    let mut out = String::new();
    for name in names {
        let path = dir.join(&name);
        let bytes = vfs
            .open_read(&path)
            .and_then(|file| read_all(file.as_ref()))
            .map_err(|err| KvError::io(format!("read {}", path.display()), err))?;
        let _ = writeln!(out, "== {name} ({} bytes)", bytes.len());
        out.push_str(&describe(&name, &path, &bytes));
    }
    Ok(out)
}
