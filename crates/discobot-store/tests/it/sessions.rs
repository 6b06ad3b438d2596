//! Sessions: ids never reused, soft delete, the removing guard, terminal history.

use chrono::Duration;
use discobot_core::ErrorKind;
use discobot_core::ids::{ProjectId, SessionId};
use discobot_core::model::{CommitStatus, SessionStatus, TerminalHistoryEntry};
use discobot_core::ports::{SessionRepo, WorkspaceRepo};

use crate::common::{Ctx, now, session, workspace};
use crate::store_test;

store_test!(
    session_ids_are_never_reused,
    status_guard,
    fields_and_terminal_history
);

async fn session_ids_are_never_reused(ctx: Ctx) {
    let store = &ctx.store;
    let local = ProjectId::local();
    let t = now();
    let ws = workspace(&local, "/srv/ws", t);
    store.create_workspace(&ws).await.unwrap();
    let older = session("older", &ws, t);
    let mut newer = session("newer", &ws, t + Duration::seconds(1));
    newer.commit_status = Some(CommitStatus::Completed);
    newer.commit_operation = Some("commit".into());
    newer.base_commit = Some("abc".into());
    newer.workspace_path = Some("/srv/ws".into());
    store.create_session(&older).await.unwrap();
    store.create_session(&newer).await.unwrap();
    assert_eq!(
        store.get_session(&newer.id).await.unwrap().as_ref(),
        Some(&newer)
    );
    assert_eq!(
        store.list_sessions(&local).await.unwrap(),
        vec![newer.clone(), older.clone()]
    );
    assert!(
        !store
            .session_id_taken(&SessionId::new("fresh"))
            .await
            .unwrap()
    );
    assert!(store.session_id_taken(&older.id).await.unwrap());

    let error = store
        .create_session(&session("older", &ws, t))
        .await
        .unwrap_err();
    assert_eq!(error.kind, ErrorKind::Conflict);
    assert_eq!(error.message, "session id already exists");

    store
        .soft_delete_session(&older.id, t + Duration::seconds(5))
        .await
        .unwrap();
    assert!(store.get_session(&older.id).await.unwrap().is_none());
    assert_eq!(
        store.list_sessions(&local).await.unwrap(),
        vec![newer.clone()]
    );
    assert_eq!(
        store.list_workspace_sessions(&ws.id).await.unwrap(),
        vec![newer.clone()]
    );
    assert!(store.session_id_taken(&older.id).await.unwrap());
    let error = store
        .create_session(&session("older", &ws, t))
        .await
        .unwrap_err();
    assert_eq!(
        error.kind,
        ErrorKind::Conflict,
        "a soft-deleted id stays taken"
    );
    assert_eq!(error.message, "session id already exists");
    // Deleting twice is harmless.
    store
        .soft_delete_session(&older.id, t + Duration::seconds(6))
        .await
        .unwrap();
}

async fn status_guard(ctx: Ctx) {
    let store = &ctx.store;
    let local = ProjectId::local();
    let t = now();
    let ws = workspace(&local, "/srv/ws", t);
    store.create_workspace(&ws).await.unwrap();
    let s = session("guarded", &ws, t);
    store.create_session(&s).await.unwrap();

    let t1 = t + Duration::seconds(1);
    assert!(
        store
            .set_session_status(&s.id, SessionStatus::Error, Some("boom"), false, t1)
            .await
            .unwrap()
    );
    let got = store.get_session(&s.id).await.unwrap().unwrap();
    assert_eq!(
        (got.status, got.error_message.as_deref()),
        (SessionStatus::Error, Some("boom"))
    );
    assert_eq!(got.updated_at, t1);
    assert!(
        store
            .set_session_status(&s.id, SessionStatus::Ready, None, false, t1)
            .await
            .unwrap()
    );
    let got = store.get_session(&s.id).await.unwrap().unwrap();
    assert_eq!(
        (got.status, got.error_message),
        (SessionStatus::Ready, None)
    );

    // Removing is terminal: a late job cannot move the session back...
    assert!(
        store
            .set_session_status(&s.id, SessionStatus::Removing, None, true, t1)
            .await
            .unwrap()
    );
    assert!(
        !store
            .set_session_status(&s.id, SessionStatus::Ready, None, false, t1)
            .await
            .unwrap()
    );
    assert!(
        !store
            .set_session_status(&s.id, SessionStatus::Removing, None, false, t1)
            .await
            .unwrap()
    );
    assert_eq!(
        store.get_session(&s.id).await.unwrap().unwrap().status,
        SessionStatus::Removing
    );
    // ...unless forced.
    assert!(
        store
            .set_session_status(&s.id, SessionStatus::Error, Some("x"), true, t1)
            .await
            .unwrap()
    );
    assert_eq!(
        store.get_session(&s.id).await.unwrap().unwrap().status,
        SessionStatus::Error
    );

    // Nothing is written to a missing or deleted session.
    let ghost = SessionId::new("ghost");
    assert!(
        !store
            .set_session_status(&ghost, SessionStatus::Ready, None, true, t1)
            .await
            .unwrap()
    );
    store.soft_delete_session(&s.id, t1).await.unwrap();
    assert!(
        !store
            .set_session_status(&s.id, SessionStatus::Ready, None, true, t1)
            .await
            .unwrap()
    );
}

async fn fields_and_terminal_history(ctx: Ctx) {
    let store = &ctx.store;
    let local = ProjectId::local();
    let t = now();
    let ws = workspace(&local, "/srv/ws", t);
    store.create_workspace(&ws).await.unwrap();
    let mut s = session("fields", &ws, t);
    store.create_session(&s).await.unwrap();

    s.name = "renamed".into();
    s.display_name = Some("Display".into());
    s.description = Some("what it does".into());
    s.updated_at = t + Duration::seconds(2);
    store.update_session_fields(&s).await.unwrap();
    assert_eq!(store.get_session(&s.id).await.unwrap().as_ref(), Some(&s));
    let mut ghost = s.clone();
    ghost.id = SessionId::new("ghost");
    assert_eq!(
        store.update_session_fields(&ghost).await.unwrap_err().kind,
        ErrorKind::NotFound
    );

    for i in 0..5 {
        store
            .append_terminal_history(&TerminalHistoryEntry {
                id: format!("h{i}"),
                session_id: s.id.clone(),
                entry_type: if i % 2 == 0 { "command" } else { "output" }.into(),
                content: format!("line {i}"),
                exit_code: (i % 2 == 0).then_some(i),
                created_at: t + Duration::seconds(i as i64),
            })
            .await
            .unwrap();
    }
    let all = store.list_terminal_history(&s.id, None).await.unwrap();
    let ids: Vec<&str> = all.iter().map(|e| e.id.as_str()).collect();
    assert_eq!(ids, vec!["h4", "h3", "h2", "h1", "h0"], "newest first");
    assert_eq!(all[0].exit_code, Some(4));
    assert_eq!(all[1].exit_code, None);
    let limited = store.list_terminal_history(&s.id, Some(2)).await.unwrap();
    assert_eq!(limited.len(), 2);
    assert_eq!(limited[0].id, "h4");

    store
        .soft_delete_session(&s.id, t + Duration::seconds(9))
        .await
        .unwrap();
    assert!(
        store
            .list_terminal_history(&s.id, None)
            .await
            .unwrap()
            .is_empty()
    );
}
