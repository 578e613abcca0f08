//! The machine and revision a result was measured on, for every report.

use std::path::Path;
use std::process::Command;

#[derive(Clone, Debug, serde::Serialize)]
pub struct Machine {
    pub cores: usize,
    pub cpu: String,
    pub memory_gib: f64,
    pub kernel: String,
    /// Filesystem type and device holding the data directory.
    pub filesystem: String,
    pub git_revision: String,
}

impl Machine {
    pub fn describe(data_dir: &Path) -> Machine {
        let cpuinfo = std::fs::read_to_string("/proc/cpuinfo").unwrap_or_default();
        let cpu = cpuinfo
            .lines()
            .find_map(|line| line.strip_prefix("model name"))
            .map(|rest| rest.trim_start_matches([' ', '\t', ':']).trim().to_owned())
            .unwrap_or_else(|| "unknown".to_owned());
        let meminfo = std::fs::read_to_string("/proc/meminfo").unwrap_or_default();
        let memory_kib: f64 = meminfo
            .lines()
            .find_map(|line| line.strip_prefix("MemTotal:"))
            .and_then(|rest| rest.trim().trim_end_matches("kB").trim().parse().ok())
            .unwrap_or(0.0);
        Machine {
            cores: std::thread::available_parallelism().map_or(0, usize::from),
            cpu,
            memory_gib: (memory_kib / (1024.0 * 1024.0) * 10.0).round() / 10.0,
            kernel: std::fs::read_to_string("/proc/sys/kernel/osrelease")
                .map(|text| text.trim().to_owned())
                .unwrap_or_else(|_| "unknown".to_owned()),
            filesystem: filesystem_of(data_dir),
            git_revision: git_revision(),
        }
    }

    pub fn summary(&self) -> String {
        format!(
            "{} cores ({}), {} GiB memory, Linux {}, {}; git {}",
            self.cores, self.cpu, self.memory_gib, self.kernel, self.filesystem, self.git_revision
        )
    }
}

/// The mount (longest matching mount point in /proc/mounts) holding `dir`.
fn filesystem_of(dir: &Path) -> String {
    let _ = std::fs::create_dir_all(dir);
    let dir = dir.canonicalize().unwrap_or_else(|_| dir.to_path_buf());
    let mounts = std::fs::read_to_string("/proc/mounts").unwrap_or_default();
    mounts
        .lines()
        .filter_map(|line| {
            let fields: Vec<&str> = line.split_whitespace().collect();
            let [device, mount_point, fs_type, options, ..] = fields[..] else {
                return None;
            };
            dir.starts_with(mount_point).then(|| {
                (
                    mount_point.len(),
                    format!("{fs_type} on {device} ({options})"),
                )
            })
        })
        .max_by_key(|(len, _)| *len)
        .map_or_else(
            || "unknown filesystem".to_owned(),
            |(_, described)| described,
        )
}

fn git_revision() -> String {
    let run = |args: &[&str]| {
        Command::new("git")
            .args(args)
            .output()
            .ok()
            .filter(|output| output.status.success())
            .map(|output| String::from_utf8_lossy(&output.stdout).trim().to_owned())
    };
    match run(&["rev-parse", "--short=12", "HEAD"]) {
        Some(revision) => {
            let dirty = run(&["status", "--porcelain", "--untracked-files=no"])
                .is_some_and(|status| !status.is_empty());
            if dirty {
                format!("{revision} (with uncommitted changes)")
            } else {
                revision
            }
        }
        None => "unknown".to_owned(),
    }
}
