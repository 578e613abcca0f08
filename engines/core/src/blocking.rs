//! `BlockingRuntime`: how a synchronous `Store` drives an async client library
//! (object_store, tokio-postgres) without nesting runtimes.
//!
//! The store owns a small multi-thread tokio runtime. A call spawns its
//! request as a task there and waits for the answer on a channel, so it works
//! from any thread — one that is driving another runtime (an actor
//! framework's, audit C2) included, where `block_on` would panic. Dropping it
//! shuts the runtime down without waiting: a blocking shutdown on a runtime
//! thread would panic too.

use std::future::Future;

use crate::error::{KvError, StoreError, StoreResult};

pub struct BlockingRuntime {
    /// `None` only while dropping.
    runtime: Option<tokio::runtime::Runtime>,
}

impl BlockingRuntime {
    /// A runtime of `threads` workers named `name`.
    pub fn start(name: &str, threads: usize) -> StoreResult<BlockingRuntime> {
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(threads.max(1))
            .thread_name(name)
            .enable_all()
            .build()
            .map_err(|err| {
                StoreError::Engine(KvError::io(format!("start the {name} runtime"), err))
            })?;
        Ok(BlockingRuntime {
            runtime: Some(runtime),
        })
    }

    /// Runs `request` on the runtime and waits for its answer; safe from any
    /// thread, inside a runtime or not (it blocks the caller).
    pub fn run<T: Send + 'static>(
        &self,
        request: impl Future<Output = T> + Send + 'static,
    ) -> StoreResult<T> {
        // The runtime is shut down only by `drop`, which cannot run while
        // `&self` is borrowed: both errors are unreachable, not unwrapped.
        let stopped = || StoreError::Engine(KvError::Closed);
        let runtime = self.runtime.as_ref().ok_or_else(stopped)?;
        let (answer, answered) = std::sync::mpsc::sync_channel(1);
        runtime.spawn(async move {
            let _ = answer.send(request.await);
        });
        answered.recv().map_err(|_| stopped())
    }

    /// Starts `task` on the runtime without waiting for it (a connection's
    /// driver, say).
    pub fn spawn(&self, task: impl Future<Output = ()> + Send + 'static) {
        if let Some(runtime) = &self.runtime {
            runtime.spawn(task);
        }
    }
}

impl Drop for BlockingRuntime {
    fn drop(&mut self) {
        if let Some(runtime) = self.runtime.take() {
            runtime.shutdown_background();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Called from a thread that drives a runtime of its own, `run` answers
    /// instead of panicking as a nested `block_on` would.
    #[test]
    fn runs_from_inside_another_runtime() {
        let bridge = BlockingRuntime::start("test-bridge", 1).expect("runtime");
        let outer = tokio::runtime::Builder::new_current_thread()
            .build()
            .expect("outer runtime");
        let answer = outer.block_on(async { bridge.run(async { 6 * 7 }) });
        assert_eq!(answer.expect("answer"), 42);
        drop(outer);
        drop(bridge);
    }
}
