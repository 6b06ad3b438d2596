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
    fields_and_terminal_history,
    submissions_commit_operations_and_settings,
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

/// A prompt's key holds one row: a second insert (another replica) gets the first back; an
/// update records the outcome; commit operations start only once; chat settings and commit
/// refs write only what they name.
async fn submissions_commit_operations_and_settings(ctx: Ctx) {
    use discobot_core::model::{ChatSettings, PromptSubmission, SubmissionStatus};
    use discobot_core::ports::{CommitRefs, PromptSubmissionRepo};

    let store = &ctx.store;
    let ws = workspace(&ProjectId::local(), "/srv/ws", now());
    store.create_workspace(&ws).await.unwrap();
    let s = session("s1", &ws, now());
    store.create_session(&s).await.unwrap();

    let first = PromptSubmission {
        id: "sub-1".into(),
        project_id: ProjectId::new("local"),
        session_id: s.id.clone(),
        thread_id: "t".into(),
        client_message_id: "m1".into(),
        payload_hash: "h1".into(),
        status: SubmissionStatus::Pending,
        completion_id: None,
        queued_prompt_id: None,
        result_status: None,
        error_message: None,
        payload_sealed: Some(vec![1, 2, 3]),
        created_at: now(),
        updated_at: now(),
    };
    let stored = store.insert_submission_if_absent(&first).await.unwrap();
    assert_eq!(stored.id, "sub-1");
    let replica = ctx.second_store().await;
    let again = replica
        .insert_submission_if_absent(&PromptSubmission {
            id: "sub-2".into(),
            payload_hash: "h2".into(),
            ..first.clone()
        })
        .await
        .unwrap();
    assert_eq!(
        (again.id.as_str(), again.payload_hash.as_str()),
        ("sub-1", "h1")
    );
    let accepted = PromptSubmission {
        status: SubmissionStatus::Accepted,
        completion_id: Some("c1".into()),
        result_status: Some("started".into()),
        ..stored
    };
    store.update_submission(&accepted).await.unwrap();
    let read = store.insert_submission_if_absent(&first).await.unwrap();
    assert_eq!(read.status, SubmissionStatus::Accepted);
    assert_eq!(read.completion_id.as_deref(), Some("c1"));
    // Another thread, same message id: another key.
    let other = store
        .insert_submission_if_absent(&PromptSubmission {
            id: "sub-3".into(),
            thread_id: "t2".into(),
            ..first.clone()
        })
        .await
        .unwrap();
    assert_eq!(other.id, "sub-3");

    // One commit operation at a time.
    assert!(
        store
            .begin_commit_operation(&s.id, "commit", false, now())
            .await
            .unwrap()
    );
    assert!(
        !replica
            .begin_commit_operation(&s.id, "rebase", true, now())
            .await
            .unwrap()
    );
    store
        .set_commit_status(&s.id, Some(CommitStatus::Completed), None, now())
        .await
        .unwrap();
    assert!(
        store
            .begin_commit_operation(&s.id, "rebase", true, now())
            .await
            .unwrap()
    );
    let read = store.get_session(&s.id).await.unwrap().unwrap();
    assert_eq!(read.commit_status, Some(CommitStatus::Pending));
    assert_eq!(read.commit_operation.as_deref(), Some("rebase"));

    // Only the named columns change.
    store
        .set_commit_refs(
            &s.id,
            &CommitRefs {
                base_commit: Some("b".into()),
                ..Default::default()
            },
            now(),
        )
        .await
        .unwrap();
    store
        .set_chat_settings(
            &s.id,
            &ChatSettings {
                model: Some("anthropic/x".into()),
                ..Default::default()
            },
            now(),
        )
        .await
        .unwrap();
    store
        .set_chat_settings(
            &s.id,
            &ChatSettings {
                mode: Some("plan".into()),
                ..Default::default()
            },
            now(),
        )
        .await
        .unwrap();
    let read = store.get_session(&s.id).await.unwrap().unwrap();
    assert_eq!(read.base_commit.as_deref(), Some("b"));
    assert_eq!(read.workspace_commit, s.workspace_commit);
    assert_eq!(
        read.chat_settings,
        ChatSettings {
            model: Some("anthropic/x".into()),
            reasoning: None,
            mode: Some("plan".into()),
        }
    );
}
