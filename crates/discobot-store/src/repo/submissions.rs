//! `PromptSubmissionRepo`: chat prompts by (session, thread, client message id).

use async_trait::async_trait;
use discobot_core::Result;
use discobot_core::ids::{ProjectId, SessionId};
use discobot_core::model::{PromptSubmission, SubmissionStatus};
use discobot_core::ports::PromptSubmissionRepo;
use sea_orm::sea_query::OnConflict;
use sea_orm::{ActiveValue::Set, ColumnTrait, EntityTrait, QueryFilter};

use super::stored;
use crate::Store;
use crate::entity::prompt_submissions;
use crate::error::{DbResultExt, StoreError};
use crate::store::ts;

fn submission(row: prompt_submissions::Model) -> std::result::Result<PromptSubmission, StoreError> {
    Ok(PromptSubmission {
        id: row.id,
        project_id: ProjectId::new(row.project_id),
        session_id: SessionId::new(row.session_id),
        thread_id: row.thread_id,
        client_message_id: row.client_message_id,
        payload_hash: row.payload_hash,
        status: stored("submission status", SubmissionStatus::parse(&row.status))?,
        completion_id: row.completion_id,
        queued_prompt_id: row.queued_prompt_id,
        result_status: row.result_status,
        error_message: row.error_message,
        payload_sealed: row.payload_sealed,
        created_at: row.created_at,
        updated_at: row.updated_at,
    })
}

#[async_trait]
impl PromptSubmissionRepo for Store {
    async fn insert_submission_if_absent(
        &self,
        new: &PromptSubmission,
    ) -> Result<PromptSubmission> {
        prompt_submissions::Entity::insert(prompt_submissions::ActiveModel {
            id: Set(new.id.clone()),
            project_id: Set(new.project_id.to_string()),
            session_id: Set(new.session_id.to_string()),
            thread_id: Set(new.thread_id.clone()),
            client_message_id: Set(new.client_message_id.clone()),
            payload_hash: Set(new.payload_hash.clone()),
            status: Set(new.status.as_str().to_owned()),
            completion_id: Set(new.completion_id.clone()),
            queued_prompt_id: Set(new.queued_prompt_id.clone()),
            result_status: Set(new.result_status.clone()),
            error_message: Set(new.error_message.clone()),
            payload_sealed: Set(new.payload_sealed.clone()),
            created_at: Set(ts(new.created_at)),
            updated_at: Set(ts(new.updated_at)),
        })
        .on_conflict(
            OnConflict::columns([
                prompt_submissions::Column::SessionId,
                prompt_submissions::Column::ThreadId,
                prompt_submissions::Column::ClientMessageId,
            ])
            .do_nothing()
            .to_owned(),
        )
        .exec_without_returning(&self.writer)
        .await
        .db()?;
        // Read back on the writer: the row that holds the key, ours or an earlier one.
        let row = prompt_submissions::Entity::find()
            .filter(prompt_submissions::Column::SessionId.eq(new.session_id.as_str()))
            .filter(prompt_submissions::Column::ThreadId.eq(new.thread_id.as_str()))
            .filter(prompt_submissions::Column::ClientMessageId.eq(new.client_message_id.as_str()))
            .one(&self.writer)
            .await
            .db()?
            .ok_or_else(|| StoreError::other("prompt submission vanished after insert"))?;
        Ok(submission(row)?)
    }

    async fn get_submission(&self, id: &str) -> Result<Option<PromptSubmission>> {
        let row = prompt_submissions::Entity::find_by_id(id)
            .one(&self.writer)
            .await
            .db()?;
        Ok(row.map(submission).transpose()?)
    }

    async fn update_submission(&self, changed: &PromptSubmission) -> Result<()> {
        prompt_submissions::Entity::update_many()
            .set(prompt_submissions::ActiveModel {
                status: Set(changed.status.as_str().to_owned()),
                completion_id: Set(changed.completion_id.clone()),
                queued_prompt_id: Set(changed.queued_prompt_id.clone()),
                result_status: Set(changed.result_status.clone()),
                error_message: Set(changed.error_message.clone()),
                payload_sealed: Set(changed.payload_sealed.clone()),
                updated_at: Set(ts(changed.updated_at)),
                ..Default::default()
            })
            .filter(prompt_submissions::Column::Id.eq(changed.id.as_str()))
            .exec(&self.writer)
            .await
            .db()?;
        Ok(())
    }
}
