//! Where a replay's ops come from: a trace in memory (generated in this
//! process) or a trace file streamed a window at a time, so a replaying child
//! holds one window of the trace, not all of it, inside its memory budget.

use crate::{Context, Result};
use leasehold_workloads::trace::{Op, Trace, TraceFile, TraceHeader, TraceOp};

/// Ops a replay holds at once: whole-store ops aside, the threads replay a
/// window between two barriers.
pub const WINDOW_OPS: usize = 64 * 1024;

pub trait OpSource {
    fn header(&self) -> &TraceHeader;
    /// Ops in the whole trace.
    fn total_ops(&self) -> u64;
    /// Where the trace's `Measure` marker is, if it has one (the ops before
    /// it set the store up and are not measured).
    fn measure_at(&self) -> Option<u64>;
    /// Replaces `window`'s contents with the next ops (at least one chunk,
    /// about `WINDOW_OPS`); leaves it empty at the end of the trace.
    fn next_window(&mut self, window: &mut Vec<TraceOp>) -> Result<()>;
}

/// A trace generated in this process.
pub struct InMemory<'a> {
    trace: &'a Trace,
    next: usize,
}

impl<'a> InMemory<'a> {
    pub fn new(trace: &'a Trace) -> InMemory<'a> {
        InMemory { trace, next: 0 }
    }
}

impl OpSource for InMemory<'_> {
    fn header(&self) -> &TraceHeader {
        &self.trace.header
    }

    fn total_ops(&self) -> u64 {
        self.trace.ops.len() as u64
    }

    fn measure_at(&self) -> Option<u64> {
        self.trace
            .ops
            .iter()
            .position(|op| op.op == Op::Measure)
            .map(|at| at as u64)
    }

    fn next_window(&mut self, window: &mut Vec<TraceOp>) -> Result<()> {
        window.clear();
        let end = (self.next + WINDOW_OPS).min(self.trace.ops.len());
        window.extend_from_slice(&self.trace.ops[self.next..end]);
        self.next = end;
        Ok(())
    }
}

/// A trace file, checked end to end when opened, then read a window at a
/// time.
pub struct Streamed {
    file: TraceFile,
    path: std::path::PathBuf,
}

impl Streamed {
    pub fn open(path: &std::path::Path) -> Result<Streamed> {
        let file = TraceFile::open(path)?;
        Ok(Streamed {
            file,
            path: path.to_path_buf(),
        })
    }
}

impl OpSource for Streamed {
    fn header(&self) -> &TraceHeader {
        self.file.reader.header()
    }

    fn total_ops(&self) -> u64 {
        self.file.total_ops
    }

    fn measure_at(&self) -> Option<u64> {
        self.file.measure_at
    }

    fn next_window(&mut self, window: &mut Vec<TraceOp>) -> Result<()> {
        window.clear();
        while window.len() < WINDOW_OPS {
            let more = self
                .file
                .reader
                .next_chunk(window)
                .with_context(|| self.path.display().to_string())?;
            if !more {
                break;
            }
        }
        Ok(())
    }
}
