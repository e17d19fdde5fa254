//! Support for fleet's end-to-end tests: real `noded`, `noded hub` and `fleet` processes.

pub mod pty;
pub mod support;
