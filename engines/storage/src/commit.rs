//! Group commit: concurrent writers queue; the one at the front becomes the
//! leader, takes a group of batches from the front (up to a byte limit), and
//! writes them with one log append and at most one fsync; the others wait and
//! return the leader's result. Used by every engine with a log.
//!
//! Contract: batches are handed to the leader function in arrival order; each
//! submit returns only after the group holding its batch was written (or
//! failed); at most one leader runs at a time.

use std::collections::VecDeque;
use std::sync::Arc;

use parking_lot::{Condvar, Mutex};

use crate::error::{KvError, KvResult};
use crate::kv::{Durability, WriteBatch};

/// One queued write.
#[derive(Debug)]
pub struct Pending {
    pub batch: WriteBatch,
    pub durability: Durability,
    /// Set by the leader that wrote it.
    result: Mutex<Option<Result<(), String>>>,
}

/// The queue of writers.
#[derive(Debug)]
pub struct CommitQueue {
    queue: Mutex<VecDeque<Arc<Pending>>>,
    ready: Condvar,
    group_bytes_max: u64,
}

impl CommitQueue {
    /// Groups hold up to `group_bytes_max` logical bytes (at least one batch).
    pub fn new(group_bytes_max: u64) -> Self {
        CommitQueue {
            queue: Mutex::new(VecDeque::new()),
            ready: Condvar::new(),
            group_bytes_max,
        }
    }

    /// Queues `batch`; if this writer becomes the leader, `write_group` is
    /// called with its group. Followers get the leader's result (an error as
    /// `Poisoned`, since a failed group write leaves the engine failed).
    pub fn submit(
        &self,
        batch: WriteBatch,
        durability: Durability,
        write_group: impl FnOnce(&[Arc<Pending>]) -> KvResult<()>,
    ) -> KvResult<()> {
        let pending = Arc::new(Pending {
            batch,
            durability,
            result: Mutex::new(None),
        });
        let mut queue = self.queue.lock();
        queue.push_back(Arc::clone(&pending));
        loop {
            if let Some(result) = pending.result.lock().take() {
                return result.map_err(|reason| KvError::Poisoned { reason });
            }
            if queue
                .front()
                .is_some_and(|front| Arc::ptr_eq(front, &pending))
            {
                break;
            }
            self.ready.wait(&mut queue);
        }
        let mut group = Vec::new();
        let mut bytes = 0;
        for waiting in queue.iter() {
            if !group.is_empty() && bytes + waiting.batch.logical_bytes() > self.group_bytes_max {
                break;
            }
            bytes += waiting.batch.logical_bytes();
            group.push(Arc::clone(waiting));
        }
        drop(queue);
        let mut finish = Finish {
            queue: self,
            group: &group,
            leader: &pending,
            outcome: None,
        };
        let result = write_group(&group);
        finish.outcome = Some(result.as_ref().map(|_| ()).map_err(ToString::to_string));
        drop(finish);
        result
    }
}

/// Retires a group and answers its followers — also when the leader's
/// `write_group` panics (then with an error: the group's fate is unknown), so
/// a panicking leader never leaves every other writer waiting forever.
struct Finish<'a> {
    queue: &'a CommitQueue,
    group: &'a [Arc<Pending>],
    leader: &'a Arc<Pending>,
    outcome: Option<Result<(), String>>,
}

impl Drop for Finish<'_> {
    fn drop(&mut self) {
        let shared = self.outcome.take().unwrap_or_else(|| {
            Err("the write leader panicked while writing this group: its outcome is unknown".into())
        });
        let mut queue = self.queue.queue.lock();
        for member in self.group {
            queue.pop_front();
            if !Arc::ptr_eq(member, self.leader) {
                *member.result.lock() = Some(shared.clone());
            }
        }
        self.queue.ready.notify_all();
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::{AtomicUsize, Ordering};

    #[test]
    fn concurrent_writers_are_grouped_and_all_see_their_result() {
        let queue = CommitQueue::new(u64::MAX);
        let groups = AtomicUsize::new(0);
        let written = Mutex::new(Vec::new());
        std::thread::scope(|scope| {
            for thread in 0..8u8 {
                let (queue, groups, written) = (&queue, &groups, &written);
                scope.spawn(move || {
                    for index in 0..50u8 {
                        let mut batch = WriteBatch::new();
                        batch.put(vec![thread, index], vec![]);
                        queue
                            .submit(batch, Durability::Sync, |group| {
                                groups.fetch_add(1, Ordering::SeqCst);
                                // Slow enough that others queue behind the leader.
                                std::thread::sleep(std::time::Duration::from_micros(200));
                                written
                                    .lock()
                                    .extend(group.iter().map(|pending| pending.batch.clone()));
                                Ok(())
                            })
                            .unwrap();
                    }
                });
            }
        });
        let written = written.into_inner();
        assert_eq!(written.len(), 400);
        // Each thread's batches in its own order.
        for thread in 0..8u8 {
            let mine: Vec<u8> = written
                .iter()
                .map(|batch| batch.ops[0].key())
                .filter(|key| key[0] == thread)
                .map(|key| key[1])
                .collect();
            assert_eq!(mine, (0..50).collect::<Vec<u8>>());
        }
        assert!(
            groups.load(Ordering::SeqCst) < 400,
            "some writes shared a group"
        );
    }

    /// C3: a leader that panicked left its group queued; every later writer
    /// waited behind it forever.
    #[test]
    fn a_panicking_leader_fails_its_group_and_the_queue_moves_on() {
        let queue = CommitQueue::new(u64::MAX);
        let (entered, release) = (std::sync::Barrier::new(2), std::sync::Barrier::new(2));
        std::thread::scope(|scope| {
            let leader = scope.spawn(|| {
                queue.submit(WriteBatch::new(), Durability::Sync, |_| {
                    entered.wait();
                    release.wait();
                    panic!("a bug in the engine's write path")
                })
            });
            entered.wait();
            let follower =
                scope.spawn(|| queue.submit(WriteBatch::new(), Durability::Sync, |_| Ok(())));
            // Let the follower queue behind the leader, then let the leader fail.
            std::thread::sleep(std::time::Duration::from_millis(50));
            release.wait();
            assert!(
                leader.join().is_err(),
                "the leader's panic reaches its caller"
            );
            // The follower was in the group (Poisoned) or led the next one (Ok);
            // either way it returns.
            let _ = follower.join().expect("the follower does not panic");
        });
        assert!(queue
            .submit(WriteBatch::new(), Durability::Sync, |_| Ok(()))
            .is_ok());
    }

    #[test]
    fn followers_learn_of_a_failed_group() {
        let queue = CommitQueue::new(u64::MAX);
        let result = queue.submit(WriteBatch::new(), Durability::Sync, |_| {
            Err(KvError::Closed)
        });
        assert!(matches!(result, Err(KvError::Closed)));
    }
}
