//! Server-sent events as bytes: splitting a stream into events (`event:` name, `data:`
//! payload) across arbitrary chunk boundaries, and writing them. The wire translations between
//! OpenAI and Anthropic streams are built on this.

/// One parsed event.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SseEvent {
    pub event: Option<String>,
    pub data: String,
}

/// Buffers bytes until a blank line ends an event.
#[derive(Debug, Default)]
pub struct SseParser {
    buf: Vec<u8>,
}

/// The end of the first event in `buf`: (length of the event, length of the blank line).
pub(crate) fn boundary(buf: &[u8]) -> Option<(usize, usize)> {
    let mut i = 0;
    while i + 1 < buf.len() {
        if buf[i] == b'\n' {
            if buf[i + 1] == b'\n' {
                return Some((i, 2));
            }
            if buf[i + 1] == b'\r' && buf.get(i + 2) == Some(&b'\n') {
                return Some((i, 3));
            }
        }
        i += 1;
    }
    None
}

impl SseParser {
    /// Adds a chunk and returns every event it completed.
    pub fn push(&mut self, chunk: &[u8]) -> Vec<SseEvent> {
        self.buf.extend_from_slice(chunk);
        let mut out = Vec::new();
        while let Some((end, sep)) = boundary(&self.buf) {
            let raw: Vec<u8> = self.buf.drain(..end + sep).collect();
            let text = String::from_utf8_lossy(&raw[..end]);
            let mut ev = SseEvent { event: None, data: String::new() };
            let mut has_data = false;
            for line in text.lines() {
                let line = line.trim_end_matches('\r');
                if let Some(v) = line.strip_prefix("event:") {
                    ev.event = Some(v.trim().to_string());
                } else if let Some(v) = line.strip_prefix("data:") {
                    if has_data {
                        ev.data.push('\n');
                    }
                    ev.data.push_str(v.strip_prefix(' ').unwrap_or(v));
                    has_data = true;
                }
            }
            if ev.event.is_some() || has_data {
                out.push(ev);
            }
        }
        out
    }
}

/// Writes one event (`event:` line only when named).
pub fn write_event(out: &mut String, event: Option<&str>, data: &str) {
    if let Some(e) = event {
        out.push_str("event: ");
        out.push_str(e);
        out.push('\n');
    }
    out.push_str("data: ");
    out.push_str(data);
    out.push_str("\n\n");
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn events_split_anywhere_are_reassembled() {
        let text = "event: message_start\ndata: {\"a\":1}\n\n: comment\n\ndata: x\r\n\r\ndata: [DONE]\n\n";
        for size in [1, 3, 7, text.len()] {
            let mut p = SseParser::default();
            let mut got = Vec::new();
            for piece in text.as_bytes().chunks(size) {
                got.extend(p.push(piece));
            }
            assert_eq!(got.len(), 3, "chunk size {size}: {got:?}");
            assert_eq!(got[0], SseEvent { event: Some("message_start".into()), data: "{\"a\":1}".into() });
            assert_eq!(got[1].data, "x");
            assert_eq!(got[2].data, "[DONE]");
        }
    }

    #[test]
    fn an_unfinished_event_waits_for_its_blank_line() {
        let mut p = SseParser::default();
        assert!(p.push(b"data: half").is_empty());
        assert_eq!(p.push(b"\n\n")[0].data, "half");
    }
}
