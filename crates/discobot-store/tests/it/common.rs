//! The test harness: runs each test on a temporary SQLite file and on a fresh PostgreSQL
//! schema, plus small builders for domain records.

use std::future::Future;
use std::path::PathBuf;
use std::pin::Pin;

use chrono::{DateTime, SubsecRound, Utc};
use discobot_core::ids::{ProjectId, SessionId, UserId, WorkspaceId};
use discobot_core::model::{Session, SessionStatus, SourceType, User, Workspace, WorkspaceStatus};
use discobot_store::{Store, StoreConfig};
use sea_orm::{ConnectionTrait, Database};

/// Generates `<name>::sqlite` and `<name>::postgres` tests running `async fn name(Ctx)`.
#[macro_export]
macro_rules! store_test {
    ($($name:ident),+ $(,)?) => {$(
        mod $name {
            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn sqlite() {
                $crate::common::run_sqlite(|ctx| Box::pin(super::$name(ctx))).await;
            }

            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn postgres() {
                $crate::common::run_postgres(|ctx| Box::pin(super::$name(ctx))).await;
            }
        }
    )+};
}

pub type TestFuture = Pin<Box<dyn Future<Output = ()> + Send>>;

/// What a test gets: its store, and a way to open a second one on the same database (a
/// second replica on PostgreSQL; another handle of the same process on SQLite).
pub struct Ctx {
    pub store: Store,
    second: Second,
}

enum Second {
    /// SQLite: the file is locked by `store`, so "another store" is a clone of it.
    SameProcess {
        path: PathBuf,
    },
    Postgres {
        url: String,
        schema: String,
    },
}

impl Ctx {
    pub async fn second_store(&self) -> Store {
        match &self.second {
            Second::SameProcess { .. } => self.store.clone(),
            Second::Postgres { url, schema } => Store::connect_with_schema(url, schema)
                .await
                .expect("second store connects"),
        }
    }
}

impl Ctx {
    /// A plain connection to the same database, bypassing the store, to look at rows as
    /// they are stored.
    pub async fn raw_connection(&self) -> sea_orm::DatabaseConnection {
        match &self.second {
            Second::SameProcess { path } => {
                Database::connect(format!("sqlite://{}?mode=ro", path.display()))
                    .await
                    .expect("raw SQLite connection")
            }
            Second::Postgres { url, schema } => {
                let mut options = sea_orm::ConnectOptions::new(url.as_str());
                options
                    .max_connections(1)
                    .sqlx_logging(false)
                    .set_schema_search_path(format!("\"{schema}\""));
                Database::connect(options)
                    .await
                    .expect("raw PostgreSQL connection")
            }
        }
    }
}

/// Runs the test on a SQLite file in a fresh temporary directory.
pub async fn run_sqlite(test: impl FnOnce(Ctx) -> TestFuture) {
    let dir = tempfile::tempdir().expect("temp dir");
    let path: PathBuf = dir.path().join("data").join("discobot.db");
    let config = StoreConfig::new(format!("sqlite://{}", path.display()));
    let store = Store::connect(config).await.expect("SQLite store connects");
    assert_eq!(store.backend(), "sqlite");
    let ctx = Ctx {
        store: store.clone(),
        second: Second::SameProcess { path },
    };
    let outcome = tokio::spawn(test(ctx)).await;
    store.close().await.expect("store closes");
    if let Err(error) = outcome {
        std::panic::resume_unwind(error.into_panic());
    }
}

/// The PostgreSQL URL for tests, or `None` when they are explicitly skipped.
pub fn postgres_url() -> Option<String> {
    match std::env::var("DISCOBOT_TEST_DATABASE_URL") {
        Ok(url) if !url.trim().is_empty() => Some(url),
        _ if std::env::var("DISCOBOT_SKIP_POSTGRES").as_deref() == Ok("1") => {
            eprintln!(
                "skipping the PostgreSQL variant: DISCOBOT_TEST_DATABASE_URL is unset and \
                 DISCOBOT_SKIP_POSTGRES=1"
            );
            None
        }
        _ => panic!(
            "DISCOBOT_TEST_DATABASE_URL is not set, so the PostgreSQL variant cannot run. Set it \
             (e.g. postgres://discobot:discobot@127.0.0.1:5432/discobot_test), or set \
             DISCOBOT_SKIP_POSTGRES=1 to skip the PostgreSQL tests deliberately."
        ),
    }
}

/// Runs the test on a fresh PostgreSQL schema, dropped afterwards.
pub async fn run_postgres(test: impl FnOnce(Ctx) -> TestFuture) {
    let Some(url) = postgres_url() else { return };
    let schema = format!("test_{}", uuid::Uuid::new_v4().simple());
    let store = Store::connect_with_schema(&url, &schema)
        .await
        .expect("PostgreSQL store connects");
    assert_eq!(store.backend(), "postgres");
    let ctx = Ctx {
        store: store.clone(),
        second: Second::Postgres {
            url: url.clone(),
            schema: schema.clone(),
        },
    };
    let outcome = tokio::spawn(test(ctx)).await;
    store.close().await.expect("store closes");
    drop_schema(&url, &schema).await;
    if let Err(error) = outcome {
        std::panic::resume_unwind(error.into_panic());
    }
}

async fn drop_schema(url: &str, schema: &str) {
    let mut options = sea_orm::ConnectOptions::new(url);
    options.max_connections(1).sqlx_logging(false);
    let admin = Database::connect(options).await.expect("admin connection");
    admin
        .execute_unprepared(&format!("DROP SCHEMA IF EXISTS \"{schema}\" CASCADE"))
        .await
        .expect("drop test schema");
    admin.close().await.expect("admin connection closes");
}

/// Now, at the microsecond precision the store keeps, so values round-trip exactly.
pub fn now() -> DateTime<Utc> {
    Utc::now().trunc_subsecs(6)
}

pub fn user(email: &str) -> User {
    let now = now();
    User {
        id: UserId::generate(),
        email: email.to_owned(),
        name: Some(email.split('@').next().unwrap_or(email).to_owned()),
        avatar_url: None,
        provider: "oidc".into(),
        provider_id: format!("https://issuer|{email}"),
        created_at: now,
        updated_at: now,
    }
}

pub fn workspace(project: &ProjectId, path: &str, created_at: DateTime<Utc>) -> Workspace {
    Workspace {
        id: WorkspaceId::generate(),
        project_id: project.clone(),
        path: path.to_owned(),
        display_name: None,
        source_type: SourceType::Local,
        provider: String::new(),
        auto_generated: false,
        status: WorkspaceStatus::Initializing,
        error_message: None,
        work_dir: Some(path.to_owned()),
        created_at,
        updated_at: created_at,
    }
}

pub fn session(id: &str, workspace: &Workspace, created_at: DateTime<Utc>) -> Session {
    Session {
        id: SessionId::new(id),
        project_id: workspace.project_id.clone(),
        workspace_id: workspace.id.clone(),
        name: format!("session {id}"),
        display_name: None,
        description: None,
        status: SessionStatus::Initializing,
        commit_status: None,
        commit_operation: None,
        commit_error: None,
        base_commit: None,
        applied_commit: None,
        error_message: None,
        workspace_path: None,
        workspace_commit: None,
        chat_settings: Default::default(),
        created_at,
        updated_at: created_at,
    }
}
