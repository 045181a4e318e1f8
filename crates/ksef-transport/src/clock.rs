//! Time and sleeping behind a trait, so retry and pacing tests run without real waiting.

use std::fmt::Debug;
use std::future::Future;
use std::pin::Pin;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime};

/// A boxed sleep future.
pub type SleepFuture = Pin<Box<dyn Future<Output = ()> + Send>>;

/// The source of time for retries and pacing.
pub trait Clock: Send + Sync + Debug {
    /// Monotonic time since an arbitrary origin fixed for this clock.
    fn now(&self) -> Duration;
    /// Wall-clock time (used to turn a `Retry-After` HTTP date into a delay).
    fn wall(&self) -> SystemTime;
    /// Waits for `duration`.
    fn sleep(&self, duration: Duration) -> SleepFuture;
}

/// The real clock: `std::time::Instant` and `tokio::time::sleep`.
#[derive(Debug, Clone)]
pub struct TokioClock {
    origin: Instant,
}

impl TokioClock {
    /// A clock whose origin is now.
    pub fn new() -> Self {
        Self {
            origin: Instant::now(),
        }
    }
}

impl Default for TokioClock {
    fn default() -> Self {
        Self::new()
    }
}

impl Clock for TokioClock {
    fn now(&self) -> Duration {
        self.origin.elapsed()
    }
    fn wall(&self) -> SystemTime {
        SystemTime::now()
    }
    fn sleep(&self, duration: Duration) -> SleepFuture {
        Box::pin(tokio::time::sleep(duration))
    }
}

/// A clock that only moves when told to, or when something sleeps on it (the sleep returns at
/// once and advances the clock). Records every sleep. For tests — of this crate and its users.
#[derive(Debug, Clone)]
pub struct ManualClock {
    state: Arc<Mutex<ManualState>>,
}

#[derive(Debug)]
struct ManualState {
    now: Duration,
    wall_origin: SystemTime,
    sleeps: Vec<Duration>,
}

impl ManualClock {
    /// A clock at monotonic zero and wall time 2026-01-01T00:00:00Z.
    pub fn new() -> Self {
        Self {
            state: Arc::new(Mutex::new(ManualState {
                now: Duration::ZERO,
                wall_origin: SystemTime::UNIX_EPOCH + Duration::from_secs(1_767_225_600),
                sleeps: Vec::new(),
            })),
        }
    }

    fn with<R>(&self, f: impl FnOnce(&mut ManualState) -> R) -> R {
        // A poisoned lock only means another test thread panicked; the state is still usable.
        let mut guard = match self.state.lock() {
            Ok(g) => g,
            Err(poisoned) => poisoned.into_inner(),
        };
        f(&mut guard)
    }

    /// Moves the clock forward.
    pub fn advance(&self, by: Duration) {
        self.with(|s| s.now += by);
    }

    /// Every sleep requested so far, in order.
    pub fn sleeps(&self) -> Vec<Duration> {
        self.with(|s| s.sleeps.clone())
    }

    /// The sum of all sleeps so far.
    pub fn total_slept(&self) -> Duration {
        self.with(|s| s.sleeps.iter().sum())
    }
}

impl Default for ManualClock {
    fn default() -> Self {
        Self::new()
    }
}

impl Clock for ManualClock {
    fn now(&self) -> Duration {
        self.with(|s| s.now)
    }
    fn wall(&self) -> SystemTime {
        self.with(|s| s.wall_origin + s.now)
    }
    fn sleep(&self, duration: Duration) -> SleepFuture {
        self.with(|s| {
            s.sleeps.push(duration);
            s.now += duration;
        });
        Box::pin(std::future::ready(()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn manual_clock_advances_on_sleep() {
        let c = ManualClock::new();
        let w0 = c.wall();
        c.sleep(Duration::from_secs(3)).await;
        c.advance(Duration::from_millis(500));
        assert_eq!(c.now(), Duration::from_millis(3500));
        assert_eq!(
            c.wall().duration_since(w0).unwrap(),
            Duration::from_millis(3500)
        );
        assert_eq!(c.sleeps(), vec![Duration::from_secs(3)]);
        assert_eq!(c.total_slept(), Duration::from_secs(3));
    }
}
