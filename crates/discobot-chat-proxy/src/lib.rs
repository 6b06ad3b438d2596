//! The server's client of the in-sandbox agent API: `AgentClient` (the `AgentPort`) and the
//! SSE parser its streams use.
#![doc = include_str!("../README.md")]

mod client;
mod error;
pub mod sse;

pub use client::{AgentClient, RetryPolicy, error_text};
pub use error::ProxyError;
