//! Device faults while running: write and fsync errors, short writes and
//! reads, flipped bits, a full disk — every acknowledged write survives or
//! the engine reports the fault.

use super::*;

/// Device faults while running: write and fsync errors, failed directory
/// syncs, short writes and reads, flipped bits on read (and, in a third of the
/// cases, a full disk).
pub fn device_fault_config() -> FaultConfig {
    FaultConfig {
        write_eio: 0.01,
        sync_eio: 0.03,
        sync_dir_eio: 0.03,
        short_write: 0.1,
        short_read: 0.1,
        read_bit_flip: 0.01,
        read_eio: 0.005,
        ..FaultConfig::default()
    }
}

/// One case run on a device with `faults` (the case's crash point is used as
/// the crash *after* the run). Checks: every read is right or an error; once a
/// write or flush failed, no later write is acknowledged until a reopen (a
/// failed fsync may have lost data for good); after the crash, a clean
/// recovery holds the durable floor plus a prefix of the rest, the failed
/// batch counting as uncertain.
pub fn run_device_fault_case<E: KvEngine>(
    open: &dyn Fn(SimVfs) -> KvResult<E>,
    case: &CrashCase,
    faults: &FaultConfig,
) -> Result<CaseReport, Violation> {
    let vfs = SimVfs::new(case.seed);
    let mut report = CaseReport::default();
    let mut engine = Some(
        open(vfs.clone())
            .map_err(|err| violation(format!("open of an empty disk failed: {err}")))?,
    );
    let mut faults = faults.clone();
    // A third of the cases also run out of space, somewhere past what the
    // empty engine already uses: a full disk must not corrupt what was durable.
    // The headroom is log-uniform, 256 B to 64 KiB, so an engine that writes
    // little (the memory engine's backups) fills its disk too.
    if case.seed.is_multiple_of(3) && faults.capacity_bytes.is_none() {
        let used: u64 = disk_usage(&vfs);
        faults.capacity_bytes = Some(used + (256 << (case.seed / 3 % 9)));
    }
    vfs.set_faults(faults);
    let mut model = Model::new();
    let mut failed = false;
    for op in &case.ops {
        let Some(live) = engine.as_ref() else { break };
        match op {
            CrashOp::Write { ops, durability } => {
                let batch = CrashOp::batch(ops);
                match live.write(batch.clone(), *durability) {
                    Ok(()) if failed => {
                        return Err(violation(
                            "a write was acknowledged after an earlier write or flush failed",
                        ));
                    }
                    Ok(()) => {
                        report.acknowledged += 1;
                        model.acknowledge(batch.clone(), *durability == Durability::Sync);
                        let expected = model.expected();
                        for op in &batch.ops {
                            if let Ok(read) = live.get(op.key()) {
                                if read.as_ref() != expected.get(op.key()) {
                                    return Err(violation(
                                        "a read under device faults returned wrong data",
                                    ));
                                }
                            }
                        }
                    }
                    Err(_) if failed => break,
                    Err(_) => {
                        model.uncertain(batch);
                        failed = true;
                    }
                }
                report.faults.extend(hits(&vfs, "write"));
            }
            CrashOp::Flush => {
                match live.flush() {
                    Ok(()) if !failed => model.mark_durable(),
                    Ok(()) => {
                        return Err(violation(
                            "a flush succeeded after an earlier write or flush failed",
                        ))
                    }
                    Err(_) => failed = true,
                }
                report.faults.extend(hits(&vfs, "flush"));
            }
            // Reopening on a faulty device is not what this check is about.
            CrashOp::Reopen => {}
        }
    }
    vfs.freeze();
    drop(engine.take());
    let image = vfs.crash_image(case.policy, case.seed);
    let recovered = recover(open, image, "clean recovery after device faults")?;
    report.tail_batches_recovered = model.check_recovered(&recovered)?;
    Ok(report)
}

/// Bytes the files of `vfs` hold now.
fn disk_usage(vfs: &SimVfs) -> u64 {
    vfs.total_bytes()
}

/// Device-fault cases over random operation sequences; panics with the shrunk case.
pub fn check_device_faults<E: KvEngine>(
    name: &str,
    open: &dyn Fn(SimVfs) -> KvResult<E>,
    cases: u32,
    ops_max: usize,
) {
    let faults = device_fault_config();
    if let Err((case, reason)) = search_cases(cases, ops_max, &|case| {
        run_device_fault_case(open, case, &faults).map(|_| ())
    }) {
        panic!("device-fault check failed for {name}: {reason}\nshrunk case: {case:#?}");
    }
}
