//! A fresh engine per suite, in a directory of its own: closed and measured
//! at the suite's end, removed when dropped.

use std::path::PathBuf;

use super::{BenchArgs, BenchSpace, Level};
use crate::engines::{self, BenchStore, DurabilityMode, EngineKind, EngineSettings};
use crate::{Context, Error, Result};

/// A fresh engine in its own directory, removed when dropped.
pub(super) struct Fresh {
    pub store: Box<dyn BenchStore>,
    dir: PathBuf,
    closed: bool,
}

impl Fresh {
    pub(super) fn open(
        engine: EngineKind,
        durability: DurabilityMode,
        settings: &EngineSettings,
        args: &BenchArgs,
        name: &str,
        capacity: u64,
    ) -> Result<Fresh> {
        let dir = args
            .data_dir
            .join(format!("bench-{}-{name}", engine.name()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).map_err(Error::file(&dir))?;
        let actors = u32::try_from(capacity).unwrap_or(u32::MAX);
        let store = engines::open(engine, durability, settings, &dir, actors)?;
        Ok(Fresh {
            store,
            dir,
            closed: false,
        })
    }

    /// Closes the engine at the end of `suite` and measures its directory
    /// (`None`: a store on a server that reports no size):
    /// the bytes its files take on disk (allocated blocks, so sparse files
    /// count what they use), beside the `logical_bytes` written to it.
    pub(super) fn close_and_measure(
        &mut self,
        suite: &str,
        engine: EngineKind,
        level: Level,
        logical_bytes: u64,
    ) -> Result<Option<BenchSpace>> {
        self.closed = true;
        let disk_bytes = if engine.keeps_local_files() {
            self.store
                .close()
                .with_context(|| format!("close {}", self.dir.display()))?;
            disk_bytes(&self.dir).map_err(Error::file(&self.dir))?
        } else {
            // On a server: the size it reports of the store's tables (none
            // for object storage), then the run's data removed there.
            let reported = self
                .store
                .metrics()
                .engine
                .map_or(0, |stats| stats.disk_bytes);
            self.store.discard()?;
            self.store
                .close()
                .with_context(|| format!("close {}", self.dir.display()))?;
            if reported == 0 {
                return Ok(None);
            }
            reported
        };
        Ok(Some(BenchSpace {
            suite: suite.to_owned(),
            engine,
            level,
            disk_bytes,
            logical_bytes,
            round: 0,
        }))
    }
}

/// Allocated bytes of every file under `dir`.
fn disk_bytes(dir: &std::path::Path) -> std::io::Result<u64> {
    use std::os::unix::fs::MetadataExt;
    let mut total = 0;
    for entry in std::fs::read_dir(dir)? {
        let entry = entry?;
        let metadata = entry.metadata()?;
        total += if metadata.is_dir() {
            disk_bytes(&entry.path())?
        } else {
            metadata.blocks() * 512
        };
    }
    Ok(total)
}

impl Drop for Fresh {
    fn drop(&mut self) {
        if !self.closed {
            let _ = self.store.discard();
            let _ = self.store.close();
        }
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}
