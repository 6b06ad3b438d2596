//! The sandbox crate's error type and its mapping to the domain's error kinds.

use discobot_core::{Error, ErrorKind};

#[derive(Debug, thiserror::Error)]
pub enum SandboxError {
    /// The Docker daemon cannot be reached.
    #[error("docker is not available: {0}")]
    Unavailable(String),
    /// The provider cannot run sandboxes (the local provider's agent binary is missing).
    #[error("{0}")]
    ProviderUnavailable(String),
    /// The sandbox image is missing or being built.
    #[error("{0}")]
    ImageNotReady(String),
    #[error("sandbox not found: {0}")]
    NotFound(String),
    /// The agent in the sandbox did not become healthy.
    #[error("sandbox health check failed: {0}")]
    Unhealthy(String),
    #[error("{0}")]
    Other(String),
}

impl From<bollard::errors::Error> for SandboxError {
    fn from(error: bollard::errors::Error) -> Self {
        match &error {
            bollard::errors::Error::DockerResponseServerError {
                status_code: 404,
                message,
            } => SandboxError::NotFound(message.clone()),
            bollard::errors::Error::SocketNotFoundError(_)
            | bollard::errors::Error::HyperResponseError { .. } => {
                SandboxError::Unavailable(error.to_string())
            }
            _ => SandboxError::Other(error.to_string()),
        }
    }
}

impl From<SandboxError> for Error {
    fn from(error: SandboxError) -> Self {
        let kind = match &error {
            SandboxError::Unavailable(_)
            | SandboxError::ProviderUnavailable(_)
            | SandboxError::ImageNotReady(_) => ErrorKind::Unavailable,
            SandboxError::NotFound(_) => ErrorKind::NotFound,
            SandboxError::Unhealthy(_) | SandboxError::Other(_) => ErrorKind::Internal,
        };
        Error::new(kind, error.to_string())
    }
}

impl From<std::io::Error> for SandboxError {
    fn from(error: std::io::Error) -> Self {
        SandboxError::Other(error.to_string())
    }
}

/// `true` when Docker says the object does not exist.
pub(crate) fn is_not_found(error: &bollard::errors::Error) -> bool {
    matches!(
        error,
        bollard::errors::Error::DockerResponseServerError {
            status_code: 404,
            ..
        }
    )
}
