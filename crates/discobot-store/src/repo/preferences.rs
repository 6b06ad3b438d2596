//! `PreferenceRepo`: per-user key/value preferences.

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use discobot_core::Result;
use discobot_core::ids::UserId;
use discobot_core::model::Preference;
use discobot_core::ports::PreferenceRepo;
use sea_orm::sea_query::OnConflict;
use sea_orm::{
    ActiveValue::Set, ColumnTrait, EntityTrait, QueryFilter, QueryOrder, TransactionTrait,
};

use super::new_id;
use crate::Store;
use crate::entity::user_preferences;
use crate::error::DbResultExt;
use crate::store::ts;

fn preference_from_row(row: user_preferences::Model) -> Preference {
    Preference {
        key: row.key,
        value: row.value,
        updated_at: row.updated_at,
    }
}

#[async_trait]
impl PreferenceRepo for Store {
    async fn list_preferences(&self, user: &UserId) -> Result<Vec<Preference>> {
        let rows = user_preferences::Entity::find()
            .filter(user_preferences::Column::UserId.eq(user.as_str()))
            .order_by_asc(user_preferences::Column::Key)
            .all(&self.reader)
            .await
            .db()?;
        Ok(rows.into_iter().map(preference_from_row).collect())
    }

    async fn get_preference(&self, user: &UserId, key: &str) -> Result<Option<Preference>> {
        let row = user_preferences::Entity::find()
            .filter(user_preferences::Column::UserId.eq(user.as_str()))
            .filter(user_preferences::Column::Key.eq(key))
            .one(&self.reader)
            .await
            .db()?;
        Ok(row.map(preference_from_row))
    }

    async fn set_preferences(
        &self,
        user: &UserId,
        values: &[(String, String)],
        now: DateTime<Utc>,
    ) -> Result<()> {
        let now = ts(now);
        let txn = self.writer.begin().await.db()?;
        for (key, value) in values {
            user_preferences::Entity::insert(user_preferences::ActiveModel {
                id: Set(new_id()),
                user_id: Set(user.as_str().to_owned()),
                key: Set(key.clone()),
                value: Set(value.clone()),
                created_at: Set(now),
                updated_at: Set(now),
            })
            .on_conflict(
                OnConflict::columns([
                    user_preferences::Column::UserId,
                    user_preferences::Column::Key,
                ])
                .update_columns([
                    user_preferences::Column::Value,
                    user_preferences::Column::UpdatedAt,
                ])
                .to_owned(),
            )
            .exec_without_returning(&txn)
            .await
            .db()?;
        }
        txn.commit().await.db()?;
        Ok(())
    }

    async fn delete_preference(&self, user: &UserId, key: &str) -> Result<bool> {
        let result = user_preferences::Entity::delete_many()
            .filter(user_preferences::Column::UserId.eq(user.as_str()))
            .filter(user_preferences::Column::Key.eq(key))
            .exec(&self.writer)
            .await
            .db()?;
        Ok(result.rows_affected > 0)
    }
}
