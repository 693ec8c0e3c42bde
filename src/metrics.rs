//! Process-wide Prometheus metrics: counters and latency histograms keyed by name and labels,
//! rendered as Prometheus text by `GET /metrics`. One registry per process (like a global
//! recorder), so tests assert on deltas.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::sync::{Mutex, OnceLock};
use std::time::Duration;

/// Latency buckets in seconds (100 µs … 30 s).
const BUCKETS: [f64; 14] =
    [0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 1.0, 5.0, 30.0];

#[derive(Default)]
struct Histogram {
    counts: [u64; BUCKETS.len()],
    sum: f64,
    count: u64,
}

#[derive(Default)]
struct Registry {
    counters: BTreeMap<(&'static str, String), u64>,
    histograms: BTreeMap<(&'static str, String), Histogram>,
    help: BTreeMap<&'static str, (&'static str, &'static str)>,
}

pub struct Metrics {
    inner: Mutex<Registry>,
}

/// The process's registry.
pub fn global() -> &'static Metrics {
    static M: OnceLock<Metrics> = OnceLock::new();
    M.get_or_init(|| Metrics { inner: Mutex::new(Registry::default()) })
}

/// `{a="x",b="y"}` with values escaped.
pub fn labels(pairs: &[(&str, &str)]) -> String {
    if pairs.is_empty() {
        return String::new();
    }
    // On every request: one allocation, and escaping only when a value needs it.
    let mut out = String::with_capacity(2 + pairs.iter().map(|(k, v)| k.len() + v.len() + 4).sum::<usize>());
    out.push('{');
    for (i, (k, v)) in pairs.iter().enumerate() {
        if i > 0 {
            out.push(',');
        }
        out.push_str(k);
        out.push_str("=\"");
        if v.bytes().any(|b| matches!(b, b'\\' | b'"' | b'\n')) {
            for c in v.chars() {
                match c {
                    '\\' => out.push_str("\\\\"),
                    '"' => out.push_str("\\\""),
                    '\n' => out.push_str("\\n"),
                    c => out.push(c),
                }
            }
        } else {
            out.push_str(v);
        }
        out.push('"');
    }
    out.push('}');
    out
}

impl Metrics {
    fn lock(&self) -> std::sync::MutexGuard<'_, Registry> {
        self.inner.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    pub fn inc(&self, name: &'static str, help: &'static str, labels: String, by: u64) {
        let mut r = self.lock();
        r.help.entry(name).or_insert((help, "counter"));
        *r.counters.entry((name, labels)).or_default() += by;
    }

    pub fn observe(&self, name: &'static str, help: &'static str, labels: String, d: Duration) {
        let secs = d.as_secs_f64();
        let mut r = self.lock();
        r.help.entry(name).or_insert((help, "histogram"));
        let h = r.histograms.entry((name, labels)).or_default();
        for (i, b) in BUCKETS.iter().enumerate() {
            if secs <= *b {
                h.counts[i] += 1;
            }
        }
        h.sum += secs;
        h.count += 1;
    }

    /// A counter's current value (tests and alerts).
    pub fn counter(&self, name: &'static str, labels: &str) -> u64 {
        self.lock().counters.get(&(name, labels.to_string())).copied().unwrap_or(0)
    }

    /// Prometheus text exposition; `gauges` are computed by the caller at scrape time.
    pub fn render(&self, gauges: &[(&'static str, &'static str, String, f64)]) -> String {
        let r = self.lock();
        let mut out = String::new();
        let mut last = "";
        for ((name, l), v) in &r.counters {
            if *name != last {
                let (help, kind) = r.help.get(name).copied().unwrap_or(("", "counter"));
                let _ = writeln!(out, "# HELP {name} {help}\n# TYPE {name} {kind}");
                last = name;
            }
            let _ = writeln!(out, "{name}{l} {v}");
        }
        for ((name, l), h) in &r.histograms {
            if *name != last {
                let (help, _) = r.help.get(name).copied().unwrap_or(("", "histogram"));
                let _ = writeln!(out, "# HELP {name} {help}\n# TYPE {name} histogram");
                last = name;
            }
            let inner = l.trim_start_matches('{').trim_end_matches('}');
            let sep = if inner.is_empty() { "" } else { "," };
            for (i, b) in BUCKETS.iter().enumerate() {
                let _ = writeln!(out, "{name}_bucket{{{inner}{sep}le=\"{b}\"}} {}", h.counts[i]);
            }
            let _ = writeln!(out, "{name}_bucket{{{inner}{sep}le=\"+Inf\"}} {}", h.count);
            let _ = writeln!(out, "{name}_sum{l} {}\n{name}_count{l} {}", h.sum, h.count);
        }
        for (name, help, l, v) in gauges {
            if *name != last {
                let _ = writeln!(out, "# HELP {name} {help}\n# TYPE {name} gauge");
                last = name;
            }
            let _ = writeln!(out, "{name}{l} {v}");
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn renders_counters_and_cumulative_histograms() {
        let m = Metrics { inner: Mutex::new(Registry::default()) };
        m.inc("t_total", "things", labels(&[("route", "/x")]), 2);
        m.observe("t_seconds", "time", labels(&[("route", "/x")]), Duration::from_millis(3));
        m.observe("t_seconds", "time", labels(&[("route", "/x")]), Duration::from_millis(30));
        let text = m.render(&[("t_state", "state", labels(&[("target", "a\"b")]), 1.0)]);
        assert!(text.contains("t_total{route=\"/x\"} 2"), "{text}");
        assert!(text.contains("t_seconds_bucket{route=\"/x\",le=\"0.005\"} 1"), "{text}");
        assert!(text.contains("t_seconds_bucket{route=\"/x\",le=\"0.05\"} 2"), "{text}");
        assert!(text.contains("t_seconds_count{route=\"/x\"} 2"), "{text}");
        assert!(text.contains("t_state{target=\"a\\\"b\"} 1"), "{text}");
        assert_eq!(m.counter("t_total", "{route=\"/x\"}"), 2);
    }
}
