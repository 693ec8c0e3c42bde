//! A gateway stream on its way to the client: chunks pass through as they come, while the
//! meter reads their text and usage. A gap longer than the idle timeout, a broken connection
//! or an end without `[DONE]` becomes an error event (never a clean end). With the output
//! guard watching (deny-list, system-prompt leak), the last few bytes of text are held back
//! until enough text follows them, so the start of a phrase the guard then stops never reaches
//! the client; the stream is then cut with the guard's error event. When Keel asked the
//! provider for a usage chunk the client did not ask for, that event is metered and removed.

use std::collections::VecDeque;
use std::sync::Arc;
use std::time::Duration;

use bytes::{Bytes, BytesMut};
use futures_util::stream::{self, BoxStream, StreamExt};
use serde_json::json;

use super::metering::StreamMeter;
use crate::gateway::provider::ProviderError;
use crate::gateway::sse::boundary;
use crate::guardrails::output::{OutputBlock, OutputGuard};

/// An SSE event that tells the client the stream failed (never a clean `[DONE]`).
fn error_event(message: &str) -> Bytes {
    coded_error_event("stream_interrupted", message)
}

/// An SSE error event with its own code (the output guard's reason codes).
fn coded_error_event(code: &str, message: &str) -> Bytes {
    let e = json!({ "error": { "message": message, "type": "server_error", "code": code } });
    Bytes::from(format!("\n\ndata: {e}\n\n"))
}

/// The output guard on a stream: the reply so far is checked (deny-list, prompt leak) after
/// every chunk that adds text.
pub struct OutputWatch {
    guard: Arc<OutputGuard>,
    system: Option<String>,
    /// Bytes of text already checked.
    checked: usize,
}

/// Only the tail of a long reply is re-checked (a deny phrase or a leaked run fits in it).
const WATCH_WINDOW: usize = 4096;

impl OutputWatch {
    pub fn new(guard: Arc<OutputGuard>, system: Option<String>) -> Self {
        Self { guard, system, checked: 0 }
    }

    fn check(&mut self, text: &str) -> Option<OutputBlock> {
        if text.len() == self.checked {
            return None;
        }
        self.checked = text.len();
        let mut from = text.len().saturating_sub(WATCH_WINDOW);
        while !text.is_char_boundary(from) {
            from += 1;
        }
        let block = self.guard.check_text(&text[from..], self.system.as_deref()).err()?;
        block.count();
        tracing::warn!(reason = block.reason_code(), "gateway stream cut by the output guard");
        Some(block)
    }

    /// Bytes of reply text held back before the client sees them.
    fn hold_back(&self) -> usize {
        self.guard.hold_back_bytes(self.system.is_some())
    }
}

/// Removes the usage-only event (`"choices": []` with a `usage` object) from a stream whose
/// client did not ask for it. Events pass whole: an incomplete one waits for its end.
#[derive(Default)]
pub struct UsageStrip {
    pending: Vec<u8>,
}

/// An event this long without a blank line is not framed as the filter expects (or is not one
/// event): it passes through unfiltered rather than holding the stream back.
const MAX_PENDING: usize = 64 * 1024;

/// Whether `event` has a `"usage"` key whose value is an object (cheap test before parsing:
/// once usage is asked for, every chunk carries `"usage":null`).
fn has_usage_object(event: &[u8]) -> bool {
    let mut rest = event;
    while let Some(i) = rest.windows(7).position(|w| w == b"\"usage\"") {
        rest = &rest[i + 7..];
        let after = rest.trim_ascii_start();
        if let Some(v) = after.strip_prefix(b":") {
            if v.trim_ascii_start().starts_with(b"{") {
                return true;
            }
        }
    }
    false
}

/// Every data line of `event` is a chunk with no choices and a usage object.
fn is_usage_only(event: &[u8]) -> bool {
    if !has_usage_object(event) {
        return false;
    }
    let mut data = event.split(|&c| c == b'\n').filter_map(|l| l.strip_prefix(b"data:")).peekable();
    data.peek().is_some()
        && data.all(|d| {
            serde_json::from_slice::<serde_json::Value>(d.trim_ascii()).is_ok_and(|v| {
                v.get("choices").and_then(|c| c.as_array()).is_some_and(Vec::is_empty)
                    && v.get("usage").is_some_and(serde_json::Value::is_object)
            })
        })
}

impl UsageStrip {
    /// The complete events so far, without a usage-only one.
    fn filter(&mut self, chunk: &[u8]) -> Bytes {
        self.pending.extend_from_slice(chunk);
        let mut out = BytesMut::new();
        let mut start = 0;
        while let Some((end, blank)) = boundary(&self.pending[start..]) {
            let event = &self.pending[start..start + end + blank];
            if !is_usage_only(event) {
                out.extend_from_slice(event);
            }
            start += end + blank;
        }
        if self.pending.len() - start > MAX_PENDING {
            out.extend_from_slice(&self.pending[start..]);
            start = self.pending.len();
        }
        self.pending.drain(..start);
        out.freeze()
    }

    /// What is left when the stream ends (an event without its blank line).
    fn rest(&mut self) -> Bytes {
        let rest = std::mem::take(&mut self.pending);
        if is_usage_only(&rest) {
            return Bytes::new();
        }
        Bytes::from(rest)
    }
}

struct Relay {
    meter: StreamMeter,
    strip: Option<UsageStrip>,
    watch: Option<OutputWatch>,
    /// The provider's first chunk, not yet looked at.
    first: Option<Bytes>,
    rest: BoxStream<'static, Result<Bytes, ProviderError>>,
    idle: Duration,
    /// Chunks not yet sent, each with the length of the reply text once it is read.
    held: VecDeque<(Bytes, usize)>,
    hold_back: usize,
    tail: Vec<u8>,
    done_seen: bool,
    finished: bool,
}

impl Relay {
    fn blocked(&mut self) -> Option<OutputBlock> {
        let w = self.watch.as_mut()?;
        let block = w.check(self.meter.text())?;
        self.meter.ended("blocked", block.reason_code());
        Some(block)
    }

    fn observe(&mut self, chunk: &[u8]) {
        self.meter.feed(chunk);
        // Keep the last bytes so a `[DONE]` split across chunks is still seen.
        self.tail.extend_from_slice(chunk);
        if self.tail.windows(6).any(|w| w == b"[DONE]") {
            self.done_seen = true;
        }
        let keep = self.tail.len().saturating_sub(16);
        self.tail.drain(..keep);
    }

    /// The held chunks that may go now: those followed by at least `hold_back` bytes of text
    /// (all of them when `all`).
    fn release(&mut self, all: bool) -> BytesMut {
        let safe = self.meter.text().len().saturating_sub(self.hold_back);
        let mut out = BytesMut::new();
        while let Some((_, upto)) = self.held.front() {
            if !all && *upto > safe {
                break;
            }
            if let Some((chunk, _)) = self.held.pop_front() {
                out.extend_from_slice(&chunk);
            }
        }
        out
    }

    /// Queues what the usage filter still holds (the stream is ending).
    fn flush_strip(&mut self) {
        if let Some(rest) = self.strip.as_mut().map(UsageStrip::rest).filter(|r| !r.is_empty()) {
            self.held.push_back((rest, 0));
        }
    }

    /// The stream ends with an error event after what was held.
    fn failed(&mut self, message: &str) -> Bytes {
        self.finished = true;
        self.flush_strip();
        self.meter.ended("error", "stream_interrupted");
        let mut out = self.release(true);
        out.extend_from_slice(&error_event(message));
        out.freeze()
    }

    /// The next bytes for the client (`None`: the stream is over).
    async fn next(&mut self) -> Option<Bytes> {
        loop {
            if self.finished {
                return None;
            }
            let next = match self.first.take() {
                Some(first) => Ok(Some(Ok(first))),
                None => tokio::time::timeout(self.idle, self.rest.next()).await,
            };
            match next {
                Ok(Some(Ok(chunk))) => {
                    self.observe(&chunk);
                    if let Some(block) = self.blocked() {
                        // What was held never reaches the client.
                        self.finished = true;
                        self.held.clear();
                        return Some(coded_error_event(block.reason_code(), &block.to_string()));
                    }
                    let chunk = match &mut self.strip {
                        Some(s) => s.filter(&chunk),
                        None => chunk,
                    };
                    self.held.push_back((chunk, self.meter.text().len()));
                    let out = self.release(false);
                    if !out.is_empty() {
                        return Some(out.freeze());
                    }
                }
                Ok(Some(Err(e))) => return Some(self.failed(&e.to_string())),
                Ok(None) if self.done_seen => {
                    self.finished = true;
                    self.flush_strip();
                    let out = self.release(true);
                    return (!out.is_empty()).then(|| out.freeze());
                }
                Ok(None) => return Some(self.failed("the provider's stream ended early, without its end marker")),
                Err(_) => {
                    let msg = format!("the provider sent nothing for {:?}", self.idle);
                    return Some(self.failed(&msg));
                }
            }
        }
    }
}

/// Relays a provider stream to the client (see the module docs).
pub fn relay(
    first: Bytes,
    rest: BoxStream<'static, Result<Bytes, ProviderError>>,
    idle: Duration,
    meter: StreamMeter,
    watch: Option<OutputWatch>,
    strip: Option<UsageStrip>,
) -> BoxStream<'static, Result<Bytes, std::io::Error>> {
    let hold_back = watch.as_ref().map_or(0, OutputWatch::hold_back);
    let state = Relay {
        meter,
        strip,
        watch,
        first: Some(first),
        rest,
        idle,
        held: VecDeque::new(),
        hold_back,
        tail: Vec::new(),
        done_seen: false,
        finished: false,
    };
    stream::unfold(state, |mut s| async move { s.next().await.map(|b| (Ok(b), s)) }).boxed()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_usage_chunk_the_client_did_not_ask_for_is_removed_whole() {
        let events = "data: {\"choices\":[{\"delta\":{\"content\":\"Hi\"}}],\"usage\":null}\n\n\
                      data: {\"choices\":[],\"usage\":{\"prompt_tokens\":7,\"completion_tokens\":1}}\n\n\
                      data: [DONE]\n\n";
        // Split at every size, so events arrive cut anywhere.
        for size in 1..events.len() {
            let mut strip = UsageStrip::default();
            let mut out = Vec::new();
            for piece in events.as_bytes().chunks(size) {
                out.extend_from_slice(&strip.filter(piece));
            }
            out.extend_from_slice(&strip.rest());
            let out = String::from_utf8(out).unwrap();
            assert_eq!(
                out, "data: {\"choices\":[{\"delta\":{\"content\":\"Hi\"}}],\"usage\":null}\n\ndata: [DONE]\n\n",
                "pieces of {size}"
            );
        }
        // Content that talks about usage stays; a usage chunk beside content in one event stays.
        let mut strip = UsageStrip::default();
        let talk = "data: {\"choices\":[{\"delta\":{\"content\":\"\\\"usage\\\": {\"}}],\"usage\":null}\n\n";
        assert_eq!(&strip.filter(talk.as_bytes())[..], talk.as_bytes());
        let both = "data: {\"choices\":[],\"usage\":{\"prompt_tokens\":1}}\ndata: {\"choices\":[{\"delta\":{\"content\":\"x\"}}]}";
        strip.filter(both.as_bytes());
        assert_eq!(&strip.rest()[..], both.as_bytes());
        // Unknown framing (CR only) is passed through once it passes the cap, not held forever.
        let cr = "data: {\"choices\":[{\"delta\":{\"content\":\"hello\"}}]}\r\r".repeat(2000);
        let mut strip = UsageStrip::default();
        let mut out = Vec::new();
        for piece in cr.as_bytes().chunks(1000) {
            out.extend_from_slice(&strip.filter(piece));
        }
        assert!(out.len() > cr.len() / 2, "held back {} of {}", cr.len() - out.len(), cr.len());
        out.extend_from_slice(&strip.rest());
        assert_eq!(out, cr.as_bytes());
        // CRLF framing, and an unterminated last event, are handled too.
        let mut strip = UsageStrip::default();
        let a = strip.filter(b"data: {\"choices\":[],\"usage\":{\"prompt_tokens\":1}}\r\n\r\ndata: [DONE]");
        assert!(a.is_empty());
        assert_eq!(&strip.rest()[..], b"data: [DONE]");
    }
}
