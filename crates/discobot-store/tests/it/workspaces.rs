//! Workspaces: CRUD, status, and deletion soft-deleting their sessions.

use chrono::Duration;
use discobot_core::ErrorKind;
use discobot_core::ids::{ProjectId, WorkspaceId};
use discobot_core::model::{SourceType, TerminalHistoryEntry, WorkspaceStatus};
use discobot_core::ports::{SessionRepo, WorkspaceRepo};

use crate::common::{Ctx, now, session, workspace};
use crate::store_test;

store_test!(workspace_crud, delete_workspace_soft_deletes_sessions);

async fn workspace_crud(ctx: Ctx) {
    let store = &ctx.store;
    let local = ProjectId::local();
    let t = now();
    let mut first = workspace(&local, "/srv/first", t);
    first.display_name = Some("First".into());
    let mut second = workspace(
        &local,
        "https://example.com/repo.git",
        t + Duration::seconds(1),
    );
    second.source_type = SourceType::Git;
    second.provider = "docker".into();
    second.auto_generated = true;
    second.work_dir = None;
    store.create_workspace(&first).await.unwrap();
    store.create_workspace(&second).await.unwrap();

    assert_eq!(
        store.get_workspace(&first.id).await.unwrap().as_ref(),
        Some(&first)
    );
    assert_eq!(
        store.get_workspace(&second.id).await.unwrap().as_ref(),
        Some(&second)
    );
    assert_eq!(
        store.list_workspaces(&local).await.unwrap(),
        vec![second.clone(), first.clone()]
    );
    assert!(
        store
            .list_workspaces(&ProjectId::new("elsewhere"))
            .await
            .unwrap()
            .is_empty()
    );

    let error = store.create_workspace(&first).await.unwrap_err();
    assert_eq!(error.kind, ErrorKind::Conflict);

    first.path = "/srv/moved".into();
    first.display_name = None;
    first.work_dir = Some("/srv/moved".into());
    first.updated_at = t + Duration::seconds(10);
    store.update_workspace(&first).await.unwrap();
    assert_eq!(
        store.get_workspace(&first.id).await.unwrap().as_ref(),
        Some(&first)
    );

    let t2 = t + Duration::seconds(20);
    store
        .set_workspace_status(
            &second.id,
            WorkspaceStatus::Cloning,
            None,
            Some("/data/clone"),
            t2,
        )
        .await
        .unwrap();
    let cloning = store.get_workspace(&second.id).await.unwrap().unwrap();
    assert_eq!(cloning.status, WorkspaceStatus::Cloning);
    assert_eq!(cloning.work_dir.as_deref(), Some("/data/clone"));
    assert_eq!(cloning.updated_at, t2);
    store
        .set_workspace_status(
            &second.id,
            WorkspaceStatus::Error,
            Some("clone failed"),
            None,
            t2,
        )
        .await
        .unwrap();
    let failed = store.get_workspace(&second.id).await.unwrap().unwrap();
    assert_eq!(failed.status, WorkspaceStatus::Error);
    assert_eq!(failed.error_message.as_deref(), Some("clone failed"));
    assert_eq!(
        failed.work_dir.as_deref(),
        Some("/data/clone"),
        "work dir is kept"
    );
    store
        .set_workspace_status(&second.id, WorkspaceStatus::Ready, None, None, t2)
        .await
        .unwrap();
    let ready = store.get_workspace(&second.id).await.unwrap().unwrap();
    assert_eq!(ready.status, WorkspaceStatus::Ready);
    assert_eq!(ready.error_message, None, "the error is cleared");

    let ghost = WorkspaceId::new("ghost");
    let error = store
        .set_workspace_status(&ghost, WorkspaceStatus::Ready, None, None, t2)
        .await
        .unwrap_err();
    assert_eq!(error.kind, ErrorKind::NotFound);
    let mut ghost_ws = first.clone();
    ghost_ws.id = ghost.clone();
    assert_eq!(
        store.update_workspace(&ghost_ws).await.unwrap_err().kind,
        ErrorKind::NotFound
    );

    // A workspace of a project that does not exist is refused (foreign key).
    let orphan = workspace(&ProjectId::new("no-such-project"), "/srv/orphan", t);
    assert!(store.create_workspace(&orphan).await.is_err());
}

async fn delete_workspace_soft_deletes_sessions(ctx: Ctx) {
    let store = &ctx.store;
    let local = ProjectId::local();
    let t = now();
    let doomed = workspace(&local, "/srv/doomed", t);
    let kept = workspace(&local, "/srv/kept", t);
    store.create_workspace(&doomed).await.unwrap();
    store.create_workspace(&kept).await.unwrap();
    let a = session("a", &doomed, t);
    let b = session("b", &doomed, t + Duration::seconds(1));
    let c = session("c", &kept, t);
    for s in [&a, &b, &c] {
        store.create_session(s).await.unwrap();
        store
            .append_terminal_history(&TerminalHistoryEntry {
                id: format!("history-{}", s.id),
                session_id: s.id.clone(),
                entry_type: "output".into(),
                content: "hello".into(),
                exit_code: None,
                created_at: t,
            })
            .await
            .unwrap();
    }
    assert_eq!(
        store.list_workspace_sessions(&doomed.id).await.unwrap(),
        vec![b.clone(), a.clone()]
    );

    assert!(store.delete_workspace(&doomed.id).await.unwrap());
    assert!(store.get_workspace(&doomed.id).await.unwrap().is_none());
    for s in [&a, &b] {
        assert!(store.get_session(&s.id).await.unwrap().is_none());
        assert!(store.session_id_taken(&s.id).await.unwrap());
        assert!(
            store
                .list_terminal_history(&s.id, None)
                .await
                .unwrap()
                .is_empty()
        );
    }
    assert!(
        store
            .list_workspace_sessions(&doomed.id)
            .await
            .unwrap()
            .is_empty()
    );
    assert_eq!(store.list_sessions(&local).await.unwrap(), vec![c.clone()]);
    assert_eq!(
        store
            .list_terminal_history(&c.id, None)
            .await
            .unwrap()
            .len(),
        1
    );

    assert!(
        !store.delete_workspace(&doomed.id).await.unwrap(),
        "already gone"
    );
    assert_eq!(store.list_workspaces(&local).await.unwrap(), vec![kept]);
}
