//! `OsVfs`: the real file system through std::fs, with `sync_data` for files and
//! an fsync of the directory handle for directory entries.

use std::fs::{self, DirBuilder, File, OpenOptions};
use std::io;
use std::os::unix::fs::{DirBuilderExt, FileExt, OpenOptionsExt};
use std::path::Path;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

use super::lock::{lock_os, DirLock, LockError};
use super::{Vfs, VfsFile, VfsStats};

/// Modes of what the engines create: owner-only.
const FILE_MODE: u32 = 0o600;
const DIR_MODE: u32 = 0o700;

#[derive(Debug, Default)]
struct Counters {
    bytes_written: AtomicU64,
    bytes_read: AtomicU64,
    fsyncs: AtomicU64,
    dir_syncs: AtomicU64,
    files_created: AtomicU64,
    files_removed: AtomicU64,
}

#[derive(Clone, Debug, Default)]
pub struct OsVfs {
    counters: Arc<Counters>,
}

impl OsVfs {
    pub fn new() -> Self {
        OsVfs::default()
    }

    fn wrap(&self, file: File) -> Arc<dyn VfsFile> {
        Arc::new(OsFile {
            file,
            counters: Arc::clone(&self.counters),
        })
    }
}

#[derive(Debug)]
struct OsFile {
    file: File,
    counters: Arc<Counters>,
}

impl VfsFile for OsFile {
    fn read_at(&self, buf: &mut [u8], offset: u64) -> io::Result<usize> {
        let read = self.file.read_at(buf, offset)?;
        self.counters
            .bytes_read
            .fetch_add(read as u64, Ordering::Relaxed);
        Ok(read)
    }

    fn write_at(&self, buf: &[u8], offset: u64) -> io::Result<usize> {
        let written = self.file.write_at(buf, offset)?;
        self.counters
            .bytes_written
            .fetch_add(written as u64, Ordering::Relaxed);
        Ok(written)
    }

    fn sync(&self) -> io::Result<()> {
        self.counters.fsyncs.fetch_add(1, Ordering::Relaxed);
        self.file.sync_data()
    }

    fn len(&self) -> io::Result<u64> {
        Ok(self.file.metadata()?.len())
    }

    fn set_len(&self, len: u64) -> io::Result<()> {
        self.file.set_len(len)
    }
}

impl Vfs for OsVfs {
    fn create(&self, path: &Path) -> io::Result<Arc<dyn VfsFile>> {
        let file = OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .truncate(true)
            .mode(FILE_MODE)
            .open(path)?;
        self.counters.files_created.fetch_add(1, Ordering::Relaxed);
        Ok(self.wrap(file))
    }

    fn open(&self, path: &Path) -> io::Result<Arc<dyn VfsFile>> {
        Ok(self.wrap(OpenOptions::new().read(true).write(true).open(path)?))
    }

    fn open_read(&self, path: &Path) -> io::Result<Arc<dyn VfsFile>> {
        Ok(self.wrap(File::open(path)?))
    }

    fn exists(&self, path: &Path) -> io::Result<bool> {
        path.try_exists()
    }

    fn list(&self, dir: &Path) -> io::Result<Vec<String>> {
        let mut names = Vec::new();
        for entry in fs::read_dir(dir)? {
            let entry = entry?;
            if entry.file_type()?.is_file() {
                names.push(entry.file_name().to_string_lossy().into_owned());
            }
        }
        names.sort();
        Ok(names)
    }

    fn rename(&self, from: &Path, to: &Path) -> io::Result<()> {
        fs::rename(from, to)
    }

    fn remove(&self, path: &Path) -> io::Result<()> {
        fs::remove_file(path)?;
        self.counters.files_removed.fetch_add(1, Ordering::Relaxed);
        Ok(())
    }

    /// Creates the missing directories from the top down, each 0700, and
    /// fsyncs the parent of each one made, so the new entry survives power
    /// loss on file systems that do not order it with the child's own fsync.
    fn create_dir_all(&self, dir: &Path) -> io::Result<()> {
        let missing: Vec<&Path> = dir
            .ancestors()
            .filter(|path| !path.as_os_str().is_empty())
            .take_while(|path| !path.is_dir())
            .collect();
        for path in missing.into_iter().rev() {
            match DirBuilder::new().mode(DIR_MODE).create(path) {
                Ok(()) => {}
                // Made by someone else in between: theirs to make durable.
                Err(err) if err.kind() == io::ErrorKind::AlreadyExists && path.is_dir() => continue,
                Err(err) => return Err(err),
            }
            self.sync_dir(path.parent().unwrap_or(Path::new("")))?;
        }
        Ok(())
    }

    fn sync_dir(&self, dir: &Path) -> io::Result<()> {
        let dir = if dir.as_os_str().is_empty() {
            Path::new(".")
        } else {
            dir
        };
        self.counters.dir_syncs.fetch_add(1, Ordering::Relaxed);
        File::open(dir)?.sync_all()
    }

    fn file_size(&self, path: &Path) -> io::Result<u64> {
        Ok(fs::metadata(path)?.len())
    }

    fn lock_dir(&self, dir: &Path) -> Result<DirLock, LockError> {
        lock_os(dir)
    }

    fn stats(&self) -> VfsStats {
        let counters = &self.counters;
        VfsStats {
            bytes_written: counters.bytes_written.load(Ordering::Relaxed),
            bytes_read: counters.bytes_read.load(Ordering::Relaxed),
            fsyncs: counters.fsyncs.load(Ordering::Relaxed),
            dir_syncs: counters.dir_syncs.load(Ordering::Relaxed),
            files_created: counters.files_created.load(Ordering::Relaxed),
            files_removed: counters.files_removed.load(Ordering::Relaxed),
        }
    }
}

/// Bytes of every file under `dir` on the real file system (apparent sizes,
/// subdirectories included); 0 if it does not exist. For engines that do their
/// own I/O (RocksDB) and for the harness's space-amplification figures.
pub fn dir_bytes(dir: &Path) -> u64 {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return 0;
    };
    entries
        .filter_map(Result::ok)
        .map(|entry| match entry.metadata() {
            Ok(meta) if meta.is_dir() => dir_bytes(&entry.path()),
            Ok(meta) => meta.len(),
            Err(_) => 0,
        })
        .sum()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::vfs::{read_all, replace_file_atomically, write_all_at};

    #[test]
    fn os_vfs_writes_reads_renames_and_counts() {
        let dir = tempfile::tempdir().unwrap();
        let vfs = OsVfs::new();
        let path = dir.path().join("a");
        let file = vfs.create(&path).unwrap();
        write_all_at(file.as_ref(), b"hello", 0).unwrap();
        file.sync().unwrap();
        assert_eq!(read_all(file.as_ref()).unwrap(), b"hello");
        replace_file_atomically(&vfs, &dir.path().join("b"), b"atomic").unwrap();
        assert_eq!(vfs.list(dir.path()).unwrap(), ["a", "b"]);
        vfs.rename(&path, &dir.path().join("c")).unwrap();
        assert!(!vfs.exists(&path).unwrap());
        assert_eq!(vfs.file_size(&dir.path().join("c")).unwrap(), 5);
        let stats = vfs.stats();
        assert_eq!(stats.bytes_written, 11);
        assert_eq!((stats.fsyncs, stats.dir_syncs), (2, 1));
        assert!(vfs.open(&dir.path().join("missing")).is_err());
    }

    /// Actor state is nobody else's business, whatever the umask says; each
    /// directory made gets its parent fsynced (the audit's S1 and D9).
    #[test]
    fn files_and_directories_are_owner_only_and_new_directories_are_durable() {
        use std::os::unix::fs::PermissionsExt;
        let dir = tempfile::tempdir().unwrap();
        let vfs = OsVfs::new();
        let nested = dir.path().join("a").join("b").join("c");
        vfs.create_dir_all(&nested).unwrap();
        assert_eq!(
            vfs.stats().dir_syncs,
            3,
            "one parent fsync per directory made"
        );
        for path in [dir.path().join("a"), dir.path().join("a/b"), nested.clone()] {
            let mode = std::fs::metadata(&path).unwrap().permissions().mode() & 0o777;
            assert_eq!(mode, 0o700, "{}", path.display());
        }
        vfs.create_dir_all(&nested).unwrap();
        assert_eq!(vfs.stats().dir_syncs, 3, "nothing made, nothing synced");
        vfs.create(&nested.join("f")).unwrap();
        let mode = std::fs::metadata(nested.join("f"))
            .unwrap()
            .permissions()
            .mode()
            & 0o777;
        assert_eq!(mode, 0o600);
        drop(vfs.lock_dir(&nested).unwrap());
        let mode = std::fs::metadata(nested.join(super::super::LOCK_FILE))
            .unwrap()
            .permissions()
            .mode()
            & 0o777;
        assert_eq!(mode, 0o600);
    }

    #[test]
    fn a_held_directory_lock_is_refused_with_the_holders_pid_until_released() {
        let dir = tempfile::tempdir().unwrap();
        let vfs = OsVfs::new();
        let held = vfs.lock_dir(dir.path()).unwrap();
        match vfs.lock_dir(dir.path()) {
            Err(super::super::LockError::Held { holder_pid }) => {
                assert_eq!(holder_pid, Some(std::process::id()))
            }
            other => panic!("{other:?}"),
        }
        drop(held);
        vfs.lock_dir(dir.path()).unwrap();
    }
}
