use super::*;
use leasehold_storage::KvError;
use proptest::prelude::*;
use std::collections::{BTreeMap, HashMap};
use std::sync::Mutex;

fn limits() -> Limits {
    Limits {
        max_keys: 4,
        capacity: 400,
        inline_max: 100,
        compress: false,
    }
}

/// "Pages" kept in a map: `spill` moves every node in memory there, as a
/// checkpoint and the page cache would, so edits meet `Child::Page`.
#[derive(Default)]
struct MapPages {
    nodes: Mutex<HashMap<PageId, Arc<Node>>>,
}

impl MapPages {
    fn spill(&self, child: &Child) -> Child {
        let Child::Node(node) = child else {
            return child.clone();
        };
        let body = match &node.body {
            Body::Leaf(entries) => Body::Leaf(entries.clone()),
            Body::Branch { keys, children } => Body::Branch {
                keys: keys.clone(),
                children: children.iter().map(|child| self.spill(child)).collect(),
            },
        };
        let mut nodes = self.nodes.lock().unwrap();
        let id = nodes.len() as PageId + 2;
        nodes.insert(id, Node::read(body, id, 0));
        Child::Page(id)
    }
}

impl PageSource for MapPages {
    fn node(&self, id: PageId) -> KvResult<Arc<Node>> {
        self.nodes
            .lock()
            .unwrap()
            .get(&id)
            .cloned()
            .ok_or_else(|| KvError::InvalidArgument(format!("no page {id}")))
    }
    fn value(&self, _: &StoredRef) -> KvResult<Vec<u8>> {
        Err(KvError::InvalidArgument("no overflow here".into()))
    }
    fn chain_pages(&self, _: &StoredRef) -> KvResult<Vec<PageId>> {
        Err(KvError::InvalidArgument("no overflow here".into()))
    }
    fn corrupt(&self, page: PageId, reason: String) -> KvError {
        KvError::InvalidArgument(format!("page {page}: {reason}"))
    }
}

fn collect(root: &Child, pages: &MapPages) -> BTreeMap<Vec<u8>, Vec<u8>> {
    let mut seen = BTreeMap::new();
    walk_from(root, None, pages, &mut |key, value| {
        seen.insert(key.to_vec(), value.to_vec());
        true
    })
    .unwrap();
    seen
}

proptest! {
    #[test]
    fn copy_on_write_operations_match_a_model_and_keep_the_invariants(
        ops in proptest::collection::vec((0u8..8, 0u16..200, 0usize..300), 1..300)
    ) {
        let limits = limits();
        let pages = MapPages::default();
        let mut root: Option<Child> = None;
        let mut model = BTreeMap::new();
        let mut live = Change::default();
        let mut snapshots = Vec::new();
        for (what, key, len) in ops {
            let key = format!("k{key:05}").into_bytes();
            let mut replaced = Replaced::default();
            let mut change = Change::default();
            match what {
                // Now and then the whole tree goes to "pages".
                0 => root = root.as_ref().map(|root| pages.spill(root)),
                1 | 2 => {
                    model.remove(&key);
                    if let Some(current) = &root {
                        let node = current.resolve(&pages).unwrap();
                        if let Some(result) = delete(&node, &key, &limits, &mut replaced, &mut change, &pages).unwrap() {
                            root = result.map(|child| collapse(child, &mut replaced, &mut change));
                        }
                    }
                }
                _ => {
                    let value = vec![len as u8; len];
                    model.insert(key.clone(), value.clone());
                    root = Some(match &root {
                        None => {
                            change.entries += 1;
                            change.bytes += (key.len() + value.len()) as i64;
                            Child::Node(change.made(Body::Leaf(vec![(crate::slice::Slice::copied(&key), Value::Cell(ValueCell::new(value)))])))
                        }
                        Some(current) => {
                            let node = current.resolve(&pages).unwrap();
                            let parts = insert(&node, &key, ValueCell::new(value), &limits, &mut replaced, &mut change, &pages).unwrap();
                            new_root(parts, &limits, &mut change)
                        }
                    });
                }
            }
            live.entries += change.entries;
            live.bytes += change.bytes;
            snapshots.push((root.clone(), model.clone()));
        }
        // Every old root still reads as the tree it was (copy-on-write).
        for (snapshot, expected) in snapshots.iter().step_by(17) {
            let seen = snapshot.as_ref().map(|root| collect(root, &pages)).unwrap_or_default();
            if let Some(Child::Node(node)) = snapshot {
                let mut problems = Vec::new();
                check(node, None, None, &limits, &mut problems);
                prop_assert!(problems.is_empty(), "{:?}", problems);
            }
            prop_assert_eq!(&seen, expected);
        }
        prop_assert_eq!(live.entries as usize, model.len());
        prop_assert_eq!(live.bytes as usize, model.iter().map(|(k, v)| k.len() + v.len()).sum::<usize>());
        if let Some(root) = &root {
            for (key, value) in &model {
                prop_assert_eq!(&get(root, key, &pages).unwrap().unwrap(), value);
            }
        }
    }
}

/// Pages that name each other in a cycle end a lookup or a scan with an
/// error at the depth no tree reaches, instead of looping forever.
#[test]
fn a_cycle_of_pages_is_an_error_not_an_endless_walk() {
    let pages = MapPages::default();
    let body = Body::Branch {
        keys: vec![crate::slice::Slice::copied(b"m")].into(),
        children: vec![Child::Page(2), Child::Page(2)],
    };
    pages
        .nodes
        .lock()
        .unwrap()
        .insert(2, Node::read(body, 2, 0));
    let root = Child::Page(2);
    let message = |err: KvError| err.to_string();
    assert!(message(get(&root, b"a", &pages).unwrap_err()).contains("deeper"));
    let walked = walk_from(&root, None, &pages, &mut |_, _| true);
    assert!(message(walked.unwrap_err()).contains("deeper"));
}

/// A leaf copied from a page keeps that page's buffer alive through its
/// keys and inline values: its size counts the buffer, once.
#[test]
fn a_copied_leaf_counts_the_page_buffer_its_entries_keep_alive() {
    use crate::slice::Slice;
    let buffer: Arc<[u8]> = Arc::from(vec![7u8; 4096]);
    let entries: Vec<(Slice, Value)> = (0..4)
        .map(|index| {
            let value = 1000 + index * 700;
            (
                Slice::of(&buffer, index * 100..index * 100 + 16),
                Value::Inline {
                    stored: Slice::of(&buffer, value..value + 700),
                    lz4_raw_len: None,
                },
            )
        })
        .collect();
    let node = Node::new(Body::Leaf(entries));
    assert!(node.resident >= 4096, "{}", node.resident);
    assert!(node.resident < 4096 + 1024, "{}", node.resident);
}
