//! What an engine counts of its log, apart from the writer's lock so that
//! `stats` never waits behind a writer in its fsync: the bytes appended since
//! open (the log's share of write amplification) and the length of the
//! current log.

use std::sync::atomic::{AtomicU64, Ordering};

use crate::error::{KvError, KvResult};
use crate::wal::WalWriter;

#[derive(Debug, Default)]
pub struct LogCounters {
    appended: AtomicU64,
    current: AtomicU64,
}

impl LogCounters {
    /// Appends records to `wal` by `append` (one of its append methods) and
    /// counts what it wrote; an error, named with the log's path, goes
    /// through `fail` (the engine cannot trust a log it could not append to).
    pub fn append(
        &self,
        wal: &mut WalWriter,
        append: impl FnOnce(&mut WalWriter) -> std::io::Result<u64>,
        fail: impl FnOnce(KvError) -> KvError,
    ) -> KvResult<()> {
        let written = append(wal).map_err(|err| {
            fail(KvError::io(
                format!("append to {}", wal.path().display()),
                err,
            ))
        })?;
        self.appended.fetch_add(written, Ordering::Relaxed);
        self.current.store(wal.len(), Ordering::Relaxed);
        Ok(())
    }

    /// A new, empty log took the current one's place.
    pub fn rotated(&self) {
        self.current.store(0, Ordering::Relaxed);
    }

    /// Bytes appended to the engine's logs since open.
    pub fn appended(&self) -> u64 {
        self.appended.load(Ordering::Relaxed)
    }

    /// Bytes in the current log.
    pub fn current(&self) -> u64 {
        self.current.load(Ordering::Relaxed)
    }
}

#[cfg(test)]
mod tests {
    use std::path::Path;

    use super::*;
    use crate::vfs::{SimVfs, Vfs};

    #[test]
    fn appends_are_counted_and_a_rotation_empties_the_current_log() {
        let vfs = SimVfs::new(1);
        let path = Path::new("/log/1.wal");
        vfs.create_dir_all(Path::new("/log")).unwrap();
        let file = vfs.create(path).unwrap();
        let mut wal = WalWriter::new(file, path.to_path_buf());
        let counters = LogCounters::default();
        counters
            .append(&mut wal, |wal| wal.append(&[b"one", b"two"]), |err| err)
            .unwrap();
        assert_eq!(counters.appended(), wal.len());
        assert_eq!(counters.current(), wal.len());
        assert!(counters.current() > 6);
        counters.rotated();
        assert_eq!(counters.current(), 0);
        assert_eq!(counters.appended(), wal.len());
    }
}
