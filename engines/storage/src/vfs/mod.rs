//! `Vfs`: every byte an engine reads or writes goes through this interface, so
//! the same engine runs on the real file system (`OsVfs`) and on a simulated
//! disk that crashes, tears and fails on command (`SimVfs`).
//!
//! Contract (what engines may assume, and what `SimVfs` enforces):
//! 1. A file's written data survives power loss only after `VfsFile::sync`
//!    returns Ok.
//! 2. A file's existence under a name (create, rename, remove) survives power
//!    loss only after `Vfs::sync_dir` of its directory returns Ok.
//! 3. A failed `sync` may have dropped the pending data for good; a later
//!    successful `sync` does not bring it back (the fsyncgate lesson), so an
//!    engine must treat a failed sync as fatal.
//! 4. Reads and writes may be short; use `read_exact_at` / `write_all_at`.
//! 5. Directories made by `create_dir_all` are durable once it returns: the
//!    real file system fsyncs the parent of every directory it creates (the
//!    simulation does not revert them).
//! 6. Files are created owner-only (0600) and directories 0700: actor state is
//!    nobody else's business.
//! 7. `lock_dir` is the engine directory's single-writer lock (`lock.rs`).

mod lock;
mod os;
mod overlay;
mod sim;

use std::fmt;
use std::io;
use std::path::Path;
use std::sync::Arc;

pub use lock::{lock_directory, DirLock, LockError, LOCK_FILE};
pub use os::{dir_bytes, OsVfs};
pub use overlay::OverlayVfs;
pub use sim::{CrashPolicy, Fault, FaultConfig, MutationKind, SimVfs, SECTOR_LEN};

/// An open file. Offsets are absolute (pread/pwrite); handles are shared
/// between threads.
#[allow(clippy::len_without_is_empty)] // a file's length is a size, not a collection's
pub trait VfsFile: Send + Sync + fmt::Debug {
    /// Reads up to `buf.len()` bytes at `offset`; 0 at or past the end.
    fn read_at(&self, buf: &mut [u8], offset: u64) -> io::Result<usize>;
    /// Writes up to `buf.len()` bytes at `offset`, extending the file as needed.
    fn write_at(&self, buf: &[u8], offset: u64) -> io::Result<usize>;
    /// Makes the file's data (and size) durable.
    fn sync(&self) -> io::Result<()>;
    fn len(&self) -> io::Result<u64>;
    fn set_len(&self, len: u64) -> io::Result<()>;
}

/// Counters of what went to the device.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct VfsStats {
    pub bytes_written: u64,
    pub bytes_read: u64,
    pub fsyncs: u64,
    pub dir_syncs: u64,
    pub files_created: u64,
    pub files_removed: u64,
}

pub trait Vfs: Send + Sync + fmt::Debug {
    /// Creates `path` empty, truncating it if it exists; opened read-write.
    fn create(&self, path: &Path) -> io::Result<Arc<dyn VfsFile>>;
    /// Opens an existing file read-write.
    fn open(&self, path: &Path) -> io::Result<Arc<dyn VfsFile>>;
    /// Opens an existing file for reading only (tools that must not modify).
    fn open_read(&self, path: &Path) -> io::Result<Arc<dyn VfsFile>>;
    fn exists(&self, path: &Path) -> io::Result<bool>;
    /// The names of the files in `dir`, sorted.
    fn list(&self, dir: &Path) -> io::Result<Vec<String>>;
    /// Atomically replaces `to` with `from`.
    fn rename(&self, from: &Path, to: &Path) -> io::Result<()>;
    fn remove(&self, path: &Path) -> io::Result<()>;
    fn create_dir_all(&self, dir: &Path) -> io::Result<()>;
    /// Makes the directory's entries (creates, renames, removes) durable.
    fn sync_dir(&self, dir: &Path) -> io::Result<()>;
    fn file_size(&self, path: &Path) -> io::Result<u64>;
    fn stats(&self) -> VfsStats;
    /// Takes the exclusive lock of the engine directory `dir` (which exists),
    /// held until the returned guard drops. `LockError::Held` when another
    /// opener — another process, or this one — holds it.
    fn lock_dir(&self, dir: &Path) -> Result<DirLock, LockError>;
}

/// Writes all of `buf` at `offset`, retrying short writes.
pub fn write_all_at(file: &dyn VfsFile, mut buf: &[u8], mut offset: u64) -> io::Result<()> {
    while !buf.is_empty() {
        let written = file.write_at(buf, offset)?;
        if written == 0 {
            return Err(io::Error::new(
                io::ErrorKind::WriteZero,
                "write returned zero bytes",
            ));
        }
        buf = &buf[written..];
        offset += written as u64;
    }
    Ok(())
}

/// Fills `buf` from `offset`, retrying short reads; `UnexpectedEof` if the file
/// ends first.
pub fn read_exact_at(file: &dyn VfsFile, mut buf: &mut [u8], mut offset: u64) -> io::Result<()> {
    while !buf.is_empty() {
        let read = file.read_at(buf, offset)?;
        if read == 0 {
            return Err(io::Error::new(
                io::ErrorKind::UnexpectedEof,
                "file ended before the read did",
            ));
        }
        buf = &mut buf[read..];
        offset += read as u64;
    }
    Ok(())
}

/// Reads the whole file. The length comes from the file system, not from file
/// contents, so a corrupt length field cannot make this allocate.
pub fn read_all(file: &dyn VfsFile) -> io::Result<Vec<u8>> {
    let len =
        usize::try_from(file.len()?).map_err(|_| io::Error::other("file larger than memory"))?;
    let mut buf = vec![0u8; len];
    read_exact_at(file, &mut buf, 0)?;
    Ok(buf)
}

/// Writes `data` to `path` so that after a crash the file holds either its old
/// content or `data`, never a mix: write a temporary, sync it, rename it over
/// `path`, sync the directory.
pub fn replace_file_atomically(vfs: &dyn Vfs, path: &Path, data: &[u8]) -> io::Result<()> {
    let dir = path.parent().unwrap_or(Path::new(""));
    let mut temp_name = path.file_name().unwrap_or_default().to_os_string();
    temp_name.push(".tmp");
    let temp = dir.join(temp_name);
    let file = vfs.create(&temp)?;
    write_all_at(file.as_ref(), data, 0)?;
    file.sync()?;
    drop(file);
    vfs.rename(&temp, path)?;
    vfs.sync_dir(dir)
}

/// Reads `path` whole; if `suspicious` says the bytes look damaged, reads
/// twice more and insists on the same bytes, so a transient device fault is an
/// I/O error, never a reason for recovery to drop data. (A transient fault
/// repeating itself exactly twice is rare but was seen in long crash
/// campaigns; thrice is not. Damage that reads back identically is on the
/// platter.)
pub fn read_confirmed(
    vfs: &dyn Vfs,
    path: &Path,
    suspicious: impl Fn(&[u8]) -> bool,
) -> crate::KvResult<Vec<u8>> {
    read_confirmed_prefix(vfs, path, u64::MAX, suspicious)
}

/// `read_confirmed` of the first `limit` bytes of `path` (all of it if
/// shorter): a file's header without reading the file.
pub fn read_confirmed_prefix(
    vfs: &dyn Vfs,
    path: &Path,
    limit: u64,
    suspicious: impl Fn(&[u8]) -> bool,
) -> crate::KvResult<Vec<u8>> {
    let read = || -> crate::KvResult<Vec<u8>> {
        let context = || format!("read {}", path.display());
        let file = vfs
            .open_read(path)
            .map_err(|err| crate::KvError::io(context(), err))?;
        if limit == u64::MAX {
            return read_all(file.as_ref()).map_err(|err| crate::KvError::io(context(), err));
        }
        let len = file
            .len()
            .map_err(|err| crate::KvError::io(context(), err))?
            .min(limit);
        let mut bytes = vec![0u8; len as usize];
        read_exact_at(file.as_ref(), &mut bytes, 0)
            .map_err(|err| crate::KvError::io(context(), err))?;
        Ok(bytes)
    };
    let bytes = read()?;
    if suspicious(&bytes) && (read()? != bytes || read()? != bytes) {
        return Err(crate::KvError::io(
            format!("read {}", path.display()),
            io::Error::other(
                "repeated reads of the file disagree: the device is returning damaged data",
            ),
        ));
    }
    Ok(bytes)
}

pub type SharedVfs = Arc<dyn Vfs>;
