//! Sandbox providers: sessions' Docker containers (bollard) or local agent processes, and
//! every child process of the server.
#![doc = include_str!("../README.md")]

mod debug_proxy;
mod docker;
mod docker_terminal;
mod error;
mod image;
mod local;
pub mod secret;
mod terminal;

pub use debug_proxy::{DebugDockerConfig, DebugDockerServer};
pub use docker::{AGENT_PORT, DockerConfig, DockerProvider};
pub use error::SandboxError;
pub use image::LOCAL_BASE_IMAGE;
pub use local::{LOCAL_IMAGE, LocalConfig, LocalProvider};
