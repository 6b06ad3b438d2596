//! Sandbox providers (Docker via bollard, local) and every child process of the server; not yet implemented.
#![doc = include_str!("../README.md")]
