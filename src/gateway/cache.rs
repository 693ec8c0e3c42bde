//! The exact response cache for gateway completions (in memory, bounded, with a TTL).
//!
//! The key is a SHA-256 over the tenant, the route's version (its chain of targets) and the
//! normalised request: the body with `user`, `stream` and `stream_options` dropped, serialised
//! with sorted keys. Only complete, successful, non-streamed replies are stored; an error never
//! is (the caller only calls [`ResponseCache::put`] with a provider's 200).

use std::sync::Arc;

use serde_json::Value;

use crate::config::limits::CacheConfig;
use crate::gateway::usage::Usage;

/// Fields that do not change a completion.
const IGNORED: [&str; 3] = ["user", "stream", "stream_options"];

/// What a client asked of the cache (`Cache-Control`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CacheMode {
    /// Look up, and store a miss.
    Normal,
    /// `no-cache`: skip the lookup, still store.
    Refresh,
    /// `no-store`: neither look up nor store.
    Off,
}

impl CacheMode {
    /// From a `Cache-Control` header value; `no-store` wins over `no-cache`.
    pub fn from_header(v: Option<&str>) -> Self {
        let Some(v) = v else { return CacheMode::Normal };
        let has = |d: &str| v.split(',').any(|p| p.trim().eq_ignore_ascii_case(d));
        if has("no-store") {
            CacheMode::Off
        } else if has("no-cache") {
            CacheMode::Refresh
        } else {
            CacheMode::Normal
        }
    }
}

#[derive(Debug, Clone)]
pub struct Cached {
    pub body: Value,
    pub usage: Usage,
}

pub struct ResponseCache {
    inner: moka::sync::Cache<String, Arc<Cached>>,
}

impl ResponseCache {
    pub fn new(cfg: &CacheConfig) -> Self {
        Self { inner: moka::sync::Cache::builder().max_capacity(cfg.max_entries).time_to_live(cfg.ttl).build() }
    }

    /// The cache key of a request for `tenant` on a route whose version is `route_version`.
    pub fn key(tenant: &str, route_version: &str, body: &Value) -> String {
        let mut normal = body.clone();
        if let Some(map) = normal.as_object_mut() {
            for f in IGNORED {
                map.remove(f);
            }
        }
        // serde_json's map is ordered by key, so this serialisation is canonical.
        let text = format!("{tenant}\u{0}{route_version}\u{0}{normal}");
        crate::digest::sha256_hex(text.as_bytes())
    }

    pub fn get(&self, key: &str) -> Option<Arc<Cached>> {
        self.inner.get(key)
    }

    pub fn put(&self, key: String, entry: Cached) {
        self.inner.insert(key, Arc::new(entry));
    }
}

/// Counts a lookup outcome in `keel_cache_requests_total`.
pub fn count(result: &'static str) {
    crate::metrics::global().inc(
        "keel_cache_requests_total",
        "Gateway cache lookups by result (hit, miss, bypass)",
        &[("result", result)],
        1,
    );
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn the_key_ignores_user_and_stream_but_not_sampling_tenant_or_route() {
        let a = json!({ "model": "m", "messages": [{ "role": "user", "content": "hi" }], "temperature": 0 });
        let b = json!({ "temperature": 0, "user": "u1", "stream": false, "messages": [{ "content": "hi", "role": "user" }], "model": "m" });
        assert_eq!(ResponseCache::key("t", "r1", &a), ResponseCache::key("t", "r1", &b));
        let c = json!({ "model": "m", "messages": [{ "role": "user", "content": "hi" }], "temperature": 1 });
        assert_ne!(ResponseCache::key("t", "r1", &a), ResponseCache::key("t", "r1", &c));
        assert_ne!(ResponseCache::key("t", "r1", &a), ResponseCache::key("u", "r1", &a));
        assert_ne!(ResponseCache::key("t", "r1", &a), ResponseCache::key("t", "r2", &a));
    }

    #[test]
    fn cache_control_directives() {
        assert_eq!(CacheMode::from_header(None), CacheMode::Normal);
        assert_eq!(CacheMode::from_header(Some("no-cache")), CacheMode::Refresh);
        assert_eq!(CacheMode::from_header(Some("no-cache, No-Store")), CacheMode::Off);
        assert_eq!(CacheMode::from_header(Some("max-age=0")), CacheMode::Normal);
    }
}
