//! Durable connector state in Postgres (production) or an embedded SQLite
//! file (the default). One implementation serves both through sqlx's `Any`
//! driver, so the two cannot drift apart; only the migrations are written
//! per dialect.

mod change;
mod connectors;
mod feed;
mod keys;
mod nodes;
mod record;

pub use change::Changed;
pub use change::NOTIFY_CHANNEL;
pub use feed::{ChangedIds, FeedPosition};
pub use keys::KeyRecord;
pub use nodes::{NodeRecord, Rejection};
pub use record::{ConnectorRecord, ConnectorStatus, ListFilter, NewConnector};

use sqlx::any::{AnyPoolOptions, install_default_drivers};
use sqlx::{AnyPool, Executor};

/// Which database a store runs on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Backend {
    /// PostgreSQL: shared by every control-plane replica.
    Postgres,
    /// SQLite: one file, one process.
    Sqlite,
}

impl Backend {
    /// The backend a database URL names.
    pub fn of_url(url: &str) -> Result<Self, StoreError> {
        if url.starts_with("postgres://") || url.starts_with("postgresql://") {
            Ok(Self::Postgres)
        } else if url.starts_with("sqlite:") {
            Ok(Self::Sqlite)
        } else {
            Err(StoreError::UnsupportedUrl)
        }
    }
}

/// What can go wrong in the store.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// The URL names neither Postgres nor SQLite.
    #[error("the database URL must start with postgres:// or sqlite:")]
    UnsupportedUrl,
    /// No connector with this id.
    #[error("connector {0} not found")]
    NotFound(String),
    /// No API key with this id.
    #[error("API key {0} not found")]
    KeyNotFound(String),
    /// The workspace (or, for operator keys, the deployment) has as many
    /// valid keys as allowed.
    #[error("too many valid API keys")]
    TooManyKeys {
        /// The scope's workspace; `None` for operator keys.
        scope_workspace: Option<String>,
        /// The limit.
        limit: u32,
    },
    /// The connector changed since the caller read it.
    #[error("connector {id} is at version {current}, not {expected}")]
    VersionMismatch {
        /// The connector.
        id: String,
        /// The version the caller based its change on.
        expected: i64,
        /// The version stored now.
        current: i64,
    },
    /// A stored value could not be decoded.
    #[error("stored connector {id} is corrupt: {reason}")]
    Corrupt {
        /// The connector.
        id: String,
        /// What is wrong.
        reason: String,
    },
    /// Migrations failed.
    #[error("database migration failed: {0}")]
    Migrate(#[from] sqlx::migrate::MigrateError),
    /// The database failed or could not be reached.
    #[error("database error: {0}")]
    Database(#[from] sqlx::Error),
}

impl StoreError {
    /// Whether the database could not be reached (as opposed to a bug or a
    /// bad row): callers may retry.
    pub fn is_unavailable(&self) -> bool {
        matches!(
            self,
            Self::Database(
                sqlx::Error::PoolTimedOut | sqlx::Error::Io(_) | sqlx::Error::PoolClosed
            )
        )
    }
}

/// The connector store.
#[derive(Debug, Clone)]
pub struct Store {
    pool: AnyPool,
    backend: Backend,
    /// Latest version committed through this handle (see [`Store::local_commits`]).
    committed: std::sync::Arc<tokio::sync::watch::Sender<u64>>,
}

/// Longest wait for a database connection.
const ACQUIRE_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(3);

impl Store {
    /// Connects and brings the schema up to date.
    pub async fn connect(url: &str, max_connections: u32) -> Result<Self, StoreError> {
        let backend = Backend::of_url(url)?;
        install_default_drivers();
        let pool = AnyPoolOptions::new()
            .max_connections(max_connections.max(1))
            // A database that is down fails a call in seconds, so the
            // feed can serve from memory and callers hear about it.
            .acquire_timeout(ACQUIRE_TIMEOUT)
            .connect(url)
            .await?;
        if backend == Backend::Sqlite {
            // Readers never wait for the writer; the setting is kept in the file.
            pool.execute("PRAGMA journal_mode = WAL").await?;
        }
        match backend {
            Backend::Postgres => sqlx::migrate!("./migrations/postgres").run(&pool).await?,
            Backend::Sqlite => sqlx::migrate!("./migrations/sqlite").run(&pool).await?,
        }
        let (committed, _) = tokio::sync::watch::channel(0);
        let store = Self {
            pool,
            backend,
            committed: std::sync::Arc::new(committed),
        };
        let position = store.feed_position().await?;
        store.committed.send_replace(position.version);
        Ok(store)
    }

    /// The database this store runs on.
    pub fn backend(&self) -> Backend {
        self.backend
    }

    /// Closes every connection.
    pub async fn close(&self) {
        self.pool.close().await;
    }
}
