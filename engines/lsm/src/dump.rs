//! `leasehold dump` for the LSM: every file of a database directory as a
//! person reads it — CURRENT and its checksum, manifest edits, WAL records,
//! each table's footer, filter, index and blocks, and each blob file's
//! footer and records — with every checksum
//! shown as valid or not. Reads only; damage is reported, never repaired.

use std::fmt::Write;
use std::path::Path;

use leasehold_storage::dump::{describe_files, describe_wal, KeyNamer};
use leasehold_storage::vfs::Vfs;
use leasehold_storage::KvResult;

use crate::manifest::{self, VersionEdit};
use crate::sstable::describe;

/// Describes the files of `dir` (only the one named `only`, if given),
/// showing at most `max_entries` entries or records per block or log, each
/// key as `name_key` names it.
pub fn dump(
    vfs: &dyn Vfs,
    dir: &Path,
    only: Option<&str>,
    max_entries: usize,
    name_key: KeyNamer<'_>,
) -> KvResult<String> {
    describe_files(vfs, dir, only, &|name, path, bytes| {
        if name == manifest::CURRENT {
            match manifest::parse_current(path, bytes) {
                Ok(number) => format!(
                    "  names {}, checksum valid\n",
                    manifest::manifest_name(number)
                ),
                Err(err) => format!("  INVALID: {err}\n"),
            }
        } else if name.starts_with("MANIFEST-") {
            describe_manifest(path, bytes)
        } else if name.ends_with(".log") {
            describe_wal(path, bytes, max_entries, name_key)
        } else if name.ends_with(".sst") {
            describe::describe(bytes, max_entries, name_key)
        } else if name.ends_with(".blob") {
            crate::blob::describe(bytes, max_entries, name_key)
        } else {
            "  not a file of this engine\n".to_owned()
        }
    })
}

fn describe_manifest(path: &Path, bytes: &[u8]) -> String {
    let mut out = String::new();
    match manifest::read(path, bytes) {
        Ok((edits, torn)) => {
            let _ = writeln!(
                out,
                "  {} edits (checksums valid){}",
                edits.len(),
                if torn { ", torn last edit" } else { "" }
            );
            for (index, edit) in edits.iter().enumerate() {
                let _ = writeln!(out, "  edit {index}: {}", describe_edit(edit));
            }
        }
        Err(err) => {
            let _ = writeln!(out, "  CORRUPT: {err}");
        }
    }
    out
}

fn describe_edit(edit: &VersionEdit) -> String {
    let mut parts = Vec::new();
    if let Some(log) = edit.log_number {
        parts.push(format!("log {log}"));
    }
    if let Some(next) = edit.next_file_number {
        parts.push(format!("next file {next}"));
    }
    if let Some(sequence) = edit.last_sequence {
        parts.push(format!("last sequence {sequence}"));
    }
    for (level, file) in &edit.added {
        parts.push(format!(
            "add L{level} #{} ({} bytes)",
            file.number, file.size
        ));
    }
    for (level, number) in &edit.deleted {
        parts.push(format!("delete L{level} #{number}"));
    }
    for blob in &edit.blobs_added {
        parts.push(format!(
            "add blob #{} ({} records, {} bytes)",
            blob.number, blob.count, blob.size
        ));
    }
    for garbage in &edit.blob_garbage {
        parts.push(format!(
            "blob #{} garbage +{} records ({} bytes)",
            garbage.number, garbage.count, garbage.bytes
        ));
    }
    for number in &edit.blobs_deleted {
        parts.push(format!("delete blob #{number}"));
    }
    if parts.is_empty() {
        "empty".to_owned()
    } else {
        parts.join(", ")
    }
}
