//! `MemberRepo`: memberships and single-use invitations.

use std::collections::HashMap;

use async_trait::async_trait;
use discobot_core::Result;
use discobot_core::ids::{InvitationId, MemberId, ProjectId, UserId};
use discobot_core::model::{Invitation, Member, MemberWithUser, Role};
use discobot_core::ports::MemberRepo;
use sea_orm::{ActiveValue::Set, ColumnTrait, EntityTrait, QueryFilter, TransactionTrait};

use super::stored;
use crate::Store;
use crate::entity::{project_invitations, project_members, users};
use crate::error::{DbResultExt, StoreError};
use crate::store::ts;

fn member_from_row(row: project_members::Model) -> Result<Member, StoreError> {
    Ok(Member {
        id: MemberId::new(row.id),
        project_id: ProjectId::new(row.project_id),
        user_id: UserId::new(row.user_id),
        role: stored("member role", Role::parse(&row.role))?,
        invited_by: row.invited_by.map(UserId::new),
        invited_at: row.invited_at,
        accepted_at: row.accepted_at,
    })
}

fn invitation_from_row(row: project_invitations::Model) -> Result<Invitation, StoreError> {
    Ok(Invitation {
        id: InvitationId::new(row.id),
        project_id: ProjectId::new(row.project_id),
        email: row.email,
        role: stored("invitation role", Role::parse(&row.role))?,
        invited_by: row.invited_by.map(UserId::new),
        token: row.token,
        expires_at: row.expires_at,
        created_at: row.created_at,
    })
}

fn member_row(member: &Member) -> project_members::ActiveModel {
    project_members::ActiveModel {
        id: Set(member.id.as_str().to_owned()),
        project_id: Set(member.project_id.as_str().to_owned()),
        user_id: Set(member.user_id.as_str().to_owned()),
        role: Set(member.role.as_str().to_owned()),
        invited_by: Set(member.invited_by.as_ref().map(|u| u.as_str().to_owned())),
        invited_at: Set(member.invited_at.map(ts)),
        accepted_at: Set(member.accepted_at.map(ts)),
    }
}

#[async_trait]
impl MemberRepo for Store {
    async fn get_membership(&self, project: &ProjectId, user: &UserId) -> Result<Option<Member>> {
        let row = project_members::Entity::find()
            .filter(project_members::Column::ProjectId.eq(project.as_str()))
            .filter(project_members::Column::UserId.eq(user.as_str()))
            .one(&self.reader)
            .await
            .db()?;
        Ok(row.map(member_from_row).transpose()?)
    }

    async fn list_members(&self, project: &ProjectId) -> Result<Vec<MemberWithUser>> {
        let rows = project_members::Entity::find()
            .filter(project_members::Column::ProjectId.eq(project.as_str()))
            .all(&self.reader)
            .await
            .db()?;
        let user_ids: Vec<String> = rows.iter().map(|row| row.user_id.clone()).collect();
        let users: HashMap<String, users::Model> = users::Entity::find()
            .filter(users::Column::Id.is_in(user_ids))
            .all(&self.reader)
            .await
            .db()?
            .into_iter()
            .map(|user| (user.id.clone(), user))
            .collect();
        let mut members = Vec::with_capacity(rows.len());
        for row in rows {
            let user = users.get(&row.user_id);
            members.push(MemberWithUser {
                email: user.map(|u| u.email.clone()).unwrap_or_default(),
                name: user.and_then(|u| u.name.clone()),
                avatar_url: user.and_then(|u| u.avatar_url.clone()),
                member: member_from_row(row)?,
            });
        }
        // Owners first, then by email: a stable order on both backends.
        members.sort_by(|a, b| {
            role_rank(a.member.role)
                .cmp(&role_rank(b.member.role))
                .then_with(|| a.email.cmp(&b.email))
                .then_with(|| a.member.id.cmp(&b.member.id))
        });
        Ok(members)
    }

    async fn remove_member(&self, project: &ProjectId, user: &UserId) -> Result<bool> {
        let result = project_members::Entity::delete_many()
            .filter(project_members::Column::ProjectId.eq(project.as_str()))
            .filter(project_members::Column::UserId.eq(user.as_str()))
            .exec(&self.writer)
            .await
            .db()?;
        Ok(result.rows_affected > 0)
    }

    async fn create_invitation(&self, invitation: &Invitation) -> Result<()> {
        let txn = self.writer.begin().await.db()?;
        project_invitations::Entity::delete_many()
            .filter(project_invitations::Column::ProjectId.eq(invitation.project_id.as_str()))
            .filter(project_invitations::Column::Email.eq(invitation.email.as_str()))
            .exec(&txn)
            .await
            .db()?;
        project_invitations::Entity::insert(project_invitations::ActiveModel {
            id: Set(invitation.id.as_str().to_owned()),
            project_id: Set(invitation.project_id.as_str().to_owned()),
            email: Set(invitation.email.clone()),
            role: Set(invitation.role.as_str().to_owned()),
            invited_by: Set(invitation
                .invited_by
                .as_ref()
                .map(|u| u.as_str().to_owned())),
            token: Set(invitation.token.clone()),
            expires_at: Set(ts(invitation.expires_at)),
            created_at: Set(ts(invitation.created_at)),
        })
        .exec_without_returning(&txn)
        .await
        .conflict_as("an invitation for this email, or with this id or token, already exists")?;
        txn.commit().await.db()?;
        Ok(())
    }

    async fn get_invitation_by_token(&self, token: &str) -> Result<Option<Invitation>> {
        let row = project_invitations::Entity::find()
            .filter(project_invitations::Column::Token.eq(token))
            .one(&self.reader)
            .await
            .db()?;
        Ok(row.map(invitation_from_row).transpose()?)
    }

    async fn accept_invitation(&self, invitation: &Invitation, member: &Member) -> Result<bool> {
        let txn = self.writer.begin().await.db()?;
        // Deleting first makes the token single-use: a concurrent accept blocks on the row
        // and then deletes nothing.
        let deleted = project_invitations::Entity::delete_many()
            .filter(project_invitations::Column::Id.eq(invitation.id.as_str()))
            .filter(project_invitations::Column::Token.eq(invitation.token.as_str()))
            .exec(&txn)
            .await
            .db()?;
        if deleted.rows_affected == 0 {
            return Ok(false);
        }
        let existing = project_members::Entity::find()
            .filter(project_members::Column::ProjectId.eq(member.project_id.as_str()))
            .filter(project_members::Column::UserId.eq(member.user_id.as_str()))
            .one(&txn)
            .await
            .db()?;
        if existing.is_none() {
            project_members::Entity::insert(member_row(member))
                .exec_without_returning(&txn)
                .await
                .db()?;
        }
        txn.commit().await.db()?;
        Ok(true)
    }
}

fn role_rank(role: Role) -> u8 {
    match role {
        Role::Owner => 0,
        Role::Admin => 1,
        Role::Member => 2,
    }
}
