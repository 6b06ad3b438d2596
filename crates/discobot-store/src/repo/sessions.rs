//! `SessionRepo`: sessions (soft-deleted, ids never reused), their guarded status and their
//! terminal history.

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use discobot_core::Result;
use discobot_core::ids::{ProjectId, SessionId, WorkspaceId};
use discobot_core::model::{
    ChatSettings, CommitStatus, Session, SessionStatus, TerminalHistoryEntry,
};
use discobot_core::ports::{CommitRefs, SessionRepo};
use sea_orm::sea_query::{Expr, ExprTrait};
use sea_orm::{
    ActiveValue::Set, ColumnTrait, EntityTrait, QueryFilter, QueryOrder, QuerySelect,
    TransactionTrait,
};

use super::stored;
use crate::Store;
use crate::entity::{sessions, terminal_history};
use crate::error::{DbResultExt, StoreError};
use crate::store::ts;

fn session_from_row(row: sessions::Model) -> Result<Session, StoreError> {
    Ok(Session {
        id: SessionId::new(row.id),
        project_id: ProjectId::new(row.project_id),
        workspace_id: WorkspaceId::new(row.workspace_id),
        name: row.name,
        display_name: row.display_name,
        description: row.description,
        status: stored("session status", SessionStatus::parse(&row.status))?,
        commit_status: match row.commit_status.as_deref() {
            // Upstream stores "no commit" as an empty string.
            None | Some("") => None,
            Some(raw) => Some(stored("commit status", CommitStatus::parse(raw))?),
        },
        commit_operation: row.commit_operation,
        commit_error: row.commit_error,
        base_commit: row.base_commit,
        applied_commit: row.applied_commit,
        error_message: row.error_message,
        workspace_path: row.workspace_path,
        workspace_commit: row.workspace_commit,
        chat_settings: ChatSettings {
            model: row.model,
            reasoning: row.reasoning,
            mode: row.mode,
        },
        created_at: row.created_at,
        updated_at: row.updated_at,
    })
}

fn history_from_row(row: terminal_history::Model) -> TerminalHistoryEntry {
    TerminalHistoryEntry {
        id: row.id,
        session_id: SessionId::new(row.session_id),
        entry_type: row.entry_type,
        content: row.content,
        exit_code: row.exit_code,
        created_at: row.created_at,
    }
}

fn sessions_from_rows(rows: Vec<sessions::Model>) -> Result<Vec<Session>> {
    Ok(rows
        .into_iter()
        .map(session_from_row)
        .collect::<Result<_, _>>()?)
}

/// The statuses `set_session_status` refuses to leave without `force`.
fn terminal_statuses() -> Vec<&'static str> {
    SessionStatus::ALL
        .iter()
        .filter(|s| s.is_terminal())
        .map(|s| s.as_str())
        .collect()
}

impl Store {
    /// Writes the text columns that have a value (the others stay) and `updated_at` of a live
    /// session; whether it exists.
    async fn set_text_columns(
        &self,
        id: &SessionId,
        columns: &[(sessions::Column, &Option<String>)],
        now: DateTime<Utc>,
    ) -> Result<bool> {
        let mut update = sessions::Entity::update_many()
            .col_expr(sessions::Column::UpdatedAt, Expr::value(ts(now)));
        for (column, value) in columns {
            if let Some(value) = value {
                update = update.col_expr(*column, Expr::value(Some(value.clone())));
            }
        }
        let result = update
            .filter(sessions::Column::Id.eq(id.as_str()))
            .filter(sessions::Column::DeletedAt.is_null())
            .exec(&self.writer)
            .await
            .db()?;
        Ok(result.rows_affected == 1)
    }
}

#[async_trait]
impl SessionRepo for Store {
    async fn list_sessions(&self, project: &ProjectId) -> Result<Vec<Session>> {
        let rows = sessions::Entity::find()
            .filter(sessions::Column::ProjectId.eq(project.as_str()))
            .filter(sessions::Column::DeletedAt.is_null())
            .order_by_desc(sessions::Column::CreatedAt)
            .order_by_desc(sessions::Column::Id)
            .all(&self.reader)
            .await
            .db()?;
        sessions_from_rows(rows)
    }

    async fn list_sessions_with_status(&self, statuses: &[SessionStatus]) -> Result<Vec<Session>> {
        let statuses: Vec<&str> = statuses.iter().map(|status| status.as_str()).collect();
        let rows = sessions::Entity::find()
            .filter(sessions::Column::Status.is_in(statuses))
            .filter(sessions::Column::DeletedAt.is_null())
            .order_by_asc(sessions::Column::CreatedAt)
            .all(&self.reader)
            .await
            .db()?;
        sessions_from_rows(rows)
    }

    async fn list_workspace_sessions(&self, workspace: &WorkspaceId) -> Result<Vec<Session>> {
        let rows = sessions::Entity::find()
            .filter(sessions::Column::WorkspaceId.eq(workspace.as_str()))
            .filter(sessions::Column::DeletedAt.is_null())
            .order_by_desc(sessions::Column::CreatedAt)
            .order_by_desc(sessions::Column::Id)
            .all(&self.reader)
            .await
            .db()?;
        sessions_from_rows(rows)
    }

    async fn get_session(&self, id: &SessionId) -> Result<Option<Session>> {
        let row = sessions::Entity::find_by_id(id.as_str())
            .filter(sessions::Column::DeletedAt.is_null())
            .one(&self.reader)
            .await
            .db()?;
        Ok(row.map(session_from_row).transpose()?)
    }

    async fn session_id_taken(&self, id: &SessionId) -> Result<bool> {
        let row = sessions::Entity::find_by_id(id.as_str())
            .select_only()
            .column(sessions::Column::Id)
            .into_tuple::<String>()
            .one(&self.reader)
            .await
            .db()?;
        Ok(row.is_some())
    }

    async fn create_session(&self, session: &Session) -> Result<()> {
        sessions::Entity::insert(sessions::ActiveModel {
            id: Set(session.id.as_str().to_owned()),
            project_id: Set(session.project_id.as_str().to_owned()),
            workspace_id: Set(session.workspace_id.as_str().to_owned()),
            name: Set(session.name.clone()),
            display_name: Set(session.display_name.clone()),
            description: Set(session.description.clone()),
            status: Set(session.status.as_str().to_owned()),
            commit_status: Set(session.commit_status.map(|s| s.as_str().to_owned())),
            commit_operation: Set(session.commit_operation.clone()),
            commit_error: Set(session.commit_error.clone()),
            base_commit: Set(session.base_commit.clone()),
            applied_commit: Set(session.applied_commit.clone()),
            error_message: Set(session.error_message.clone()),
            workspace_path: Set(session.workspace_path.clone()),
            workspace_commit: Set(session.workspace_commit.clone()),
            model: Set(session.chat_settings.model.clone()),
            reasoning: Set(session.chat_settings.reasoning.clone()),
            mode: Set(session.chat_settings.mode.clone()),
            created_at: Set(ts(session.created_at)),
            updated_at: Set(ts(session.updated_at)),
            deleted_at: Set(None),
        })
        .exec_without_returning(&self.writer)
        .await
        .conflict_as("session id already exists")?;
        Ok(())
    }

    async fn update_session_fields(&self, session: &Session) -> Result<()> {
        let result = sessions::Entity::update_many()
            .col_expr(sessions::Column::Name, Expr::value(session.name.clone()))
            .col_expr(
                sessions::Column::DisplayName,
                Expr::value(session.display_name.clone()),
            )
            .col_expr(
                sessions::Column::Description,
                Expr::value(session.description.clone()),
            )
            .col_expr(
                sessions::Column::UpdatedAt,
                Expr::value(ts(session.updated_at)),
            )
            .filter(sessions::Column::Id.eq(session.id.as_str()))
            .filter(sessions::Column::DeletedAt.is_null())
            .exec(&self.writer)
            .await
            .db()?;
        if result.rows_affected == 0 {
            return Err(StoreError::NotFound("session not found".into()).into());
        }
        Ok(())
    }

    async fn set_session_status(
        &self,
        id: &SessionId,
        status: SessionStatus,
        error: Option<&str>,
        force: bool,
        now: DateTime<Utc>,
    ) -> Result<bool> {
        let mut update = sessions::Entity::update_many()
            .col_expr(sessions::Column::Status, Expr::value(status.as_str()))
            .col_expr(
                sessions::Column::ErrorMessage,
                Expr::value(error.map(str::to_owned)),
            )
            .col_expr(sessions::Column::UpdatedAt, Expr::value(ts(now)))
            .filter(sessions::Column::Id.eq(id.as_str()))
            .filter(sessions::Column::DeletedAt.is_null());
        if !force {
            // The guard is part of the UPDATE, so a concurrent delete cannot slip between a
            // read and the write.
            update = update.filter(sessions::Column::Status.is_not_in(terminal_statuses()));
        }
        let result = update.exec(&self.writer).await.db()?;
        Ok(result.rows_affected == 1)
    }

    async fn set_commit_status(
        &self,
        id: &SessionId,
        status: Option<CommitStatus>,
        error: Option<&str>,
        now: DateTime<Utc>,
    ) -> Result<bool> {
        let result = sessions::Entity::update_many()
            .col_expr(
                sessions::Column::CommitStatus,
                Expr::value(status.map_or("", |s| s.as_str()).to_owned()),
            )
            .col_expr(
                sessions::Column::CommitError,
                Expr::value(error.map(str::to_owned)),
            )
            .col_expr(sessions::Column::UpdatedAt, Expr::value(ts(now)))
            .filter(sessions::Column::Id.eq(id.as_str()))
            .filter(sessions::Column::DeletedAt.is_null())
            .exec(&self.writer)
            .await
            .db()?;
        Ok(result.rows_affected == 1)
    }

    async fn begin_commit_operation(
        &self,
        id: &SessionId,
        operation: &str,
        clear_applied: bool,
        now: DateTime<Utc>,
    ) -> Result<bool> {
        let busy = [
            CommitStatus::Pending.as_str(),
            CommitStatus::Committing.as_str(),
        ];
        let mut update = sessions::Entity::update_many()
            .col_expr(
                sessions::Column::CommitStatus,
                Expr::value(Some(CommitStatus::Pending.as_str().to_owned())),
            )
            .col_expr(
                sessions::Column::CommitOperation,
                Expr::value(Some(operation.to_owned())),
            )
            .col_expr(sessions::Column::CommitError, Expr::value(None::<String>))
            .col_expr(sessions::Column::UpdatedAt, Expr::value(ts(now)));
        if clear_applied {
            update = update.col_expr(sessions::Column::AppliedCommit, Expr::value(None::<String>));
        }
        // The status check and the write are one statement: two concurrent requests cannot
        // both start an operation.
        let result = update
            .filter(sessions::Column::Id.eq(id.as_str()))
            .filter(sessions::Column::DeletedAt.is_null())
            .filter(
                sessions::Column::CommitStatus
                    .is_null()
                    .or(sessions::Column::CommitStatus.is_not_in(busy)),
            )
            .exec(&self.writer)
            .await
            .db()?;
        Ok(result.rows_affected == 1)
    }

    async fn set_commit_refs(
        &self,
        id: &SessionId,
        refs: &CommitRefs,
        now: DateTime<Utc>,
    ) -> Result<bool> {
        self.set_text_columns(
            id,
            &[
                (sessions::Column::BaseCommit, &refs.base_commit),
                (sessions::Column::AppliedCommit, &refs.applied_commit),
                (sessions::Column::WorkspaceCommit, &refs.workspace_commit),
            ],
            now,
        )
        .await
    }

    async fn set_chat_settings(
        &self,
        id: &SessionId,
        settings: &ChatSettings,
        now: DateTime<Utc>,
    ) -> Result<bool> {
        self.set_text_columns(
            id,
            &[
                (sessions::Column::Model, &settings.model),
                (sessions::Column::Reasoning, &settings.reasoning),
                (sessions::Column::Mode, &settings.mode),
            ],
            now,
        )
        .await
    }

    async fn soft_delete_session(&self, id: &SessionId, now: DateTime<Utc>) -> Result<()> {
        let now = ts(now);
        let txn = self.writer.begin().await.db()?;
        terminal_history::Entity::delete_many()
            .filter(terminal_history::Column::SessionId.eq(id.as_str()))
            .exec(&txn)
            .await
            .db()?;
        sessions::Entity::update_many()
            .col_expr(sessions::Column::DeletedAt, Expr::value(Some(now)))
            .col_expr(sessions::Column::UpdatedAt, Expr::value(now))
            .filter(sessions::Column::Id.eq(id.as_str()))
            .filter(sessions::Column::DeletedAt.is_null())
            .exec(&txn)
            .await
            .db()?;
        txn.commit().await.db()?;
        Ok(())
    }

    async fn list_terminal_history(
        &self,
        id: &SessionId,
        limit: Option<u64>,
    ) -> Result<Vec<TerminalHistoryEntry>> {
        let mut query = terminal_history::Entity::find()
            .filter(terminal_history::Column::SessionId.eq(id.as_str()))
            .order_by_desc(terminal_history::Column::CreatedAt)
            .order_by_desc(terminal_history::Column::Id);
        if let Some(limit) = limit {
            query = query.limit(limit);
        }
        let rows = query.all(&self.reader).await.db()?;
        Ok(rows.into_iter().map(history_from_row).collect())
    }
}

impl Store {
    /// Records one entry of a session's terminal history.
    pub async fn append_terminal_history(&self, entry: &TerminalHistoryEntry) -> Result<()> {
        terminal_history::Entity::insert(terminal_history::ActiveModel {
            id: Set(entry.id.clone()),
            session_id: Set(entry.session_id.as_str().to_owned()),
            entry_type: Set(entry.entry_type.clone()),
            content: Set(entry.content.clone()),
            exit_code: Set(entry.exit_code),
            created_at: Set(ts(entry.created_at)),
        })
        .exec_without_returning(&self.writer)
        .await
        .db()?;
        Ok(())
    }
}
