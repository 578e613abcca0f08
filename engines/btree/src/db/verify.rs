//! `verify`: the durable tree walked page by page (every page checked, each
//! reached once, none both reachable and free, none leaked), and the part of
//! the live tree in memory checked for the tree's invariants.

use super::*;

impl Inner {
    pub(super) fn verify(&self) -> KvResult<VerifyReport> {
        let state = self.checkpoint.lock();
        let mut report = VerifyReport::default();
        let Some(meta) = read_metas(self.vfs.as_ref(), &self.data_path, self.page_size)? else {
            report.problems.push(format!(
                "{}: neither meta slot is valid",
                self.data_path.display()
            ));
            return Ok(report);
        };
        let mut walker = Walker::new(
            self.data.as_ref(),
            &self.data_path,
            &meta,
            self.limits,
            true,
        );
        let walked = walker.tree().and_then(|()| walker.free_list());
        let free = match walked {
            Ok((free, _)) => free,
            Err(err) => {
                report.problems.push(err.to_string());
                return Ok(report);
            }
        };
        report.problems.append(&mut walker.problems);
        if let Some((entries, bytes)) = meta.live {
            if (entries, bytes) != (walker.entries, walker.bytes) {
                report.problems.push(format!(
                    "the meta records {entries} entries of {bytes} bytes; the tree holds {} of {}",
                    walker.entries, walker.bytes
                ));
            }
        }
        let reached = &walker.reached;
        let leaked: Vec<PageId> = (2..meta.page_count)
            .filter(|page| !reached.contains(page) && !free.contains(page))
            .collect();
        if !leaked.is_empty() {
            report.problems.push(format!(
                "{} pages neither reachable nor free (first {:?})",
                leaked.len(),
                &leaked[..leaked.len().min(8)]
            ));
        }
        if meta.txn != state.txn {
            report.problems.push(format!(
                "durable meta is checkpoint {}, the engine's is {}",
                meta.txn, state.txn
            ));
        }
        if let Some(Child::Node(node)) = &self.root.read().tree {
            node::check(node, None, None, &self.limits, &mut report.problems);
        }
        report.checked = format!(
            "checkpoint {}: {} reachable pages, {} free, {} in the file",
            meta.txn,
            reached.len(),
            free.len(),
            meta.page_count
        );
        Ok(report)
    }
}
