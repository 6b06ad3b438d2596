//! The seeded project and user, and the project lifecycle with its cascading delete.

use chrono::Duration;
use discobot_core::ErrorKind;
use discobot_core::ids::{
    ANONYMOUS_USER_ID, InvitationId, LOCAL_PROJECT_ID, ProjectId, SessionId, UserId,
};
use discobot_core::model::{Invitation, Project, Role, TerminalHistoryEntry};
use discobot_core::ports::{
    EventLog, MemberRepo, ProjectRepo, SessionRepo, UserRepo, WorkspaceRepo,
};

use crate::common::{Ctx, now, session, user, workspace};
use crate::store_test;

store_test!(
    seeded_local_project_and_anonymous_owner,
    project_lifecycle,
    delete_cascades
);

async fn seeded_local_project_and_anonymous_owner(ctx: Ctx) {
    let store = &ctx.store;
    let anonymous = UserId::anonymous();
    let user = store
        .get_user(&anonymous)
        .await
        .unwrap()
        .expect("anonymous user is seeded");
    assert_eq!(user.id.as_str(), ANONYMOUS_USER_ID);
    assert_eq!(user.email, "anonymous@local");
    assert_eq!(user.name.as_deref(), Some("Anonymous User"));
    assert_eq!(user.provider, "local");
    assert_eq!(user.provider_id, "anonymous");

    let project = store
        .get_project(&ProjectId::local())
        .await
        .unwrap()
        .expect("local project");
    assert_eq!(project.id.as_str(), LOCAL_PROJECT_ID);
    assert_eq!(project.name, "Local Project");
    assert_eq!(project.slug, "local");
    assert!(project.created_at <= now());

    let membership = store
        .get_membership(&ProjectId::local(), &anonymous)
        .await
        .unwrap()
        .expect("anonymous user is a member of local");
    assert_eq!(membership.role, Role::Owner);

    let projects = store.list_projects_for_user(&anonymous).await.unwrap();
    assert_eq!(projects, vec![project]);

    let members = store.list_members(&ProjectId::local()).await.unwrap();
    assert_eq!(members.len(), 1);
    assert_eq!(members[0].email, "anonymous@local");
    assert_eq!(members[0].name.as_deref(), Some("Anonymous User"));
    assert!(
        store
            .get_user(&UserId::new("nobody"))
            .await
            .unwrap()
            .is_none()
    );
}

fn project(name: &str, slug: &str) -> Project {
    let now = now();
    Project {
        id: ProjectId::generate(),
        name: name.into(),
        slug: slug.into(),
        created_at: now,
        updated_at: now,
    }
}

async fn project_lifecycle(ctx: Ctx) {
    let store = &ctx.store;
    let alice = user("alice@example.com");
    store.insert_user(&alice).await.unwrap();

    let mut first = project("First", "first-1");
    store.create_project(&first, &alice.id).await.unwrap();
    let mut second = project("Second", "second-1");
    second.created_at = first.created_at + Duration::seconds(1);
    store.create_project(&second, &alice.id).await.unwrap();

    assert_eq!(
        store.get_project(&first.id).await.unwrap().as_ref(),
        Some(&first)
    );
    let owner = store
        .get_membership(&first.id, &alice.id)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(owner.role, Role::Owner);
    assert_eq!(owner.accepted_at, Some(first.created_at));
    // Oldest first, and only the user's own projects.
    assert_eq!(
        store.list_projects_for_user(&alice.id).await.unwrap(),
        vec![first.clone(), second.clone()]
    );
    let anonymous_projects = store
        .list_projects_for_user(&UserId::anonymous())
        .await
        .unwrap();
    assert_eq!(anonymous_projects.len(), 1);

    // A taken slug is a conflict, and nothing of the failed project stays behind.
    let clash = project("Clash", "first-1");
    let error = store.create_project(&clash, &alice.id).await.unwrap_err();
    assert_eq!(error.kind, ErrorKind::Conflict, "{error}");
    assert!(store.get_project(&clash.id).await.unwrap().is_none());
    assert!(
        store
            .get_membership(&clash.id, &alice.id)
            .await
            .unwrap()
            .is_none()
    );

    first.name = "First, renamed".into();
    first.updated_at += Duration::seconds(5);
    store.update_project(&first).await.unwrap();
    assert_eq!(
        store.get_project(&first.id).await.unwrap().as_ref(),
        Some(&first)
    );

    let missing = project("Missing", "missing-1");
    let error = store.update_project(&missing).await.unwrap_err();
    assert_eq!(error.kind, ErrorKind::NotFound);

    second.slug = "first-1".into();
    let error = store.update_project(&second).await.unwrap_err();
    assert_eq!(error.kind, ErrorKind::Conflict);

    let error = store.delete_project(&missing.id).await.unwrap_err();
    assert_eq!(error.kind, ErrorKind::NotFound);
}

async fn delete_cascades(ctx: Ctx) {
    let store = &ctx.store;
    let alice = user("alice@example.com");
    let bob = user("bob@example.com");
    store.insert_user(&alice).await.unwrap();
    store.insert_user(&bob).await.unwrap();
    let doomed = project("Doomed", "doomed-1");
    store.create_project(&doomed, &alice.id).await.unwrap();
    let kept = project("Kept", "kept-1");
    store.create_project(&kept, &alice.id).await.unwrap();

    let t = now();
    let ws = workspace(&doomed.id, "/tmp/doomed", t);
    store.create_workspace(&ws).await.unwrap();
    let s = session("doomed-session", &ws, t);
    store.create_session(&s).await.unwrap();
    store
        .append_terminal_history(&TerminalHistoryEntry {
            id: "h1".into(),
            session_id: s.id.clone(),
            entry_type: "command".into(),
            content: "ls".into(),
            exit_code: Some(0),
            created_at: t,
        })
        .await
        .unwrap();
    let kept_ws = workspace(&kept.id, "/tmp/kept", t);
    store.create_workspace(&kept_ws).await.unwrap();
    store
        .create_session(&session("kept-session", &kept_ws, t))
        .await
        .unwrap();

    let invitation = Invitation {
        id: InvitationId::generate(),
        project_id: doomed.id.clone(),
        email: "carol@example.com".into(),
        role: Role::Member,
        invited_by: Some(alice.id.clone()),
        token: "a".repeat(64),
        expires_at: t + Duration::days(7),
        created_at: t,
    };
    store.create_invitation(&invitation).await.unwrap();
    let bob_invite = Invitation {
        id: InvitationId::generate(),
        email: bob.email.clone(),
        token: "b".repeat(64),
        ..invitation.clone()
    };
    store.create_invitation(&bob_invite).await.unwrap();
    let member = discobot_core::model::Member {
        id: discobot_core::ids::MemberId::generate(),
        project_id: doomed.id.clone(),
        user_id: bob.id.clone(),
        role: Role::Member,
        invited_by: Some(alice.id.clone()),
        invited_at: Some(t),
        accepted_at: Some(t),
    };
    assert!(store.accept_invitation(&bob_invite, &member).await.unwrap());

    let event = store
        .append_event(&discobot_core::events::NewEvent {
            id: discobot_core::ids::EventId::new("20260101000000.000000001"),
            project_id: doomed.id.clone(),
            event_type: "project_updated".into(),
            data: serde_json::json!({"deleted": true}),
            created_at: t,
        })
        .await
        .unwrap();

    store.delete_project(&doomed.id).await.unwrap();

    assert!(store.get_project(&doomed.id).await.unwrap().is_none());
    assert!(store.get_workspace(&ws.id).await.unwrap().is_none());
    assert!(store.get_session(&s.id).await.unwrap().is_none());
    assert!(
        store.session_id_taken(&s.id).await.unwrap(),
        "session ids are never reused"
    );
    assert!(
        store
            .list_terminal_history(&s.id, None)
            .await
            .unwrap()
            .is_empty()
    );
    assert!(
        store
            .get_invitation_by_token(&invitation.token)
            .await
            .unwrap()
            .is_none()
    );
    assert!(
        store
            .get_membership(&doomed.id, &alice.id)
            .await
            .unwrap()
            .is_none()
    );
    assert!(
        store
            .get_membership(&doomed.id, &bob.id)
            .await
            .unwrap()
            .is_none()
    );
    assert!(store.list_members(&doomed.id).await.unwrap().is_empty());
    assert_eq!(
        store.list_projects_for_user(&alice.id).await.unwrap(),
        vec![kept.clone()]
    );
    // Users and events outlive the project.
    assert!(store.get_user(&bob.id).await.unwrap().is_some());
    assert_eq!(
        store.get_event(event.id.as_str()).await.unwrap(),
        Some(event)
    );

    // The other project is untouched.
    assert!(store.get_workspace(&kept_ws.id).await.unwrap().is_some());
    let kept_sessions = store.list_sessions(&kept.id).await.unwrap();
    assert_eq!(kept_sessions.len(), 1);
    assert_eq!(kept_sessions[0].id, SessionId::new("kept-session"));
}
