//! Hand-written sea-orm entities, one module per table; crate-private, the rest of the
//! world sees only `discobot_core` types.

pub(crate) mod credentials;
pub(crate) mod jobs;
pub(crate) mod project_events;
pub(crate) mod project_invitations;
pub(crate) mod project_members;
pub(crate) mod projects;
pub(crate) mod prompt_submissions;
pub(crate) mod session_credential_assignments;
pub(crate) mod sessions;
pub(crate) mod settings;
pub(crate) mod terminal_history;
pub(crate) mod user_preferences;
pub(crate) mod users;
pub(crate) mod workspaces;
