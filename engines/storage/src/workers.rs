//! An engine's background threads: started by name over the engine's
//! shared state, each a loop that returns once the engine stops
//! (`Lifecycle::pause` says when), stopped and joined once by `close` or
//! drop. The engines differ in their loops, not in this.

use std::sync::Arc;
use std::thread::JoinHandle;

use parking_lot::{Condvar, Mutex};

use crate::error::{KvError, KvResult};

/// The body of one background thread.
pub type WorkerLoop<T> = fn(&T);

#[derive(Debug, Default)]
pub struct Workers {
    handles: Mutex<Vec<JoinHandle<()>>>,
}

impl Workers {
    pub fn new() -> Self {
        Workers::default()
    }

    /// Starts one named thread per loop over `shared`. A thread the OS
    /// refuses is an I/O error; the ones already started run until `stop`.
    pub fn start<T: Send + Sync + 'static>(
        &self,
        shared: &Arc<T>,
        loops: &[(&str, WorkerLoop<T>)],
    ) -> KvResult<()> {
        for &(name, body) in loops {
            let shared = Arc::clone(shared);
            let handle = std::thread::Builder::new()
                .name(name.into())
                .spawn(move || body(&shared))
                .map_err(|err| KvError::io(format!("start the {name} thread"), err))?;
            self.handles.lock().push(handle);
        }
        Ok(())
    }

    /// Sets `stop`, wakes every thread that may wait on `wake`, and joins
    /// them all; a later call finds none left.
    pub fn stop(&self, stop: &Mutex<bool>, wake: &[&Condvar]) {
        *stop.lock() = true;
        for condvar in wake {
            condvar.notify_all();
        }
        for handle in std::mem::take(&mut *self.handles.lock()) {
            // A panicked worker has nothing more to give.
            let _ = handle.join();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::{AtomicUsize, Ordering};
    use std::time::Duration;

    struct Shared {
        stop: Mutex<bool>,
        wake: Condvar,
        laps: AtomicUsize,
    }

    fn lap(shared: &Shared) {
        let mut stopping = shared.stop.lock();
        while !*stopping {
            shared.laps.fetch_add(1, Ordering::Relaxed);
            shared.wake.wait_for(&mut stopping, Duration::from_secs(60));
        }
    }

    #[test]
    fn threads_run_until_stopped_and_stop_joins_them_once() {
        let shared = Arc::new(Shared {
            stop: Mutex::new(false),
            wake: Condvar::new(),
            laps: AtomicUsize::new(0),
        });
        let workers = Workers::new();
        let started = workers.start(&shared, &[("test-a", lap), ("test-b", lap)]);
        assert!(started.is_ok());
        while shared.laps.load(Ordering::Relaxed) < 2 {
            std::thread::yield_now();
        }
        // Both wait 60 s unless woken: stop must wake them to return at once.
        workers.stop(&shared.stop, &[&shared.wake]);
        assert_eq!(Arc::strong_count(&shared), 1);
        workers.stop(&shared.stop, &[&shared.wake]);
    }
}
