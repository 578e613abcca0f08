//! Recovery: the newest meta whose log chain is intact, its tree, and the
//! logs after it replayed (FORMAT.md, "Open / recovery"). Damage that a crash
//! cannot explain is `Corruption`, never an older or smaller tree.

use super::*;

pub(super) fn recover(
    config: &BtreeConfig,
    vfs: Arc<dyn Vfs>,
    planted: Option<PlantedBug>,
) -> KvResult<(Inner, bool)> {
    let dir = config.data_dir.clone();
    let page_size = config.page_size as usize;
    let limits = limits_for(config);
    vfs.create_dir_all(&dir)
        .map_err(io_error(format!("create {}", dir.display())))?;
    let lock = if planted == Some(PlantedBug::SkipDirLock) {
        None
    } else {
        Some(lock_directory(vfs.as_ref(), &dir)?)
    };
    let data_path = dir.join(DATA_FILE);
    let names = vfs
        .list(&dir)
        .map_err(io_error(format!("list {}", dir.display())))?;
    let mut wal_numbers: Vec<u64> = names.iter().filter_map(|name| wal_number(name)).collect();
    wal_numbers.sort_unstable();
    let has_data_file = names.iter().any(|name| name == DATA_FILE);
    if !has_data_file && !wal_numbers.is_empty() {
        return Err(KvError::corruption(
            &data_path,
            0,
            format!(
                "{DATA_FILE} is missing but {} log(s) are here: refusing to start a new tree                  over them",
                wal_numbers.len()
            ),
        ));
    }
    let mut meta = if has_data_file {
        read_metas(vfs.as_ref(), &data_path, page_size)?
    } else {
        None
    };
    let data: Arc<dyn VfsFile> = if has_data_file {
        vfs.open(&data_path)
            .map_err(io_error(format!("open {}", data_path.display())))?
    } else {
        vfs.create(&data_path)
            .map_err(io_error(format!("create {}", data_path.display())))?
    };
    if meta.is_none() {
        // A tree written with another page size must be refused, not mistaken
        // for a file whose creation never finished.
        for other in (10..=16)
            .map(|shift| 1usize << shift)
            .filter(|&size| size != page_size)
        {
            if let Some(found) = read_metas(vfs.as_ref(), &data_path, other)? {
                return Err(KvError::InvalidArgument(format!(
                    "{} has {}-byte pages; the config says {page_size}",
                    data_path.display(),
                    found.page_size
                )));
            }
        }
        let size = data
            .len()
            .map_err(io_error(format!("stat {}", data_path.display())))?;
        // Only a file whose creation never finished may be started afresh.
        if size > 2 * page_size as u64 || !wal_numbers.is_empty() {
            return Err(KvError::corruption(
                &data_path,
                0,
                "neither meta slot is valid",
            ));
        }
        // The log the fresh meta names exists before the meta does, as for
        // every checkpoint: recovery relies on it (below).
        let fresh = meta_for(1, page_size, None, 2, 1, 0, None, (0, 0), Vec::new());
        let first_log = dir.join(wal_name(fresh.wal_number));
        vfs.create(&first_log)
            .map_err(io_error(format!("create {}", first_log.display())))?;
        vfs.sync_dir(&dir)
            .map_err(io_error(format!("sync {}", dir.display())))?;
        write_meta(data.as_ref(), &data_path, page_size, &fresh)?;
        wal_numbers.push(fresh.wal_number);
        meta = Some(fresh);
    }
    let meta = meta.ok_or_else(|| KvError::corruption(&data_path, 0, "no meta"))?;
    // Pages reach the file (fsynced) before a meta names them, and the file
    // shrinks only after; so a meta naming more pages than the file holds was
    // damaged or crafted — and every later bound (page ids, overflow lengths)
    // rests on `page_count`.
    let file_len = data
        .len()
        .map_err(io_error(format!("stat {}", data_path.display())))?;
    if meta.page_count.saturating_mul(page_size as u64) > file_len {
        return Err(KvError::corruption(
            &data_path,
            file_len,
            format!(
                "the meta names {} pages of {page_size} bytes; the file holds {file_len} bytes",
                meta.page_count
            ),
        ));
    }
    if planted != Some(PlantedBug::FallBackBlindly) {
        check_log_chain(&dir, &data_path, &meta, &wal_numbers)?;
    }
    if meta.page_size as usize != page_size {
        return Err(KvError::InvalidArgument(format!(
            "{} has {}-byte pages; the config says {page_size}",
            data_path.display(),
            meta.page_size
        )));
    }
    let check_checksums = planted != Some(PlantedBug::SkipPageChecksum);
    let mut walker = Walker::new(data.as_ref(), &data_path, &meta, limits, check_checksums);
    // The tree stays on disk, read on demand. A format-1 meta does not record
    // the live counts: the tree is walked (and checked) once to count them.
    let (entries, bytes) = match meta.live {
        Some(live) => live,
        None => {
            walker.tree()?;
            (walker.entries, walker.bytes)
        }
    };
    let (free, list_pages) = walker.free_list()?;
    let (entries, bytes) = (entries as i64, bytes as i64);
    let pages = Pages::new(
        Arc::clone(&data),
        &data_path,
        page_size,
        meta.page_count,
        check_checksums,
        config.cache_size_bytes,
    );
    let mut root = meta.root.map(Child::Page);

    // Replay the logs written after the checkpoint.
    let needed: Vec<PathBuf> = wal_numbers
        .iter()
        .filter(|&&number| number >= meta.wal_number)
        .map(|&number| dir.join(wal_name(number)))
        .collect();
    let mut replaced = Replaced::default();
    let mut change = Change::default();
    let mut replay_had_bytes = false;
    for path in &needed {
        replay_had_bytes |= vfs
            .file_size(path)
            .map_err(io_error(format!("stat {}", path.display())))?
            > 0;
    }
    for log in wal::read_logs(vfs.as_ref(), &needed)? {
        for (index, record) in log.records.iter().enumerate() {
            let batch = WriteBatch::decode(record).map_err(|err| {
                KvError::corruption(&log.path, 0, format!("record {index}: {err}"))
            })?;
            for op in batch.ops {
                apply(
                    &mut root,
                    op,
                    &limits,
                    &mut replaced,
                    &mut change,
                    &pages.at(meta.txn),
                )?;
            }
        }
    }
    let wal_number = wal_numbers
        .last()
        .copied()
        .unwrap_or(0)
        .max(meta.wal_number)
        + 1;
    let wal_path = dir.join(wal_name(wal_number));
    let wal_file = vfs
        .create(&wal_path)
        .map_err(io_error(format!("create {}", wal_path.display())))?;
    vfs.sync_dir(&dir)
        .map_err(io_error(format!("sync {}", dir.display())))?;
    for &number in wal_numbers
        .iter()
        .filter(|&&number| number < meta.wal_number)
    {
        let path = dir.join(wal_name(number));
        vfs.remove(&path)
            .map_err(io_error(format!("remove {}", path.display())))?;
    }
    let counters = Counters::default();
    let lifecycle = Lifecycle::default();
    if let Some(lock) = lock {
        lifecycle.hold(lock);
    }
    counters
        .live_entries
        .store(entries + change.entries, Ordering::Relaxed);
    counters
        .live_bytes
        .store(bytes + change.bytes, Ordering::Relaxed);
    counters
        .dirty_bytes
        .store(change.dirty_bytes, Ordering::Relaxed);
    let inner = Inner {
        vfs,
        dir,
        config: config.clone(),
        limits,
        page_size,
        data,
        data_path,
        pages,
        root: RwLock::new(Root {
            tree: root,
            txn: meta.txn,
        }),
        readers: Readers::default(),
        writer: Mutex::new(WriterState {
            wal: WalWriter::new(wal_file, wal_path),
            wal_number,
            buffer: Vec::new(),
            buffer_bytes: 0,
            since_checkpoint: 0,
            last_sync: Instant::now(),
            replaced,
        }),
        commits: CommitQueue::new(GROUP_BYTES_MAX),
        checkpoint: Mutex::new(CheckpointState {
            txn: meta.txn,
            free,
            held: Vec::new(),
            page_count: meta.page_count,
            list_pages,
        }),
        lifecycle,
        #[cfg(any(test, feature = "planted-bugs"))]
        planted: leasehold_storage::planted::PlantedSwitch::new(planted),
        stop: Mutex::new(false),
        work_cv: Condvar::new(),
        sync_cv: Condvar::new(),
        checkpointing: AtomicBool::new(false),
        dirty_room: (Mutex::new(()), Condvar::new()),
        counters,
    };
    Ok((inner, replay_had_bytes))
}

/// The logs recovery replays must be exactly `meta.wal_number`, the next, …,
/// the newest (each checkpoint and each open starts the next number). The
/// first must exist: a log is deleted only after a newer meta is durable, so
/// when the meta chosen names a missing log, the newer meta that made it
/// obsolete is the slot that failed its checks — damage, not a torn write,
/// and falling back would lose what that checkpoint held and replay later
/// logs onto an older tree.
fn check_log_chain(dir: &Path, data_path: &Path, meta: &Meta, wal_numbers: &[u64]) -> KvResult<()> {
    let needed: Vec<u64> = wal_numbers
        .iter()
        .copied()
        .filter(|&number| number >= meta.wal_number)
        .collect();
    if needed.first() != Some(&meta.wal_number) {
        return Err(KvError::corruption(
            data_path,
            (meta.txn % 2) * meta.page_size as u64,
            format!(
                "the newest valid meta (checkpoint {}) needs {}, which is missing: a newer \
                 checkpoint had been durable and its meta slot is damaged",
                meta.txn,
                dir.join(wal_name(meta.wal_number)).display()
            ),
        ));
    }
    if let Some(gap) = needed.windows(2).find(|pair| pair[1] != pair[0] + 1) {
        return Err(KvError::corruption(
            dir.join(wal_name(gap[0] + 1)),
            0,
            format!(
                "logs {} and {} are here but the log between them is missing",
                gap[0], gap[1]
            ),
        ));
    }
    Ok(())
}
