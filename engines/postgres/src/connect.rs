//! Connections: the config section to a `tokio_postgres::Config`, TLS, and
//! the pool of connections the store's operations borrow.
//!
//! Each connection is set up once — `synchronous_commit` for the store's
//! durability, `statement_timeout`, the search path — and keeps its prepared
//! statements (`Conn::prepared`), so an operation's statements cost one
//! round trip each, not two. A connection that failed is dropped, never
//! handed out again; the next borrower opens a fresh one.

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

use crate::config::{PostgresConfig, SslMode};
use leasehold_core::blocking::BlockingRuntime;
use leasehold_core::{Durability, KvError, StoreError, StoreResult};
use parking_lot::{Condvar, Mutex};
use tokio_postgres::Statement;

/// An error of the connection layer, as a store error.
pub(crate) fn connection_error(context: &str, reason: impl std::fmt::Display) -> StoreError {
    StoreError::Engine(KvError::io(
        context.to_owned(),
        std::io::Error::other(reason.to_string()),
    ))
}

/// The client library's settings for `config`. The password goes only here.
pub(crate) fn client_config(config: &PostgresConfig) -> StoreResult<tokio_postgres::Config> {
    let mut client = match &config.url {
        Some(url) => url
            .expose()
            .parse::<tokio_postgres::Config>()
            .map_err(|err| {
                // The URL stays out of the message: it may hold a password.
                StoreError::InvalidArgument(format!(
                    "[persistence.postgres] url does not parse: {err}"
                ))
            })?,
        None => {
            let mut client = tokio_postgres::Config::new();
            if let Some(host) = &config.host {
                client.host(host);
            }
            if let Some(user) = &config.user {
                client.user(user);
            }
            if let Some(dbname) = &config.dbname {
                client.dbname(dbname);
            }
            if let Some(password) = &config.password {
                client.password(password.expose());
            }
            client
        }
    };
    if let Some(port) = config.port {
        client.port(port);
    }
    client.ssl_mode(match ssl_mode(config, &client) {
        SslMode::Disable => tokio_postgres::config::SslMode::Disable,
        SslMode::Prefer => tokio_postgres::config::SslMode::Prefer,
        SslMode::Require => tokio_postgres::config::SslMode::Require,
    });
    client
        .connect_timeout(Duration::from_secs(config.connect_timeout_seconds))
        .application_name("leasehold");
    Ok(client)
}

/// The configured `sslmode`; unset, `disable` when every host is a unix
/// socket or this machine (TLS to oneself protects nothing, and a test
/// server's certificate is rarely signed by a system root), else `prefer`.
pub(crate) fn ssl_mode(config: &PostgresConfig, client: &tokio_postgres::Config) -> SslMode {
    if let Some(mode) = config.sslmode {
        return mode;
    }
    let local = client.get_hosts().iter().all(|host| match host {
        tokio_postgres::config::Host::Tcp(name) => {
            name == "localhost"
                || name
                    .parse::<std::net::IpAddr>()
                    .is_ok_and(|address| address.is_loopback())
        }
        #[cfg(unix)]
        tokio_postgres::config::Host::Unix(_) => true,
    });
    if local {
        SslMode::Disable
    } else {
        SslMode::Prefer
    }
}

/// The TLS connector: the system's roots, or the configured CA file; the
/// server's certificate is always checked.
pub(crate) fn tls(
    config: &PostgresConfig,
) -> StoreResult<tokio_postgres_rustls::MakeRustlsConnect> {
    use rustls::pki_types::pem::PemObject;
    use rustls::pki_types::CertificateDer;
    let mut roots = rustls::RootCertStore::empty();
    match &config.sslrootcert {
        Some(path) => {
            let certificates = CertificateDer::pem_file_iter(path)
                .map_err(|err| {
                    StoreError::InvalidArgument(format!("sslrootcert {}: {err}", path.display()))
                })?
                .collect::<Result<Vec<_>, _>>()
                .map_err(|err| {
                    StoreError::InvalidArgument(format!("sslrootcert {}: {err}", path.display()))
                })?;
            let (added, _) = roots.add_parsable_certificates(certificates);
            if added == 0 {
                return Err(StoreError::InvalidArgument(format!(
                    "sslrootcert {} holds no usable certificate",
                    path.display()
                )));
            }
        }
        None => {
            let found = rustls_native_certs::load_native_certs();
            roots.add_parsable_certificates(found.certs);
        }
    }
    let provider = Arc::new(rustls::crypto::aws_lc_rs::default_provider());
    let tls = rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(|err| connection_error("set up TLS", err))?
        .with_root_certificates(roots)
        .with_no_client_auth();
    Ok(tokio_postgres_rustls::MakeRustlsConnect::new(tls))
}

/// What every connection of the pool is set to before first use.
fn session_setup(config: &PostgresConfig, durability: Durability) -> String {
    // Sync: the commit waits for the WAL flush. Group and Buffered: the
    // commit is acknowledged before it, and the server's WAL writer flushes
    // within 3 × wal_writer_delay (PostgreSQL's documented bound).
    let synchronous_commit = match durability {
        Durability::Sync => "on",
        Durability::Group | Durability::Buffered => "off",
    };
    format!(
        "SET synchronous_commit = {synchronous_commit}; SET statement_timeout = {}; \
         SET search_path = \"{}\"; SET lock_timeout = 0",
        config.statement_timeout_ms, config.schema
    )
}

/// One open connection with its prepared statements.
pub(crate) struct Conn {
    pub client: tokio_postgres::Client,
    statements: tokio::sync::Mutex<HashMap<String, Statement>>,
    /// A rollback failed: the session's state is unknown, never lend it again.
    broken: AtomicBool,
}

impl Conn {
    pub fn mark_broken(&self) {
        self.broken.store(true, Ordering::Relaxed);
    }

    fn usable(&self) -> bool {
        !self.client.is_closed() && !self.broken.load(Ordering::Relaxed)
    }

    /// `sql`, prepared on this connection the first time it is asked for.
    pub async fn prepared(&self, sql: &str) -> Result<Statement, tokio_postgres::Error> {
        let mut statements = self.statements.lock().await;
        if let Some(statement) = statements.get(sql) {
            return Ok(statement.clone());
        }
        let statement = self.client.prepare(sql).await?;
        statements.insert(sql.to_owned(), statement.clone());
        Ok(statement)
    }
}

struct Slots {
    idle: Vec<Arc<Conn>>,
    /// Connections open or being opened, idle or lent.
    open: usize,
}

/// Up to `size` connections, lent one per operation.
pub(crate) struct Pool {
    runtime: Arc<BlockingRuntime>,
    client: tokio_postgres::Config,
    tls: tokio_postgres_rustls::MakeRustlsConnect,
    setup: String,
    size: usize,
    slots: Mutex<Slots>,
    returned: Condvar,
}

/// A connection lent by the pool; back to it when dropped, unless `broken`.
pub(crate) struct Lent<'a> {
    pool: &'a Pool,
    conn: Option<Arc<Conn>>,
}

impl Lent<'_> {
    pub fn conn(&self) -> Arc<Conn> {
        // Present from `borrow` until `drop`.
        self.conn
            .clone()
            .unwrap_or_else(|| unreachable!("a lent connection"))
    }
}

impl Drop for Lent<'_> {
    fn drop(&mut self) {
        let mut slots = self.pool.slots.lock();
        match self.conn.take() {
            Some(conn) if conn.usable() => slots.idle.push(conn),
            _ => slots.open -= 1,
        }
        drop(slots);
        self.pool.returned.notify_one();
    }
}

impl Pool {
    pub fn new(
        runtime: Arc<BlockingRuntime>,
        config: &PostgresConfig,
        durability: Durability,
    ) -> StoreResult<Pool> {
        Ok(Pool {
            runtime,
            client: client_config(config)?,
            tls: tls(config)?,
            setup: session_setup(config, durability),
            size: config.pool_size as usize,
            slots: Mutex::new(Slots {
                idle: Vec::new(),
                open: 0,
            }),
            returned: Condvar::new(),
        })
    }

    /// An idle connection, a new one while the pool has room, or the next
    /// one returned.
    pub fn borrow(&self) -> StoreResult<Lent<'_>> {
        let mut slots = self.slots.lock();
        loop {
            if let Some(conn) = slots.idle.pop() {
                return Ok(Lent {
                    pool: self,
                    conn: Some(conn),
                });
            }
            if slots.open < self.size {
                slots.open += 1;
                drop(slots);
                let mut lent = Lent {
                    pool: self,
                    conn: None,
                };
                // On failure `lent` drops with no connection: the slot frees.
                lent.conn = Some(self.connect()?);
                return Ok(lent);
            }
            self.returned.wait(&mut slots);
        }
    }

    fn connect(&self) -> StoreResult<Arc<Conn>> {
        let (client, tls, setup) = (self.client.clone(), self.tls.clone(), self.setup.clone());
        let runtime = Arc::clone(&self.runtime);
        self.runtime
            .run(async move {
                let (client, connection) = client.connect(tls).await?;
                // The connection's driver: it ends when the client is dropped
                // or the server goes away (the client then reports closed).
                runtime.spawn(async move {
                    let _ = connection.await;
                });
                client.batch_execute(&setup).await?;
                Ok::<_, tokio_postgres::Error>(Arc::new(Conn {
                    client,
                    statements: tokio::sync::Mutex::new(HashMap::new()),
                    broken: AtomicBool::new(false),
                }))
            })?
            .map_err(|err| connection_error("connect to PostgreSQL", describe(&err)))
    }

    /// The connections not lent now (for statements every session must run).
    pub fn idle_connections(&self) -> Vec<Arc<Conn>> {
        self.slots.lock().idle.clone()
    }

    /// Drops every idle connection (the lent ones close when returned).
    pub fn close(&self) {
        let mut slots = self.slots.lock();
        let idle = slots.idle.len();
        slots.idle.clear();
        slots.open -= idle;
    }

    pub fn runtime(&self) -> &BlockingRuntime {
        &self.runtime
    }
}

/// A client-library error with the server's message and SQLSTATE, when it
/// has them (the library's `Display` says only "db error").
pub(crate) fn describe(err: &tokio_postgres::Error) -> String {
    match err.as_db_error() {
        Some(db) => format!(
            "{}: {} (SQLSTATE {})",
            db.severity(),
            db.message(),
            db.code().code()
        ),
        None => match std::error::Error::source(err) {
            Some(source) => format!("{err}: {source}"),
            None => err.to_string(),
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use leasehold_core::secret::Secret;

    #[test]
    fn tls_defaults_to_off_only_for_this_machine() {
        let mode = |host: &str, set: Option<SslMode>| {
            let mut config = PostgresConfig::new(host, 5432, "u", Secret::new("p"), "d");
            config.sslmode = set;
            ssl_mode(&config, &client_config(&config).unwrap())
        };
        assert_eq!(mode("127.0.0.1", None), SslMode::Disable);
        assert_eq!(mode("localhost", None), SslMode::Disable);
        assert_eq!(mode("/var/run/postgresql", None), SslMode::Disable);
        assert_eq!(mode("db.example.com", None), SslMode::Prefer);
        assert_eq!(mode("127.0.0.1", Some(SslMode::Require)), SslMode::Require);
    }
}
