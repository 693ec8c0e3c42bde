//! Process-wide Prometheus metrics: counters and latency histograms keyed by name and labels,
//! rendered as Prometheus text by `GET /metrics`. One registry per process (like a global
//! recorder), so tests assert on deltas.

use std::cell::Cell;
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

/// One metric (its kind is the map it is in): its help text, and a series per label set (kept sorted for the text
/// exposition). Looked up by name first, then by the label text, so an update whose series
/// exists allocates nothing.
struct Family<T> {
    help: &'static str,
    series: BTreeMap<String, T>,
}

#[derive(Default)]
struct Registry {
    counters: BTreeMap<&'static str, Family<u64>>,
    histograms: BTreeMap<&'static str, Family<Histogram>>,
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
    let mut out = String::new();
    write_labels(&mut out, pairs);
    out
}

/// [`labels`] into `out` (cleared first), so a buffer kept per thread serves every update.
fn write_labels(out: &mut String, pairs: &[(&str, &str)]) {
    out.clear();
    if pairs.is_empty() {
        return;
    }
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
}

/// Applies `f` to the series `labels` of `name` in `families`, created (with `help`) when
/// missing: one lookup by name, one by label text, and the key copied on first use only.
fn update<T: Default>(
    families: &mut BTreeMap<&'static str, Family<T>>,
    name: &'static str,
    help: &'static str,
    labels: &str,
    f: impl FnOnce(&mut T),
) {
    let family = families.entry(name).or_insert_with(|| Family { help, series: BTreeMap::new() });
    match family.series.get_mut(labels) {
        Some(v) => f(v),
        None => {
            let mut v = T::default();
            f(&mut v);
            family.series.insert(labels.to_string(), v);
        }
    }
}

/// Runs `f` on the label text of `pairs`, written into a buffer kept per thread (taken out for
/// the call, so a nested update or one during thread exit just uses a fresh buffer).
fn with_label_text<R>(pairs: &[(&str, &str)], f: impl FnOnce(&str) -> R) -> R {
    thread_local! {
        static BUF: Cell<String> = const { Cell::new(String::new()) };
    }
    let mut buf = BUF.try_with(Cell::take).unwrap_or_default();
    write_labels(&mut buf, pairs);
    let out = f(&buf);
    let _ = BUF.try_with(|b| b.set(buf));
    out
}

impl Metrics {
    fn lock(&self) -> std::sync::MutexGuard<'_, Registry> {
        self.inner.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// Adds `by` to the counter `name` with these labels.
    pub fn inc(&self, name: &'static str, help: &'static str, labels: &[(&str, &str)], by: u64) {
        with_label_text(labels, |l| update(&mut self.lock().counters, name, help, l, |v| *v += by));
    }

    /// Counts `d` in the histogram `name` with these labels.
    pub fn observe(&self, name: &'static str, help: &'static str, labels: &[(&str, &str)], d: Duration) {
        let secs = d.as_secs_f64();
        with_label_text(labels, |l| {
            update(&mut self.lock().histograms, name, help, l, |h: &mut Histogram| {
                for (i, b) in BUCKETS.iter().enumerate() {
                    if secs <= *b {
                        h.counts[i] += 1;
                    }
                }
                h.sum += secs;
                h.count += 1;
            });
        });
    }

    /// A counter's current value (tests and alerts).
    pub fn counter(&self, name: &'static str, labels: &str) -> u64 {
        self.lock().counters.get(name).and_then(|f| f.series.get(labels)).copied().unwrap_or(0)
    }

    /// Prometheus text exposition; `gauges` are computed by the caller at scrape time.
    pub fn render(&self, gauges: &[(&'static str, &'static str, String, f64)]) -> String {
        let r = self.lock();
        let mut out = String::new();
        for (name, family) in &r.counters {
            let _ = writeln!(out, "# HELP {name} {}\n# TYPE {name} counter", family.help);
            for (l, v) in &family.series {
                let _ = writeln!(out, "{name}{l} {v}");
            }
        }
        for (name, family) in &r.histograms {
            let _ = writeln!(out, "# HELP {name} {}\n# TYPE {name} histogram", family.help);
            for (l, h) in &family.series {
                let inner = l.trim_start_matches('{').trim_end_matches('}');
                let sep = if inner.is_empty() { "" } else { "," };
                for (i, b) in BUCKETS.iter().enumerate() {
                    let _ = writeln!(out, "{name}_bucket{{{inner}{sep}le=\"{b}\"}} {}", h.counts[i]);
                }
                let _ = writeln!(out, "{name}_bucket{{{inner}{sep}le=\"+Inf\"}} {}", h.count);
                let _ = writeln!(out, "{name}_sum{l} {}\n{name}_count{l} {}", h.sum, h.count);
            }
        }
        // Gauges come as series; one HELP/TYPE per run of one name.
        let mut last = "";
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
        m.inc("t_total", "things", &[("route", "/x")], 2);
        m.inc("t_total", "things", &[("route", "/y\"z")], 1);
        m.inc("t_total", "things", &[("route", "/x")], 3);
        m.observe("t_seconds", "time", &[("route", "/x")], Duration::from_millis(3));
        m.observe("t_seconds", "time", &[("route", "/x")], Duration::from_millis(30));
        let text = m.render(&[("t_state", "state", labels(&[("target", "a\"b")]), 1.0)]);
        assert!(text.contains("t_total{route=\"/x\"} 5"), "{text}");
        assert!(text.contains("t_total{route=\"/y\\\"z\"} 1"), "{text}");
        assert_eq!(text.matches("# TYPE t_total counter").count(), 1, "{text}");
        assert!(text.contains("t_seconds_bucket{route=\"/x\",le=\"0.005\"} 1"), "{text}");
        assert!(text.contains("t_seconds_bucket{route=\"/x\",le=\"0.05\"} 2"), "{text}");
        assert!(text.contains("t_seconds_count{route=\"/x\"} 2"), "{text}");
        assert!(text.contains("t_state{target=\"a\\\"b\"} 1"), "{text}");
        assert_eq!(m.counter("t_total", "{route=\"/x\"}"), 5);
        assert_eq!(m.counter("t_total", &labels(&[("route", "/y\"z")])), 1);
        assert_eq!(m.counter("t_missing", ""), 0);
    }
}
