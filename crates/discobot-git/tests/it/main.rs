//! Integration tests of the git adapter against real repositories; the git CLI is the oracle.

mod classify;
mod clone;
mod prepare;
mod remote;
mod suggest;
mod util;
mod workspace;
