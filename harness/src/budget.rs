//! Memory budgets: each engine's replay runs in its own child process inside
//! a memory cgroup, so every engine gets the same memory, page cache
//! included. cgroup v2 where the unified hierarchy has the memory
//! controller, v1's `memory` controller otherwise (this machine mounts v1 at
//! `/sys/fs/cgroup/memory`); both limits count the page cache. Swap is
//! limited too, so the budget cannot be escaped by swapping. The page cache
//! is dropped before each run where the kernel permits it.
//!
//! No usable cgroup is an error, never an unlimited run.

use crate::{Error, Result};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::atomic::{AtomicU64, Ordering};

const V1_ROOT: &str = "/sys/fs/cgroup/memory";
const V2_ROOT: &str = "/sys/fs/cgroup";

/// Parses a size: bytes, or a number with KiB/MiB/GiB (or K/M/G, also
/// binary): "512MiB", "1.5GiB", "384M".
pub fn parse_size(text: &str) -> Result<u64> {
    let trimmed = text.trim();
    let split = trimmed
        .find(|c: char| !(c.is_ascii_digit() || c == '.'))
        .unwrap_or(trimmed.len());
    let (number, unit) = trimmed.split_at(split);
    let unit_bytes: u64 = match unit.trim() {
        "" | "B" => 1,
        "K" | "KB" | "KiB" => 1 << 10,
        "M" | "MB" | "MiB" => 1 << 20,
        "G" | "GB" | "GiB" => 1 << 30,
        other => {
            return Err(Error::Usage(format!(
                "{text:?}: unknown size unit {other:?} (use B, KiB, MiB or GiB)"
            )))
        }
    };
    let value: f64 = number
        .parse()
        .map_err(|_| Error::Usage(format!("{text:?} is not a size (like 512MiB)")))?;
    let bytes = value * unit_bytes as f64;
    if !(bytes.is_finite() && bytes >= (16 << 20) as f64 && bytes < (1u64 << 50) as f64) {
        return Err(Error::Usage(format!(
            "{text:?}: a memory budget must be at least 16MiB (and below 1 PiB)"
        )));
    }
    Ok(bytes as u64)
}

/// "384 MiB", "1.5 GiB".
pub fn format_size(bytes: u64) -> String {
    if bytes >= 1 << 30 && bytes & ((1 << 30) - 1) != 0 {
        format!("{:.1} GiB", bytes as f64 / (1u64 << 30) as f64)
    } else if bytes >= 1 << 30 {
        format!("{} GiB", bytes >> 30)
    } else {
        format!("{} MiB", bytes >> 20)
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Version {
    V1,
    V2,
}

/// Which cgroup version offers a memory controller here, or why none does.
pub fn detect() -> Result<Version> {
    let v2_controllers = std::fs::read_to_string(Path::new(V2_ROOT).join("cgroup.controllers"));
    if v2_controllers.is_ok_and(|list| list.split_whitespace().any(|name| name == "memory")) {
        return Ok(Version::V2);
    }
    if Path::new(V1_ROOT).join("memory.limit_in_bytes").exists() {
        return Ok(Version::V1);
    }
    Err(Error::machine(format!(
        "--memory-limit needs a memory cgroup: neither cgroup v2 with the memory controller \
         ({V2_ROOT}/cgroup.controllers) nor cgroup v1's memory controller ({V1_ROOT}) is mounted"
    )))
}

/// What the cgroup saw of a child after it ended.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Usage {
    /// Processes the kernel killed for the limit.
    pub oom_kills: u64,
    /// The most memory the group held (page cache included).
    pub peak_bytes: Option<u64>,
}

/// A memory cgroup made for one child process, removed when dropped.
#[derive(Debug)]
pub struct Cgroup {
    path: PathBuf,
    version: Version,
}

static NEXT: AtomicU64 = AtomicU64::new(0);

impl Cgroup {
    /// Makes a fresh cgroup limited to `limit` bytes (memory and swap).
    pub fn create(limit: u64) -> Result<Cgroup> {
        let version = detect()?;
        let root = match version {
            Version::V1 => V1_ROOT,
            Version::V2 => V2_ROOT,
        };
        reap_stale(Path::new(root), version);
        let name = format!(
            "leasehold-{}-{}",
            std::process::id(),
            NEXT.fetch_add(1, Ordering::Relaxed)
        );
        let path = Path::new(root).join(name);
        std::fs::create_dir(&path).map_err(Error::os(format!(
            "cannot create the memory cgroup {} (--memory-limit needs root)",
            path.display()
        )))?;
        let cgroup = Cgroup { path, version };
        let limit_text = limit.to_string();
        match version {
            Version::V1 => {
                cgroup.write("memory.limit_in_bytes", &limit_text)?;
                // Memory + swap, set after the memory limit (it must not be below it).
                if cgroup.path.join("memory.memsw.limit_in_bytes").exists() {
                    cgroup.write("memory.memsw.limit_in_bytes", &limit_text)?;
                }
            }
            Version::V2 => {
                cgroup.write("memory.max", &limit_text)?;
                if cgroup.path.join("memory.swap.max").exists() {
                    cgroup.write("memory.swap.max", "0")?;
                }
            }
        }
        Ok(cgroup)
    }

    fn write(&self, file: &str, value: &str) -> Result<()> {
        let path = self.path.join(file);
        std::fs::write(&path, value).map_err(Error::file(&path))
    }

    fn read(&self, file: &str) -> Option<String> {
        std::fs::read_to_string(self.path.join(file)).ok()
    }

    /// `program args…` started inside this cgroup: a shell puts itself in
    /// the group, then becomes the program, so nothing runs outside it.
    pub fn command(&self, program: &Path, args: &[String]) -> Command {
        let mut command = Command::new("/bin/sh");
        command
            .arg("-c")
            .arg("echo $$ > \"$0\" && exec \"$@\"")
            .arg(self.path.join("cgroup.procs"))
            .arg(program)
            .args(args);
        command
    }

    /// OOM kills and peak usage so far.
    pub fn usage(&self) -> Usage {
        let number = |text: Option<String>| text.and_then(|text| text.trim().parse::<u64>().ok());
        let keyed = |text: Option<String>, key: &str| {
            text.and_then(|text| {
                text.lines().find_map(|line| {
                    let (name, value) = line.split_once(' ')?;
                    (name == key).then(|| value.trim().parse::<u64>().ok())?
                })
            })
        };
        match self.version {
            Version::V1 => Usage {
                oom_kills: keyed(self.read("memory.oom_control"), "oom_kill").unwrap_or(0),
                peak_bytes: number(self.read("memory.max_usage_in_bytes")),
            },
            Version::V2 => Usage {
                oom_kills: keyed(self.read("memory.events"), "oom_kill").unwrap_or(0),
                peak_bytes: number(self.read("memory.peak")),
            },
        }
    }
}

impl Drop for Cgroup {
    fn drop(&mut self) {
        // The child has ended; v1 may still charge page cache to the group:
        // empty it first so the directory can go.
        if self.version == Version::V1 {
            let _ = self.write("memory.force_empty", "0");
        }
        if let Err(err) = std::fs::remove_dir(&self.path) {
            eprintln!("cannot remove the cgroup {}: {err}", self.path.display());
        }
    }
}

/// Removes the cgroups of harness processes that died without removing
/// theirs (`leasehold-<pid>-<n>`, its pid gone): killed, they never ran
/// their `Drop`. Best effort: a group still holding a process stays.
fn reap_stale(root: &Path, version: Version) {
    let Ok(entries) = std::fs::read_dir(root) else {
        return;
    };
    for entry in entries.filter_map(Result::ok) {
        let name = entry.file_name().to_string_lossy().into_owned();
        let Some(pid) = name
            .strip_prefix("leasehold-")
            .and_then(|rest| rest.split('-').next())
            .and_then(|pid| pid.parse::<u32>().ok())
        else {
            continue;
        };
        if Path::new("/proc").join(pid.to_string()).exists() {
            continue;
        }
        let stale = Cgroup {
            path: entry.path(),
            version,
        };
        drop(stale);
    }
}

/// A child process that ran inside a memory cgroup of its own.
pub struct ChildRun {
    pub status: std::process::ExitStatus,
    pub usage: Usage,
    /// Whether the page cache was dropped before it started.
    pub page_cache_dropped: bool,
    /// glibc malloc arenas it was held to.
    pub malloc_arenas: u32,
}

/// The glibc malloc arenas a budgeted child may use: one per core.
fn malloc_arenas() -> u32 {
    std::thread::available_parallelism().map_or(1, |cores| cores.get() as u32)
}

/// Runs this binary with `args` in a fresh cgroup of `limit` bytes, from a
/// cold page cache, its output to `log`; returns when it ends.
pub fn run_child(limit: u64, args: &[String], log: &Path) -> Result<ChildRun> {
    let log_file = std::fs::File::create(log).map_err(Error::file(log))?;
    let log_err = log_file.try_clone().map_err(Error::file(log))?;
    let exe = std::env::current_exe().map_err(Error::os("the leasehold binary"))?;
    let page_cache_dropped = drop_page_cache();
    let cgroup = Cgroup::create(limit)?;
    let arenas = malloc_arenas();
    let status = cgroup
        .command(&exe, args)
        // glibc's malloc gives each thread that contends its own arena (up
        // to 8 per core) and keeps freed memory in them: the LSM replaying
        // the beyond-memory activation-storm peaked at 441 MB with the
        // default and 316 MB with two arenas. One arena per core, so the
        // budget measures what the engine holds (RocksDB's C++ allocates
        // through the same malloc).
        .env("MALLOC_ARENA_MAX", arenas.to_string())
        .stdin(std::process::Stdio::null())
        .stdout(log_file)
        .stderr(log_err)
        .status()
        .map_err(Error::os(format!(
            "cannot start the child ({})",
            args.join(" ")
        )))?;
    let usage = cgroup.usage();
    drop(cgroup);
    Ok(ChildRun {
        status,
        usage,
        page_cache_dropped,
        malloc_arenas: arenas,
    })
}

/// The last lines a failed child wrote to `log`.
pub fn log_tail(log: &Path) -> String {
    let output = std::fs::read_to_string(log).unwrap_or_default();
    let tail: Vec<&str> = output.lines().rev().take(20).collect();
    let tail: Vec<&str> = tail.into_iter().rev().collect();
    tail.join("\n")
}

/// Writes dirty pages out and drops the clean page cache, so a run starts
/// cold. False when the kernel does not permit it (not root, a container).
pub fn drop_page_cache() -> bool {
    // SAFETY: sync(2) has no preconditions.
    unsafe { libc::sync() };
    std::fs::write("/proc/sys/vm/drop_caches", "1").is_ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sizes_parse_with_binary_units_and_bad_ones_are_refused() {
        assert_eq!(parse_size("512MiB").ok(), Some(512 << 20));
        assert_eq!(parse_size("384M").ok(), Some(384 << 20));
        assert_eq!(parse_size("1.5GiB").ok(), Some(3 << 29));
        assert_eq!(parse_size("67108864").ok(), Some(64 << 20));
        for bad in ["", "MiB", "12 parsecs", "1MiB", "-5GiB", "1e9"] {
            assert!(matches!(parse_size(bad), Err(Error::Usage(_))), "{bad:?}");
        }
        assert_eq!(format_size(384 << 20), "384 MiB");
        assert_eq!(format_size(3 << 29), "1.5 GiB");
    }
}
