//! End-to-end tests of discobot.
