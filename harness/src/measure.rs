//! What the harness reads about itself from Linux: I/O counters
//! (`/proc/self/io`), peak RSS (`/proc/self/status`, reset through
//! `/proc/self/clear_refs`); and the one latency histogram every timed
//! call is recorded in.

use hdrhistogram::Histogram;

/// Latencies up to an hour, 3 significant digits.
const LATENCY_NANOS_MAX: u64 = 3_600_000_000_000;

/// An empty latency histogram (nanoseconds).
pub fn latency_histogram() -> Histogram<u64> {
    // Bounds and precision are constants within hdrhistogram's limits.
    Histogram::new_with_bounds(1, LATENCY_NANOS_MAX, 3).unwrap_or_else(|_| unreachable!())
}

/// Records `latency`, clamped into the histogram's range.
pub fn record_latency(histogram: &mut Histogram<u64>, latency: std::time::Duration) {
    let nanos = u64::try_from(latency.as_nanos())
        .unwrap_or(u64::MAX)
        .clamp(1, LATENCY_NANOS_MAX);
    histogram.saturating_record(nanos);
}

/// Cumulative I/O of this process.
#[derive(Clone, Copy, Debug, Default)]
pub struct ProcIo {
    /// Bytes passed to write(2) and friends.
    pub wchar: u64,
    /// Bytes this process caused to be sent to the block layer.
    pub write_bytes: u64,
    /// Bytes this process caused to be fetched from the block layer.
    pub read_bytes: u64,
}

impl ProcIo {
    /// `None` where the kernel has no per-task I/O accounting.
    pub fn read() -> Option<ProcIo> {
        let text = std::fs::read_to_string("/proc/self/io").ok()?;
        let field = |name: &str| {
            text.lines()
                .find_map(|line| line.strip_prefix(name)?.trim().strip_prefix(':'))
                .and_then(|value| value.trim().parse().ok())
        };
        Some(ProcIo {
            wchar: field("wchar")?,
            write_bytes: field("write_bytes")?,
            read_bytes: field("read_bytes")?,
        })
    }

    pub fn since(self, earlier: ProcIo) -> ProcIo {
        ProcIo {
            wchar: self.wchar.saturating_sub(earlier.wchar),
            write_bytes: self.write_bytes.saturating_sub(earlier.write_bytes),
            read_bytes: self.read_bytes.saturating_sub(earlier.read_bytes),
        }
    }
}

/// Resets the peak-RSS watermark so the next reading covers one run only.
/// Returns false where the kernel does not allow it.
///
/// The heap the runs before freed is handed back to the kernel first: glibc
/// keeps freed memory in its arenas, and the watermark restarts from the
/// resident size, so without the trim every engine in one process was
/// charged what the engines before it left behind (large-state at scale
/// 0.3, run in turn: the B+tree 215 MiB, 156 alone; RocksDB 241, 184 alone).
pub fn reset_peak_rss() -> bool {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    // SAFETY: malloc_trim only returns free memory of glibc's arenas to the
    // kernel; it takes no pointer and has no precondition.
    unsafe {
        libc::malloc_trim(0);
    }
    std::fs::write("/proc/self/clear_refs", "5").is_ok()
}

/// Peak resident set size since the last reset (VmHWM), in bytes.
pub fn peak_rss_bytes() -> Option<u64> {
    let text = std::fs::read_to_string("/proc/self/status").ok()?;
    let kib: u64 = text
        .lines()
        .find_map(|line| line.strip_prefix("VmHWM:"))?
        .trim()
        .trim_end_matches("kB")
        .trim()
        .parse()
        .ok()?;
    Some(kib * 1024)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn io_counters_see_this_process_write() {
        let dir = tempfile::tempdir().unwrap();
        let before = ProcIo::read().unwrap();
        std::fs::write(dir.path().join("f"), vec![1u8; 1 << 20]).unwrap();
        let written = ProcIo::read().unwrap().since(before);
        assert!(written.wchar >= 1 << 20, "{written:?}");
        assert_eq!(leasehold_core::vfs::dir_bytes(dir.path()), 1 << 20);
        assert!(peak_rss_bytes().unwrap() > 0);
    }
}
