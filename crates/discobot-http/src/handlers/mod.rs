//! Request handlers, one module per resource; each extracts, calls one use case and maps
//! the result to a DTO.

pub(crate) mod chat;
pub(crate) mod credentials;
pub(crate) mod events;
pub(crate) mod members;
pub(crate) mod meta;
pub(crate) mod preferences;
pub(crate) mod projects;
pub(crate) mod session_files;
pub(crate) mod sessions;
pub(crate) mod terminal;
pub(crate) mod workspace_git;
pub(crate) mod workspaces;
pub(crate) mod ws;
