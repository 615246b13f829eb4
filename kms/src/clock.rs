//! The time seam of the data-key cache.

use std::sync::Mutex;
use std::time::{Duration, Instant};

/// Monotonic time for cache expiry; injected so tests and the simulation control it.
pub trait CacheClock: Send + Sync {
    /// The current instant.
    fn now(&self) -> Instant;
}

/// Production clock: tokio's monotonic time (which also follows `tokio::time::pause`).
#[derive(Debug, Default, Clone, Copy)]
pub struct TokioClock;

impl CacheClock for TokioClock {
    fn now(&self) -> Instant {
        tokio::time::Instant::now().into_std()
    }
}

/// A clock that only moves when told to; for tests and the simulation.
#[derive(Debug)]
pub struct ManualClock {
    start: Instant,
    elapsed: Mutex<Duration>,
}

impl ManualClock {
    /// A clock standing at an arbitrary fixed origin.
    pub fn new() -> Self {
        Self {
            start: Instant::now(),
            elapsed: Mutex::new(Duration::ZERO),
        }
    }

    /// Moves the clock forward.
    pub fn advance(&self, by: Duration) {
        *self.elapsed.lock().unwrap_or_else(|e| e.into_inner()) += by;
    }
}

impl Default for ManualClock {
    fn default() -> Self {
        Self::new()
    }
}

impl CacheClock for ManualClock {
    fn now(&self) -> Instant {
        self.start + *self.elapsed.lock().unwrap_or_else(|e| e.into_inner())
    }
}
