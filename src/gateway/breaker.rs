//! A circuit breaker per target (provider + model + credential).
//!
//! Closed: requests flow; outcomes fill a rolling window. It opens when the window holds at
//! least `min_requests` outcomes and the error ratio reaches the threshold, or at once on 429
//! with Retry-After (until then). Open: requests skip the target. After the cooldown it is
//! half-open: one probe goes through; success closes it, failure opens it again.

use std::collections::VecDeque;
use std::sync::Mutex;
use std::time::{Duration, Instant};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum State {
    Closed,
    Open,
    HalfOpen,
}

impl State {
    pub fn as_str(self) -> &'static str {
        match self {
            State::Closed => "closed",
            State::Open => "open",
            State::HalfOpen => "half_open",
        }
    }
}

#[derive(Debug, Clone, Copy)]
pub struct BreakerConfig {
    pub window: usize,
    pub min_requests: usize,
    pub error_ratio: f64,
    pub cooldown: Duration,
}

struct Inner {
    outcomes: VecDeque<bool>,
    open_until: Option<Instant>,
    probe_in_flight: bool,
}

pub struct Breaker {
    cfg: BreakerConfig,
    inner: Mutex<Inner>,
}

impl Breaker {
    pub fn new(cfg: BreakerConfig) -> Self {
        Self { cfg, inner: Mutex::new(Inner { outcomes: VecDeque::new(), open_until: None, probe_in_flight: false }) }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Inner> {
        // A poisoned lock only means another request panicked mid-update; the counters are
        // still usable.
        self.inner.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    pub fn state(&self) -> State {
        let g = self.lock();
        match g.open_until {
            None => State::Closed,
            Some(t) if Instant::now() < t => State::Open,
            Some(_) => State::HalfOpen,
        }
    }

    /// Whether a request may go to this target now (takes the half-open probe slot).
    pub fn try_acquire(&self) -> bool {
        let mut g = self.lock();
        match g.open_until {
            None => true,
            Some(t) if Instant::now() < t => false,
            Some(_) if g.probe_in_flight => false,
            Some(_) => {
                g.probe_in_flight = true;
                true
            }
        }
    }

    pub fn record_success(&self) {
        let mut g = self.lock();
        if g.open_until.is_some() {
            g.open_until = None;
            g.probe_in_flight = false;
            g.outcomes.clear();
        }
        g.outcomes.push_back(true);
        while g.outcomes.len() > self.cfg.window {
            g.outcomes.pop_front();
        }
    }

    /// Records a failure; `retry_after` (from a 429) opens the breaker until then.
    pub fn record_failure(&self, retry_after: Option<Duration>) {
        let mut g = self.lock();
        let now = Instant::now();
        if g.open_until.is_some() {
            // A failed probe (or a late failure while open): open for another cooldown.
            g.probe_in_flight = false;
            g.open_until = Some(now + retry_after.unwrap_or(self.cfg.cooldown).max(self.cfg.cooldown));
            return;
        }
        g.outcomes.push_back(false);
        while g.outcomes.len() > self.cfg.window {
            g.outcomes.pop_front();
        }
        if let Some(wait) = retry_after {
            g.open_until = Some(now + wait);
            return;
        }
        let n = g.outcomes.len();
        let errors = g.outcomes.iter().filter(|ok| !**ok).count();
        if n >= self.cfg.min_requests && errors as f64 / n as f64 >= self.cfg.error_ratio {
            g.open_until = Some(now + self.cfg.cooldown);
        }
    }

    /// Releases a half-open probe slot that was taken but not used.
    pub fn release(&self) {
        self.lock().probe_in_flight = false;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cfg() -> BreakerConfig {
        BreakerConfig { window: 10, min_requests: 4, error_ratio: 0.5, cooldown: Duration::from_millis(50) }
    }

    #[test]
    fn opens_at_the_threshold_then_half_opens_and_closes_on_a_good_probe() {
        let b = Breaker::new(cfg());
        b.record_success();
        b.record_success();
        b.record_failure(None);
        assert_eq!(b.state(), State::Closed, "3 outcomes < min_requests");
        b.record_failure(None);
        assert_eq!(b.state(), State::Open, "2/4 errors = 0.5");
        assert!(!b.try_acquire());
        std::thread::sleep(Duration::from_millis(60));
        assert_eq!(b.state(), State::HalfOpen);
        assert!(b.try_acquire(), "one probe");
        assert!(!b.try_acquire(), "only one probe at a time");
        b.record_success();
        assert_eq!(b.state(), State::Closed);
        assert!(b.try_acquire());
    }

    #[test]
    fn a_failed_probe_reopens_and_429_opens_at_once() {
        let b = Breaker::new(cfg());
        b.record_failure(Some(Duration::from_millis(40)));
        assert_eq!(b.state(), State::Open);
        std::thread::sleep(Duration::from_millis(50));
        assert!(b.try_acquire());
        b.record_failure(None);
        assert_eq!(b.state(), State::Open);
    }
}
