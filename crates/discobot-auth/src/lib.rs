//! OIDC login and provider OAuth flows; not yet implemented.
#![doc = include_str!("../README.md")]
