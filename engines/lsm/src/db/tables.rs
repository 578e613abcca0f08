//! Tables as the tree uses them: opening one into the cache, writing one
//! from a sorted stream, and the entry streams flushes and compactions merge.

use super::*;

pub(super) fn open_table(
    vfs: &dyn Vfs,
    dir: &Path,
    cache: &Arc<BlockCache>,
    meta: &FileMeta,
) -> KvResult<Arc<Table>> {
    let path = dir.join(table_name(meta.number));
    let file = vfs.open_read(&path).map_err(|err| {
        if err.kind() == std::io::ErrorKind::NotFound {
            KvError::corruption(&path, 0, "a table the manifest names is missing")
        } else {
            KvError::io(format!("open {}", path.display()), err)
        }
    })?;
    let size = file
        .len()
        .map_err(io_error(format!("stat {}", path.display())))?;
    if size != meta.size {
        return Err(KvError::corruption(
            &path,
            size,
            format!("table is {size} bytes, the manifest says {}", meta.size),
        ));
    }
    Ok(Arc::new(Table::open(
        file,
        path,
        meta.number,
        size,
        Arc::clone(cache),
    )?))
}

/// Writes `entries` (ascending, newest version per user key) as table
/// `number`, fsynced. The caller syncs the directory.
pub(super) fn write_table(
    vfs: &dyn Vfs,
    dir: &Path,
    options: &TableOptions,
    number: u64,
    entries: impl Iterator<Item = KvResult<Entry>>,
) -> KvResult<Option<FileMeta>> {
    let path = dir.join(table_name(number));
    let file: Arc<dyn VfsFile> = vfs
        .create(&path)
        .map_err(io_error(format!("create {}", path.display())))?;
    let mut builder = TableBuilder::new(Arc::clone(&file), options.clone());
    for entry in entries {
        let (key, value) = entry?;
        builder
            .add(&key, &value)
            .map_err(io_error(format!("write {}", path.display())))?;
    }
    if builder.is_empty() {
        drop(builder);
        vfs.remove(&path)
            .map_err(io_error(format!("remove {}", path.display())))?;
        return Ok(None);
    }
    let summary = builder
        .finish()
        .map_err(io_error(format!("write {}", path.display())))?;
    file.sync()
        .map_err(io_error(format!("sync {}", path.display())))?;
    Ok(Some(FileMeta {
        number,
        size: summary.size,
        smallest: summary.smallest,
        largest: summary.largest,
    }))
}

/// The newest version of each user key, in order.
pub(super) fn newest_versions(
    entries: impl Iterator<Item = KvResult<Entry>>,
) -> impl Iterator<Item = KvResult<Entry>> {
    // The buffer is reused: no allocation per entry.
    let mut last: Option<Vec<u8>> = None;
    entries.filter(move |entry| match entry {
        Ok((key, _)) => {
            let user_key = format::user_key(key);
            match &mut last {
                Some(last) if last.as_slice() == user_key => false,
                Some(last) => {
                    last.clear();
                    last.extend_from_slice(user_key);
                    true
                }
                None => {
                    last = Some(user_key.to_vec());
                    true
                }
            }
        }
        Err(_) => true,
    })
}

pub(super) fn memtable_entries(memtable: &Memtable) -> impl Iterator<Item = KvResult<Entry>> + '_ {
    memtable.iter_from(Bound::Unbounded).map(Ok)
}
