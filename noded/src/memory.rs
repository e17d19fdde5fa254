//! What keeps a daemon small at rest. A node waits nearly all its life on every managed host, so
//! it shares one malloc arena between its few threads, and once a burst of work is over it hands
//! the heap that work freed back to the system; the hub does the same after a large queue went.
//! The hub and `noded sim` are never quiet under load, so they hand it back on a fixed period.

use std::sync::Arc;
use std::time::Duration;

use tokio::sync::{Notify, watch};

/// How long the node must have been quiet before it settles: long enough for a burst of requests
/// to be over, short enough that an idle node is small again within seconds.
const QUIET: Duration = Duration::from_secs(2);

/// Work after which the node settles once it is quiet: start-up, attaching to a hub, a request.
/// Each [`done`](Self::done) restarts the quiet period.
#[derive(Default)]
pub struct Settle(Notify);

impl Settle {
    pub fn done(&self) {
        self.0.notify_one();
    }

    /// Calls [`done`](Self::done) when dropped, on every way out of the work it guards.
    pub fn guard(&self) -> SettleGuard<'_> {
        SettleGuard(self)
    }
}

pub struct SettleGuard<'a>(&'a Settle);

impl Drop for SettleGuard<'_> {
    fn drop(&mut self) {
        self.0.done();
    }
}

/// Settles each time the node has been quiet for [`QUIET`] after work, until `shutdown`.
pub async fn release_when_quiet(settle: Arc<Settle>, mut shutdown: watch::Receiver<bool>) {
    loop {
        tokio::select! {
            _ = settle.0.notified() => {}
            _ = crate::until_set(&mut shutdown) => return,
        }
        loop {
            tokio::select! {
                _ = tokio::time::sleep(QUIET) => break,
                _ = settle.0.notified() => {}
                _ = crate::until_set(&mut shutdown) => return,
            }
        }
        release_freed_heap();
    }
}

/// How often a process that is never quiet for long hands freed heap back (see
/// [`release_periodically`]): often enough that RSS follows the heap in use within seconds, rarely
/// enough that the pages a round reuses are faulted in again at most once per period.
pub const RELEASE_EVERY: Duration = Duration::from_secs(10);

/// Hands the freed heap back every `period`, until `shutdown`. For the hub and `noded sim`, which
/// serve a steady stream of rounds and so never wait out [`QUIET`]: glibc keeps the pages a round
/// freed, so RSS stays at the highest the rounds ever reached though the heap in use is flat (at
/// 1,000 sim nodes and 10 rounds a second, 15 MiB of the sim's RSS was such pages after 10 minutes;
/// each period gives back 2-4 MiB of it in 1-2.5 ms, and the hub's about 0.5 MiB in 0.2 ms).
pub async fn release_periodically(period: Duration, mut shutdown: watch::Receiver<bool>) {
    let mut tick = tokio::time::interval_at(tokio::time::Instant::now() + period, period);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tokio::select! {
            _ = tick.tick() => {}
            _ = crate::until_set(&mut shutdown) => return,
        }
        let (before, started) = (resident_kib(), std::time::Instant::now());
        release_freed_heap();
        tracing::debug!(
            took_us = started.elapsed().as_micros() as u64,
            rss_before_kib = before,
            rss_after_kib = resident_kib(),
            "handed freed heap back"
        );
    }
}

/// This process's resident set in KiB (`/proc/self/statm`); 0 where it cannot be read.
fn resident_kib() -> u64 {
    let pages = std::fs::read_to_string("/proc/self/statm")
        .ok()
        .and_then(|s| s.split_whitespace().nth(1).and_then(|p| p.parse::<u64>().ok()))
        .unwrap_or(0);
    pages * rustix::param::page_size() as u64 / 1024
}

/// Lets glibc keep a single malloc arena. Otherwise every thread that allocates gets one of its
/// own (64 MiB of address space, tens of kB resident, never given back); a node's threads
/// allocate rarely and share one without contention. Call before any other thread starts.
pub fn use_one_malloc_arena() {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    {
        const M_ARENA_MAX: i32 = -8;
        unsafe extern "C" {
            fn mallopt(param: i32, value: i32) -> i32;
        }
        // SAFETY: mallopt only changes the allocator's tuning; no other thread allocates yet.
        unsafe {
            mallopt(M_ARENA_MAX, 1);
        }
    }
}

/// Returns the free pages of every malloc arena to the kernel: glibc keeps them otherwise, and an
/// idle daemon would stay as large as its busiest moment.
pub fn release_freed_heap() {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    {
        unsafe extern "C" {
            fn malloc_trim(pad: usize) -> i32;
        }
        // SAFETY: malloc_trim only returns free heap pages to the kernel; it has no preconditions.
        unsafe {
            malloc_trim(0);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn stops_on_shutdown_even_while_waiting_out_a_quiet_period() {
        let settle = Arc::new(Settle::default());
        let (stop, shutdown) = watch::channel(false);
        drop(settle.guard());
        let release = release_when_quiet(settle.clone(), shutdown);
        stop.send(true).unwrap();
        tokio::time::timeout(Duration::from_secs(1), release).await.expect("stops on shutdown");
    }

    #[tokio::test]
    async fn releases_each_period_until_shutdown() {
        let (stop, shutdown) = watch::channel(false);
        let period = Duration::from_millis(5);
        let release = tokio::spawn(release_periodically(period, shutdown));
        // A few periods go by, each handing the heap back, and the task keeps going.
        tokio::time::sleep(period * 4).await;
        assert!(!release.is_finished());
        stop.send(true).unwrap();
        tokio::time::timeout(Duration::from_secs(1), release).await.expect("stops on shutdown").unwrap();
    }

    #[test]
    fn reads_its_own_resident_set() {
        assert!(resident_kib() > 0);
    }
}
