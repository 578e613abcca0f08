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
    let file = manifest::open_named(vfs, &path, "table", meta.size)?;
    Ok(Arc::new(Table::open(
        file,
        path,
        meta.number,
        meta.size,
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
    memtable.iter_from(None).map(Ok)
}

/// The blob files one flush or compaction writes: values it separates or
/// relocates go to the current file, cut at `file_size`; each finished file
/// is fsynced (the caller syncs the directory before its edit names them).
pub(super) struct BlobSink<'a> {
    vfs: &'a dyn Vfs,
    dir: &'a Path,
    compress: bool,
    /// Makes each pointer's hint.
    filter: Option<&'a dyn CompactionFilter>,
    file_size: u64,
    allocate: &'a dyn Fn() -> u64,
    writer: Option<BlobWriter>,
    finished: Vec<BlobMeta>,
}

impl<'a> BlobSink<'a> {
    pub(super) fn new(
        vfs: &'a dyn Vfs,
        dir: &'a Path,
        config: &LsmConfig,
        filter: Option<&'a dyn CompactionFilter>,
        allocate: &'a dyn Fn() -> u64,
    ) -> Self {
        BlobSink {
            vfs,
            dir,
            compress: config.enable_compression,
            filter,
            file_size: config.blob_file_size,
            allocate,
            writer: None,
            finished: Vec::new(),
        }
    }

    /// Writes `value` to a blob file; the entry's new value is the pointer.
    pub(super) fn add(&mut self, user_key: &[u8], value: &[u8]) -> KvResult<Bytes> {
        let writer = match &mut self.writer {
            Some(writer) => writer,
            empty => empty.insert(BlobWriter::create(
                self.vfs,
                self.dir,
                (self.allocate)(),
                self.compress,
            )?),
        };
        let hint = self
            .filter
            .map(|filter| filter.hint(user_key, value))
            .unwrap_or_default();
        let pointer = writer.add(user_key, value, hint)?;
        if writer.len() >= self.file_size {
            self.finish_current()?;
        }
        Ok(Bytes::from(pointer.encode()))
    }

    fn finish_current(&mut self) -> KvResult<()> {
        if let Some(writer) = self.writer.take() {
            self.finished.push(writer.finish()?);
        }
        Ok(())
    }

    /// Finishes the last file; the files written, in order.
    pub(super) fn finish(mut self) -> KvResult<Vec<BlobMeta>> {
        self.finish_current()?;
        Ok(self.finished)
    }
}

/// Writes a memtable as a level-0 table and the blob files its large values
/// go to (when `enable_blob_files`), all fsynced; the caller syncs the
/// directory.
pub(super) fn write_level0(
    vfs: &dyn Vfs,
    dir: &Path,
    config: &LsmConfig,
    options: &TableOptions,
    filter: Option<&dyn CompactionFilter>,
    allocate: &dyn Fn() -> u64,
    memtable: &Memtable,
) -> KvResult<(Option<FileMeta>, Vec<BlobMeta>)> {
    let number = allocate();
    let mut sink = BlobSink::new(vfs, dir, config, filter, allocate);
    // Each value of at least `min_blob_size` moves to a blob file: the key's
    // kind becomes `Blob`, its value the pointer.
    let min_blob_size = config.enable_blob_files.then_some(config.min_blob_size);
    let entries = newest_versions(memtable_entries(memtable)).map(|entry| {
        let (mut key, value) = entry?;
        let separate = min_blob_size.is_some_and(|min| value.len() as u64 >= min)
            && format::split(&key).is_some_and(|(_, _, kind)| kind == ValueKind::Put);
        if !separate {
            return Ok((key, value));
        }
        let pointer = sink.add(format::user_key(&key), &value)?;
        format::set_kind(&mut key, ValueKind::Blob);
        Ok((key, pointer))
    });
    let table = write_table(vfs, dir, options, number, entries)?;
    Ok((table, sink.finish()?))
}

pub(super) fn open_blob(vfs: &dyn Vfs, dir: &Path, meta: &BlobMeta) -> KvResult<Arc<BlobFile>> {
    Ok(Arc::new(BlobFile::open(vfs, dir, meta)?))
}
