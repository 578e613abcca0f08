//! What the operator commands and the tests ask of the store beyond the
//! `Store` trait: the objects under the prefix, a full check of every one,
//! and the health probe.

use super::*;

impl ObjectStoreBackend {
    /// Every lease and snapshot object under the prefix, with its size.
    pub fn objects(&self) -> StoreResult<Vec<(Path, u64)>> {
        let mut objects = self.client.list_sized(&self.layout.leases())?;
        objects.extend(self.client.list_sized(&self.layout.snapshots())?);
        Ok(objects)
    }

    /// Reads every object back: each must decode, sit at the key its record
    /// names, and (for snapshots) match its SHA-256. Problems are reported,
    /// not repaired; a failed request is an error.
    pub fn verify_objects(&self) -> StoreResult<VerifyReport> {
        let mut report = VerifyReport::default();
        let (mut leases, mut snapshots, mut tombstones, mut intents) = (0, 0, 0, 0);
        for path in self.client.list(&self.layout.leases())? {
            match self.read_lease_at(&path) {
                Ok(Some((lease, _))) if self.layout.lease(&lease.key) != path => report
                    .problems
                    .push(format!("{path}: holds the lease of {}", lease.key)),
                Ok(_) => leases += 1,
                Err(StoreError::CorruptRecord { key, reason }) => {
                    report.problems.push(format!("{key}: {reason}"))
                }
                Err(err) => return Err(err),
            }
        }
        for path in self.client.list(&self.layout.snapshots())? {
            let envelope = match self.read_envelope_at(&path) {
                Ok(Some((envelope, _))) => envelope,
                Ok(None) => continue,
                Err(StoreError::CorruptRecord { key, reason }) => {
                    report.problems.push(format!("{key}: {reason}"));
                    continue;
                }
                Err(err) => return Err(err),
            };
            if let Some(intent) = &envelope.intent {
                intents += 1;
                if let Some(after) = &intent.after {
                    let expected = self.layout.snapshot(&after.key);
                    check_snapshot(
                        &mut report,
                        &path,
                        &expected,
                        after,
                        " (commit after-image)",
                    );
                }
            }
            let Some(snapshot) = envelope.snapshot else {
                tombstones += 1;
                continue;
            };
            snapshots += 1;
            let expected = self.layout.snapshot(&snapshot.key);
            check_snapshot(&mut report, &path, &expected, &snapshot, "");
        }
        let mut records = 0;
        for path in self.client.list(&self.layout.commits())? {
            let Some((bytes, _)) = self.client.get(&path)? else {
                continue;
            };
            match crate::record::CommitRecord::decode(&bytes) {
                Ok(_) => records += 1,
                Err(err) => report.problems.push(format!("{path}: {err}")),
            }
        }
        report.checked = format!(
            "{leases} lease objects, {snapshots} snapshots, {tombstones} tombstones, \
             {intents} commits in flight, {records} commit records"
        );
        Ok(report)
    }

    /// Writes, reads back and removes this instance's probe object.
    pub fn probe(&self) -> StoreResult<Duration> {
        let started = Instant::now();
        let path = self.layout.probe(&self.probe_name);
        let body = Bytes::from(format!("leasehold health probe {}", SystemClock.now()));
        self.client.put_unconditionally(&path, body.clone())?;
        let read = self.client.get(&path)?;
        self.client.delete(&path)?;
        match read {
            Some((stored, _)) if stored == body => Ok(started.elapsed()),
            Some(_) => Err(corrupt(&path, "the probe object read back different bytes")),
            None => Err(corrupt(
                &path,
                "the probe object vanished after it was written",
            )),
        }
    }
}

/// A snapshot read back by `verify` (`what`: "" or what else it is): at the
/// key it names, its state hashed.
fn check_snapshot(
    report: &mut VerifyReport,
    path: &Path,
    expected_path: &Path,
    snapshot: &Snapshot,
    what: &str,
) {
    if expected_path != path {
        report.problems.push(format!(
            "{path}: holds{what} the snapshot of {}",
            snapshot.key
        ));
    }
    if let Err((expected, actual)) = snapshot.verify_hash() {
        report.problems.push(format!(
            "{path}:{what} state hash {actual} does not match the stored {expected}"
        ));
    }
}
