//! The crate's error type and its mapping onto the domain's `ErrorKind`s.

use discobot_core::{Error, ErrorKind};

/// What went wrong in a git or filesystem operation.
///
/// Every variant carries a message that is fit to show a user (paths and URLs are theirs).
#[derive(Debug, thiserror::Error)]
pub enum GitError {
    /// The path given cannot be used (not absolute, not a directory, not a repository, …).
    #[error("{0}")]
    InvalidPath(String),
    /// The caller's data cannot be used (a malformed replay bundle).
    #[error("{0}")]
    InvalidInput(String),
    /// Something that should exist does not.
    #[error("{0}")]
    NotFound(String),
    /// The remote did not answer as a git repository (bad URL, unreachable, auth needed).
    #[error("{0}")]
    Remote(String),
    /// The repository's state forbids the operation (dirty checkout, nothing to commit).
    #[error("{0}")]
    Conflict(String),
    /// A configured remote failed to answer (fetch).
    #[error("{0}")]
    Upstream(String),
    /// Anything unexpected: IO failures, gix errors, a panicked worker.
    #[error("{0}")]
    Other(String),
}

impl From<GitError> for Error {
    fn from(err: GitError) -> Self {
        match err {
            GitError::InvalidPath(m) => Error::new(ErrorKind::InvalidInput, m),
            GitError::InvalidInput(m) => Error::new(ErrorKind::InvalidInput, m),
            GitError::NotFound(m) => Error::new(ErrorKind::NotFound, m),
            // The user's URL does not answer: that is their input, not our outage.
            GitError::Remote(m) => Error::new(ErrorKind::InvalidInput, m),
            GitError::Conflict(m) => Error::new(ErrorKind::Conflict, m),
            GitError::Upstream(m) => Error::new(ErrorKind::BadGateway, m),
            GitError::Other(m) => Error::new(ErrorKind::Internal, m),
        }
    }
}

impl From<gix::Error> for GitError {
    fn from(err: gix::Error) -> Self {
        GitError::Other(chain(&err))
    }
}

/// Renders an error and its sources as `outer: inner: innermost`, skipping repeats.
pub(crate) fn chain(err: &(dyn std::error::Error + 'static)) -> String {
    let mut out = err.to_string();
    let mut source = err.source();
    while let Some(cause) = source {
        let text = cause.to_string();
        if !text.is_empty() && !out.contains(&text) {
            out.push_str(": ");
            out.push_str(&text);
        }
        source = cause.source();
    }
    out
}
