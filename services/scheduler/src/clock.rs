//! Time as the scheduler sees it: one `Clock` shared by the store and the
//! worker loop, so a test can move time for both at once.

use std::fmt::Debug;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use async_trait::async_trait;
use certctl_domain::UnixTime;
use tokio::sync::watch;

/// A source of "now" and of sleeping until a moment.
#[async_trait]
pub trait Clock: Send + Sync + Debug + 'static {
    /// Unix seconds.
    fn now(&self) -> UnixTime;
    /// Resolves once `now() >= deadline`; at once if it already is.
    async fn sleep_until(&self, deadline: UnixTime);
}

/// The wall clock.
#[derive(Debug, Clone, Copy, Default)]
pub struct SystemClock;

#[async_trait]
impl Clock for SystemClock {
    fn now(&self) -> UnixTime {
        certctl_domain::now()
    }

    async fn sleep_until(&self, deadline: UnixTime) {
        // Sleep to the start of the deadline's second: `now()` truncates, so
        // that is the first instant at which `now() >= deadline` holds.
        let target = UNIX_EPOCH + Duration::from_secs(u64::try_from(deadline).unwrap_or(0));
        if let Ok(wait) = target.duration_since(SystemTime::now()) {
            tokio::time::sleep(wait).await;
        }
    }
}

/// A clock that moves only when a test says so. Sleepers wake as soon as the
/// time they wait for is reached.
#[derive(Debug)]
pub struct ManualClock {
    now: watch::Sender<UnixTime>,
}

impl ManualClock {
    pub fn new(now: UnixTime) -> Self {
        Self { now: watch::Sender::new(now) }
    }

    pub fn set(&self, now: UnixTime) {
        self.now.send_modify(|t| *t = now);
    }

    pub fn advance(&self, secs: i64) {
        self.now.send_modify(|t| *t += secs);
    }
}

#[async_trait]
impl Clock for ManualClock {
    fn now(&self) -> UnixTime {
        *self.now.borrow()
    }

    async fn sleep_until(&self, deadline: UnixTime) {
        let mut rx = self.now.subscribe();
        // The sender lives as long as `self`, which outlives this borrow.
        let _ = rx.wait_for(|now| *now >= deadline).await;
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use super::*;

    #[tokio::test]
    async fn manual_sleepers_wake_when_time_reaches_them() {
        let clock = Arc::new(ManualClock::new(100));
        let sleeper = {
            let clock = clock.clone();
            tokio::spawn(async move { clock.sleep_until(110).await })
        };
        clock.advance(5);
        tokio::time::sleep(Duration::from_millis(20)).await;
        assert!(!sleeper.is_finished(), "105 is before the deadline");
        clock.advance(5);
        tokio::time::timeout(Duration::from_secs(2), sleeper).await.expect("woke at 110").expect("no panic");
        // A deadline in the past returns at once.
        tokio::time::timeout(Duration::from_millis(100), clock.sleep_until(50)).await.expect("past deadline");
    }

    #[tokio::test]
    async fn system_clock_does_not_sleep_for_past_deadlines() {
        let clock = SystemClock;
        tokio::time::timeout(Duration::from_millis(100), clock.sleep_until(clock.now() - 5)).await.expect("at once");
    }
}
