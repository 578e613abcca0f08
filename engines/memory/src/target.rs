//! The backup target: where the map goes on disk, the atomic replace that
//! puts it there, and the witness that a backup exists (FORMAT.md, "Commit
//! protocol"). The directory lock is held by the engine's `Lifecycle`.

use super::*;

#[derive(Debug)]
pub(crate) struct BackupState {
    /// Every batch with a sequence number up to this is in the durable backup.
    pub(crate) durable_sequence: u64,
}

#[derive(Debug)]
pub(crate) struct BackupTarget {
    #[cfg(any(test, feature = "planted-bugs"))]
    pub(crate) planted: PlantedSwitch<PlantedBug>,
    pub(crate) vfs: Arc<dyn Vfs>,
    pub(crate) path: PathBuf,
    pub(crate) compression: BackupCompression,
    pub(crate) interval: Duration,
    /// Held while a backup is written: concurrent Sync writers queue here and
    /// most find their write covered by the backup before theirs (group commit).
    pub(crate) state: Mutex<BackupState>,
    /// The largest backup body accepted (`apply::BACKUP_BODY_MAX`; lowered
    /// only by tests).
    pub(crate) body_max: AtomicU64,
}

/// The file that says a backup exists: `<backup file name>.present`, made
/// (and its directory entry synced) only after the first backup is durable,
/// and never removed. A missing backup beside it was lost, not never made —
/// an error, never an empty store.
pub(crate) fn witness_path(backup: &Path) -> PathBuf {
    let mut name = backup.file_name().unwrap_or_default().to_os_string();
    name.push(".present");
    backup.with_file_name(name)
}

/// What a file of a memory store's directory is, for reports, given the
/// backup's file name (`None`: not the store's).
pub fn describe_file(name: &str, backup: &str) -> Option<&'static str> {
    if name == backup {
        Some("backup")
    } else if name.strip_suffix(".present") == Some(backup) {
        Some("backup witness")
    } else {
        None
    }
}

impl BackupTarget {
    /// Whether `bug` is planted (never in a normal build).
    pub(crate) fn planted(&self, bug: PlantedBug) -> bool {
        #[cfg(any(test, feature = "planted-bugs"))]
        return self.planted.is(bug);
        #[cfg(not(any(test, feature = "planted-bugs")))]
        {
            let _ = bug;
            false
        }
    }

    /// Writes the first (empty) backup if there is none, then the witness
    /// that a backup exists.
    pub(crate) fn make_witness(&self, has_backup: bool) -> KvResult<()> {
        let context = |what: &str| format!("{what} {}", self.path.display());
        if !has_backup {
            let empty = backup::encode(0, std::iter::empty(), self.compression);
            self.replace(&empty)
                .map_err(|err| KvError::io(context("write the first backup"), err))?;
        }
        let witness = witness_path(&self.path);
        self.vfs
            .create(&witness)
            .map_err(|err| KvError::io(context("create the witness of"), err))?;
        let dir = self.path.parent().unwrap_or(Path::new(""));
        self.vfs
            .sync_dir(dir)
            .map_err(|err| KvError::io(format!("sync {}", dir.display()), err))
    }

    /// Puts `bytes` in place as the backup: a temporary file, fsynced,
    /// renamed over the old one, the directory fsynced.
    pub(crate) fn replace(&self, bytes: &[u8]) -> std::io::Result<()> {
        let vfs = self.vfs.as_ref();
        let (skip_file_sync, skip_dir_sync) = (
            self.planted(PlantedBug::SkipBackupSync),
            self.planted(PlantedBug::SkipDirSync),
        );
        if !skip_file_sync && !skip_dir_sync {
            return replace_file_atomically(vfs, &self.path, bytes);
        }
        // The planted bugs: the same steps with one sync left out.
        let dir = self.path.parent().unwrap_or(Path::new(""));
        let temp = self.path.with_extension("planted.tmp");
        let file = vfs.create(&temp)?;
        leasehold_storage::vfs::write_all_at(file.as_ref(), bytes, 0)?;
        if !skip_file_sync {
            file.sync()?;
        }
        drop(file);
        vfs.rename(&temp, &self.path)?;
        if !skip_dir_sync {
            vfs.sync_dir(dir)?;
        }
        Ok(())
    }
}
