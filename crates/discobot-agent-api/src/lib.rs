//! Serde wire types of the agent API; not yet implemented.
#![doc = include_str!("../README.md")]
