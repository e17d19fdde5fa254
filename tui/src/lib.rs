//! fleet: the full-screen console and the scriptable CLI, two faces over the client core
//! (`fleet-client`). `cli/` parses, calls the core and prints; `console/` draws and sends the
//! core's work to its network task. `demo` and `bench` run an embedded hub and nodes (the only
//! code here that links the daemon).

pub mod bench;
pub mod cli;
pub mod config;
pub mod console;
pub mod demo;

pub use cli::main_entry;
