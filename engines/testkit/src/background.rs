//! Background threads on: the crash oracle with an engine's own workers
//! running (flushes, compactions, checkpoints, timed syncs), a second thread
//! calling the engine's manual maintenance (`compact_all`, a checkpoint) in a
//! loop and a third scanning the whole store in a loop while the case's
//! writes go on — the races the deterministic campaign
//! (`background_threads = false`) cannot see. Every racing scan must succeed
//! and hold only values the case wrote (a scan that meets a page or table
//! reused under it fails or reads another key's bytes). Each scan holds its
//! place after its first entry until two more maintenance rounds have
//! finished (`Pin`): the reader an engine must protect, the one that outlives
//! the pages or tables it started on, is made on purpose rather than left to
//! the scheduler. After the writes,
//! the live state must equal the model; then the disk's crash image must
//! recover to the durable floor plus a prefix of the rest.
//!
//! Cases are not deterministic (threads interleave as the OS schedules
//! them); the seed fixes the operations and the crash image. A case that
//! does not finish within `CASE_TIME_MAX` is a violation: a dead worker
//! leaves writers stalled for good.

use std::collections::HashSet;
use std::ops::ControlFlow;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{mpsc, Arc};
use std::time::{Duration, Instant};

use leasehold_core::kv::{Durability, KeyRange, KvEngine};
use leasehold_core::vfs::SimVfs;
use leasehold_core::KvResult;

use super::crash::{collect_all, key_name, CrashCase, CrashOp};
use super::oracle::{KvMap, Model, Violation};

/// The longest a case may take before it counts as stalled.
pub const CASE_TIME_MAX: Duration = Duration::from_secs(20);

/// The longest a racing scan holds its place waiting for two maintenance
/// rounds.
pub const PIN_MAX: Duration = Duration::from_secs(1);
/// A held scan lets go once neither the writes nor the maintenance have
/// moved for this long: the engine's scan holds them up (the memory engine
/// reads under its shard locks), and the case stops holding its scans.
pub const PIN_STALL: Duration = Duration::from_millis(20);

/// What the racing scan watches while it holds its place: maintenance
/// rounds finished and case operations done, bumped by their threads.
#[derive(Default)]
struct Pin {
    rounds: AtomicU64,
    writes: AtomicU64,
    done: AtomicBool,
    /// Cleared once a held scan stalled the engine.
    holding: AtomicBool,
}

impl Pin {
    fn new() -> Pin {
        Pin {
            holding: AtomicBool::new(true),
            ..Pin::default()
        }
    }

    fn done(&self) -> bool {
        self.done.load(Ordering::Acquire)
    }

    /// Holds the calling scan until two more maintenance rounds finish, the
    /// case is done, `PIN_MAX` passes, or nothing moves for `PIN_STALL`.
    fn hold(&self) {
        if !self.holding.load(Ordering::Relaxed) {
            return;
        }
        let target = self.rounds.load(Ordering::Acquire) + 2;
        let moved = || self.writes.load(Ordering::Acquire) + self.rounds.load(Ordering::Acquire);
        let (began, mut moved_at, mut seen) = (Instant::now(), Instant::now(), moved());
        while self.rounds.load(Ordering::Acquire) < target && !self.done() {
            if moved() != seen {
                (seen, moved_at) = (moved(), Instant::now());
            }
            if moved_at.elapsed() >= PIN_STALL {
                self.holding.store(false, Ordering::Relaxed);
                return;
            }
            if began.elapsed() >= PIN_MAX {
                return;
            }
            std::thread::sleep(Duration::from_micros(200));
        }
    }
}

/// Opens an engine (with its background threads) on a disk.
pub type OpenShared<E> = dyn Fn(SimVfs) -> KvResult<E> + Send + Sync;
/// The manual maintenance raced against the workers.
pub type Maintain<E> = dyn Fn(&E) -> KvResult<()> + Send + Sync;

fn violation(reason: String) -> Violation {
    Violation { reason }
}

/// Runs `case`'s writes and flushes (a reopen counts as a flush: the
/// maintenance thread holds the engine) with `maintain` looping beside them.
pub fn run_background_case<E: KvEngine>(
    open: Arc<OpenShared<E>>,
    maintain: Arc<Maintain<E>>,
    case: CrashCase,
) -> Result<usize, Violation> {
    let (answer, answered) = mpsc::channel();
    std::thread::spawn(move || {
        let _ = answer.send(run_unwatched(open.as_ref(), maintain, &case));
    });
    match answered.recv_timeout(CASE_TIME_MAX) {
        Ok(result) => result,
        Err(mpsc::RecvTimeoutError::Timeout) => Err(violation(format!(
            "the case did not finish in {CASE_TIME_MAX:?}: a writer or the maintenance stalled \
             (a background worker that died leaves writers waiting for good)"
        ))),
        Err(mpsc::RecvTimeoutError::Disconnected) => Err(violation(
            "the case panicked (see the panic message above)".into(),
        )),
    }
}

fn run_unwatched<E: KvEngine>(
    open: &OpenShared<E>,
    maintain: Arc<Maintain<E>>,
    case: &CrashCase,
) -> Result<usize, Violation> {
    let vfs = SimVfs::new(case.seed);
    let engine = Arc::new(open(vfs.clone()).map_err(|err| violation(format!("open: {err}")))?);
    let pin = Arc::new(Pin::new());
    let maintenance = {
        let (engine, pin) = (Arc::clone(&engine), Arc::clone(&pin));
        std::thread::spawn(move || -> Result<(), String> {
            while !pin.done() {
                maintain(&engine).map_err(|err| format!("maintenance failed: {err}"))?;
                pin.rounds.fetch_add(1, Ordering::Release);
            }
            Ok(())
        })
    };
    let written: HashSet<(Vec<u8>, Vec<u8>)> = case
        .ops
        .iter()
        .flat_map(|op| match op {
            CrashOp::Write { ops, .. } => ops.clone(),
            CrashOp::Flush | CrashOp::Reopen => Vec::new(),
        })
        .filter_map(|(key, value)| value.map(|value| (key_name(key), value)))
        .collect();
    let reader = {
        let (engine, pin) = (Arc::clone(&engine), Arc::clone(&pin));
        std::thread::spawn(move || -> Result<u64, String> {
            let mut scans = 0;
            while !pin.done() {
                let state = pinned_scan(engine.as_ref(), &pin)
                    .map_err(|err| format!("a scan racing the writers failed: {err}"))?;
                if let Some((key, _)) = state.into_iter().find(|pair| !written.contains(pair)) {
                    return Err(format!(
                        "a scan racing the writers read a value never written for {}",
                        String::from_utf8_lossy(&key)
                    ));
                }
                scans += 1;
            }
            Ok(scans)
        })
    };
    let mut model = Model::new();
    let mut acknowledged = 0;
    let mut outcome = Ok(());
    for op in &case.ops {
        let result = match op {
            CrashOp::Write { ops, durability } => {
                let batch = CrashOp::batch(ops);
                engine.write(batch.clone(), *durability).map(|()| {
                    model.acknowledge(batch, *durability == Durability::Sync);
                    acknowledged += 1;
                })
            }
            CrashOp::Flush | CrashOp::Reopen => engine.flush().map(|()| model.mark_durable()),
        };
        pin.writes.fetch_add(1, Ordering::Release);
        if let Err(err) = result {
            outcome = Err(violation(format!("{op:?} failed on a healthy disk: {err}")));
            break;
        }
    }
    pin.done.store(true, Ordering::Release);
    match maintenance.join() {
        Ok(Ok(_)) => {}
        Ok(Err(reason)) => return Err(violation(reason)),
        Err(_) => return Err(violation("the maintenance thread panicked".into())),
    }
    match reader.join() {
        Ok(Ok(_)) => {}
        Ok(Err(reason)) => return Err(violation(reason)),
        Err(_) => return Err(violation("the scanning thread panicked".into())),
    }
    outcome?;
    let live = collect_all(engine.as_ref()).map_err(|err| violation(format!("scan: {err}")))?;
    if live != model.expected() {
        return Err(violation(format!(
            "with the workers racing the maintenance, the live store holds {} keys where {} were \
             written",
            live.len(),
            model.expected().len()
        )));
    }
    let image = vfs.crash_image(case.policy, case.seed);
    drop(engine);
    let recovered = open(image).map_err(|err| violation(format!("recovery: {err}")))?;
    let state = collect_all(&recovered).map_err(|err| violation(format!("scan: {err}")))?;
    let _ = recovered.close();
    model.check_recovered(&state)?;
    Ok(acknowledged)
}

/// A whole-store scan held after its first entry (`Pin::hold`).
fn pinned_scan(engine: &dyn KvEngine, pin: &Pin) -> KvResult<KvMap> {
    let mut state = KvMap::new();
    engine.scan(&KeyRange::all(), &mut |key, value| {
        if state.is_empty() {
            pin.hold();
        }
        state.insert(key.to_vec(), value.to_vec());
        ControlFlow::Continue(())
    })?;
    Ok(state)
}

/// `cases` random cases (the crash campaign's generator, `seed`); the first
/// violation with its case.
pub fn search_background<E: KvEngine>(
    open: Arc<OpenShared<E>>,
    maintain: Arc<Maintain<E>>,
    seed: u64,
    cases: u32,
    ops_max: usize,
) -> Result<(), (CrashCase, String)> {
    super::crash::search_seeded(
        seed,
        cases,
        ops_max,
        &leasehold_core::vfs::CrashPolicy::ALL,
        &|case| {
            run_background_case(Arc::clone(&open), Arc::clone(&maintain), case.clone()).map(|_| ())
        },
    )
}
