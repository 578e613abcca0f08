//! `health-check`: open, engine health, a probe round trip, verify, disk
//! space — read-only when a live store holds the directory's lock.

use std::time::Instant;

use leasehold_core::vfs::LockError;

use super::*;
use crate::{Error, Result};

/// Free and total bytes of the file system holding `dir`.
fn disk_space(dir: &Path) -> Result<(u64, u64)> {
    use std::os::unix::ffi::OsStrExt;
    let path = std::ffi::CString::new(dir.as_os_str().as_bytes())
        .map_err(|_| Error::Usage(format!("{} contains a NUL byte", dir.display())))?;
    let mut stat = std::mem::MaybeUninit::<libc::statvfs>::uninit();
    // SAFETY: `path` is a valid C string and `stat` a buffer of the right type;
    // statvfs fills it when it returns 0.
    let status = unsafe { libc::statvfs(path.as_ptr(), stat.as_mut_ptr()) };
    if status != 0 {
        return Err(Error::os(format!("statvfs {}", dir.display()))(
            std::io::Error::last_os_error(),
        ));
    }
    // SAFETY: statvfs returned 0, so it initialised `stat`.
    let stat = unsafe { stat.assume_init() };
    let block = stat.f_frsize;
    Ok((stat.f_bavail * block, stat.f_blocks * block))
}

/// The pid (if known) of a live open holding the directory lock of an
/// engine that takes one (its registry row says); `None` when no one holds
/// it (the probe's own lock is released at once). RocksDB and object stores
/// keep their own locks.
fn live_holder(target: &Target) -> Option<Option<u32>> {
    if !target.engine.row().locks_dir {
        return None;
    }
    match OsVfs::new().lock_dir(&target.dir) {
        Err(LockError::Held { holder_pid }) => Some(holder_pid),
        Ok(_) | Err(LockError::Io(_)) => None,
    }
}

/// Below this share of free space the store is degraded.
const FREE_SHARE_MIN: f64 = 0.05;

pub fn health_check(target: &TargetArgs) -> Status {
    let target = target.resolve()?;
    let mut worst = 0u8;
    let mut report = |level: u8, probe: &str, outcome: String| {
        let verdict = ["ok", "DEGRADED", "FAILED"][level as usize];
        println!("{probe:<12} {verdict:<9} {outcome}");
        worst = worst.max(level);
    };
    let holder = live_holder(&target);
    if let Some(pid) = holder {
        let by = pid.map_or_else(
            || "another process".to_owned(),
            |pid| format!("process {pid}"),
        );
        report(
            0,
            "lock",
            format!("held by {by}: the store is live, so the checks below only read"),
        );
    }
    let opening = Instant::now();
    let vfs: Arc<dyn Vfs> = match holder {
        Some(_) => Arc::new(OverlayVfs::new()),
        None => Arc::new(OsVfs::new()),
    };
    let store = match target.open_on(vfs) {
        Ok(store) => {
            report(
                0,
                "open",
                format!(
                    "{} in {:.1} ms",
                    target.label(),
                    opening.elapsed().as_secs_f64() * 1e3
                ),
            );
            Some(store)
        }
        Err(err) => {
            report(2, "open", err.to_string());
            None
        }
    };
    if let Some(store) = &store {
        match store.health() {
            Health::Healthy => report(0, "engine", "healthy".to_owned()),
            Health::Degraded(reason) => report(1, "engine", reason),
            Health::Failed(reason) => report(2, "engine", reason),
        }
        match store.round_trip() {
            Ok(_) if holder.is_some() => report(
                0,
                "round trip",
                "skipped: writing would fight the live store".to_owned(),
            ),
            Ok(took) => report(
                0,
                "round trip",
                format!("write, read, delete in {:.2} ms", took.as_secs_f64() * 1e3),
            ),
            Err(err) => report(2, "round trip", err.to_string()),
        }
        match store.verify() {
            Ok(verified) if verified.is_clean() => report(0, "verify", verified.checked),
            Ok(verified) => report(2, "verify", verified.problems.join("; ")),
            Err(err) => report(2, "verify", err.to_string()),
        }
        if let Err(err) = store.close() {
            report(2, "close", err.to_string());
        }
    }
    if !target.engine.keeps_local_files() {
        report(
            0,
            "disk space",
            "not local: the data is on the server".to_owned(),
        );
    } else {
        match disk_space(&target.dir) {
            Ok((free, total)) => {
                let share = free as f64 / total.max(1) as f64;
                let text = format!(
                    "{:.1} GiB free of {:.1} GiB",
                    free as f64 / (1u64 << 30) as f64,
                    total as f64 / (1u64 << 30) as f64
                );
                report(u8::from(share < FREE_SHARE_MIN), "disk space", text);
            }
            Err(err) => report(1, "disk space", err.to_string()),
        }
    }
    println!("{}", ["Healthy", "Degraded", "Failed"][worst as usize]);
    Ok(worst)
}
