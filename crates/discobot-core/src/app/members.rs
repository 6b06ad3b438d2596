//! Members and invitations: list, remove, invite, accept.

use chrono::Utc;
use rand::RngCore;

use super::{App, Principal, ProjectAccess, check_text, required};
use crate::error::{Error, Result};
use crate::ids::{InvitationId, MemberId, ProjectId, UserId};
use crate::model::{Invitation, Member, MemberWithUser, Role};

/// What a caller asks for when inviting someone.
#[derive(Clone, Debug, Default)]
pub struct NewInvitation {
    pub email: String,
    /// Defaults to `member`.
    pub role: Option<String>,
}

impl App {
    pub async fn list_members(&self, access: &ProjectAccess) -> Result<Vec<MemberWithUser>> {
        self.ports.members.list_members(&access.project_id).await
    }

    /// Removes a member; removing someone who is not a member succeeds, removing an owner
    /// does not.
    pub async fn remove_member(&self, access: &ProjectAccess, user_id: &UserId) -> Result<()> {
        access.require_admin()?;
        if let Some(member) = self
            .ports
            .members
            .get_membership(&access.project_id, user_id)
            .await?
        {
            if member.role == Role::Owner {
                return Err(Error::forbidden("Cannot remove project owner"));
            }
            self.ports
                .members
                .remove_member(&access.project_id, user_id)
                .await?;
        }
        Ok(())
    }

    pub async fn create_invitation(
        &self,
        access: &ProjectAccess,
        request: NewInvitation,
    ) -> Result<Invitation> {
        access.require_admin()?;
        let email = required(&request.email, "Email is required")?;
        check_text(&email, "email", 320)?;
        if !email.contains('@') || email.starts_with('@') || email.ends_with('@') {
            return Err(Error::invalid("email must be an email address"));
        }
        let role = match request.role.as_deref().map(str::trim) {
            None | Some("") => Role::Member,
            Some(raw) => Role::parse(raw)?,
        };
        let mut token = [0u8; 32];
        rand::rng().fill_bytes(&mut token);
        let now = Utc::now();
        let ttl = chrono::Duration::from_std(self.config.invitation_ttl)
            .map_err(|_| Error::internal("invitation ttl out of range"))?;
        let invitation = Invitation {
            id: InvitationId::generate(),
            project_id: access.project_id.clone(),
            email,
            role,
            invited_by: Some(access.principal.user_id.clone()),
            token: hex(&token),
            expires_at: now + ttl,
            created_at: now,
        };
        self.ports.members.create_invitation(&invitation).await?;
        Ok(invitation)
    }

    /// Accepts an invitation. The caller need not be a member yet; the token must belong
    /// to this project, be unexpired, and works once.
    pub async fn accept_invitation(
        &self,
        principal: &Principal,
        project_id: &ProjectId,
        token: &str,
    ) -> Result<()> {
        let invitation = self
            .ports
            .members
            .get_invitation_by_token(token)
            .await?
            .filter(|invitation| &invitation.project_id == project_id)
            .ok_or_else(|| Error::invalid("invitation not found"))?;
        let now = Utc::now();
        if invitation.expires_at <= now {
            return Err(Error::invalid("invitation expired"));
        }
        let member = Member {
            id: MemberId::generate(),
            project_id: invitation.project_id.clone(),
            user_id: principal.user_id.clone(),
            role: invitation.role,
            invited_by: invitation.invited_by.clone(),
            invited_at: Some(invitation.created_at),
            accepted_at: Some(now),
        };
        if !self
            .ports
            .members
            .accept_invitation(&invitation, &member)
            .await?
        {
            return Err(Error::invalid("invitation not found"));
        }
        Ok(())
    }
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}
