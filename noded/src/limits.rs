//! Limits: file descriptors (what a link costs, and raising the soft limit to the hard one at
//! start, so a hub or a simulator is bounded by what the administrator allows, not by a login
//! default), and the token bucket every rate limit uses.

use std::time::{Duration, Instant};

/// A token bucket: `rate` per second, bursts of twice that. The rate is passed to each call, so a
/// changed configuration applies at once.
#[derive(Debug, Clone, Copy)]
pub struct RateBucket {
    tokens: f64,
    refilled: Instant,
}

impl RateBucket {
    /// A bucket holding a full burst.
    pub fn full(rate: f64) -> RateBucket {
        RateBucket { tokens: rate * 2.0, refilled: Instant::now() }
    }

    /// Takes one token; false when the bucket is empty (over the rate).
    pub fn take(&mut self, rate: f64) -> bool {
        let now = Instant::now();
        self.tokens = (self.tokens + now.duration_since(self.refilled).as_secs_f64() * rate).min(rate * 2.0);
        self.refilled = now;
        if self.tokens < 1.0 {
            return false;
        }
        self.tokens -= 1.0;
        true
    }

    /// How long since the bucket was last used.
    pub fn idle(&self) -> Duration {
        self.refilled.elapsed()
    }
}

/// Descriptors one link costs the hub: its TCP connection (the hub speaks ZMTP on it itself).
pub const HUB_FDS_PER_LINK: u64 = 1;
/// Descriptors one hub link costs a node or a simulated node: the TCP connection, and the frame
/// guard in front of the zmq.rs DEALER (its listening socket, its end of the relay, the DEALER's).
pub const NODE_FDS_PER_LINK: u64 = 4;
/// Descriptors kept for everything else (logs, key files, the runtime, the listening sockets).
pub const FDS_BASE: u64 = 64;

/// Raises the soft limit on open files to the hard limit. Returns the limit now in force.
pub fn raise_fd_limit() -> u64 {
    use rustix::process::{Resource, getrlimit, setrlimit};
    let mut limit = getrlimit(Resource::Nofile);
    let soft = limit.current.unwrap_or(u64::MAX);
    if let Some(hard) = limit.maximum
        && hard > soft
    {
        limit.current = Some(hard);
        if let Err(e) = setrlimit(Resource::Nofile, limit) {
            tracing::warn!(error = %e, soft, hard, "cannot raise the open-files limit");
            return soft;
        }
        return hard;
    }
    soft
}

/// How many links `limit` descriptors carry at the hub, keeping `reserve` links' worth for other peers.
pub fn link_capacity(limit: u64, reserve: u64) -> u64 {
    (limit.saturating_sub(FDS_BASE) / HUB_FDS_PER_LINK).saturating_sub(reserve)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn capacity_keeps_the_base_and_the_reserve() {
        assert_eq!(link_capacity(20_000, 64), 20_000 - 64 - 64);
        assert_eq!(link_capacity(10, 64), 0);
        assert!(raise_fd_limit() >= 256);
    }
}
