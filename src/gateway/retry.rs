//! The one retry policy: which failures are retried, how long to wait, and whether a wait
//! still fits in the request's deadline. No other module loops on failure.

use std::time::Duration;

use super::provider::ProviderError;

/// What to do after a failed attempt.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verdict {
    /// Transient (connect, timeout, 429, 5xx, malformed reply): retry this target, then fall back.
    Retry,
    /// The target cannot serve this request (401, 403, 404): skip to the next target.
    NextTarget,
    /// The request itself is wrong (400, 413, 422): no other target will do better.
    Fail,
}

pub fn classify(e: &ProviderError) -> Verdict {
    match e {
        ProviderError::Connect(_)
        | ProviderError::Timeout
        | ProviderError::Malformed(_)
        | ProviderError::StreamBroken(_) => Verdict::Retry,
        ProviderError::Status { status, .. } => match status {
            408 | 409 | 425 | 429 | 500..=599 => Verdict::Retry,
            401 | 403 | 404 => Verdict::NextTarget,
            _ => Verdict::Fail,
        },
    }
}

/// Exponential backoff with full jitter: a uniform wait in `[0, min(max, base·2^(attempt-1))]`.
/// `unit` is a uniform random number in `[0, 1)`.
pub fn backoff(attempt: u32, base: Duration, max: Duration, unit: f64) -> Duration {
    let exp = base.saturating_mul(1u32 << attempt.saturating_sub(1).min(16));
    exp.min(max).mul_f64(unit.clamp(0.0, 1.0))
}

/// A random number in `[0, 1)` (backoff jitter, trace sampling; not for anything secret).
pub fn jitter_unit() -> f64 {
    (uuid::Uuid::new_v4().as_u128() >> 75) as f64 / (1u64 << 53) as f64
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn client_errors_are_never_retried() {
        for s in [400, 401, 403, 404, 422] {
            assert_ne!(
                classify(&ProviderError::Status { status: s, retry_after: None, body: String::new() }),
                Verdict::Retry
            );
        }
        for s in [429, 500, 502, 503, 504] {
            assert_eq!(
                classify(&ProviderError::Status { status: s, retry_after: None, body: String::new() }),
                Verdict::Retry
            );
        }
        assert_eq!(classify(&ProviderError::Timeout), Verdict::Retry);
    }

    #[test]
    fn backoff_grows_is_capped_and_jittered() {
        let (b, m) = (Duration::from_millis(100), Duration::from_millis(1000));
        assert_eq!(backoff(1, b, m, 0.5), Duration::from_millis(50));
        assert_eq!(backoff(2, b, m, 0.5), Duration::from_millis(100));
        assert!(backoff(3, b, m, 0.999_999) > Duration::from_millis(399));
        assert!(backoff(10, b, m, 0.999_999) <= m);
        assert_eq!(backoff(5, b, m, 0.0), Duration::ZERO);
        for _ in 0..100 {
            let u = jitter_unit();
            assert!((0.0..1.0).contains(&u));
        }
    }
}
