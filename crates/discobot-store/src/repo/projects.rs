//! `ProjectRepo`: projects, their creation with an owner, and their deletion with
//! everything in them.

use async_trait::async_trait;
use chrono::Utc;
use discobot_core::Result;
use discobot_core::ids::{ProjectId, UserId};
use discobot_core::model::{Project, Role};
use discobot_core::ports::ProjectRepo;
use sea_orm::sea_query::{Expr, ExprTrait, Query};
use sea_orm::{
    ActiveValue::Set, ColumnTrait, EntityTrait, QueryFilter, QueryOrder, TransactionTrait,
};

use super::new_id;
use crate::Store;
use crate::entity::{
    credentials, project_invitations, project_members, projects, session_credential_assignments,
    sessions, terminal_history, workspaces,
};
use crate::error::{DbResultExt, StoreError};
use crate::store::ts;

pub(crate) fn project_from_row(row: projects::Model) -> Project {
    Project {
        id: ProjectId::new(row.id),
        name: row.name,
        slug: row.slug,
        created_at: row.created_at,
        updated_at: row.updated_at,
    }
}

const SLUG_TAKEN: &str = "a project with this slug already exists";

#[async_trait]
impl ProjectRepo for Store {
    async fn list_projects_for_user(&self, user: &UserId) -> Result<Vec<Project>> {
        let memberships = Query::select()
            .column(project_members::Column::ProjectId)
            .from(project_members::Entity)
            .and_where(Expr::col(project_members::Column::UserId).eq(user.as_str()))
            .to_owned();
        let rows = projects::Entity::find()
            .filter(projects::Column::Id.in_subquery(memberships))
            .order_by_asc(projects::Column::CreatedAt)
            .order_by_asc(projects::Column::Id)
            .all(&self.reader)
            .await
            .db()?;
        Ok(rows.into_iter().map(project_from_row).collect())
    }

    async fn get_project(&self, id: &ProjectId) -> Result<Option<Project>> {
        let row = projects::Entity::find_by_id(id.as_str())
            .one(&self.reader)
            .await
            .db()?;
        Ok(row.map(project_from_row))
    }

    async fn create_project(&self, project: &Project, owner: &UserId) -> Result<()> {
        let txn = self.writer.begin().await.db()?;
        projects::Entity::insert(projects::ActiveModel {
            id: Set(project.id.as_str().to_owned()),
            name: Set(project.name.clone()),
            slug: Set(project.slug.clone()),
            created_at: Set(ts(project.created_at)),
            updated_at: Set(ts(project.updated_at)),
        })
        .exec_without_returning(&txn)
        .await
        .conflict_as(SLUG_TAKEN)?;
        project_members::Entity::insert(project_members::ActiveModel {
            id: Set(new_id()),
            project_id: Set(project.id.as_str().to_owned()),
            user_id: Set(owner.as_str().to_owned()),
            role: Set(Role::Owner.as_str().to_owned()),
            invited_by: Set(None),
            invited_at: Set(None),
            accepted_at: Set(Some(ts(project.created_at))),
        })
        .exec_without_returning(&txn)
        .await
        .db()?;
        txn.commit().await.db()?;
        Ok(())
    }

    async fn update_project(&self, project: &Project) -> Result<()> {
        let result = projects::Entity::update_many()
            .col_expr(projects::Column::Name, Expr::value(project.name.clone()))
            .col_expr(projects::Column::Slug, Expr::value(project.slug.clone()))
            .col_expr(
                projects::Column::UpdatedAt,
                Expr::value(ts(project.updated_at)),
            )
            .filter(projects::Column::Id.eq(project.id.as_str()))
            .exec(&self.writer)
            .await
            .conflict_as(SLUG_TAKEN)?;
        if result.rows_affected == 0 {
            return Err(StoreError::NotFound("project not found".into()).into());
        }
        Ok(())
    }

    async fn delete_project(&self, id: &ProjectId) -> Result<()> {
        let project = id.as_str();
        let now = ts(Utc::now());
        let project_sessions = Query::select()
            .column(sessions::Column::Id)
            .from(sessions::Entity)
            .and_where(Expr::col(sessions::Column::ProjectId).eq(project))
            .to_owned();
        let project_credentials = Query::select()
            .column(credentials::Column::Id)
            .from(credentials::Entity)
            .and_where(Expr::col(credentials::Column::ProjectId).eq(project))
            .to_owned();

        let txn = self.writer.begin().await.db()?;
        terminal_history::Entity::delete_many()
            .filter(terminal_history::Column::SessionId.in_subquery(project_sessions.clone()))
            .exec(&txn)
            .await
            .db()?;
        session_credential_assignments::Entity::delete_many()
            .filter(
                session_credential_assignments::Column::SessionId
                    .in_subquery(project_sessions)
                    .or(session_credential_assignments::Column::CredentialId
                        .in_subquery(project_credentials)),
            )
            .exec(&txn)
            .await
            .db()?;
        // Sessions are soft-deleted: their ids stay taken and their sandboxes are removed
        // later by jobs that look them up.
        sessions::Entity::update_many()
            .col_expr(sessions::Column::DeletedAt, Expr::value(Some(now)))
            .col_expr(sessions::Column::UpdatedAt, Expr::value(now))
            .filter(sessions::Column::ProjectId.eq(project))
            .filter(sessions::Column::DeletedAt.is_null())
            .exec(&txn)
            .await
            .db()?;
        credentials::Entity::delete_many()
            .filter(credentials::Column::ProjectId.eq(project))
            .exec(&txn)
            .await
            .db()?;
        workspaces::Entity::delete_many()
            .filter(workspaces::Column::ProjectId.eq(project))
            .exec(&txn)
            .await
            .db()?;
        project_invitations::Entity::delete_many()
            .filter(project_invitations::Column::ProjectId.eq(project))
            .exec(&txn)
            .await
            .db()?;
        project_members::Entity::delete_many()
            .filter(project_members::Column::ProjectId.eq(project))
            .exec(&txn)
            .await
            .db()?;
        let deleted = projects::Entity::delete_by_id(project)
            .exec(&txn)
            .await
            .db()?;
        if deleted.rows_affected == 0 {
            // Dropping the transaction rolls it back.
            return Err(StoreError::NotFound("project not found".into()).into());
        }
        txn.commit().await.db()?;
        Ok(())
    }
}
