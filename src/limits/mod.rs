//! Per-key rate limits and budgets, enforced reserve-then-reconcile.
//!
//! Before a call, [`Limiter::reserve`] takes the request, `estimated prompt + capped
//! completion` tokens and the worst-case cost, in one store write transaction that checks every
//! limit against what is already reserved or spent: concurrent requests can never overshoot.
//! After the call, [`Limiter::settle`] replaces the reservation with the actual usage (or
//! releases its tokens and money when the call failed) and adds the usage to the per-key,
//! per-tenant totals. Requests and tokens per minute are a sliding 60 s window; daily and
//! monthly limits follow UTC calendar days and months. State lives in the store, so limits
//! survive restarts; a reservation whose process died stays counted (the safe side).

mod calendar;

use std::sync::Arc;

use crate::config::limits::{KeyLimits, LimitsConfig};
use crate::gateway::usage::Usage;
use crate::metrics;
use crate::store::{StoreError, UsageStore};

pub use calendar::{periods, Periods};

/// What is already counted in a key's windows when a request arrives.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Counters {
    pub minute_requests: u64,
    pub minute_tokens: u64,
    /// The oldest request still in the minute window (for `Retry-After`).
    pub minute_oldest_ms: Option<i64>,
    pub day_tokens: u64,
    pub day_nanos: u64,
    pub month_tokens: u64,
    pub month_nanos: u64,
}

/// Which limit refused a request, with the numbers for the message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Denial {
    pub key_id: String,
    /// Metric label: `rpm`, `tpm`, `daily_tokens`, `monthly_tokens`, `daily_budget`, `monthly_budget`.
    pub limit: &'static str,
    pub used: u64,
    pub asked: u64,
    pub cap: u64,
    pub retry_after_secs: u64,
}

impl std::fmt::Display for Denial {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let (what, money) = match self.limit {
            "rpm" => ("requests per minute", false),
            "tpm" => ("tokens per minute", false),
            "daily_tokens" => ("tokens per day", false),
            "monthly_tokens" => ("tokens per month", false),
            "daily_budget" => ("daily budget", true),
            _ => ("monthly budget", true),
        };
        let n = |v: u64| if money { usd(v) } else { v.to_string() };
        if self.limit == "rpm" {
            write!(f, "key {}: {what} {}/{}", self.key_id, self.used, self.cap)?;
        } else {
            write!(f, "key {}: {what} {} used + {} asked > {}", self.key_id, n(self.used), n(self.asked), n(self.cap))?;
        }
        write!(f, "; retry in {}s", self.retry_after_secs)
    }
}

/// Nano-dollars as `$1.234` (at least two decimals, no float).
pub fn usd(nanos: u64) -> String {
    let frac = format!("{:09}", nanos % 1_000_000_000);
    let trimmed = frac.trim_end_matches('0');
    let shown = if trimmed.len() < 2 { &frac[..2] } else { trimmed };
    format!("${}.{shown}", nanos / 1_000_000_000)
}

/// The first limit that `tokens` and `nanos` more would break, if any.
pub fn check(
    key_id: &str,
    l: &KeyLimits,
    c: &Counters,
    tokens: u64,
    nanos: u64,
    now_ms: i64,
    p: &Periods,
) -> Option<Denial> {
    let minute_wait = c.minute_oldest_ms.map_or(1, |o| secs_until(o + 60_000, now_ms));
    let deny = |limit, used, asked, cap, retry_after_secs| Denial {
        key_id: key_id.to_string(),
        limit,
        used,
        asked,
        cap,
        retry_after_secs,
    };
    if let Some(cap) = l.rpm {
        if c.minute_requests + 1 > cap {
            return Some(deny("rpm", c.minute_requests, 1, cap, minute_wait));
        }
    }
    let over = |used: u64, asked: u64, cap: Option<u64>| cap.filter(|cap| used.saturating_add(asked) > *cap);
    if let Some(cap) = over(c.minute_tokens, tokens, l.tpm) {
        return Some(deny("tpm", c.minute_tokens, tokens, cap, minute_wait));
    }
    let day_wait = secs_until(p.day_end_ms, now_ms);
    let month_wait = secs_until(p.month_end_ms, now_ms);
    if let Some(cap) = over(c.day_tokens, tokens, l.daily_tokens) {
        return Some(deny("daily_tokens", c.day_tokens, tokens, cap, day_wait));
    }
    if let Some(cap) = over(c.month_tokens, tokens, l.monthly_tokens) {
        return Some(deny("monthly_tokens", c.month_tokens, tokens, cap, month_wait));
    }
    if let Some(cap) = over(c.day_nanos, nanos, l.daily_budget_nanos) {
        return Some(deny("daily_budget", c.day_nanos, nanos, cap, day_wait));
    }
    if let Some(cap) = over(c.month_nanos, nanos, l.monthly_budget_nanos) {
        return Some(deny("monthly_budget", c.month_nanos, nanos, cap, month_wait));
    }
    None
}

fn secs_until(at_ms: i64, now_ms: i64) -> u64 {
    u64::try_from((at_ms - now_ms).max(0)).unwrap_or(0).div_ceil(1000).max(1)
}

/// A reservation held between the call and its settlement.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Reservation {
    pub key_id: String,
    pub event_id: i64,
    pub day: String,
    pub month: String,
    pub tokens: u64,
    pub nanos: u64,
}

/// One settled call, for the per-key and per-tenant totals.
#[derive(Debug, Clone)]
pub struct UsageRecord {
    pub tenant: String,
    /// `-` for calls without a key (`--no-auth`).
    pub key_id: String,
    pub model: String,
    pub usage: Usage,
    pub cache_hit: bool,
}

/// Summed usage of one tenant, key and model.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct UsageTotal {
    pub tenant: String,
    pub key_id: String,
    pub model: String,
    pub requests: u64,
    pub prompt_tokens: u64,
    pub completion_tokens: u64,
    pub cached_tokens: u64,
    pub cost_nanodollars: u64,
    pub estimated_requests: u64,
    pub cache_hits: u64,
}

/// The limits in force for one key, and the cap applied to its request.
#[derive(Debug, Clone, Copy)]
pub struct Plan {
    pub limits: KeyLimits,
    /// Completion tokens reserved (and sent upstream as `max_tokens` when the key is metered).
    pub completion_cap: u64,
    /// Whether the client's `max_tokens` was lowered to the key's cap.
    pub capped: bool,
}

pub struct Limiter {
    store: Arc<dyn UsageStore>,
    cfg: LimitsConfig,
}

impl Limiter {
    pub fn new(store: Arc<dyn UsageStore>, cfg: LimitsConfig) -> Self {
        Self { store, cfg }
    }

    /// The key's limits (its own, else the defaults) and the completion cap for a request that
    /// asked for `requested` completion tokens.
    pub async fn plan(&self, key_id: &str, requested: Option<u64>) -> Result<Plan, StoreError> {
        let own = self.store.key_limits(key_id).await?.unwrap_or_default();
        let limits = own.or(self.cfg.defaults);
        let (completion_cap, capped) = match (requested, limits.max_tokens) {
            (Some(r), Some(cap)) if r > cap => (cap, true),
            (Some(r), _) => (r, false),
            (None, Some(cap)) => (cap.min(self.cfg.completion_reserve), false),
            (None, None) => (self.cfg.completion_reserve, false),
        };
        Ok(Plan { limits, completion_cap, capped })
    }

    /// Reserves one request, `tokens` and `nanos` for `key_id`, or says which limit refuses.
    pub async fn reserve(
        &self,
        key_id: &str,
        limits: &KeyLimits,
        tokens: u64,
        nanos: u64,
    ) -> Result<Result<Reservation, Denial>, StoreError> {
        let out = self.store.reserve(key_id, limits, tokens, nanos, crate::trace::now_ms()).await?;
        if let Err(d) = &out {
            metrics::global().inc(
                "keel_limit_rejections_total",
                "Requests refused by a per-key limit, by limit",
                &[("limit", d.limit)],
                1,
            );
        }
        Ok(out)
    }

    /// Replaces a reservation with actual usage (`None`: the call failed, release it) and adds
    /// the usage to the totals.
    pub async fn settle(
        &self,
        reservation: Option<&Reservation>,
        record: Option<&UsageRecord>,
    ) -> Result<(), StoreError> {
        self.store.settle(reservation, record, crate::trace::now_ms()).await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_limit_is_named_with_its_numbers() {
        let p = periods(0);
        let l = KeyLimits { rpm: Some(2), daily_budget_nanos: Some(1_000_000_000), ..Default::default() };
        let c = Counters { minute_requests: 2, minute_oldest_ms: Some(-48_000), ..Default::default() };
        let d = check("key_x", &l, &c, 10, 0, 0, &p).unwrap();
        assert_eq!(d.to_string(), "key key_x: requests per minute 2/2; retry in 12s");
        let c = Counters { minute_requests: 1, day_nanos: 990_000_000, ..Default::default() };
        let d = check("key_x", &l, &c, 10, 20_000_000, 0, &p).unwrap();
        assert_eq!(d.limit, "daily_budget");
        assert!(d.to_string().contains("$0.99 used + $0.02 asked > $1.00"), "{d}");
        assert_eq!(d.retry_after_secs, 86_400);
        assert!(check("key_x", &KeyLimits::default(), &c, u64::MAX, u64::MAX, 0, &p).is_none(), "no limits");
    }

    #[test]
    fn usd_renders_without_floats() {
        assert_eq!(usd(0), "$0.00");
        assert_eq!(usd(1), "$0.000000001");
        assert_eq!(usd(5_000_000_000), "$5.00");
        assert_eq!(usd(1_250_000_000), "$1.25");
    }
}
