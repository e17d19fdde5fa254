//! fleet's wire protocol: the messages that travel between consoles, hubs and nodes, the msgpack
//! codec with its size and depth limits, the filter language, and the ZeroMQ transport seam.

pub mod codec;
pub mod domain;
pub mod filter;
pub mod guard;
pub mod keys;
pub mod message;
pub mod noise;
pub mod transport;

pub use codec::{CodecError, Limits};
pub use domain::{DOMAIN0, DomainRow};
pub use filter::{Filter, FilterError, FilterExpr, NodeView};
pub use message::*;

/// The protocol version carried in every envelope.
pub const PROTOCOL_VERSION: u8 = 1;

/// Default hub endpoint (ROUTER bind on every interface, port 7402).
pub const DEFAULT_HUB_BIND: &str = "tcp://0.0.0.0:7402";
/// Default endpoint a node or console attaches to when nothing is configured.
pub const DEFAULT_HUB_CONNECT: &str = "tcp://127.0.0.1:7402";

/// Milliseconds since the Unix epoch, the time unit used on the wire.
pub fn now_ms() -> u64 {
    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map(|d| d.as_millis() as u64).unwrap_or(0)
}

/// A fresh random request id: 32 lowercase hex characters.
pub fn new_request_id() -> String {
    let bytes: [u8; 16] = rand::random();
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}
