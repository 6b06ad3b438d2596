//! Sandbox providers: sessions' Docker containers (bollard), and every child process of the
//! server.
#![doc = include_str!("../README.md")]

mod docker;
mod error;
mod image;
pub mod secret;
mod terminal;

pub use docker::{AGENT_PORT, DockerConfig, DockerProvider};
pub use error::SandboxError;
pub use image::LOCAL_BASE_IMAGE;
