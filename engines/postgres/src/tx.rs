//! Transactions with bounded retries: an operation's statements run on one
//! lent connection between `BEGIN` and `COMMIT`; a serialization failure, a
//! deadlock or a lost insert race rolls back and runs the operation again
//! (from its reads: the rules decide afresh), at most `max_retries` times,
//! each counted. Every other failure is the caller's error — a connection
//! lost around `COMMIT` included, whose outcome nobody knows.

use std::future::Future;
use std::sync::Arc;

use leasehold_core::{KvError, StoreError};
use tokio_postgres::error::SqlState;

use crate::connect::{describe, Conn};

/// Why a transaction ended without committing.
pub(crate) enum Failure {
    /// Lost a race the server detected; run it again.
    Retry(String),
    Store(StoreError),
}

impl From<StoreError> for Failure {
    fn from(err: StoreError) -> Failure {
        Failure::Store(err)
    }
}

impl From<tokio_postgres::Error> for Failure {
    fn from(err: tokio_postgres::Error) -> Failure {
        let retry = err.code().is_some_and(|code| {
            [
                SqlState::T_R_SERIALIZATION_FAILURE,
                SqlState::T_R_DEADLOCK_DETECTED,
                SqlState::UNIQUE_VIOLATION,
            ]
            .contains(code)
        });
        if retry {
            return Failure::Retry(describe(&err));
        }
        Failure::Store(sql_error(&err))
    }
}

/// A statement's failure as a store error. A cancelled statement (the
/// configured `statement_timeout`) says so.
pub(crate) fn sql_error(err: &tokio_postgres::Error) -> StoreError {
    let context = if err.code() == Some(&SqlState::QUERY_CANCELED) {
        "a PostgreSQL statement (cancelled: statement_timeout)"
    } else {
        "a PostgreSQL statement"
    };
    StoreError::Engine(KvError::io(context, std::io::Error::other(describe(err))))
}

/// How an operation's statements are wrapped.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Wrap {
    /// One statement on its own (autocommit).
    Alone,
    /// `BEGIN` … `COMMIT` at the session's `synchronous_commit`.
    Transaction,
    /// A transaction whose commit waits for the WAL flush whatever the
    /// store's durability: a lease grant lost in a crash would let the next
    /// grant issue its epoch again (the same promise `KvStore` keeps).
    DurableTransaction,
}

/// Runs `body` on `conn` wrapped as `wrap`; rolls back when it fails.
pub(crate) async fn wrapped<T, Fut>(conn: Arc<Conn>, wrap: Wrap, body: Fut) -> Result<T, Failure>
where
    Fut: Future<Output = Result<T, Failure>>,
{
    let begin = match wrap {
        Wrap::Alone => return body.await,
        Wrap::Transaction => "BEGIN",
        Wrap::DurableTransaction => "BEGIN; SET LOCAL synchronous_commit = on",
    };
    conn.client.batch_execute(begin).await?;
    match body.await {
        Ok(value) => {
            conn.client.batch_execute("COMMIT").await?;
            Ok(value)
        }
        Err(failure) => {
            if conn.client.batch_execute("ROLLBACK").await.is_err() {
                conn.mark_broken();
            }
            Err(failure)
        }
    }
}
