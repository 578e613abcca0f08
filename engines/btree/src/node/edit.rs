//! Changing the tree: insert and delete copy the path from the root to the
//! leaf they change, reading pages on the way; what they replace is noted in
//! `Replaced` so a checkpoint can free its pages.

use std::sync::Arc;

use leasehold_storage::KvResult;

use super::{
    branch_item_len, leaf_entry_len, pack, Body, Change, Child, Limits, Node, PageSource, Replaced,
    Value, ValueCell,
};
use crate::slice::Slice;

/// Node(s) replacing one, each after the first with the separator before it.
pub type Parts = Vec<(Option<Slice>, Child)>;

/// Inserts or replaces `key`; returns the node(s) replacing `node` (more than
/// one after a split), each after the first with the separator before it.
#[allow(clippy::too_many_arguments)]
pub fn insert(
    node: &Arc<Node>,
    key: &[u8],
    value: Arc<ValueCell>,
    limits: &Limits,
    replaced: &mut Replaced,
    change: &mut Change,
    pages: &dyn PageSource,
) -> KvResult<Parts> {
    match &node.body {
        Body::Leaf(entries) => {
            replaced.node(node, change);
            // Room for one more: an insert would otherwise regrow the copy.
            let mut entries = {
                let mut copy = Vec::with_capacity(entries.len() + 1);
                copy.extend(entries.iter().cloned());
                copy
            };
            change.bytes += value.raw_len() as i64;
            let value = Value::Cell(value);
            match entries.binary_search_by(|(existing, _)| (**existing).cmp(key)) {
                Ok(index) => {
                    let old = std::mem::replace(&mut entries[index].1, value);
                    change.bytes -= old.byte_len() as i64;
                    replaced.value(old, pages)?;
                }
                Err(index) => {
                    change.entries += 1;
                    change.bytes += key.len() as i64;
                    entries.insert(index, (Slice::copied(key), value));
                }
            }
            let bytes: usize = 2 + entries
                .iter()
                .map(|(key, value)| leaf_entry_len(key, value, limits))
                .sum::<usize>();
            if entries.len() <= limits.max_keys && bytes <= limits.capacity {
                return Ok(vec![(None, Child::Node(change.made(Body::Leaf(entries))))]);
            }
            let groups = pack(
                entries,
                limits.max_keys,
                limits.capacity,
                2,
                |(key, value)| leaf_entry_len(key, value, limits),
            );
            Ok(groups
                .into_iter()
                .enumerate()
                .map(|(index, group)| {
                    // A separator of its own: it must not keep a page alive.
                    let separator = (index > 0).then(|| Slice::copied(&group[0].0));
                    (separator, Child::Node(change.made(Body::Leaf(group))))
                })
                .collect())
        }
        Body::Branch { keys, children } => {
            let index = keys.partition_point(|separator| &**separator <= key);
            let child = children[index].resolve(pages)?;
            let mut results = insert(&child, key, value, limits, replaced, change, pages)?;
            replaced.node(node, change);
            let mut children = children.clone();
            if results.len() == 1 {
                // No split below: only the child pointer changes.
                children[index] = results.remove(0).1;
                return Ok(vec![(
                    None,
                    Child::Node(change.made(Body::Branch {
                        keys: Arc::clone(keys),
                        children,
                    })),
                )]);
            }
            let mut keys = keys.to_vec();
            let mut insert_at = index;
            for (position, (separator, child)) in results.into_iter().enumerate() {
                if position == 0 {
                    children[index] = child;
                } else {
                    insert_at += 1;
                    children.insert(insert_at, child);
                    keys.insert(
                        insert_at - 1,
                        separator.unwrap_or_else(|| Slice::copied(b"")),
                    );
                }
            }
            Ok(split_branch(keys, children, limits, change))
        }
    }
}

/// A branch from `keys` and `children`, split if it is too big.
fn split_branch(
    keys: Vec<Slice>,
    children: Vec<Child>,
    limits: &Limits,
    change: &mut Change,
) -> Parts {
    // Pair each child with the separator before it (none for the first).
    let items: Vec<(Option<Slice>, Child)> = std::iter::once(None)
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
            let (keys, rest): (Vec<Slice>, Vec<Child>) = group
                .map(|(key, child)| (key.unwrap_or_else(|| Slice::copied(b"")), child))
                .unzip();
            let mut children = vec![first];
            children.extend(rest);
            (
                separator,
                Child::Node(change.made(Body::Branch {
                    keys: keys.into(),
                    children,
                })),
            )
        })
        .collect()
}

/// Deletes `key`. `None`: not there, nothing changed. `Some(None)`: the node
/// became empty. `Some(Some(child))`: the replacement. A child left below a
/// quarter of a page is merged with a sibling (or the two are evened out).
pub fn delete(
    node: &Arc<Node>,
    key: &[u8],
    limits: &Limits,
    replaced: &mut Replaced,
    change: &mut Change,
    pages: &dyn PageSource,
) -> KvResult<Option<Option<Child>>> {
    match &node.body {
        Body::Leaf(entries) => {
            let Ok(index) = entries.binary_search_by(|(existing, _)| (**existing).cmp(key)) else {
                return Ok(None);
            };
            replaced.node(node, change);
            let mut entries = entries.clone();
            let (old_key, old) = entries.remove(index);
            change.entries -= 1;
            change.bytes -= (old_key.len() as u64 + old.byte_len()) as i64;
            replaced.value(old, pages)?;
            Ok(Some(
                (!entries.is_empty()).then(|| Child::Node(change.made(Body::Leaf(entries)))),
            ))
        }
        Body::Branch { keys, children } => {
            let index = keys.partition_point(|separator| &**separator <= key);
            let child = children[index].resolve(pages)?;
            let Some(result) = delete(&child, key, limits, replaced, change, pages)? else {
                return Ok(None);
            };
            replaced.node(node, change);
            let mut keys = Arc::clone(keys);
            let mut children = children.clone();
            match result {
                Some(child) => {
                    children[index] = child;
                    if underfull(&children[index], limits) && children.len() >= 2 {
                        let mut changed = keys.to_vec();
                        rebalance(
                            &mut changed,
                            &mut children,
                            index,
                            limits,
                            replaced,
                            change,
                            pages,
                        )?;
                        keys = changed.into();
                    }
                }
                None => {
                    children.remove(index);
                    let mut fewer = keys.to_vec();
                    fewer.remove(index.saturating_sub(1).min(fewer.len().saturating_sub(1)));
                    keys = fewer.into();
                }
            }
            Ok(Some(match children.len() {
                0 => None,
                // A branch never keeps a single child: the child takes its place.
                1 => children.pop(),
                _ => Some(Child::Node(change.made(Body::Branch { keys, children }))),
            }))
        }
    }
}

/// Whether `child`, just made by a delete, holds less than a quarter of a
/// page (or is a branch of one child).
fn underfull(child: &Child, limits: &Limits) -> bool {
    let Child::Node(node) = child else {
        return false;
    };
    let bytes = match &node.body {
        Body::Leaf(entries) => entries
            .iter()
            .map(|(key, value)| leaf_entry_len(key, value, limits))
            .sum::<usize>(),
        Body::Branch { keys, children } => {
            if children.len() < 2 {
                return true;
            }
            keys.iter().map(|key| branch_item_len(key)).sum::<usize>()
        }
    };
    bytes < limits.capacity / 4
}

/// Merges `children[index]` with a sibling (its right one, or its left one
/// when it is the last) into one node, or evens the two out when together
/// they do not fit one page; `keys` and `children` are changed in place. Two
/// siblings of different kinds (a tree whose deletes replaced a one-child
/// branch by its child, before deletes merged) are left as they are.
fn rebalance(
    keys: &mut Vec<Slice>,
    children: &mut Vec<Child>,
    index: usize,
    limits: &Limits,
    replaced: &mut Replaced,
    change: &mut Change,
    pages: &dyn PageSource,
) -> KvResult<()> {
    let left = if index + 1 < children.len() {
        index
    } else {
        index - 1
    };
    let (a, b) = (
        children[left].resolve(pages)?,
        children[left + 1].resolve(pages)?,
    );
    let parts = match (&a.body, &b.body) {
        (Body::Leaf(first), Body::Leaf(second)) => {
            let entries: Vec<(Slice, Value)> = first.iter().chain(second).cloned().collect();
            pack(
                entries,
                limits.max_keys,
                limits.capacity,
                2,
                |(key, value)| leaf_entry_len(key, value, limits),
            )
            .into_iter()
            .enumerate()
            .map(|(part, group)| {
                let separator = (part > 0).then(|| Slice::copied(&group[0].0));
                (separator, Child::Node(change.made(Body::Leaf(group))))
            })
            .collect()
        }
        (
            Body::Branch {
                keys: first_keys,
                children: first,
            },
            Body::Branch {
                keys: second_keys,
                children: second,
            },
        ) => {
            let mut merged_keys = first_keys.to_vec();
            merged_keys.push(keys[left].clone());
            merged_keys.extend(second_keys.iter().cloned());
            let merged: Vec<Child> = first.iter().chain(second).cloned().collect();
            split_branch(merged_keys, merged, limits, change)
        }
        _ => return Ok(()),
    };
    replaced.node(&a, change);
    replaced.node(&b, change);
    // The separator between the two goes; each part after the first brings its own.
    keys.remove(left);
    children.drain(left..=left + 1);
    for (offset, (separator, child)) in parts.into_iter().enumerate() {
        children.insert(left + offset, child);
        if let Some(separator) = separator {
            keys.insert(left + offset - 1, separator);
        }
    }
    Ok(())
}

/// The root after replacing it with `parts` (from `insert`): a new branch
/// above them when the old root split.
pub fn new_root(parts: Parts, limits: &Limits, change: &mut Change) -> Child {
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
        parts = split_branch(keys, children, limits, change);
    }
}

/// A branch with one child is replaced by that child (repeatedly). Only a
/// branch made in memory can have one child (pages are checked for two).
pub fn collapse(mut root: Child, replaced: &mut Replaced, change: &mut Change) -> Child {
    loop {
        let only = match &root {
            Child::Node(node) => match &node.body {
                Body::Branch { children, .. } if children.len() == 1 => {
                    replaced.node(node, change);
                    children[0].clone()
                }
                _ => return root,
            },
            Child::Page(_) => return root,
        };
        root = only;
    }
}
