//! The crate's one error type and its mapping onto the domain error at the port.

/// Why a request to an agent failed. Messages name the failure, never header values.
#[derive(Debug, thiserror::Error)]
pub enum ProxyError {
    /// Connection refused or reset, EOF, timeout: after the last attempt.
    #[error("sandbox unreachable after {attempts} attempts: {message}")]
    Unreachable { attempts: u32, message: String },
    /// The agent kept answering 5xx.
    #[error("sandbox returned retryable status {status} after {attempts} attempts")]
    RetryableStatus { status: u16, attempts: u32 },
    /// A stream could not be opened: the agent's answer and its error text.
    #[error("sandbox returned status {status}: {message}")]
    Status { status: u16, message: String },
    /// An open stream broke off.
    #[error("{0}")]
    Read(String),
    /// The request could not be built (a malformed endpoint URL).
    #[error("invalid agent request: {0}")]
    Request(String),
}

impl From<ProxyError> for discobot_core::Error {
    fn from(error: ProxyError) -> Self {
        // Every failure of the agent's side is the gateway's problem (502), never the
        // client's; the use cases map agent 4xx answers themselves.
        discobot_core::Error::bad_gateway(error.to_string())
    }
}
