//! The tree in memory: immutable nodes shared through `Arc`, changed by
//! copying the path from the root to the leaf (copy-on-write). A reader holds
//! a root and sees that tree, whole, however the writer moves on.
//!
//! Invariants (checked by `check`):
//! 1. A leaf holds 1..=`max_keys` entries in strictly ascending key order
//!    (only an empty tree has no root at all).
//! 2. A branch holds 2..=`max_keys` children and one separator key fewer;
//!    every key under `children[i]` is `< keys[i] <= ` every key under
//!    `children[i + 1]`.
//! 3. Every node fits a page when encoded (`pack` splits nodes to keep it so).
//!
//! A node's `page` is set once, by the checkpoint that writes it; a node with
//! no page is dirty.

use std::sync::{Arc, OnceLock};

/// Where a page lives: its index in the data file.
pub type PageId = u64;

/// Where a checkpoint put a value too long for its leaf.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct OverflowRef {
    pub pages: Vec<PageId>,
    pub stored_len: u64,
    /// `Some(raw_len)` when stored lz4-compressed.
    pub lz4_raw_len: Option<u64>,
}

/// A value and, once a checkpoint put it in overflow pages, where.
#[derive(Debug)]
pub struct ValueCell {
    pub bytes: Vec<u8>,
    pub overflow: OnceLock<OverflowRef>,
}

impl ValueCell {
    pub fn new(bytes: Vec<u8>) -> Arc<ValueCell> {
        Arc::new(ValueCell {
            bytes,
            overflow: OnceLock::new(),
        })
    }
}

#[derive(Debug)]
pub enum Body {
    Leaf(Vec<(Vec<u8>, Arc<ValueCell>)>),
    Branch {
        keys: Vec<Vec<u8>>,
        children: Vec<Arc<Node>>,
    },
}

#[derive(Debug)]
pub struct Node {
    pub body: Body,
    pub page: OnceLock<PageId>,
}

impl Node {
    pub fn new(body: Body) -> Arc<Node> {
        Arc::new(Node {
            body,
            page: OnceLock::new(),
        })
    }
}

/// Size limits of nodes.
#[derive(Clone, Copy, Debug)]
pub struct Limits {
    pub max_keys: usize,
    /// Payload bytes of a page.
    pub capacity: usize,
    /// Values longer than this go to overflow pages.
    pub inline_max: usize,
}

/// Bytes an overflow reference takes in a leaf: flags, first page, stored
/// length, raw length (varints at their widest).
pub const OVERFLOW_REF_LEN: usize = 1 + 10 + 10 + 10;

fn varint_len(value: usize) -> usize {
    let mut len = 1;
    let mut rest = value >> 7;
    while rest > 0 {
        len += 1;
        rest >>= 7;
    }
    len
}

/// Encoded bytes of a leaf entry (an upper bound: compression only shrinks).
pub fn leaf_entry_len(key: &[u8], value: &ValueCell, limits: &Limits) -> usize {
    let key_len = varint_len(key.len()) + key.len();
    if value.bytes.len() > limits.inline_max {
        key_len + OVERFLOW_REF_LEN
    } else {
        // flags, raw length (if compressed), stored length, bytes
        key_len + 1 + 10 + varint_len(value.bytes.len()) + value.bytes.len()
    }
}

fn branch_item_len(key: &[u8]) -> usize {
    8 + varint_len(key.len()) + key.len()
}

/// What changes replaced, as far as freeing pages needs: the pages of
/// replaced nodes and values, and — only while a checkpoint is writing a tree
/// that may contain them — replaced nodes and values without a page yet
/// (that checkpoint may give them one). Nothing else is kept, so memory does
/// not grow with the writes between checkpoints.
#[derive(Debug, Default)]
pub struct Replaced {
    pub pages: Vec<PageId>,
    pending_nodes: Vec<Arc<Node>>,
    pending_values: Vec<Arc<ValueCell>>,
    /// Set while a checkpoint writes a snapshot (under the writer lock).
    pub checkpoint_running: bool,
}

impl Replaced {
    pub fn node(&mut self, node: &Arc<Node>) {
        if let Some(&page) = node.page.get() {
            self.pages.push(page);
        } else if self.checkpoint_running {
            self.pending_nodes.push(Arc::clone(node));
        }
    }

    pub fn value(&mut self, value: Arc<ValueCell>) {
        if let Some(overflow) = value.overflow.get() {
            self.pages.extend(overflow.pages.iter().copied());
        } else if self.checkpoint_running {
            self.pending_values.push(value);
        }
    }

    /// The running checkpoint finished: what it gave pages is now known.
    pub fn settle(&mut self) {
        self.checkpoint_running = false;
        for node in std::mem::take(&mut self.pending_nodes) {
            self.node(&node);
        }
        for value in std::mem::take(&mut self.pending_values) {
            self.value(value);
        }
    }
}

/// What an insert or delete did to the live data.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct Change {
    pub entries: i64,
    pub bytes: i64,
}

/// Cuts `items` into the fewest groups of near-equal count that each respect
/// `max` items and `capacity` bytes (per `len`, plus `fixed` per group).
fn pack<T>(
    items: Vec<T>,
    max: usize,
    capacity: usize,
    fixed: usize,
    len: impl Fn(&T) -> usize,
) -> Vec<Vec<T>> {
    let lens: Vec<usize> = items.iter().map(&len).collect();
    let count = items.len();
    let total: usize = lens.iter().sum::<usize>() + fixed;
    let mut parts = count
        .div_ceil(max)
        .max(total.div_ceil(capacity))
        .clamp(1, count.max(1));
    let bounds = loop {
        let bounds: Vec<usize> = (0..=parts).map(|part| part * count / parts).collect();
        let fits = bounds
            .windows(2)
            .all(|range| fixed + lens[range[0]..range[1]].iter().sum::<usize>() <= capacity);
        if fits || parts >= count {
            break bounds;
        }
        parts += 1;
    };
    let mut items = items.into_iter();
    bounds
        .windows(2)
        .map(|range| items.by_ref().take(range[1] - range[0]).collect())
        .collect()
}

/// Inserts or replaces `key`; returns the node(s) replacing `node` (more than
/// one after a split), each after the first with the separator before it.
pub fn insert(
    node: &Arc<Node>,
    key: &[u8],
    value: Arc<ValueCell>,
    limits: &Limits,
    replaced: &mut Replaced,
    change: &mut Change,
) -> Vec<(Option<Vec<u8>>, Arc<Node>)> {
    replaced.node(node);
    match &node.body {
        Body::Leaf(entries) => {
            let mut entries = entries.clone();
            change.bytes += value.bytes.len() as i64;
            match entries.binary_search_by(|(existing, _)| existing.as_slice().cmp(key)) {
                Ok(index) => {
                    let old = std::mem::replace(&mut entries[index].1, value);
                    change.bytes -= old.bytes.len() as i64;
                    replaced.value(old);
                }
                Err(index) => {
                    change.entries += 1;
                    change.bytes += key.len() as i64;
                    entries.insert(index, (key.to_vec(), value));
                }
            }
            let bytes: usize = 2 + entries
                .iter()
                .map(|(key, value)| leaf_entry_len(key, value, limits))
                .sum::<usize>();
            if entries.len() <= limits.max_keys && bytes <= limits.capacity {
                return vec![(None, Node::new(Body::Leaf(entries)))];
            }
            let groups = pack(
                entries,
                limits.max_keys,
                limits.capacity,
                2,
                |(key, value)| leaf_entry_len(key, value, limits),
            );
            groups
                .into_iter()
                .enumerate()
                .map(|(index, group)| {
                    let separator = (index > 0).then(|| group[0].0.clone());
                    (separator, Node::new(Body::Leaf(group)))
                })
                .collect()
        }
        Body::Branch { keys, children } => {
            let index = keys.partition_point(|separator| separator.as_slice() <= key);
            let mut results = insert(&children[index], key, value, limits, replaced, change);
            let mut children = children.clone();
            if results.len() == 1 {
                // No split below: only the child pointer changes.
                children[index] = results.remove(0).1;
                return vec![(
                    None,
                    Node::new(Body::Branch {
                        keys: keys.clone(),
                        children,
                    }),
                )];
            }
            let mut keys = keys.clone();
            let mut insert_at = index;
            for (position, (separator, child)) in results.into_iter().enumerate() {
                if position == 0 {
                    children[index] = child;
                } else {
                    insert_at += 1;
                    children.insert(insert_at, child);
                    keys.insert(insert_at - 1, separator.unwrap_or_default());
                }
            }
            split_branch(keys, children, limits)
        }
    }
}

/// A branch from `keys` and `children`, split if it is too big.
fn split_branch(
    keys: Vec<Vec<u8>>,
    children: Vec<Arc<Node>>,
    limits: &Limits,
) -> Vec<(Option<Vec<u8>>, Arc<Node>)> {
    // Pair each child with the separator before it (none for the first).
    let items: Vec<(Option<Vec<u8>>, Arc<Node>)> = std::iter::once(None)
        .chain(keys.into_iter().map(Some))
        .zip(children)
        .collect();
    let groups = pack(items, limits.max_keys, limits.capacity, 2, |(key, _)| {
        branch_item_len(key.as_deref().unwrap_or_default())
    });
    groups
        .into_iter()
        .map(|group| {
            let mut group = group.into_iter();
            let Some((separator, first)) = group.next() else {
                unreachable!("pack makes no empty groups")
            };
            let (keys, rest): (Vec<Vec<u8>>, Vec<Arc<Node>>) = group
                .map(|(key, child)| (key.unwrap_or_default(), child))
                .unzip();
            let mut children = vec![first];
            children.extend(rest);
            (separator, Node::new(Body::Branch { keys, children }))
        })
        .collect()
}

/// Deletes `key`. `None`: not there, nothing changed. `Some(None)`: the node
/// became empty. `Some(Some(node))`: the replacement.
pub fn delete(
    node: &Arc<Node>,
    key: &[u8],
    replaced: &mut Replaced,
    change: &mut Change,
) -> Option<Option<Arc<Node>>> {
    match &node.body {
        Body::Leaf(entries) => {
            let index = entries
                .binary_search_by(|(existing, _)| existing.as_slice().cmp(key))
                .ok()?;
            replaced.node(node);
            let mut entries = entries.clone();
            let (old_key, old) = entries.remove(index);
            change.entries -= 1;
            change.bytes -= (old_key.len() + old.bytes.len()) as i64;
            replaced.value(old);
            Some((!entries.is_empty()).then(|| Node::new(Body::Leaf(entries))))
        }
        Body::Branch { keys, children } => {
            let index = keys.partition_point(|separator| separator.as_slice() <= key);
            let result = delete(&children[index], key, replaced, change)?;
            replaced.node(node);
            let mut keys = keys.clone();
            let mut children = children.clone();
            match result {
                Some(child) => children[index] = child,
                None => {
                    children.remove(index);
                    keys.remove(index.saturating_sub(1).min(keys.len().saturating_sub(1)));
                }
            }
            Some(match children.len() {
                0 => None,
                // A branch never keeps a single child: the child takes its place.
                1 => children.pop(),
                _ => Some(Node::new(Body::Branch { keys, children })),
            })
        }
    }
}

/// The root after replacing it with `parts` (from `insert`): a new branch
/// above them when the old root split.
pub fn new_root(parts: Vec<(Option<Vec<u8>>, Arc<Node>)>, limits: &Limits) -> Arc<Node> {
    let mut parts = parts;
    loop {
        if parts.len() == 1 {
            return parts.remove(0).1;
        }
        let mut keys = Vec::with_capacity(parts.len() - 1);
        let mut children = Vec::with_capacity(parts.len());
        for (separator, child) in parts {
            if let Some(separator) = separator {
                keys.push(separator);
            }
            children.push(child);
        }
        parts = split_branch(keys, children, limits);
    }
}

/// A branch with one child is replaced by that child (repeatedly).
pub fn collapse(mut root: Arc<Node>, replaced: &mut Replaced) -> Arc<Node> {
    loop {
        let only = match &root.body {
            Body::Branch { children, .. } if children.len() == 1 => Arc::clone(&children[0]),
            _ => return root,
        };
        replaced.node(&root);
        root = only;
    }
}

/// The value of `key` under `node`.
pub fn get<'a>(mut node: &'a Arc<Node>, key: &[u8]) -> Option<&'a Arc<ValueCell>> {
    loop {
        match &node.body {
            Body::Leaf(entries) => {
                let index = entries
                    .binary_search_by(|(existing, _)| existing.as_slice().cmp(key))
                    .ok()?;
                return Some(&entries[index].1);
            }
            Body::Branch { keys, children } => {
                node = &children[keys.partition_point(|separator| separator.as_slice() <= key)];
            }
        }
    }
}

/// Visits entries with `start <= key` in order until `visit` returns false.
pub fn walk_from(
    node: &Arc<Node>,
    start: Option<&[u8]>,
    visit: &mut dyn FnMut(&[u8], &ValueCell) -> bool,
) -> bool {
    match &node.body {
        Body::Leaf(entries) => {
            let from = start.map_or(0, |start| {
                entries.partition_point(|(key, _)| key.as_slice() < start)
            });
            for (key, value) in &entries[from..] {
                if !visit(key, value) {
                    return false;
                }
            }
            true
        }
        Body::Branch { keys, children } => {
            let from = start.map_or(0, |start| {
                keys.partition_point(|separator| separator.as_slice() <= start)
            });
            for child in &children[from..] {
                if !walk_from(child, start, visit) {
                    return false;
                }
            }
            true
        }
    }
}

/// Problems with the invariants of the module docs, for keys within
/// [`low`, `high`).
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
                let child_low = if index == 0 {
                    low
                } else {
                    Some(keys[index - 1].as_slice())
                };
                let child_high = if index == keys.len() {
                    high
                } else {
                    Some(keys[index].as_slice())
                };
                check(child, child_low, child_high, limits, problems);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;
    use std::collections::BTreeMap;

    fn limits() -> Limits {
        Limits {
            max_keys: 4,
            capacity: 400,
            inline_max: 100,
        }
    }

    proptest! {
        #[test]
        fn copy_on_write_operations_match_a_model_and_keep_the_invariants(
            ops in proptest::collection::vec((any::<bool>(), 0u16..200, 0usize..300), 1..300)
        ) {
            let limits = limits();
            let mut root: Option<Arc<Node>> = None;
            let mut model = BTreeMap::new();
            let mut live = Change::default();
            let mut snapshots = Vec::new();
            for (is_put, key, len) in ops {
                let key = format!("k{key:05}").into_bytes();
                let mut replaced = Replaced::default();
                let mut change = Change::default();
                if is_put {
                    let value = vec![len as u8; len];
                    model.insert(key.clone(), value.clone());
                    root = Some(match &root {
                        None => {
                            change.entries += 1;
                            change.bytes += (key.len() + value.len()) as i64;
                            Node::new(Body::Leaf(vec![(key, ValueCell::new(value))]))
                        }
                        Some(root) => new_root(insert(root, &key, ValueCell::new(value), &limits, &mut replaced, &mut change), &limits),
                    });
                } else {
                    model.remove(&key);
                    if let Some(current) = &root {
                        if let Some(result) = delete(current, &key, &mut replaced, &mut change) {
                            root = result.map(|node| collapse(node, &mut replaced));
                        }
                    }
                }
                live.entries += change.entries;
                live.bytes += change.bytes;
                snapshots.push((root.clone(), model.clone()));
            }
            // Every old root still reads as the tree it was (copy-on-write).
            for (snapshot, expected) in snapshots.iter().step_by(17) {
                let mut seen = BTreeMap::new();
                if let Some(node) = snapshot {
                    walk_from(node, None, &mut |key, value| { seen.insert(key.to_vec(), value.bytes.clone()); true });
                    let mut problems = Vec::new();
                    check(node, None, None, &limits, &mut problems);
                    prop_assert!(problems.is_empty(), "{:?}", problems);
                }
                prop_assert_eq!(&seen, expected);
            }
            prop_assert_eq!(live.entries as usize, model.len());
            prop_assert_eq!(live.bytes as usize, model.iter().map(|(k, v)| k.len() + v.len()).sum::<usize>());
            if let Some(node) = &root {
                for (key, value) in &model {
                    prop_assert_eq!(&get(node, key).unwrap().bytes, value);
                }
            }
        }
    }
}
