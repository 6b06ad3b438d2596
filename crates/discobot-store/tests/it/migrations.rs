//! The migrations on their own: up, down and up again on both backends, and the seed.

use discobot_migrations::{Migrator, MigratorTrait};
use sea_orm::{
    ConnectOptions, ConnectionTrait, Database, DatabaseConnection, DbBackend, Statement,
};

use crate::common::postgres_url;

const TABLES: &[&str] = &[
    "users",
    "user_sessions",
    "projects",
    "project_members",
    "project_invitations",
    "workspaces",
    "sessions",
    "credentials",
    "session_credential_assignments",
    "project_events",
    "jobs",
    "user_preferences",
    "terminal_history",
    "settings",
];

async fn tables(db: &DatabaseConnection) -> Vec<String> {
    let sql = match db.get_database_backend() {
        DbBackend::Sqlite => {
            "SELECT name FROM sqlite_master WHERE type = 'table' AND name NOT LIKE 'sqlite_%' \
             ORDER BY name"
        }
        _ => {
            "SELECT table_name AS name FROM information_schema.tables \
              WHERE table_schema = current_schema() ORDER BY table_name"
        }
    };
    let rows = db
        .query_all_raw(Statement::from_string(db.get_database_backend(), sql))
        .await
        .unwrap();
    rows.iter()
        .map(|row| row.try_get::<String>("", "name").unwrap())
        .collect()
}

async fn count(db: &DatabaseConnection, sql: &str) -> i64 {
    let row = db
        .query_one_raw(Statement::from_string(db.get_database_backend(), sql))
        .await
        .unwrap()
        .unwrap();
    row.try_get::<i64>("", "n").unwrap()
}

async fn round_trip(db: &DatabaseConnection) {
    Migrator::up(db, None).await.unwrap();
    let after_up = tables(db).await;
    for table in TABLES {
        assert!(
            after_up.iter().any(|t| t == table),
            "{table} missing from {after_up:?}"
        );
    }
    assert_eq!(count(db, "SELECT COUNT(*) AS n FROM users").await, 1);
    assert_eq!(
        count(
            db,
            "SELECT COUNT(*) AS n FROM projects WHERE slug = 'local'"
        )
        .await,
        1
    );
    assert_eq!(
        count(
            db,
            "SELECT COUNT(*) AS n FROM project_members WHERE role = 'owner'"
        )
        .await,
        1
    );
    // Running it again changes nothing.
    Migrator::up(db, None).await.unwrap();
    assert_eq!(count(db, "SELECT COUNT(*) AS n FROM users").await, 1);

    Migrator::down(db, None).await.unwrap();
    assert_eq!(tables(db).await, vec!["seaql_migrations".to_owned()]);

    Migrator::up(db, None).await.unwrap();
    assert_eq!(tables(db).await, after_up);
}

#[tokio::test]
async fn up_down_up_sqlite() {
    let dir = tempfile::tempdir().unwrap();
    let url = format!("sqlite://{}?mode=rwc", dir.path().join("m.db").display());
    let db = Database::connect(url).await.unwrap();
    round_trip(&db).await;
    db.close().await.unwrap();
}

#[tokio::test]
async fn up_down_up_postgres() {
    let Some(url) = postgres_url() else { return };
    let schema = format!("test_{}", uuid::Uuid::new_v4().simple());
    let admin = Database::connect(url.as_str()).await.unwrap();
    admin
        .execute_unprepared(&format!("CREATE SCHEMA \"{schema}\""))
        .await
        .unwrap();
    let mut options = ConnectOptions::new(url.as_str());
    options.set_schema_search_path(format!("\"{schema}\""));
    let db = Database::connect(options).await.unwrap();
    round_trip(&db).await;
    db.close().await.unwrap();
    admin
        .execute_unprepared(&format!("DROP SCHEMA \"{schema}\" CASCADE"))
        .await
        .unwrap();
    admin.close().await.unwrap();
}
