//! Serde wire types of the agent API, and the shared-secret hashing both sides agree on.
#![doc = include_str!("../README.md")]

pub mod meta;
pub mod secret;

pub use meta::{ErrorBody, HealthResponse, StatusResponse, UserResponse};
pub use secret::{MalformedSecretHash, SALT_LEN, SecretHash};
