//! `CredentialRepo` and `SettingsRepo`: sealed credentials, session assignments, and the
//! settings table. Secrets arrive sealed by core; nothing here sees a plaintext value.

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use discobot_core::Result;
use discobot_core::credentials::{
    AuthType, Credential, SessionCredentialAssignment, SessionCredentialUse, Visibility,
};
use discobot_core::ids::{CredentialId, ProjectId, SessionId};
use discobot_core::ports::{CredentialRepo, SettingsRepo};
use sea_orm::sea_query::{Expr, OnConflict};
use sea_orm::{
    ActiveValue::Set, ColumnTrait, EntityTrait, QueryFilter, QueryOrder, TransactionTrait,
};

use super::stored;
use crate::Store;
use crate::entity::{credentials, session_credential_assignments as assignments, settings};
use crate::error::{DbResultExt, StoreError};
use crate::store::ts;

const PROVIDER_TAKEN: &str = "a credential for this provider already exists";

fn credential_from_row(row: credentials::Model) -> Result<Credential, StoreError> {
    Ok(Credential {
        auth_type: stored("credential auth type", AuthType::parse(&row.auth_type))?,
        id: CredentialId::new(row.id),
        project_id: ProjectId::new(row.project_id),
        provider: row.provider,
        name: row.name,
        description: row.description,
        sealed: row.encrypted_data,
        is_configured: row.is_configured,
        inactive: row.inactive,
        visibility: Visibility {
            tools: row.agent_visible,
            console: row.console_visible,
            services: row.service_visible,
            hooks: row.hook_visible,
        },
        created_at: row.created_at,
        updated_at: row.updated_at,
    })
}

fn credential_to_row(credential: &Credential) -> credentials::ActiveModel {
    credentials::ActiveModel {
        id: Set(credential.id.as_str().to_owned()),
        project_id: Set(credential.project_id.as_str().to_owned()),
        provider: Set(credential.provider.clone()),
        name: Set(credential.name.clone()),
        description: Set(credential.description.clone()),
        auth_type: Set(credential.auth_type.as_str().to_owned()),
        encrypted_data: Set(credential.sealed.clone()),
        is_configured: Set(credential.is_configured),
        inactive: Set(credential.inactive),
        agent_visible: Set(credential.visibility.tools),
        console_visible: Set(credential.visibility.console),
        service_visible: Set(credential.visibility.services),
        hook_visible: Set(credential.visibility.hooks),
        created_at: Set(ts(credential.created_at)),
        updated_at: Set(ts(credential.updated_at)),
    }
}

fn assignment_from_row(row: assignments::Model) -> SessionCredentialAssignment {
    SessionCredentialAssignment {
        // Rows written before session credential ids existed get a stable stand-in.
        session_credential_id: row
            .session_credential_id
            .unwrap_or_else(|| format!("cred_s_{}", row.id.replace('-', ""))),
        id: row.id,
        session_id: SessionId::new(row.session_id),
        credential_id: CredentialId::new(row.credential_id),
        env_var: row.env_var,
        source_env_var: row.source_env_var,
        visibility: Visibility {
            tools: row.agent_visible,
            console: row.console_visible,
            services: row.service_visible,
            hooks: row.hook_visible,
        },
        uses: row
            .uses_json
            .as_deref()
            .map(SessionCredentialUse::list_from_json)
            .unwrap_or_default(),
        created_at: row.created_at,
        updated_at: row.updated_at,
    }
}

fn assignment_to_row(assignment: &SessionCredentialAssignment) -> assignments::ActiveModel {
    assignments::ActiveModel {
        id: Set(assignment.id.clone()),
        session_id: Set(assignment.session_id.as_str().to_owned()),
        credential_id: Set(assignment.credential_id.as_str().to_owned()),
        agent_visible: Set(assignment.visibility.tools),
        created_at: Set(ts(assignment.created_at)),
        updated_at: Set(ts(assignment.updated_at)),
        session_credential_id: Set(Some(assignment.session_credential_id.clone())),
        env_var: Set(assignment.env_var.clone()),
        source_env_var: Set(assignment.source_env_var.clone()),
        console_visible: Set(assignment.visibility.console),
        service_visible: Set(assignment.visibility.services),
        hook_visible: Set(assignment.visibility.hooks),
        uses_json: Set(Some(SessionCredentialUse::list_to_json(&assignment.uses))),
    }
}

#[async_trait]
impl CredentialRepo for Store {
    async fn list_credentials(&self, project: &ProjectId) -> Result<Vec<Credential>> {
        let rows = credentials::Entity::find()
            .filter(credentials::Column::ProjectId.eq(project.as_str()))
            .order_by_asc(credentials::Column::CreatedAt)
            .order_by_asc(credentials::Column::Id)
            .all(&self.reader)
            .await
            .db()?;
        Ok(rows
            .into_iter()
            .map(credential_from_row)
            .collect::<Result<_, _>>()?)
    }

    async fn get_credential(&self, id: &CredentialId) -> Result<Option<Credential>> {
        let row = credentials::Entity::find_by_id(id.as_str())
            .one(&self.reader)
            .await
            .db()?;
        Ok(row.map(credential_from_row).transpose()?)
    }

    async fn get_credential_by_provider(
        &self,
        project: &ProjectId,
        provider: &str,
    ) -> Result<Option<Credential>> {
        let row = credentials::Entity::find()
            .filter(credentials::Column::ProjectId.eq(project.as_str()))
            .filter(credentials::Column::Provider.eq(provider))
            .one(&self.reader)
            .await
            .db()?;
        Ok(row.map(credential_from_row).transpose()?)
    }

    async fn insert_credential(&self, credential: &Credential) -> Result<()> {
        credentials::Entity::insert(credential_to_row(credential))
            .exec_without_returning(&self.writer)
            .await
            .conflict_as(PROVIDER_TAKEN)?;
        Ok(())
    }

    async fn update_credential(&self, credential: &Credential) -> Result<()> {
        use credentials::Column as C;
        let result = credentials::Entity::update_many()
            .col_expr(C::Provider, Expr::value(credential.provider.clone()))
            .col_expr(C::Name, Expr::value(credential.name.clone()))
            .col_expr(C::Description, Expr::value(credential.description.clone()))
            .col_expr(C::AuthType, Expr::value(credential.auth_type.as_str()))
            .col_expr(C::EncryptedData, Expr::value(credential.sealed.clone()))
            .col_expr(C::IsConfigured, Expr::value(credential.is_configured))
            .col_expr(C::Inactive, Expr::value(credential.inactive))
            .col_expr(C::AgentVisible, Expr::value(credential.visibility.tools))
            .col_expr(
                C::ConsoleVisible,
                Expr::value(credential.visibility.console),
            )
            .col_expr(
                C::ServiceVisible,
                Expr::value(credential.visibility.services),
            )
            .col_expr(C::HookVisible, Expr::value(credential.visibility.hooks))
            .col_expr(C::UpdatedAt, Expr::value(ts(credential.updated_at)))
            .filter(C::Id.eq(credential.id.as_str()))
            .exec(&self.writer)
            .await
            .conflict_as(PROVIDER_TAKEN)?;
        if result.rows_affected == 0 {
            return Err(StoreError::NotFound("Credential not found".into()).into());
        }
        Ok(())
    }

    async fn delete_credential(&self, id: &CredentialId) -> Result<bool> {
        let txn = self.writer.begin().await.db()?;
        assignments::Entity::delete_many()
            .filter(assignments::Column::CredentialId.eq(id.as_str()))
            .exec(&txn)
            .await
            .db()?;
        let deleted = credentials::Entity::delete_by_id(id.as_str())
            .exec(&txn)
            .await
            .db()?;
        txn.commit().await.db()?;
        Ok(deleted.rows_affected > 0)
    }

    async fn list_session_assignments(
        &self,
        session: &SessionId,
    ) -> Result<Vec<SessionCredentialAssignment>> {
        let rows = assignments::Entity::find()
            .filter(assignments::Column::SessionId.eq(session.as_str()))
            .order_by_asc(assignments::Column::CreatedAt)
            .order_by_asc(assignments::Column::Id)
            .all(&self.reader)
            .await
            .db()?;
        Ok(rows.into_iter().map(assignment_from_row).collect())
    }

    async fn replace_session_assignments(
        &self,
        session: &SessionId,
        assignments: &[SessionCredentialAssignment],
    ) -> Result<()> {
        let txn = self.writer.begin().await.db()?;
        assignments::Entity::delete_many()
            .filter(assignments::Column::SessionId.eq(session.as_str()))
            .exec(&txn)
            .await
            .db()?;
        for assignment in assignments {
            if &assignment.session_id != session {
                return Err(StoreError::other("an assignment of another session").into());
            }
            assignments::Entity::insert(assignment_to_row(assignment))
                .exec_without_returning(&txn)
                .await
                .conflict_as("a credential is assigned to the session twice")?;
        }
        txn.commit().await.db()?;
        Ok(())
    }
}

#[async_trait]
impl SettingsRepo for Store {
    async fn get_setting(&self, key: &str) -> Result<Option<Vec<u8>>> {
        let row = settings::Entity::find_by_id(key)
            .one(&self.reader)
            .await
            .db()?;
        Ok(row.map(|row| row.value))
    }

    async fn insert_setting_if_absent(
        &self,
        key: &str,
        value: &[u8],
        now: DateTime<Utc>,
    ) -> Result<Vec<u8>> {
        let now = ts(now);
        settings::Entity::insert(settings::ActiveModel {
            key: Set(key.to_owned()),
            value: Set(value.to_vec()),
            created_at: Set(now),
            updated_at: Set(now),
        })
        .on_conflict(
            OnConflict::column(settings::Column::Key)
                .do_nothing()
                .to_owned(),
        )
        .exec_without_returning(&self.writer)
        .await
        .db()?;
        // Read back on the writer: the value that won, ours or an earlier one.
        let row = settings::Entity::find_by_id(key)
            .one(&self.writer)
            .await
            .db()?
            .ok_or_else(|| StoreError::other(format!("setting {key} vanished after insert")))?;
        Ok(row.value)
    }
}
