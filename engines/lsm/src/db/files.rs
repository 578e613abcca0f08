//! The names of the tree's files and what each name says it is.

use super::*;

/// What a file in the engine's directory is.
#[derive(Debug, PartialEq, Eq)]
pub enum FileKind {
    Log(u64),
    Table(u64),
    Blob(u64),
    Manifest(u64),
    Current,
    /// `CURRENT.tmp` (other `*.tmp` files are not the tree's: never touched).
    Temporary,
    Other,
}

/// The only temporary the tree makes: CURRENT's, while it is replaced.
pub(super) const CURRENT_TEMPORARY: &str = "CURRENT.tmp";

pub fn log_name(number: u64) -> String {
    format!("{number:06}.log")
}

pub fn table_name(number: u64) -> String {
    format!("{number:06}.sst")
}

pub fn file_kind(name: &str) -> FileKind {
    let number = |digits: &str| {
        digits
            .parse::<u64>()
            .ok()
            .filter(|_| digits.bytes().all(|b| b.is_ascii_digit()))
    };
    if name == manifest::CURRENT {
        FileKind::Current
    } else if name == CURRENT_TEMPORARY {
        FileKind::Temporary
    } else if let Some(n) = name.strip_suffix(".log").and_then(number) {
        FileKind::Log(n)
    } else if let Some(n) = name.strip_suffix(".sst").and_then(number) {
        FileKind::Table(n)
    } else if let Some(n) = name.strip_suffix(".blob").and_then(number) {
        FileKind::Blob(n)
    } else if let Some(n) = name.strip_prefix("MANIFEST-").and_then(number) {
        FileKind::Manifest(n)
    } else {
        FileKind::Other
    }
}

/// What a file of a tree's directory is, for reports (`None`: not the
/// tree's).
pub fn describe_file(name: &str) -> Option<&'static str> {
    match file_kind(name) {
        FileKind::Log(_) => Some("log"),
        FileKind::Table(_) => Some("table"),
        FileKind::Blob(_) => Some("blob file"),
        FileKind::Manifest(_) => Some("manifest"),
        FileKind::Current => Some("CURRENT"),
        FileKind::Temporary => Some("temporary"),
        FileKind::Other => None,
    }
}

/// Whether a directory holding `names` is a tree's: a CURRENT naming a
/// manifest, beside one — and no `OPTIONS-*` file: RocksDB (LevelDB's heir,
/// as this tree is) names its CURRENT, manifests, logs and tables as this
/// tree does, and an options file, which this tree never writes, is what
/// tells its directory apart.
pub fn recognises(names: &[String]) -> bool {
    names.iter().any(|name| name == manifest::CURRENT)
        && names
            .iter()
            .any(|name| matches!(file_kind(name), FileKind::Manifest(_)))
        && !names.iter().any(|name| name.starts_with("OPTIONS-"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_tree_is_recognised_by_its_current_and_a_manifest_and_its_files_are_named() {
        let names = |list: &[&str]| {
            list.iter()
                .map(|name| (*name).to_owned())
                .collect::<Vec<_>>()
        };
        assert!(recognises(&names(&[
            "CURRENT",
            "MANIFEST-000003",
            "000004.log"
        ])));
        assert!(!recognises(&names(&["CURRENT", "OPTIONS-000007"])));
        assert!(!recognises(&names(&[
            "CURRENT",
            "MANIFEST-000005",
            "000004.log",
            "OPTIONS-000007"
        ])));
        assert!(!recognises(&names(&["MANIFEST-000003"])));
        assert_eq!(describe_file(&table_name(9)), Some("table"));
        assert_eq!(describe_file(&log_name(9)), Some("log"));
        assert_eq!(describe_file("000009.blob"), Some("blob file"));
        assert_eq!(describe_file("data.db"), None);
    }
}
