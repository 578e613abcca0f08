//! `OverlayVfs`: the real file system, read-only. Reads go to the files on
//! disk; every create, write, rename, remove and truncate lands in an
//! in-memory overlay instead, and every later read sees the overlay. An engine
//! opened on it recovers exactly as it would on `OsVfs` — replaying its log,
//! writing a new manifest, even compacting — while the directory on disk is
//! never modified. The operator commands inspect data this way.
//!
//! A file is copied into memory the first time it is opened for writing or
//! renamed; files only read stay on disk.

use std::collections::{BTreeMap, BTreeSet};
use std::io;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use parking_lot::{Mutex, RwLock};

use super::lock::{DirLock, LockError};
use super::{read_all, OsVfs, Vfs, VfsFile, VfsStats};

#[derive(Debug, Default)]
struct MemFile {
    data: RwLock<Vec<u8>>,
}

impl VfsFile for MemFile {
    fn read_at(&self, buf: &mut [u8], offset: u64) -> io::Result<usize> {
        let data = self.data.read();
        let start = usize::try_from(offset)
            .unwrap_or(usize::MAX)
            .min(data.len());
        let read = buf.len().min(data.len() - start);
        buf[..read].copy_from_slice(&data[start..start + read]);
        Ok(read)
    }

    fn write_at(&self, buf: &[u8], offset: u64) -> io::Result<usize> {
        let offset = usize::try_from(offset)
            .map_err(|_| io::Error::new(io::ErrorKind::InvalidInput, "offset beyond memory"))?;
        let mut data = self.data.write();
        if data.len() < offset + buf.len() {
            data.resize(offset + buf.len(), 0);
        }
        data[offset..offset + buf.len()].copy_from_slice(buf);
        Ok(buf.len())
    }

    fn sync(&self) -> io::Result<()> {
        Ok(())
    }

    fn len(&self) -> io::Result<u64> {
        Ok(self.data.read().len() as u64)
    }

    fn set_len(&self, len: u64) -> io::Result<()> {
        let len = usize::try_from(len)
            .map_err(|_| io::Error::new(io::ErrorKind::InvalidInput, "length beyond memory"))?;
        self.data.write().resize(len, 0);
        Ok(())
    }
}

#[derive(Debug)]
enum Entry {
    Present(Arc<MemFile>),
    Removed,
}

#[derive(Debug, Default)]
pub struct OverlayVfs {
    disk: OsVfs,
    overlay: Mutex<BTreeMap<PathBuf, Entry>>,
    dirs: Mutex<BTreeSet<PathBuf>>,
}

fn not_found(path: &Path) -> io::Error {
    io::Error::new(
        io::ErrorKind::NotFound,
        format!("{} does not exist", path.display()),
    )
}

impl OverlayVfs {
    pub fn new() -> Self {
        OverlayVfs::default()
    }

    /// The overlay's copy of `path`, copying it from disk on first use.
    fn writable(&self, path: &Path) -> io::Result<Arc<MemFile>> {
        let mut overlay = self.overlay.lock();
        match overlay.get(path) {
            Some(Entry::Present(file)) => return Ok(Arc::clone(file)),
            Some(Entry::Removed) => return Err(not_found(path)),
            None => {}
        }
        let bytes = read_all(self.disk.open_read(path)?.as_ref())?;
        let file = Arc::new(MemFile {
            data: RwLock::new(bytes),
        });
        overlay.insert(path.to_path_buf(), Entry::Present(Arc::clone(&file)));
        Ok(file)
    }
}

impl Vfs for OverlayVfs {
    fn create(&self, path: &Path) -> io::Result<Arc<dyn VfsFile>> {
        let file = Arc::new(MemFile::default());
        self.overlay
            .lock()
            .insert(path.to_path_buf(), Entry::Present(Arc::clone(&file)));
        Ok(file)
    }

    fn open(&self, path: &Path) -> io::Result<Arc<dyn VfsFile>> {
        Ok(self.writable(path)?)
    }

    fn open_read(&self, path: &Path) -> io::Result<Arc<dyn VfsFile>> {
        match self.overlay.lock().get(path) {
            Some(Entry::Present(file)) => return Ok(Arc::clone(file) as Arc<dyn VfsFile>),
            Some(Entry::Removed) => return Err(not_found(path)),
            None => {}
        }
        self.disk.open_read(path)
    }

    fn exists(&self, path: &Path) -> io::Result<bool> {
        match self.overlay.lock().get(path) {
            Some(Entry::Present(_)) => Ok(true),
            Some(Entry::Removed) => Ok(false),
            None => Ok(self.dirs.lock().contains(path) || self.disk.exists(path)?),
        }
    }

    fn list(&self, dir: &Path) -> io::Result<Vec<String>> {
        let mut names: BTreeSet<String> = match self.disk.list(dir) {
            Ok(names) => names.into_iter().collect(),
            Err(err) if err.kind() == io::ErrorKind::NotFound && self.dirs.lock().contains(dir) => {
                BTreeSet::new()
            }
            Err(err) => return Err(err),
        };
        for (path, entry) in self.overlay.lock().iter() {
            if path.parent() != Some(dir) {
                continue;
            }
            let Some(name) = path.file_name().and_then(|name| name.to_str()) else {
                continue;
            };
            match entry {
                Entry::Present(_) => names.insert(name.to_owned()),
                Entry::Removed => names.remove(name),
            };
        }
        Ok(names.into_iter().collect())
    }

    fn rename(&self, from: &Path, to: &Path) -> io::Result<()> {
        let file = self.writable(from)?;
        let mut overlay = self.overlay.lock();
        overlay.insert(to.to_path_buf(), Entry::Present(file));
        overlay.insert(from.to_path_buf(), Entry::Removed);
        Ok(())
    }

    fn remove(&self, path: &Path) -> io::Result<()> {
        if !self.exists(path)? {
            return Err(not_found(path));
        }
        self.overlay
            .lock()
            .insert(path.to_path_buf(), Entry::Removed);
        Ok(())
    }

    fn create_dir_all(&self, dir: &Path) -> io::Result<()> {
        if !self.disk.exists(dir)? {
            self.dirs.lock().insert(dir.to_path_buf());
        }
        Ok(())
    }

    fn sync_dir(&self, _dir: &Path) -> io::Result<()> {
        Ok(())
    }

    fn file_size(&self, path: &Path) -> io::Result<u64> {
        match self.overlay.lock().get(path) {
            Some(Entry::Present(file)) => return file.len(),
            Some(Entry::Removed) => return Err(not_found(path)),
            None => {}
        }
        self.disk.file_size(path)
    }

    fn stats(&self) -> VfsStats {
        self.disk.stats()
    }

    /// Nothing reaches the disk through an overlay, so it needs no lock and
    /// takes none: a read-only tool may look at a directory a writer holds.
    fn lock_dir(&self, _dir: &Path) -> Result<DirLock, LockError> {
        Ok(DirLock::none())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::vfs::write_all_at;

    #[test]
    fn changes_stay_in_memory_and_reads_see_them() {
        let dir = tempfile::tempdir().unwrap();
        let on_disk = dir.path().join("a");
        std::fs::write(&on_disk, b"disk").unwrap();
        let vfs = OverlayVfs::new();
        let file = vfs.open(&on_disk).unwrap();
        write_all_at(file.as_ref(), b"DI", 0).unwrap();
        assert_eq!(
            read_all(vfs.open_read(&on_disk).unwrap().as_ref()).unwrap(),
            b"DIsk"
        );
        let renamed = dir.path().join("b");
        vfs.rename(&on_disk, &renamed).unwrap();
        let created = dir.path().join("sub").join("c");
        vfs.create_dir_all(&dir.path().join("sub")).unwrap();
        vfs.create(&created).unwrap();
        assert_eq!(vfs.list(dir.path()).unwrap(), vec!["b".to_owned()]);
        assert_eq!(
            vfs.list(&dir.path().join("sub")).unwrap(),
            vec!["c".to_owned()]
        );
        assert!(!vfs.exists(&on_disk).unwrap());
        vfs.remove(&renamed).unwrap();
        assert!(vfs.open_read(&renamed).is_err());
        // The disk never changed.
        assert_eq!(std::fs::read(&on_disk).unwrap(), b"disk");
        assert!(!renamed.exists() && !dir.path().join("sub").exists());
    }
}
