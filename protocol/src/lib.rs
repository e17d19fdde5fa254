//! fleet's wire protocol: the messages that travel between consoles, hubs and nodes, the msgpack
//! codec with its size and depth limits, the filter language, and the transport seam (ZeroMQ and
//! NATS).

pub mod codec;
pub mod domain;
pub mod files;
pub mod filter;
pub mod guard;
pub mod jobs;
pub mod join;
pub mod keys;
pub mod message;
pub mod nats;
pub mod noise;
pub mod router;
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

/// Days since 1970-01-01 → (year, month, day) in the proleptic Gregorian calendar (Howard
/// Hinnant's `civil_from_days`): the one date conversion the audit logs and the faces share.
pub fn civil_from_days(days: i64) -> (i64, u32, u32) {
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let month = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    (yoe + era * 400 + i64::from(month <= 2), month, day)
}
