//! User preferences: free-form key/value pairs scoped to the user, not the project.

use chrono::Utc;

use super::{App, Principal, check_text};
use crate::error::{Error, Result};
use crate::model::Preference;

const MAX_KEY_CHARS: usize = 255;
const MAX_VALUE_BYTES: usize = 256 * 1024;

impl App {
    pub async fn list_preferences(&self, principal: &Principal) -> Result<Vec<Preference>> {
        self.ports
            .preferences
            .list_preferences(&principal.user_id)
            .await
    }

    pub async fn get_preference(&self, principal: &Principal, key: &str) -> Result<Preference> {
        check_key(key)?;
        self.ports
            .preferences
            .get_preference(&principal.user_id, key)
            .await?
            .ok_or_else(|| Error::not_found("Preference not found"))
    }

    /// Upserts all pairs at once (all or nothing) and returns them as stored.
    pub async fn set_preferences(
        &self,
        principal: &Principal,
        values: Vec<(String, String)>,
    ) -> Result<Vec<Preference>> {
        for (key, value) in &values {
            check_key(key)?;
            if value.len() > MAX_VALUE_BYTES {
                return Err(Error::invalid(format!(
                    "value of {key:?} is larger than {MAX_VALUE_BYTES} bytes"
                )));
            }
            // PostgreSQL text cannot hold NUL: refuse it on every backend alike.
            if value.contains('\0') {
                return Err(Error::invalid(format!(
                    "value of {key:?} must not contain NUL characters"
                )));
            }
        }
        let now = Utc::now();
        self.ports
            .preferences
            .set_preferences(&principal.user_id, &values, now)
            .await?;
        Ok(values
            .into_iter()
            .map(|(key, value)| Preference {
                key,
                value,
                updated_at: now,
            })
            .collect())
    }

    pub async fn delete_preference(&self, principal: &Principal, key: &str) -> Result<()> {
        check_key(key)?;
        if self
            .ports
            .preferences
            .delete_preference(&principal.user_id, key)
            .await?
        {
            Ok(())
        } else {
            Err(Error::not_found("Preference not found"))
        }
    }
}

fn check_key(key: &str) -> Result<()> {
    if key.trim().is_empty() {
        return Err(Error::invalid("Key is required"));
    }
    check_text(key, "key", MAX_KEY_CHARS)
}
