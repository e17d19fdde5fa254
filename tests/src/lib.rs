//! Support for fleet's end-to-end tests: real `noded`, `noded hub` and `fleet` processes.

pub mod driven;
pub mod nats;
pub mod pty;
pub mod support;
