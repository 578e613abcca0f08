//! A toy log engine for testing the tests: one append-only file of framed
//! batches, replayed on open up to the first frame that does not check out.
//!
//! With `ack_before_fsync` it has the classic bug: a `Sync` write returns
//! before the log is fsynced. The crash oracle must catch that (a test keeps it
//! honest); without the bug it passes the crash checks.
//!
//! It also has, on purpose, the naive recovery real logs must not have: it
//! truncates at the first frame that fails its checksum, so a bit flipped on
//! the way from the device (not on the platter) destroys durable records. The
//! read-fault check of the crash driver must catch that too.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use parking_lot::Mutex;

use leasehold_core::error::{KvError, KvResult};
use leasehold_core::frame;
use leasehold_core::kv::{
    Durability, EngineStats, Health, KeyRange, KvEngine, ScanVisitor, VerifyReport, WriteBatch,
};
use leasehold_core::vfs::{read_all, write_all_at, Vfs, VfsFile};

const LOG_NAME: &str = "toy.log";

#[derive(Debug)]
struct Inner {
    map: BTreeMap<Vec<u8>, Vec<u8>>,
    log: Arc<dyn VfsFile>,
    end: u64,
    /// Set by the first I/O failure; the engine then refuses writes.
    poisoned: Option<String>,
    closed: bool,
}

#[derive(Debug)]
pub struct ToyLogEngine {
    vfs: Arc<dyn Vfs>,
    log_path: PathBuf,
    ack_before_fsync: bool,
    inner: Mutex<Inner>,
}

fn io(context: &str, path: &Path) -> impl FnOnce(std::io::Error) -> KvError {
    let context = format!("{context} {}", path.display());
    move |source| KvError::io(context, source)
}

impl ToyLogEngine {
    pub fn open(vfs: Arc<dyn Vfs>, dir: &Path, ack_before_fsync: bool) -> KvResult<ToyLogEngine> {
        vfs.create_dir_all(dir).map_err(io("create dir", dir))?;
        let log_path = dir.join(LOG_NAME);
        let mut map = BTreeMap::new();
        let (log, end) = if vfs.exists(&log_path).map_err(io("stat", &log_path))? {
            let log = vfs.open(&log_path).map_err(io("open", &log_path))?;
            let bytes = read_all(log.as_ref()).map_err(io("read", &log_path))?;
            let mut offset = 0;
            // Replay up to the first bad frame: anything after it was never synced.
            while let Ok(Some((payload, next))) = frame::decode(&bytes, offset) {
                let batch = WriteBatch::decode(payload).map_err(|err| {
                    KvError::corruption(
                        &log_path,
                        offset as u64,
                        format!("batch does not decode: {err}"),
                    )
                })?;
                batch.apply_to(&mut map);
                offset = next;
            }
            if offset < bytes.len() {
                log.set_len(offset as u64)
                    .map_err(io("truncate", &log_path))?;
                log.sync().map_err(io("sync", &log_path))?;
            }
            (log, offset as u64)
        } else {
            let log = vfs.create(&log_path).map_err(io("create", &log_path))?;
            log.sync().map_err(io("sync", &log_path))?;
            vfs.sync_dir(dir).map_err(io("sync dir", dir))?;
            (log, 0)
        };
        Ok(ToyLogEngine {
            vfs,
            log_path,
            ack_before_fsync,
            inner: Mutex::new(Inner {
                map,
                log,
                end,
                poisoned: None,
                closed: false,
            }),
        })
    }

    fn writable(inner: &Inner) -> KvResult<()> {
        if inner.closed {
            return Err(KvError::Closed);
        }
        if let Some(reason) = &inner.poisoned {
            return Err(KvError::Poisoned {
                reason: reason.clone(),
            });
        }
        Ok(())
    }

    fn sync_log(&self, inner: &mut Inner) -> KvResult<()> {
        inner.log.sync().map_err(|err| {
            inner.poisoned = Some(format!("log fsync failed: {err}"));
            KvError::io(format!("sync {}", self.log_path.display()), err)
        })
    }
}

impl KvEngine for ToyLogEngine {
    fn name(&self) -> &'static str {
        "toy"
    }

    fn get(&self, key: &[u8]) -> KvResult<Option<Vec<u8>>> {
        Ok(self.inner.lock().map.get(key).cloned())
    }

    fn write(&self, batch: WriteBatch, durability: Durability) -> KvResult<()> {
        let mut inner = self.inner.lock();
        Self::writable(&inner)?;
        let mut record = Vec::new();
        frame::encode(&batch.encode(), &mut record);
        if let Err(err) = write_all_at(inner.log.as_ref(), &record, inner.end) {
            inner.poisoned = Some(format!("log write failed: {err}"));
            return Err(KvError::io(
                format!("append {}", self.log_path.display()),
                err,
            ));
        }
        inner.end += record.len() as u64;
        if durability != Durability::Buffered && !self.ack_before_fsync {
            self.sync_log(&mut inner)?;
        }
        batch.apply_to(&mut inner.map);
        Ok(())
    }

    fn scan(&self, range: &KeyRange, visit: &mut ScanVisitor<'_>) -> KvResult<()> {
        let inner = self.inner.lock();
        for (key, value) in inner.map.range::<[u8], _>(range.as_bounds()) {
            if visit(key, value).is_break() {
                break;
            }
        }
        Ok(())
    }

    fn flush(&self) -> KvResult<()> {
        let mut inner = self.inner.lock();
        Self::writable(&inner)?;
        self.sync_log(&mut inner)
    }

    fn stats(&self) -> EngineStats {
        let vfs = self.vfs.stats();
        let inner = self.inner.lock();
        EngineStats {
            device_bytes_written: vfs.bytes_written,
            device_bytes_read: vfs.bytes_read,
            wal_bytes_written: vfs.bytes_written,
            fsyncs: vfs.fsyncs,
            dir_syncs: vfs.dir_syncs,
            disk_bytes: inner.end,
            live_entries: inner.map.len() as u64,
            live_bytes: inner
                .map
                .iter()
                .map(|(key, value)| (key.len() + value.len()) as u64)
                .sum(),
            ..EngineStats::default()
        }
    }

    fn health(&self) -> Health {
        match &self.inner.lock().poisoned {
            Some(reason) => Health::Failed(reason.clone()),
            None => Health::Healthy,
        }
    }

    fn verify(&self) -> KvResult<VerifyReport> {
        let inner = self.inner.lock();
        let bytes = read_all(inner.log.as_ref()).map_err(io("read", &self.log_path))?;
        let mut report = VerifyReport::default();
        let mut offset = 0;
        let mut frames = 0;
        while offset < inner.end as usize {
            match frame::decode(&bytes[..inner.end as usize], offset) {
                Ok(Some((_, next))) => {
                    frames += 1;
                    offset = next;
                }
                Ok(None) => break,
                Err(err) => {
                    report.problems.push(format!(
                        "{} at offset {}: {}",
                        self.log_path.display(),
                        offset,
                        err.reason()
                    ));
                    break;
                }
            }
        }
        report.checked = format!("{frames} log records");
        Ok(report)
    }

    fn close(&self) -> KvResult<()> {
        let mut inner = self.inner.lock();
        if inner.closed {
            return Ok(());
        }
        Self::writable(&inner)?;
        self.sync_log(&mut inner)?;
        inner.closed = true;
        Ok(())
    }
}
