//! The in-sandbox agent library; not yet implemented.
#![doc = include_str!("../README.md")]
