//! The port implementations, one module per `discobot_core::ports` trait, plus the
//! conversions between entity rows and domain records.

mod credentials;
mod events;
mod jobs;
mod members;
mod preferences;
mod projects;
mod sessions;
mod submissions;
mod users;
mod workspaces;

use crate::error::StoreError;

/// Parses a stored enum value; a value nobody writes means a corrupt row.
pub(crate) fn stored<T>(what: &str, parsed: discobot_core::Result<T>) -> Result<T, StoreError> {
    parsed.map_err(|e| StoreError::corrupt(what, e.message))
}

/// A fresh random id for rows whose id nobody outside the store sees.
pub(crate) fn new_id() -> String {
    uuid::Uuid::new_v4().to_string()
}
