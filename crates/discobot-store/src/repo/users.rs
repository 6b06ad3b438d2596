//! `UserRepo`: reading user accounts.

use async_trait::async_trait;
use discobot_core::Result;
use discobot_core::ids::UserId;
use discobot_core::model::User;
use discobot_core::ports::UserRepo;
use sea_orm::{ActiveValue::Set, EntityTrait};

use crate::Store;
use crate::entity::users;
use crate::error::DbResultExt;
use crate::store::ts;

pub(crate) fn user_from_row(row: users::Model) -> User {
    User {
        id: UserId::new(row.id),
        email: row.email,
        name: row.name,
        avatar_url: row.avatar_url,
        provider: row.provider,
        provider_id: row.provider_id,
        created_at: row.created_at,
        updated_at: row.updated_at,
    }
}

#[async_trait]
impl UserRepo for Store {
    async fn get_user(&self, id: &UserId) -> Result<Option<User>> {
        let row = users::Entity::find_by_id(id.as_str())
            .one(&self.reader)
            .await
            .db()?;
        Ok(row.map(user_from_row))
    }
}

impl Store {
    /// Inserts a user account; a taken id or email is a `Conflict`. (The sign-in flow's
    /// find-or-create arrives with the auth issue.)
    pub async fn insert_user(&self, user: &User) -> Result<()> {
        users::Entity::insert(users::ActiveModel {
            id: Set(user.id.as_str().to_owned()),
            email: Set(user.email.clone()),
            name: Set(user.name.clone()),
            avatar_url: Set(user.avatar_url.clone()),
            provider: Set(user.provider.clone()),
            provider_id: Set(user.provider_id.clone()),
            created_at: Set(ts(user.created_at)),
            updated_at: Set(ts(user.updated_at)),
        })
        .exec_without_returning(&self.writer)
        .await
        .conflict_as("a user with this id or email already exists")?;
        Ok(())
    }
}
