//! Reading the tree: a point lookup, an ordered walk, and the invariant check
//! of the part in memory. Pages and overflow values are read on demand.

use std::sync::Arc;

use leasehold_storage::KvResult;

use super::{Body, Child, Limits, Node, PageSource, Value};
use crate::layout;
use crate::load::DEPTH_MAX;

/// The bytes of `value`, decompressed or read from its overflow pages if
/// need be.
fn bytes_of(node: &Node, value: &Value, pages: &dyn PageSource) -> KvResult<Vec<u8>> {
    match value {
        Value::Cell(cell) => layout::decompress(cell.lz4_raw_len, &cell.bytes)
            .map_err(|reason| pages.corrupt(node.page.get().copied().unwrap_or(0), reason)),
        Value::Inline {
            stored,
            lz4_raw_len,
        } => layout::decompress(*lz4_raw_len, stored)
            .map_err(|reason| pages.corrupt(node.page.get().copied().unwrap_or(0), reason)),
        Value::Stored(stored) => pages.value(stored),
    }
}

/// A walk that went deeper than any tree can: pages that name each other in
/// a cycle (checksum-valid, so a bug or a crafted file).
fn too_deep(node: &Node, pages: &dyn PageSource) -> leasehold_storage::KvError {
    pages.corrupt(
        node.page.get().copied().unwrap_or(0),
        "tree deeper than possible".into(),
    )
}

/// The value of `key` under `root`.
pub fn get(root: &Child, key: &[u8], pages: &dyn PageSource) -> KvResult<Option<Vec<u8>>> {
    let mut node = root.resolve(pages)?;
    for _ in 0..=DEPTH_MAX {
        let next = match &node.body {
            Body::Leaf(entries) => {
                let Ok(index) = entries.binary_search_by(|(existing, _)| (**existing).cmp(key))
                else {
                    return Ok(None);
                };
                return bytes_of(&node, &entries[index].1, pages).map(Some);
            }
            Body::Branch { keys, children } => {
                children[keys.partition_point(|separator| &**separator <= key)].resolve(pages)?
            }
        };
        node = next;
    }
    Err(too_deep(&node, pages))
}

/// Visits entries with `start <= key` in order until `visit` returns false;
/// returns false when it did.
pub fn walk_from(
    node: &Child,
    start: Option<&[u8]>,
    pages: &dyn PageSource,
    visit: &mut dyn FnMut(&[u8], &[u8]) -> bool,
) -> KvResult<bool> {
    walk_at(node, start, pages, visit, 0)
}

fn walk_at(
    node: &Child,
    start: Option<&[u8]>,
    pages: &dyn PageSource,
    visit: &mut dyn FnMut(&[u8], &[u8]) -> bool,
    depth: usize,
) -> KvResult<bool> {
    let node: Arc<Node> = node.resolve(pages)?;
    if depth > DEPTH_MAX {
        return Err(too_deep(&node, pages));
    }
    match &node.body {
        Body::Leaf(entries) => {
            let from = start.map_or(0, |start| {
                entries.partition_point(|(key, _)| &**key < start)
            });
            for (key, value) in &entries[from..] {
                if !visit(key, &bytes_of(&node, value, pages)?) {
                    return Ok(false);
                }
            }
            Ok(true)
        }
        Body::Branch { keys, children } => {
            let from = start.map_or(0, |start| {
                keys.partition_point(|separator| &**separator <= start)
            });
            for child in &children[from..] {
                if !walk_at(child, start, pages, visit, depth + 1)? {
                    return Ok(false);
                }
            }
            Ok(true)
        }
    }
}

/// Problems with the invariants of the module docs, for keys within
/// [`low`, `high`), in the nodes in memory (pages are the verifier's).
pub fn check(
    node: &Node,
    low: Option<&[u8]>,
    high: Option<&[u8]>,
    limits: &Limits,
    problems: &mut Vec<String>,
) {
    let in_bounds =
        |key: &[u8]| low.is_none_or(|low| key >= low) && high.is_none_or(|high| key < high);
    match &node.body {
        Body::Leaf(entries) => {
            if entries.is_empty() || entries.len() > limits.max_keys {
                problems.push(format!("leaf with {} entries", entries.len()));
            }
            if entries.windows(2).any(|pair| pair[0].0 >= pair[1].0) {
                problems.push("leaf keys out of order".into());
            }
            if entries.iter().any(|(key, _)| !in_bounds(key)) {
                problems.push("leaf key outside its parent's bounds".into());
            }
        }
        Body::Branch { keys, children } => {
            if children.len() < 2
                || children.len() > limits.max_keys
                || keys.len() + 1 != children.len()
            {
                problems.push(format!(
                    "branch with {} children and {} keys",
                    children.len(),
                    keys.len()
                ));
                return;
            }
            if keys.windows(2).any(|pair| pair[0] >= pair[1])
                || keys.iter().any(|key| !in_bounds(key))
            {
                problems.push("branch keys out of order or out of bounds".into());
            }
            for (index, child) in children.iter().enumerate() {
                let Child::Node(child) = child else {
                    continue;
                };
                let child_low = if index == 0 {
                    low
                } else {
                    Some(&*keys[index - 1])
                };
                let child_high = if index == keys.len() {
                    high
                } else {
                    Some(&*keys[index])
                };
                check(child, child_low, child_high, limits, problems);
            }
        }
    }
}
