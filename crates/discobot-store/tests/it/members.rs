//! Memberships and invitations: replacement per email, single use, concurrent accepts.

use std::sync::Arc;

use chrono::Duration;
use discobot_core::ids::{InvitationId, MemberId, ProjectId, UserId};
use discobot_core::model::{Invitation, Member, Role};
use discobot_core::ports::MemberRepo;

use crate::common::{Ctx, now, user};
use crate::store_test;

store_test!(
    invitations_are_single_use,
    accept_by_existing_member_keeps_role,
    concurrent_accepts
);

fn invitation(project: &ProjectId, email: &str, role: Role, token: char) -> Invitation {
    let t = now();
    Invitation {
        id: InvitationId::generate(),
        project_id: project.clone(),
        email: email.into(),
        role,
        invited_by: Some(UserId::anonymous()),
        token: token.to_string().repeat(64),
        expires_at: t + Duration::days(7),
        created_at: t,
    }
}

fn member_for(invitation: &Invitation, user: &UserId) -> Member {
    Member {
        id: MemberId::generate(),
        project_id: invitation.project_id.clone(),
        user_id: user.clone(),
        role: invitation.role,
        invited_by: invitation.invited_by.clone(),
        invited_at: Some(invitation.created_at),
        accepted_at: Some(now()),
    }
}

async fn invitations_are_single_use(ctx: Ctx) {
    let store = &ctx.store;
    let local = ProjectId::local();
    let bob = user("bob@example.com");
    store.insert_user(&bob).await.unwrap();

    let first = invitation(&local, &bob.email, Role::Member, '1');
    store.create_invitation(&first).await.unwrap();
    assert_eq!(
        store
            .get_invitation_by_token(&first.token)
            .await
            .unwrap()
            .as_ref(),
        Some(&first)
    );

    // A second invitation for the same email replaces the first.
    let second = invitation(&local, &bob.email, Role::Admin, '2');
    store.create_invitation(&second).await.unwrap();
    assert!(
        store
            .get_invitation_by_token(&first.token)
            .await
            .unwrap()
            .is_none()
    );
    assert_eq!(
        store
            .get_invitation_by_token(&second.token)
            .await
            .unwrap()
            .as_ref(),
        Some(&second)
    );

    let member = member_for(&second, &bob.id);
    assert!(store.accept_invitation(&second, &member).await.unwrap());
    assert!(
        store
            .get_invitation_by_token(&second.token)
            .await
            .unwrap()
            .is_none()
    );
    let stored = store
        .get_membership(&local, &bob.id)
        .await
        .unwrap()
        .expect("bob is a member");
    assert_eq!(stored, member);
    assert_eq!(stored.role, Role::Admin);

    // The token works once.
    let again = member_for(&second, &bob.id);
    assert!(!store.accept_invitation(&second, &again).await.unwrap());
    // The stale first invitation is gone too.
    assert!(!store.accept_invitation(&first, &again).await.unwrap());

    let members = store.list_members(&local).await.unwrap();
    let emails: Vec<&str> = members.iter().map(|m| m.email.as_str()).collect();
    assert_eq!(emails, vec!["anonymous@local", "bob@example.com"]);
    assert_eq!(members[1].member.role, Role::Admin);
    assert_eq!(members[1].name.as_deref(), Some("bob"));

    assert!(store.remove_member(&local, &bob.id).await.unwrap());
    assert!(!store.remove_member(&local, &bob.id).await.unwrap());
    assert!(
        store
            .get_membership(&local, &bob.id)
            .await
            .unwrap()
            .is_none()
    );
    assert_eq!(store.list_members(&local).await.unwrap().len(), 1);
}

async fn accept_by_existing_member_keeps_role(ctx: Ctx) {
    let store = &ctx.store;
    let local = ProjectId::local();
    let anonymous = UserId::anonymous();
    let invite = invitation(&local, "anonymous@local", Role::Member, 'c');
    store.create_invitation(&invite).await.unwrap();
    assert!(
        store
            .accept_invitation(&invite, &member_for(&invite, &anonymous))
            .await
            .unwrap()
    );
    let membership = store
        .get_membership(&local, &anonymous)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(
        membership.role,
        Role::Owner,
        "an existing membership is left as it was"
    );
    assert_eq!(store.list_members(&local).await.unwrap().len(), 1);
}

async fn concurrent_accepts(ctx: Ctx) {
    let store = ctx.store.clone();
    let other = ctx.second_store().await;
    let local = ProjectId::local();
    let mut users = Vec::new();
    for i in 0..6 {
        let u = user(&format!("racer{i}@example.com"));
        store.insert_user(&u).await.unwrap();
        users.push(u);
    }
    let invite = Arc::new(invitation(&local, "racers@example.com", Role::Member, 'r'));
    store.create_invitation(&invite).await.unwrap();

    let mut tasks = Vec::new();
    for (i, u) in users.iter().enumerate() {
        let s = if i % 2 == 0 {
            store.clone()
        } else {
            other.clone()
        };
        let invite = invite.clone();
        let member = member_for(&invite, &u.id);
        tasks.push(tokio::spawn(async move {
            s.accept_invitation(&invite, &member).await
        }));
    }
    let mut accepted = 0;
    for task in tasks {
        if task.await.unwrap().unwrap() {
            accepted += 1;
        }
    }
    assert_eq!(accepted, 1, "exactly one accept wins");
    assert_eq!(store.list_members(&local).await.unwrap().len(), 2);
}
