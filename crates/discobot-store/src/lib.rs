//! The persistence adapter of discobot: SQLite or PostgreSQL through sea-orm.
#![doc = include_str!("../README.md")]

mod entity;
mod error;
mod repo;
mod store;

pub use error::StoreError;
pub use store::{Store, StoreConfig};
