//! What can go wrong in the harness, by kind, each carrying its cause.
//!
//! A command fails for one of a few reasons a caller may want to tell apart:
//! the arguments make no sense ([`Error::Usage`]), a file could not be read or
//! written or does not hold what it should ([`Error::File`],
//! [`Error::Parse`]), an engine would not open or failed under a run
//! ([`Error::Open`], [`Error::Store`], [`Error::Engine`]), this machine lacks
//! what a run needs ([`Error::Machine`]), a child or a thread of the run died
//! ([`Error::Child`], [`Error::Thread`]), or the run worked and its check found
//! the engine wrong ([`Error::Wrong`], [`Error::Violation`],
//! [`Error::NotCaught`]). As everywhere in the project, each message includes
//! its cause's, so `leasehold: {error}` is the whole story; the cause is also
//! kept typed, for [`std::error::Error::source`].

use std::path::{Path, PathBuf};
use std::time::Duration;

use leasehold_core::{KvError, StoreError};
use leasehold_workloads::jsonl::JsonlError;
use leasehold_workloads::{ScenarioError, TraceError};

/// Any error a caller gets back from an engine's opener, kept typed.
pub type Cause = Box<dyn std::error::Error + Send + Sync>;

pub type Result<T, E = Error> = std::result::Result<T, E>;

#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// Arguments or options the harness refuses: an unknown name, a value
    /// out of range, options that do not go together.
    #[error("{0}")]
    Usage(String),
    /// A file or directory that could not be read, written or created.
    #[error("{}: {source}", path.display())]
    File {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    /// A file that does not hold what it should (`what`: "a crash case",
    /// "a run result", …).
    #[error("{} is not {what}: {source}", path.display())]
    Parse {
        path: PathBuf,
        what: &'static str,
        #[source]
        source: serde_json::Error,
    },
    /// A result the harness could not encode as JSON.
    #[error("cannot encode JSON: {0}")]
    Encode(#[from] serde_json::Error),
    /// The seed's TOML.
    #[error(transparent)]
    Config(#[from] leasehold_config::ConfigError),
    /// A scenario that is unknown or malformed.
    #[error(transparent)]
    Scenario(#[from] ScenarioError),
    /// A trace file that cannot be read or written.
    #[error(transparent)]
    Trace(#[from] TraceError),
    /// A user's JSONL trace that cannot be converted.
    #[error(transparent)]
    Jsonl(#[from] JsonlError),
    /// An engine that would not open (`engine`: its name).
    #[error("{engine}: {source}")]
    Open {
        engine: String,
        #[source]
        source: Cause,
    },
    /// A store call that failed during a run or a command.
    #[error(transparent)]
    Store(#[from] StoreError),
    /// An engine call that failed during a run or a command.
    #[error(transparent)]
    Engine(#[from] KvError),
    /// What this machine lacks for the run asked for (a cgroup memory
    /// controller, root, a server), or an operating-system call that failed.
    #[error("{what}{}", cause_text(source.as_ref()))]
    Machine {
        what: String,
        #[source]
        source: Option<std::io::Error>,
    },
    /// A child process of the run (a budgeted replay) that failed.
    #[error("{0}")]
    Child(String),
    /// A thread or a task of the run that panicked or stopped early.
    #[error("{0}")]
    Thread(String),
    /// An operation that lost a race to other threads every time it tried
    /// and gave up (a benchmark's save under heavy contention).
    #[error("{0}")]
    Starved(String),
    /// The run worked and its check found wrong answers: reads that disagree
    /// with the reference, a store that lost what it acknowledged.
    #[error("{0}")]
    Wrong(String),
    /// The crash campaign found a case that breaks the engine's promise (the
    /// message says how to rerun it).
    #[error("{0}")]
    Violation(String),
    /// What the harness was doing when `source` happened ("close results/data/x",
    /// "lsm/sync in a 384MiB cgroup").
    #[error("{what}: {source}")]
    During {
        what: String,
        #[source]
        source: Box<Error>,
    },
    /// A planted bug that no case caught in the time given.
    #[error("planted {bug} NOT caught by {cases} cases ({mode} mode) in {elapsed:.0?}")]
    NotCaught {
        bug: String,
        cases: u64,
        mode: String,
        elapsed: Duration,
    },
}

fn cause_text(source: Option<&std::io::Error>) -> String {
    source.map_or(String::new(), |err| format!(": {err}"))
}

impl Error {
    /// For `map_err`: an I/O error on `path`.
    pub fn file(path: &Path) -> impl FnOnce(std::io::Error) -> Error + '_ {
        move |source| Error::File {
            path: path.to_path_buf(),
            source,
        }
    }

    /// For `map_err`: `path` does not hold `what`.
    pub fn parse<'a>(
        path: &'a Path,
        what: &'static str,
    ) -> impl FnOnce(serde_json::Error) -> Error + 'a {
        move |source| Error::Parse {
            path: path.to_path_buf(),
            what,
            source,
        }
    }

    /// For `map_err`: the engine `engine` would not open.
    pub fn open<E>(engine: &str) -> impl FnOnce(E) -> Error + '_
    where
        E: std::error::Error + Send + Sync + 'static,
    {
        move |source| Error::Open {
            engine: engine.to_owned(),
            source: Box::new(source),
        }
    }

    /// For `map_err`: an operating-system call (`what`) that failed.
    pub fn os(what: impl Into<String>) -> impl FnOnce(std::io::Error) -> Error {
        let what = what.into();
        move |source| Error::Machine {
            what,
            source: Some(source),
        }
    }

    /// What this machine lacks, with no cause below it.
    pub fn machine(what: impl Into<String>) -> Error {
        Error::Machine {
            what: what.into(),
            source: None,
        }
    }

    pub fn usage(message: impl Into<String>) -> Error {
        Error::Usage(message.into())
    }
}

/// `result.with_context(|| …)`: names what the harness was doing when an
/// error came up, keeping the error itself as the cause.
pub trait Context<T> {
    fn with_context(self, what: impl FnOnce() -> String) -> Result<T>;
}

impl<T, E: Into<Error>> Context<T> for std::result::Result<T, E> {
    fn with_context(self, what: impl FnOnce() -> String) -> Result<T> {
        self.map_err(|err| Error::During {
            what: what(),
            source: Box::new(err.into()),
        })
    }
}
