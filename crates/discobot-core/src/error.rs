//! The one error type of the domain and the kinds that decide an HTTP status.

/// What went wrong, coarse enough to pick a response status from.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ErrorKind {
    /// The caller sent something we cannot act on (400).
    InvalidInput,
    /// No user is known for the request (401).
    Unauthenticated,
    /// The user is known but may not do this (403).
    Forbidden,
    /// The thing named does not exist (404).
    NotFound,
    /// The request clashes with the current state (409).
    Conflict,
    /// The request body is larger than we accept (413).
    PayloadTooLarge,
    /// The server does not offer this feature in this configuration (501).
    NotImplemented,
    /// A dependency (database, Docker, git remote) is not reachable now (503).
    Unavailable,
    /// The session's agent failed or answered something unusable (502).
    BadGateway,
    /// A bug or an unexpected failure; details are logged, not shown (500).
    Internal,
}

/// A domain error: a kind and a human-readable message.
///
/// Messages of `Internal` errors may contain details for the log; the HTTP layer never
/// shows them to clients.
#[derive(Debug, thiserror::Error)]
#[error("{message}")]
pub struct Error {
    pub kind: ErrorKind,
    pub message: String,
    /// Extra fields of the error answer besides `error` (e.g. the `completionId` of a chat
    /// conflict); `None` for nearly every error.
    pub details: Option<Box<serde_json::Map<String, serde_json::Value>>>,
}

pub type Result<T, E = Error> = std::result::Result<T, E>;

impl Error {
    pub fn new(kind: ErrorKind, message: impl Into<String>) -> Self {
        Error {
            kind,
            message: message.into(),
            details: None,
        }
    }
    pub fn invalid(message: impl Into<String>) -> Self {
        Self::new(ErrorKind::InvalidInput, message)
    }
    pub fn not_found(message: impl Into<String>) -> Self {
        Self::new(ErrorKind::NotFound, message)
    }
    pub fn forbidden(message: impl Into<String>) -> Self {
        Self::new(ErrorKind::Forbidden, message)
    }
    pub fn conflict(message: impl Into<String>) -> Self {
        Self::new(ErrorKind::Conflict, message)
    }
    pub fn unavailable(message: impl Into<String>) -> Self {
        Self::new(ErrorKind::Unavailable, message)
    }
    pub fn bad_gateway(message: impl Into<String>) -> Self {
        Self::new(ErrorKind::BadGateway, message)
    }
    pub fn internal(message: impl Into<String>) -> Self {
        Self::new(ErrorKind::Internal, message)
    }
    pub fn not_implemented(message: impl Into<String>) -> Self {
        Self::new(ErrorKind::NotImplemented, message)
    }

    /// Prefixes the message with what was being done, keeping the kind.
    pub fn context(self, what: &str) -> Self {
        Error {
            kind: self.kind,
            message: format!("{what}: {}", self.message),
            details: self.details,
        }
    }

    /// Adds fields to the error answer (`error` itself cannot be overridden).
    pub fn with_details(mut self, details: serde_json::Map<String, serde_json::Value>) -> Self {
        if !details.is_empty() {
            self.details = Some(Box::new(details));
        }
        self
    }
}
