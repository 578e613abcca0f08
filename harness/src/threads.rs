//! Client threads in a scope: each joined, a panic turned into an error.

use crate::{Error, Result};
use std::thread::ScopedJoinHandle;

/// Joins every handle in order; a thread that panicked answers
/// "a `what` thread panicked".
pub fn join_all<T>(handles: Vec<ScopedJoinHandle<'_, Result<T>>>, what: &str) -> Vec<Result<T>> {
    handles
        .into_iter()
        .map(|handle| {
            handle
                .join()
                .unwrap_or_else(|_| Err(Error::Thread(format!("a {what} thread panicked"))))
        })
        .collect()
}
