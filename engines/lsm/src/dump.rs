//! `leasehold dump` for the LSM: every file of a database directory as a
//! person reads it — CURRENT and its checksum, manifest edits, WAL records,
//! and each table's footer, filter, index and blocks — with every checksum
//! shown as valid or not. Reads only; damage is reported, never repaired.

use std::fmt::Write;
use std::path::Path;

use leasehold_core::dump::describe_wal;
use leasehold_core::vfs::{read_all, Vfs};
use leasehold_core::{KvError, KvResult};

use crate::manifest::{self, VersionEdit};
use crate::sstable::table;

/// Describes the files of `dir` (only the one named `only`, if given),
/// showing at most `max_entries` entries or records per block or log.
pub fn dump(vfs: &dyn Vfs, dir: &Path, only: Option<&str>, max_entries: usize) -> KvResult<String> {
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
        if name == manifest::CURRENT {
            let _ = match manifest::parse_current(&path, &bytes) {
                Ok(number) => writeln!(
                    out,
                    "  names {}, checksum valid",
                    manifest::manifest_name(number)
                ),
                Err(err) => writeln!(out, "  INVALID: {err}"),
            };
        } else if name.starts_with("MANIFEST-") {
            out.push_str(&describe_manifest(&path, &bytes));
        } else if name.ends_with(".log") {
            out.push_str(&describe_wal(&path, &bytes, max_entries));
        } else if name.ends_with(".sst") {
            out.push_str(&table::describe(&bytes, max_entries));
        } else {
            let _ = writeln!(out, "  not a file of this engine");
        }
    }
    Ok(out)
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
    if parts.is_empty() {
        "empty".to_owned()
    } else {
        parts.join(", ")
    }
}
