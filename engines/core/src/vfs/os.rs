//! `OsVfs`: the real file system through std::fs, with `sync_data` for files and
//! an fsync of the directory handle for directory entries.

use std::fs::{self, File, OpenOptions};
use std::io;
use std::os::unix::fs::FileExt;
use std::path::Path;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

use super::{Vfs, VfsFile, VfsStats};

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

    fn create_dir_all(&self, dir: &Path) -> io::Result<()> {
        fs::create_dir_all(dir)
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
}
