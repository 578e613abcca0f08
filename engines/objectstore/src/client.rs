//! The synchronous, instrumented client the store talks through: one tokio
//! runtime of its own drives `object_store`, every request is counted and
//! timed, and the answers the store's protocol branches on (absent, ETag
//! mismatch) become values rather than errors.

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::Bytes;
use futures::TryStreamExt;
use leasehold_core::blocking::BlockingRuntime;
use leasehold_core::metrics::LatencyHistogram;
use leasehold_core::{KvError, StoreError, StoreResult};
use object_store::path::Path;
use object_store::{ObjectStore, ObjectStoreExt, PutMode, PutOptions, PutPayload, UpdateVersion};

/// An object's version, as the server sent it (quotes included).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ETag(pub String);

impl ETag {
    fn from_server(tag: Option<String>, path: &Path) -> StoreResult<ETag> {
        let tag = tag.ok_or_else(|| {
            request_error(
                "read",
                path,
                format!("the server sent no ETag for {path}; conditional writes need one"),
            )
        })?;
        Ok(ETag(tag))
    }
}

/// The condition a write is made under.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Condition {
    /// Only if no object exists (`If-None-Match: *`).
    Absent,
    /// Only if the object is still this version (`If-Match`).
    Matches(ETag),
}

impl Condition {
    /// The condition that keeps what was read: absent stays absent, a read
    /// version must still be current.
    pub fn after_read(etag: Option<&ETag>) -> Condition {
        etag.map_or(Condition::Absent, |etag| Condition::Matches(etag.clone()))
    }
}

/// What a conditional write came to.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Written {
    Done(ETag),
    /// The condition did not hold: somebody else wrote first.
    ConditionFailed,
}

/// The largest object the store will read (a 1 GiB state is far beyond any
/// actor's; a larger object is damage or someone else's data).
pub const OBJECT_SIZE_MAX_BYTES: u64 = 1 << 30;

/// The kinds of request, for the counters.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum RequestKind {
    Get,
    Put,
    List,
    Delete,
}

impl RequestKind {
    pub const ALL: [RequestKind; 4] = [
        RequestKind::Get,
        RequestKind::Put,
        RequestKind::List,
        RequestKind::Delete,
    ];

    pub fn name(self) -> &'static str {
        match self {
            RequestKind::Get => "get",
            RequestKind::Put => "put",
            RequestKind::List => "list",
            RequestKind::Delete => "delete",
        }
    }
}

#[derive(Debug, Default)]
struct Counters {
    latencies: [LatencyHistogram; RequestKind::ALL.len()],
    failures: [AtomicU64; RequestKind::ALL.len()],
    bytes_sent: AtomicU64,
    bytes_accepted: AtomicU64,
    bytes_received: AtomicU64,
    conditions_failed: AtomicU64,
}

/// Requests of one kind.
#[derive(Clone, Debug, PartialEq)]
pub struct RequestStats {
    pub kind: RequestKind,
    pub count: u64,
    /// Requests that ended in an error (after `object_store`'s retries), not
    /// counting "absent" and "condition failed", which are answers.
    pub failures: u64,
    pub p50: Duration,
    pub p99: Duration,
    pub max: Duration,
}

/// A snapshot of the client's counters.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct ClientStats {
    pub requests: Vec<RequestStats>,
    /// Bodies of every PUT sent, taken or refused.
    pub bytes_sent: u64,
    /// Bodies of the PUTs the server took.
    pub bytes_accepted: u64,
    pub bytes_received: u64,
    /// Conditional writes the server refused (412, or "exists" for a
    /// create-only PUT): lost races.
    pub conditions_failed: u64,
}

impl ClientStats {
    pub fn requests(&self, kind: RequestKind) -> u64 {
        self.requests
            .iter()
            .find(|stats| stats.kind == kind)
            .map_or(0, |stats| stats.count)
    }
}

pub struct Client {
    store: Arc<dyn ObjectStore>,
    /// Drives the requests (see `BlockingRuntime`: callable from inside an
    /// actor framework's runtime, audit C2).
    runtime: BlockingRuntime,
    counters: Counters,
    /// Send `If-Match` with the ETag's quotes stripped: radosgw 16.2 matches
    /// only the bare tag, `object_store`'s in-memory store only the quoted
    /// one; `check_conditions` finds out which this server wants.
    bare_etags: AtomicBool,
}

fn request_error(action: &str, path: &Path, reason: impl std::fmt::Display) -> StoreError {
    StoreError::Engine(KvError::io(
        format!("{action} of object {path}"),
        std::io::Error::other(reason.to_string()),
    ))
}

impl Client {
    pub fn new(store: Arc<dyn ObjectStore>) -> StoreResult<Client> {
        let runtime = BlockingRuntime::start("leasehold-objectstore", 2)?;
        Ok(Client {
            store,
            runtime,
            counters: Counters::default(),
            bare_etags: AtomicBool::new(false),
        })
    }

    fn run<T: Send + 'static>(
        &self,
        request: impl std::future::Future<Output = T> + Send + 'static,
    ) -> StoreResult<T> {
        self.runtime.run(request)
    }

    fn record<T>(
        &self,
        kind: RequestKind,
        started: Instant,
        result: &Result<T, object_store::Error>,
    ) {
        self.counters.latencies[kind as usize].record(started.elapsed());
        let answered = matches!(
            result,
            Ok(_)
                | Err(object_store::Error::NotFound { .. }
                    | object_store::Error::Precondition { .. }
                    | object_store::Error::AlreadyExists { .. })
        );
        if !answered {
            self.counters.failures[kind as usize].fetch_add(1, Ordering::Relaxed);
        }
    }

    /// The object's bytes and version, or `None` when there is none. An
    /// object larger than `OBJECT_SIZE_MAX_BYTES` is refused before its body
    /// is read: nothing the store writes is that large.
    pub fn get(&self, path: &Path) -> StoreResult<Option<(Bytes, ETag)>> {
        let started = Instant::now();
        let (store, owned) = (Arc::clone(&self.store), path.clone());
        let result = self.run(async move {
            let answer = store.get(&owned).await?;
            if answer.meta.size > OBJECT_SIZE_MAX_BYTES {
                return Ok(Err(answer.meta.size));
            }
            let tag = answer.meta.e_tag.clone();
            let bytes = answer.bytes().await?;
            Ok(Ok((bytes, tag)))
        })?;
        let result = match result {
            Ok(Err(size)) => {
                return Err(StoreError::CorruptRecord {
                    key: path.to_string(),
                    reason: format!(
                        "object of {size} bytes is over the {OBJECT_SIZE_MAX_BYTES}-byte limit"
                    ),
                })
            }
            Ok(Ok(read)) => Ok(read),
            Err(err) => Err(err),
        };
        self.record(RequestKind::Get, started, &result);
        match result {
            Ok((bytes, tag)) => {
                self.counters
                    .bytes_received
                    .fetch_add(bytes.len() as u64, Ordering::Relaxed);
                Ok(Some((bytes, ETag::from_server(tag, path)?)))
            }
            Err(object_store::Error::NotFound { .. }) => Ok(None),
            Err(err) => Err(request_error("read", path, err)),
        }
    }

    /// Writes `body` if `condition` holds.
    pub fn put(&self, path: &Path, body: Bytes, condition: &Condition) -> StoreResult<Written> {
        let mode = match condition {
            Condition::Absent => PutMode::Create,
            Condition::Matches(etag) => PutMode::Update(UpdateVersion {
                e_tag: Some(if self.bare_etags.load(Ordering::Relaxed) {
                    etag.0.trim_matches('"').to_owned()
                } else {
                    etag.0.clone()
                }),
                version: None,
            }),
        };
        self.put_with(path, body, mode)
    }

    /// Writes `body` whatever is there (operator tools and test fixtures only:
    /// the store's own writes are all conditional).
    pub fn put_unconditionally(&self, path: &Path, body: Bytes) -> StoreResult<ETag> {
        match self.put_with(path, body, PutMode::Overwrite)? {
            Written::Done(etag) => Ok(etag),
            Written::ConditionFailed => Err(request_error(
                "write",
                path,
                "an unconditional write was refused as a failed condition",
            )),
        }
    }

    fn put_with(&self, path: &Path, body: Bytes, mode: PutMode) -> StoreResult<Written> {
        let len = body.len() as u64;
        self.counters.bytes_sent.fetch_add(len, Ordering::Relaxed);
        let started = Instant::now();
        let options = PutOptions {
            mode,
            ..PutOptions::default()
        };
        let (store, owned) = (Arc::clone(&self.store), path.clone());
        let result = self.run(async move {
            store
                .put_opts(&owned, PutPayload::from_bytes(body), options)
                .await
        })?;
        self.record(RequestKind::Put, started, &result);
        match result {
            Ok(done) => {
                self.counters
                    .bytes_accepted
                    .fetch_add(len, Ordering::Relaxed);
                Ok(Written::Done(ETag::from_server(done.e_tag, path)?))
            }
            Err(
                object_store::Error::Precondition { .. }
                | object_store::Error::AlreadyExists { .. },
            ) => {
                self.counters
                    .conditions_failed
                    .fetch_add(1, Ordering::Relaxed);
                Ok(Written::ConditionFailed)
            }
            Err(err) => Err(request_error("write", path, err)),
        }
    }

    /// Proves on a scratch object at `path` that the server arbitrates
    /// conditional writes — a create-only PUT over an object and an `If-Match`
    /// with a wrong ETag are both refused, a right one is taken — and learns
    /// which form of the ETag it matches. A server that fails this cannot
    /// decide who owns an actor, and the store refuses to open on it.
    pub fn check_conditions(&self, path: &Path) -> StoreResult<()> {
        let refuse = |what: &str| {
            Err(request_error(
                "check conditional writes on",
                path,
                format!("the server {what}; it cannot arbitrate leases"),
            ))
        };
        let first = self.put_unconditionally(path, Bytes::from_static(b"probe 1"))?;
        let result = (|| {
            if self.put(path, Bytes::from_static(b"probe 2"), &Condition::Absent)?
                != Written::ConditionFailed
            {
                return refuse("overwrote an object despite If-None-Match: *");
            }
            let wrong = ETag("\"leasehold-no-such-etag\"".into());
            if self.put(
                path,
                Bytes::from_static(b"probe 3"),
                &Condition::Matches(wrong),
            )? != Written::ConditionFailed
            {
                return refuse("took an If-Match with a wrong ETag");
            }
            for bare in [false, true] {
                self.bare_etags.store(bare, Ordering::Relaxed);
                let body = Bytes::from_static(b"probe 4");
                if let Written::Done(_) =
                    self.put(path, body, &Condition::Matches(first.clone()))?
                {
                    return Ok(());
                }
            }
            refuse("refused an If-Match with the ETag it had just returned, quoted and bare")
        })();
        self.delete(path)?;
        result
    }

    /// Removes the object, unconditionally (used for the store's own health
    /// probe object only).
    pub fn delete(&self, path: &Path) -> StoreResult<()> {
        let started = Instant::now();
        let (store, owned) = (Arc::clone(&self.store), path.clone());
        let result = self.run(async move { store.delete(&owned).await })?;
        self.record(RequestKind::Delete, started, &result);
        match result {
            Ok(()) | Err(object_store::Error::NotFound { .. }) => Ok(()),
            Err(err) => Err(request_error("delete", path, err)),
        }
    }

    /// Every object under `prefix`, in the server's (lexicographic) order.
    pub fn list(&self, prefix: &Path) -> StoreResult<Vec<Path>> {
        Ok(self
            .list_sized(prefix)?
            .into_iter()
            .map(|(path, _)| path)
            .collect())
    }

    /// As `list`, with each object's size in bytes.
    pub fn list_sized(&self, prefix: &Path) -> StoreResult<Vec<(Path, u64)>> {
        let started = Instant::now();
        let (store, owned) = (Arc::clone(&self.store), prefix.clone());
        let result = self.run(async move {
            store
                .list(Some(&owned))
                .map_ok(|meta| (meta.location, meta.size))
                .try_collect::<Vec<(Path, u64)>>()
                .await
        })?;
        self.record(RequestKind::List, started, &result);
        result.map_err(|err| request_error("list", prefix, err))
    }

    pub fn stats(&self) -> ClientStats {
        let requests = RequestKind::ALL
            .iter()
            .filter_map(|&kind| {
                let histogram = &self.counters.latencies[kind as usize];
                (histogram.count() > 0).then(|| RequestStats {
                    kind,
                    count: histogram.count(),
                    failures: self.counters.failures[kind as usize].load(Ordering::Relaxed),
                    p50: histogram.quantile(0.50),
                    p99: histogram.quantile(0.99),
                    max: histogram.max(),
                })
            })
            .collect();
        ClientStats {
            requests,
            bytes_sent: self.counters.bytes_sent.load(Ordering::Relaxed),
            bytes_accepted: self.counters.bytes_accepted.load(Ordering::Relaxed),
            bytes_received: self.counters.bytes_received.load(Ordering::Relaxed),
            conditions_failed: self.counters.conditions_failed.load(Ordering::Relaxed),
        }
    }
}
