//! SQLite specifics: the single-process file lock and the accepted URL forms.

use discobot_core::ids::ProjectId;
use discobot_core::jobs::{JobType, NewJob};
use discobot_core::ports::{JobQueue, ProjectRepo};
use discobot_store::{Store, StoreConfig, StoreError};
use serde_json::json;

#[tokio::test]
async fn second_process_on_the_same_file_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("discobot.db");
    let url = format!("sqlite://{}", path.display());
    let first = Store::connect(StoreConfig::new(&url)).await.unwrap();
    assert!(first.is_single_process());

    let error = Store::connect(StoreConfig::new(&url)).await.unwrap_err();
    assert!(matches!(error, StoreError::Locked(_)), "{error:?}");
    let expected = format!(
        "database {} is already in use by another discobot-server process (lock file {}.lock); \
         stop it or use a different DISCOBOT_DATA_DIR",
        path.display(),
        path.display()
    );
    assert_eq!(error.to_string(), expected);
    // Through the domain error it is an internal error carrying the same message.
    let domain: discobot_core::Error = error.into();
    assert_eq!(domain.kind, discobot_core::ErrorKind::Internal);
    assert!(domain.message.contains("already in use"));

    // The same file under another spelling is the same lock.
    let bare = path.display().to_string();
    assert!(matches!(
        Store::connect(StoreConfig::new(&bare)).await,
        Err(StoreError::Locked(_))
    ));

    // Once the first store is gone the file can be opened again, with its data.
    first.close().await.unwrap();
    let again = Store::connect(StoreConfig::new(&url)).await.unwrap();
    assert!(
        again
            .get_project(&ProjectId::local())
            .await
            .unwrap()
            .is_some()
    );
}

#[tokio::test]
async fn url_forms() {
    let dir = tempfile::tempdir().unwrap();
    // sqlite3:// is rewritten; the parent directory is created.
    let nested = dir.path().join("a").join("b").join("one.db");
    let store = Store::connect(StoreConfig::new(format!("sqlite3://{}", nested.display())))
        .await
        .unwrap();
    assert_eq!(store.backend(), "sqlite");
    assert!(nested.exists());
    assert!(dir.path().join("a/b/one.db.lock").exists());
    store.close().await.unwrap();

    // A bare path ending in .sqlite.
    let bare = dir.path().join("two.sqlite");
    let store = Store::connect(StoreConfig::new(bare.display().to_string()))
        .await
        .unwrap();
    assert!(
        store
            .get_project(&ProjectId::local())
            .await
            .unwrap()
            .is_some()
    );
    store.close().await.unwrap();

    // In memory: one pool, migrated and seeded, and the job index works there too.
    let store = Store::connect(StoreConfig::new("sqlite::memory:"))
        .await
        .unwrap();
    assert!(
        store
            .get_project(&ProjectId::local())
            .await
            .unwrap()
            .is_some()
    );
    let now = chrono::Utc::now();
    store
        .enqueue(&NewJob::new(JobType::SessionInit, "s", json!({}), now))
        .await
        .unwrap();
    let clash = store
        .enqueue(&NewJob::new(JobType::SessionInit, "s", json!({}), now))
        .await;
    assert_eq!(clash.unwrap_err().kind, discobot_core::ErrorKind::Conflict);

    for bad in ["mysql://localhost/x", "/tmp/no-extension", ""] {
        let error = Store::connect(StoreConfig::new(bad)).await.unwrap_err();
        assert!(matches!(error, StoreError::Other(_)), "{bad}: {error:?}");
    }
}

#[tokio::test]
async fn reopening_keeps_data_and_does_not_reseed() {
    let dir = tempfile::tempdir().unwrap();
    let url = format!("sqlite://{}", dir.path().join("keep.db").display());
    let store = Store::connect(StoreConfig::new(&url)).await.unwrap();
    let now = chrono::Utc::now();
    store
        .enqueue(&NewJob::new(
            JobType::WorkspaceInit,
            "w",
            json!({"k": 1}),
            now,
        ))
        .await
        .unwrap();
    store.close().await.unwrap();
    let store = Store::connect(StoreConfig::new(&url)).await.unwrap();
    let job = store
        .latest_job_for_resource("workspace", "w")
        .await
        .unwrap()
        .unwrap();
    assert_eq!(job.payload, json!({"k": 1}));
    let projects = store
        .list_projects_for_user(&discobot_core::ids::UserId::anonymous())
        .await;
    assert_eq!(projects.unwrap().len(), 1);
}
