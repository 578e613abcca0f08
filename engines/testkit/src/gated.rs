//! `GatedVfs`: a `SimVfs` whose fsyncs of files with one extension wait at a
//! gate while it is closed. A test closes the gate, lets an engine reach such
//! an fsync — a log's (the writer then holds its log for as long as the test
//! likes), a table's or a data file's (a flush, compaction or checkpoint then
//! stalls) — and checks what the rest of the engine does meanwhile. A gate
//! can also fail the next gated fsync once (an I/O error where the engine
//! does background work).

use std::io;
use std::path::Path;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

use parking_lot::{Condvar, Mutex};

use leasehold_core::kv::{Durability, KvEngine, WriteBatch};
use leasehold_core::vfs::{CrashPolicy, DirLock, LockError, SimVfs, Vfs, VfsFile, VfsStats};
use leasehold_core::KvResult;

/// The gate: closed, fsyncs of gated files wait; opened, they go on.
#[derive(Debug, Default)]
pub struct Gate {
    closed: Mutex<bool>,
    opened: Condvar,
    held: AtomicBool,
    fail_next: AtomicBool,
    /// Only fsyncs made on the thread of this name wait (any when `None`).
    thread: Mutex<Option<&'static str>>,
}

impl Gate {
    pub fn close(&self) {
        *self.closed.lock() = true;
    }

    pub fn open(&self) {
        *self.closed.lock() = false;
        self.opened.notify_all();
    }

    /// From now on only fsyncs made on the thread named `name` wait at the
    /// gate (an engine's compactor, say, while its flusher goes on).
    pub fn only_on_thread(&self, name: &'static str) {
        *self.thread.lock() = Some(name);
    }

    /// The next gated fsync fails with an I/O error (once).
    pub fn fail_next(&self) {
        self.fail_next.store(true, Ordering::SeqCst);
    }

    /// Whether some fsync is held (or was) at the closed gate.
    pub fn is_held(&self) -> bool {
        self.held.load(Ordering::SeqCst)
    }

    /// Waits until some fsync is held at the closed gate.
    pub fn wait_until_held(&self) {
        while !self.held.load(Ordering::SeqCst) {
            std::thread::yield_now();
        }
    }

    fn pass(&self) -> io::Result<()> {
        if let Some(name) = *self.thread.lock() {
            if std::thread::current().name() != Some(name) {
                return Ok(());
            }
        }
        let mut closed = self.closed.lock();
        while *closed {
            self.held.store(true, Ordering::SeqCst);
            self.opened.wait(&mut closed);
        }
        if self.fail_next.swap(false, Ordering::SeqCst) {
            return Err(io::Error::other("injected EIO at the gate"));
        }
        Ok(())
    }
}

#[derive(Debug)]
pub struct GatedVfs {
    inner: SimVfs,
    gate: Arc<Gate>,
    extension: &'static str,
}

impl GatedVfs {
    /// Gates the fsyncs of files named `*.extension` on `inner`.
    pub fn new(inner: SimVfs, extension: &'static str) -> GatedVfs {
        GatedVfs {
            inner,
            gate: Arc::default(),
            extension,
        }
    }

    pub fn gate(&self) -> Arc<Gate> {
        Arc::clone(&self.gate)
    }

    fn wrap(&self, path: &Path, file: Arc<dyn VfsFile>) -> Arc<dyn VfsFile> {
        let gated = path.extension().is_some_and(|ext| ext == self.extension);
        Arc::new(GatedFile {
            inner: file,
            gate: gated.then(|| Arc::clone(&self.gate)),
        })
    }
}

#[derive(Debug)]
struct GatedFile {
    inner: Arc<dyn VfsFile>,
    gate: Option<Arc<Gate>>,
}

impl VfsFile for GatedFile {
    fn read_at(&self, buf: &mut [u8], offset: u64) -> io::Result<usize> {
        self.inner.read_at(buf, offset)
    }
    fn write_at(&self, buf: &[u8], offset: u64) -> io::Result<usize> {
        self.inner.write_at(buf, offset)
    }
    fn sync(&self) -> io::Result<()> {
        if let Some(gate) = &self.gate {
            gate.pass()?;
        }
        self.inner.sync()
    }
    fn len(&self) -> io::Result<u64> {
        self.inner.len()
    }
    fn set_len(&self, len: u64) -> io::Result<()> {
        self.inner.set_len(len)
    }
}

impl Vfs for GatedVfs {
    fn create(&self, path: &Path) -> io::Result<Arc<dyn VfsFile>> {
        Ok(self.wrap(path, self.inner.create(path)?))
    }
    fn open(&self, path: &Path) -> io::Result<Arc<dyn VfsFile>> {
        Ok(self.wrap(path, self.inner.open(path)?))
    }
    fn open_read(&self, path: &Path) -> io::Result<Arc<dyn VfsFile>> {
        self.inner.open_read(path)
    }
    fn exists(&self, path: &Path) -> io::Result<bool> {
        self.inner.exists(path)
    }
    fn list(&self, dir: &Path) -> io::Result<Vec<String>> {
        self.inner.list(dir)
    }
    fn rename(&self, from: &Path, to: &Path) -> io::Result<()> {
        self.inner.rename(from, to)
    }
    fn remove(&self, path: &Path) -> io::Result<()> {
        self.inner.remove(path)
    }
    fn create_dir_all(&self, dir: &Path) -> io::Result<()> {
        self.inner.create_dir_all(dir)
    }
    fn sync_dir(&self, dir: &Path) -> io::Result<()> {
        self.inner.sync_dir(dir)
    }
    fn file_size(&self, path: &Path) -> io::Result<u64> {
        self.inner.file_size(path)
    }
    fn stats(&self) -> VfsStats {
        self.inner.stats()
    }
    fn lock_dir(&self, dir: &Path) -> Result<DirLock, LockError> {
        self.inner.lock_dir(dir)
    }
}

/// G1: a Group write is synced within its interval while the engine's
/// background work is stuck at `gate` (a long flush, a long checkpoint).
/// `engine` runs on a `GatedVfs` over `disk`; the gate is closed, `fill`
/// writes until that work starts and waits at it, then a Group write is
/// made; the power-loss image of `disk` taken `wait` later (past the
/// interval), opened by `reopen`, must hold that write.
pub fn check_group_write_synced_while_stuck<E: KvEngine>(
    engine: E,
    gate: &Gate,
    disk: &SimVfs,
    fill: impl Fn(&E),
    wait: Duration,
    reopen: impl Fn(SimVfs) -> KvResult<E>,
) {
    gate.close();
    fill(&engine);
    gate.wait_until_held();
    let mut group = WriteBatch::new();
    group.put(&b"group"[..], &b"1"[..]);
    engine.write(group, Durability::Group).expect("group write");
    std::thread::sleep(wait);
    let crashed = disk.crash_image(CrashPolicy::PowerLoss, 0);
    gate.open();
    engine.close().expect("close");
    drop(engine);
    let recovered = reopen(crashed).expect("recover");
    assert_eq!(
        recovered.get(b"group").expect("get").as_deref(),
        Some(&b"1"[..]),
        "a Group write acknowledged {wait:?} before the crash was lost"
    );
}

/// While a Sync write of `k` → `v` is stuck at `gate` (closed here), `ask`
/// runs on another thread; its answer if it came within `within`, else
/// `None`. The gate is opened and the write must then succeed.
pub fn answer_while_a_write_is_stuck<E, T>(
    engine: &Arc<E>,
    gate: &Gate,
    within: Duration,
    ask: impl FnOnce(&E) -> T + Send + 'static,
) -> Option<T>
where
    E: KvEngine + 'static,
    T: Send + 'static,
{
    gate.close();
    let writer = {
        let engine = Arc::clone(engine);
        std::thread::spawn(move || {
            let mut batch = WriteBatch::new();
            batch.put(&b"k"[..], &b"v"[..]);
            engine.write(batch, Durability::Sync)
        })
    };
    gate.wait_until_held();
    let (answer, answered) = std::sync::mpsc::channel();
    {
        let engine = Arc::clone(engine);
        std::thread::spawn(move || {
            let _ = answer.send(ask(&engine));
        });
    }
    let early = answered.recv_timeout(within).ok();
    gate.open();
    writer
        .join()
        .expect("the writer thread")
        .expect("the stuck write, once let go");
    early
}
