//! Opening the database: driver detection, the SQLite file lock, the writer and reader
//! pools, the PostgreSQL schema, and migrations.

use std::fs::{File, TryLockError};
use std::path::{Path, PathBuf};
use std::str::FromStr;
use std::sync::Arc;
use std::time::Duration;

use chrono::{DateTime, SubsecRound, Utc};
use discobot_migrations::{Migrator, MigratorTrait};
use sea_orm::sqlx::ConnectOptions as _;
use sea_orm::sqlx::sqlite::{
    SqliteConnectOptions, SqliteJournalMode, SqlitePoolOptions, SqliteSynchronous,
};
use sea_orm::{
    ConnectOptions, ConnectionTrait, Database, DatabaseConnection, DbBackend, SqlxSqliteConnector,
    Statement, TransactionTrait,
};

use crate::error::{DbResultExt, StoreError};

/// How long SQLite waits for a lock held by another connection before failing.
const SQLITE_BUSY_TIMEOUT: Duration = Duration::from_millis(5000);
/// Connections of the SQLite reader pool.
const SQLITE_READERS: u32 = 3;

/// Where the database is and how many connections to use.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct StoreConfig {
    /// `postgres://…`/`postgresql://…`, `sqlite://<path>`, `sqlite3://<path>`,
    /// `sqlite::memory:`, or a bare path ending in `.db` or `.sqlite`.
    pub database_url: String,
    /// Size of the PostgreSQL pool (SQLite always uses one writer and three readers).
    pub max_connections: u32,
    /// PostgreSQL only: the schema to use (created when missing), instead of the role's
    /// default search path. Tests use a fresh schema each.
    pub pg_schema: Option<String>,
}

impl StoreConfig {
    pub fn new(database_url: impl Into<String>) -> Self {
        StoreConfig {
            database_url: database_url.into(),
            max_connections: 10,
            pg_schema: None,
        }
    }
}

/// Which database engine a store talks to.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Backend {
    Sqlite,
    Postgres,
}

/// The database: implements every repository port of `discobot_core`.
///
/// Reads go to the reader pool, writes and transactions to the writer. On SQLite the writer
/// is a single connection, which serialises all writes of this process; the file lock
/// keeps other processes out. On PostgreSQL both are the same pool.
#[derive(Clone)]
pub struct Store {
    pub(crate) writer: DatabaseConnection,
    pub(crate) reader: DatabaseConnection,
    pub(crate) backend: Backend,
    /// Holds the exclusive lock on `<dbfile>.lock` for as long as any clone lives.
    _lock: Option<Arc<File>>,
}

impl std::fmt::Debug for Store {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Store")
            .field("backend", &self.backend)
            .finish_non_exhaustive()
    }
}

/// The parsed form of a database URL.
enum Target {
    Postgres(String),
    SqliteFile(PathBuf, SqliteConnectOptions),
    SqliteMemory(SqliteConnectOptions),
}

impl Store {
    /// Opens the database, locks it (SQLite) and brings its schema up to date.
    pub async fn connect(config: StoreConfig) -> Result<Store, StoreError> {
        match parse_url(&config.database_url)? {
            Target::Postgres(url) => connect_postgres(&url, &config).await,
            Target::SqliteFile(path, options) => connect_sqlite_file(&path, options).await,
            Target::SqliteMemory(options) => connect_sqlite_memory(options).await,
        }
    }

    /// `connect` on a PostgreSQL schema of its own (created when missing).
    pub async fn connect_with_schema(
        database_url: &str,
        schema: &str,
    ) -> Result<Store, StoreError> {
        let mut config = StoreConfig::new(database_url);
        config.pg_schema = Some(schema.to_owned());
        Store::connect(config).await
    }

    /// `"sqlite"` or `"postgres"`.
    pub fn backend(&self) -> &'static str {
        match self.backend {
            Backend::Sqlite => "sqlite",
            Backend::Postgres => "postgres",
        }
    }

    /// Whether this process is the only one using the database (SQLite, whose file it has
    /// locked); several server replicas can share a PostgreSQL database.
    pub fn is_single_process(&self) -> bool {
        self.backend == Backend::Sqlite
    }

    /// Closes the pools and releases the SQLite file lock, even while other clones (held by
    /// tasks that are still winding down) exist: a restarted server must not find the file
    /// locked by its own predecessor. Later use of any clone fails with a database error.
    pub async fn close(&self) -> Result<(), StoreError> {
        if self.backend == Backend::Sqlite {
            self.reader.close_by_ref().await.db()?;
        }
        let closed = self.writer.close_by_ref().await.db();
        if let Some(lock) = &self._lock {
            // Closing a file descriptor would also release it, but the Arc may outlive us.
            let _ = lock.unlock();
        }
        closed
    }

    pub(crate) fn db_backend(&self) -> DbBackend {
        match self.backend {
            Backend::Sqlite => DbBackend::Sqlite,
            Backend::Postgres => DbBackend::Postgres,
        }
    }

    /// A raw statement for this backend; placeholders are `$1`, `$2`, … on both.
    pub(crate) fn statement(
        &self,
        sql: impl Into<String>,
        values: impl IntoIterator<Item = sea_orm::Value>,
    ) -> Statement {
        Statement::from_sql_and_values(self.db_backend(), sql, values)
    }
}

/// Timestamps are kept to microseconds, PostgreSQL's precision, so that both backends store
/// and compare the same instants.
pub(crate) fn ts(at: DateTime<Utc>) -> DateTime<Utc> {
    at.trunc_subsecs(6)
}

fn parse_url(raw: &str) -> Result<Target, StoreError> {
    let url = raw.trim();
    if url.starts_with("postgres://") || url.starts_with("postgresql://") {
        return Ok(Target::Postgres(url.to_owned()));
    }
    let url = match url.strip_prefix("sqlite3://") {
        Some(rest) => format!("sqlite://{rest}"),
        None => url.to_owned(),
    };
    if url.starts_with("sqlite:") {
        let options = SqliteConnectOptions::from_str(&url)
            .map_err(|e| StoreError::other(format!("invalid SQLite URL {raw:?}: {e}")))?;
        let in_memory = url.contains(":memory:") || url.contains("mode=memory");
        if in_memory {
            return Ok(Target::SqliteMemory(options));
        }
        let path = options.get_filename().to_path_buf();
        if path.as_os_str().is_empty() {
            return Err(StoreError::other(format!(
                "SQLite URL {raw:?} names no file"
            )));
        }
        return Ok(Target::SqliteFile(path, options));
    }
    if url.ends_with(".db") || url.ends_with(".sqlite") {
        let path = PathBuf::from(&url);
        return Ok(Target::SqliteFile(
            path.clone(),
            SqliteConnectOptions::new().filename(path),
        ));
    }
    Err(StoreError::other(format!(
        "unsupported database URL {raw:?}: use postgres://…, sqlite://<path> or a path ending in .db"
    )))
}

/// The pragmas every SQLite connection gets.
fn sqlite_common(options: SqliteConnectOptions) -> SqliteConnectOptions {
    options
        .busy_timeout(SQLITE_BUSY_TIMEOUT)
        .foreign_keys(true)
        .synchronous(SqliteSynchronous::Normal)
        // 1 MiB of page cache per connection instead of 2: the working set of one machine's
        // sessions is small, and idle memory is a target (`cargo xtask bench api`).
        .pragma("cache_size", "-1024")
        .disable_statement_logging()
}

/// A pool whose connections live as long as the pool (no idle or age limit).
fn sqlite_pool(max: u32) -> SqlitePoolOptions {
    SqlitePoolOptions::new()
        .max_connections(max)
        .min_connections(1)
        .idle_timeout(None)
        .max_lifetime(None)
        .acquire_timeout(Duration::from_secs(60))
}

fn lock_file_path(db: &Path) -> PathBuf {
    let mut name = db.as_os_str().to_owned();
    name.push(".lock");
    PathBuf::from(name)
}

/// Takes the exclusive lock that keeps a second server process off this database file.
fn lock_database(db: &Path) -> Result<File, StoreError> {
    let lock_path = lock_file_path(db);
    let file = File::options()
        .create(true)
        .truncate(false)
        .write(true)
        .open(&lock_path)
        .map_err(|e| {
            StoreError::other(format!(
                "cannot open lock file {}: {e}",
                lock_path.display()
            ))
        })?;
    match file.try_lock() {
        Ok(()) => Ok(file),
        Err(TryLockError::WouldBlock) => Err(StoreError::Locked(format!(
            "database {} is already in use by another discobot-server process (lock file {}); \
             stop it or use a different DISCOBOT_DATA_DIR",
            db.display(),
            lock_path.display()
        ))),
        Err(TryLockError::Error(e)) => Err(StoreError::other(format!(
            "cannot lock {}: {e}",
            lock_path.display()
        ))),
    }
}

async fn connect_sqlite_file(
    path: &Path,
    options: SqliteConnectOptions,
) -> Result<Store, StoreError> {
    if let Some(parent) = path.parent().filter(|p| !p.as_os_str().is_empty()) {
        std::fs::create_dir_all(parent).map_err(|e| {
            StoreError::other(format!("cannot create directory {}: {e}", parent.display()))
        })?;
    }
    let lock = lock_database(path)?;

    let writer_options = sqlite_common(options.clone())
        .read_only(false)
        .create_if_missing(true)
        .journal_mode(SqliteJournalMode::Wal);
    let writer = sqlite_pool(1)
        .connect_with(writer_options)
        .await
        .map_err(|e| StoreError::other(format!("cannot open {}: {e}", path.display())))?;
    let writer = SqlxSqliteConnector::from_sqlx_sqlite_pool(writer);
    migrate(&writer, Backend::Sqlite).await?;

    // WAL is a property of the file, switched on by the writer above; asking for it again
    // from a read-only connection is a no-op that confirms it.
    let reader_options = sqlite_common(options)
        .read_only(true)
        .journal_mode(SqliteJournalMode::Wal)
        .pragma("query_only", "ON");
    let reader = sqlite_pool(SQLITE_READERS)
        .connect_with(reader_options)
        .await
        .map_err(|e| {
            StoreError::other(format!("cannot open {} for reading: {e}", path.display()))
        })?;
    let reader = SqlxSqliteConnector::from_sqlx_sqlite_pool(reader);

    tracing::info!(path = %path.display(), "opened SQLite database");
    Ok(Store {
        writer,
        reader,
        backend: Backend::Sqlite,
        _lock: Some(Arc::new(lock)),
    })
}

async fn connect_sqlite_memory(options: SqliteConnectOptions) -> Result<Store, StoreError> {
    // One connection for everything: the database lives exactly as long as it does.
    let pool = sqlite_pool(1)
        .connect_with(sqlite_common(options))
        .await
        .map_err(|e| StoreError::other(format!("cannot open in-memory SQLite: {e}")))?;
    let conn = SqlxSqliteConnector::from_sqlx_sqlite_pool(pool);
    migrate(&conn, Backend::Sqlite).await?;
    Ok(Store {
        writer: conn.clone(),
        reader: conn,
        backend: Backend::Sqlite,
        _lock: None,
    })
}

fn quote_ident(name: &str) -> Result<String, StoreError> {
    if name.is_empty() || name.contains('"') || name.contains('\0') {
        return Err(StoreError::other(format!(
            "invalid PostgreSQL schema name {name:?}"
        )));
    }
    Ok(format!("\"{name}\""))
}

async fn connect_postgres(url: &str, config: &StoreConfig) -> Result<Store, StoreError> {
    let connect_error =
        |e: sea_orm::DbErr| StoreError::other(format!("cannot connect to PostgreSQL: {e}"));
    if let Some(schema) = &config.pg_schema {
        let quoted = quote_ident(schema)?;
        let mut options = ConnectOptions::new(url);
        options.max_connections(1).sqlx_logging(false);
        let admin = Database::connect(options).await.map_err(connect_error)?;
        let created = admin
            .execute_unprepared(&format!("CREATE SCHEMA IF NOT EXISTS {quoted}"))
            .await
            .db();
        admin.close().await.db()?;
        match created {
            // Two replicas creating it at once: one wins, the other sees a clash.
            Ok(_) | Err(StoreError::Conflict(_)) => {}
            Err(e) => return Err(e),
        }
    }
    let mut options = ConnectOptions::new(url);
    options
        .max_connections(config.max_connections.max(1))
        .acquire_timeout(Duration::from_secs(30))
        .sqlx_logging(false);
    if let Some(schema) = &config.pg_schema {
        options.set_schema_search_path(quote_ident(schema)?);
    }
    let pool = Database::connect(options).await.map_err(connect_error)?;
    migrate(&pool, Backend::Postgres).await?;
    tracing::info!("connected to PostgreSQL");
    Ok(Store {
        writer: pool.clone(),
        reader: pool,
        backend: Backend::Postgres,
        _lock: None,
    })
}

/// Runs pending migrations. On PostgreSQL replicas starting together take turns through an
/// advisory lock held by the migration transaction.
async fn migrate(conn: &DatabaseConnection, backend: Backend) -> Result<(), StoreError> {
    let failed = |e: sea_orm::DbErr| StoreError::other(format!("database migration failed: {e}"));
    match backend {
        Backend::Sqlite => Migrator::up(conn, None).await.map_err(failed),
        Backend::Postgres => {
            let txn = conn.begin().await.db()?;
            txn.execute_unprepared(
                "SELECT pg_advisory_xact_lock(hashtext('discobot-migrations:' || current_schema()))",
            )
            .await
            .db()?;
            Migrator::up(&txn, None).await.map_err(failed)?;
            txn.commit().await.db()
        }
    }
}
