//! Domain types, ports and use cases of discobot; no IO happens here.
#![doc = include_str!("../README.md")]

pub mod app;
pub mod credentials;
pub mod error;
pub mod events;
pub mod git;
pub mod ids;
pub mod jobs;
pub mod model;
pub mod ports;
pub mod replay;
pub mod secrets;

pub use app::{App, AppConfig};
pub use error::{Error, ErrorKind, Result};
