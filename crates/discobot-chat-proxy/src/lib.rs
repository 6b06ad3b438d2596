//! The server's client of the in-sandbox agent API; not yet implemented.
#![doc = include_str!("../README.md")]
