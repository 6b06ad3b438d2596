//! `WorkspaceRepo`: workspaces, their status, and their deletion (which soft-deletes their
//! sessions).

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use discobot_core::Result;
use discobot_core::ids::{ProjectId, WorkspaceId};
use discobot_core::model::{SourceType, Workspace, WorkspaceStatus};
use discobot_core::ports::WorkspaceRepo;
use sea_orm::sea_query::{Expr, ExprTrait, Query};
use sea_orm::{
    ActiveValue::Set, ColumnTrait, EntityTrait, QueryFilter, QueryOrder, TransactionTrait,
};

use super::stored;
use crate::Store;
use crate::entity::{sessions, terminal_history, workspaces};
use crate::error::{DbResultExt, StoreError};
use crate::store::ts;

fn workspace_from_row(row: workspaces::Model) -> Result<Workspace, StoreError> {
    Ok(Workspace {
        id: WorkspaceId::new(row.id),
        project_id: ProjectId::new(row.project_id),
        path: row.path,
        display_name: row.display_name,
        source_type: stored("workspace source type", SourceType::parse(&row.source_type))?,
        provider: row.provider,
        auto_generated: row.auto_generated,
        status: stored("workspace status", WorkspaceStatus::parse(&row.status))?,
        error_message: row.error_message,
        work_dir: row.work_dir,
        created_at: row.created_at,
        updated_at: row.updated_at,
    })
}

fn not_found() -> discobot_core::Error {
    StoreError::NotFound("workspace not found".into()).into()
}

#[async_trait]
impl WorkspaceRepo for Store {
    async fn list_workspaces(&self, project: &ProjectId) -> Result<Vec<Workspace>> {
        let rows = workspaces::Entity::find()
            .filter(workspaces::Column::ProjectId.eq(project.as_str()))
            .order_by_desc(workspaces::Column::CreatedAt)
            .order_by_desc(workspaces::Column::Id)
            .all(&self.reader)
            .await
            .db()?;
        Ok(rows
            .into_iter()
            .map(workspace_from_row)
            .collect::<Result<_, _>>()?)
    }

    async fn get_workspace(&self, id: &WorkspaceId) -> Result<Option<Workspace>> {
        let row = workspaces::Entity::find_by_id(id.as_str())
            .one(&self.reader)
            .await
            .db()?;
        Ok(row.map(workspace_from_row).transpose()?)
    }

    async fn create_workspace(&self, workspace: &Workspace) -> Result<()> {
        workspaces::Entity::insert(workspaces::ActiveModel {
            id: Set(workspace.id.as_str().to_owned()),
            project_id: Set(workspace.project_id.as_str().to_owned()),
            path: Set(workspace.path.clone()),
            display_name: Set(workspace.display_name.clone()),
            source_type: Set(workspace.source_type.as_str().to_owned()),
            provider: Set(workspace.provider.clone()),
            auto_generated: Set(workspace.auto_generated),
            status: Set(workspace.status.as_str().to_owned()),
            error_message: Set(workspace.error_message.clone()),
            work_dir: Set(workspace.work_dir.clone()),
            created_at: Set(ts(workspace.created_at)),
            updated_at: Set(ts(workspace.updated_at)),
        })
        .exec_without_returning(&self.writer)
        .await
        .conflict_as("workspace id already exists")?;
        Ok(())
    }

    async fn update_workspace(&self, workspace: &Workspace) -> Result<()> {
        let result = workspaces::Entity::update_many()
            .col_expr(
                workspaces::Column::Path,
                Expr::value(workspace.path.clone()),
            )
            .col_expr(
                workspaces::Column::DisplayName,
                Expr::value(workspace.display_name.clone()),
            )
            .col_expr(
                workspaces::Column::WorkDir,
                Expr::value(workspace.work_dir.clone()),
            )
            .col_expr(
                workspaces::Column::UpdatedAt,
                Expr::value(ts(workspace.updated_at)),
            )
            .filter(workspaces::Column::Id.eq(workspace.id.as_str()))
            .exec(&self.writer)
            .await
            .db()?;
        if result.rows_affected == 0 {
            return Err(not_found());
        }
        Ok(())
    }

    async fn set_workspace_status(
        &self,
        id: &WorkspaceId,
        status: WorkspaceStatus,
        error: Option<&str>,
        work_dir: Option<&str>,
        now: DateTime<Utc>,
    ) -> Result<()> {
        let mut update = workspaces::Entity::update_many()
            .col_expr(workspaces::Column::Status, Expr::value(status.as_str()))
            .col_expr(
                workspaces::Column::ErrorMessage,
                Expr::value(error.map(str::to_owned)),
            )
            .col_expr(workspaces::Column::UpdatedAt, Expr::value(ts(now)));
        // The work dir is only ever set here, never cleared.
        if let Some(work_dir) = work_dir {
            update = update.col_expr(workspaces::Column::WorkDir, Expr::value(work_dir));
        }
        let result = update
            .filter(workspaces::Column::Id.eq(id.as_str()))
            .exec(&self.writer)
            .await
            .db()?;
        if result.rows_affected == 0 {
            return Err(not_found());
        }
        Ok(())
    }

    async fn delete_workspace(&self, id: &WorkspaceId) -> Result<bool> {
        let now = ts(Utc::now());
        let workspace_sessions = Query::select()
            .column(sessions::Column::Id)
            .from(sessions::Entity)
            .and_where(Expr::col(sessions::Column::WorkspaceId).eq(id.as_str()))
            .to_owned();
        let txn = self.writer.begin().await.db()?;
        terminal_history::Entity::delete_many()
            .filter(terminal_history::Column::SessionId.in_subquery(workspace_sessions))
            .exec(&txn)
            .await
            .db()?;
        sessions::Entity::update_many()
            .col_expr(sessions::Column::DeletedAt, Expr::value(Some(now)))
            .col_expr(sessions::Column::UpdatedAt, Expr::value(now))
            .filter(sessions::Column::WorkspaceId.eq(id.as_str()))
            .filter(sessions::Column::DeletedAt.is_null())
            .exec(&txn)
            .await
            .db()?;
        let deleted = workspaces::Entity::delete_by_id(id.as_str())
            .exec(&txn)
            .await
            .db()?;
        if deleted.rows_affected == 0 {
            // Nothing to delete: roll back (by dropping the transaction).
            return Ok(false);
        }
        txn.commit().await.db()?;
        Ok(true)
    }
}
