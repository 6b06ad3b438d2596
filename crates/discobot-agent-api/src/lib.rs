//! Serde wire types of the agent API, and the shared-secret hashing both sides agree on.
#![doc = include_str!("../README.md")]

pub mod chat;
pub mod chunk;
pub mod meta;
pub mod secret;
pub mod threads;

pub use chat::{
    ChatCancelResponse, ChatRequest, ChatStartResponse, ChatStartStatus, ChatStatusResponse,
};
pub use chunk::{CoreChunk, DataChunk, UiChunk};
pub use meta::{ErrorBody, HealthResponse, StatusResponse, UserResponse};
pub use secret::{MalformedSecretHash, SALT_LEN, SecretHash};
pub use threads::{
    CreateThreadRequest, MessagesResponse, Mode, QueuedPrompt, Role, SuccessResponse, Thread,
    ThreadList, ThreadState, UiMessage, UpdateThreadRequest,
};
