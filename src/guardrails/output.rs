//! The output guard: what a model reply must pass before it reaches a client — the
//! configured deny-list, system-prompt leak detection, and JSON format validation when the
//! request asked for JSON. Built once from `[guard.output]`; used by the gateway routes
//! (whole replies and streams) and by generated grounded answers.

use keel_guard::output::{prompt_leak, validate_json, DenyList, JsonViolation};
use serde_json::Value;

use super::GuardrailError;
use crate::config::OutputGuardSettings;

/// What the request asked the reply to look like.
#[derive(Debug, Clone, PartialEq)]
pub enum Format {
    Text,
    JsonObject,
    JsonSchema(Value),
}

impl Format {
    /// The kind of format only (a schema is not copied; `JsonSchema` holds `null`).
    fn of_request_kind(body: &Value) -> Self {
        match body.pointer("/response_format/type").and_then(Value::as_str) {
            Some("json_object") => Format::JsonObject,
            Some("json_schema") => Format::JsonSchema(Value::Null),
            _ => Format::Text,
        }
    }

    /// From an OpenAI request's `response_format`.
    pub fn of_request(body: &Value) -> Self {
        let rf = body.get("response_format");
        match rf.and_then(|r| r.get("type")).and_then(Value::as_str) {
            Some("json_object") => Format::JsonObject,
            Some("json_schema") => match rf.and_then(|r| r.pointer("/json_schema/schema")) {
                Some(s) => Format::JsonSchema(s.clone()),
                None => Format::JsonObject,
            },
            _ => Format::Text,
        }
    }
}

/// Why a reply was withheld.
#[derive(Debug, Clone, PartialEq)]
pub enum OutputBlock {
    Deny(String),
    PromptLeak { run_words: usize, coverage: f32 },
    InvalidJson(JsonViolation),
}

impl OutputBlock {
    pub fn reason_code(&self) -> &'static str {
        match self {
            OutputBlock::Deny(_) => "output_deny_list",
            OutputBlock::PromptLeak { .. } => "output_prompt_leak",
            OutputBlock::InvalidJson(_) => "output_invalid_json",
        }
    }

    /// Counts the block in `keel_output_blocked_total{reason}`.
    pub fn count(&self) {
        crate::metrics::global().inc(
            "keel_output_blocked_total",
            "Model replies withheld by the output guard, by reason",
            &[("reason", self.reason_code())],
            1,
        );
    }
}

impl std::fmt::Display for OutputBlock {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            // The phrase itself is not repeated to the client.
            OutputBlock::Deny(_) => write!(f, "the reply contained a phrase on the deny-list"),
            OutputBlock::PromptLeak { run_words, coverage } => write!(
                f,
                "the reply repeated the system prompt ({run_words} words in a row, {:.0}% of it)",
                coverage * 100.0
            ),
            OutputBlock::InvalidJson(v) => write!(f, "the reply is not the JSON that was asked for: {v}"),
        }
    }
}

pub struct OutputGuard {
    deny: DenyList,
    settings: OutputGuardSettings,
}

/// The text of the request's system and developer messages, if any.
pub fn system_prompt(body: &Value) -> Option<String> {
    let parts: Vec<String> = body
        .get("messages")?
        .as_array()?
        .iter()
        .filter(|m| matches!(m.get("role").and_then(Value::as_str), Some("system" | "developer")))
        .filter_map(|m| match m.get("content")? {
            Value::String(s) => Some(s.clone()),
            Value::Array(parts) => {
                Some(parts.iter().filter_map(|p| p.get("text").and_then(Value::as_str)).collect::<Vec<_>>().join("\n"))
            }
            _ => None,
        })
        .collect();
    (!parts.is_empty()).then(|| parts.join("\n"))
}

impl OutputGuard {
    pub fn new(settings: &OutputGuardSettings) -> Result<Self, GuardrailError> {
        Ok(Self { deny: DenyList::new(&settings.deny, true)?, settings: settings.clone() })
    }

    /// Deny-list and prompt leak: what can be checked on a reply so far (streams too).
    pub fn check_text(&self, reply: &str, system: Option<&str>) -> Result<(), OutputBlock> {
        if let Some(m) = self.deny.find(reply).into_iter().next() {
            return Err(OutputBlock::Deny(m.phrase));
        }
        if let Some(sys) = system.filter(|_| self.settings.prompt_leak) {
            let r = prompt_leak(reply, sys, self.settings.leak_min_words, self.settings.leak_coverage);
            if r.leaked {
                return Err(OutputBlock::PromptLeak { run_words: r.longest_run_words, coverage: r.prompt_coverage });
            }
        }
        Ok(())
    }

    /// A whole reply: [`OutputGuard::check_text`], then the format.
    pub fn check(&self, reply: &str, system: Option<&str>, format: &Format) -> Result<(), OutputBlock> {
        self.check_text(reply, system)?;
        if !self.settings.json {
            return Ok(());
        }
        let result = match format {
            Format::Text => return Ok(()),
            Format::JsonObject => validate_json(reply, true, None),
            Format::JsonSchema(s) => validate_json(reply, false, Some(s)),
        };
        result.map(|_| ()).map_err(OutputBlock::InvalidJson)
    }

    /// Whether any check can fire on the reply to `request` (a cheap look at the request;
    /// when false, [`OutputGuard::check`] passes every reply, so callers skip it).
    pub fn applies_to(&self, request: &Value) -> bool {
        if !self.settings.deny.is_empty() {
            return true;
        }
        let messages = request.get("messages").and_then(Value::as_array).map_or(&[][..], Vec::as_slice);
        // What `system_prompt` finds: a system or developer message with text or parts.
        let system = messages.iter().any(|m| {
            matches!(m.get("role").and_then(Value::as_str), Some("system" | "developer"))
                && matches!(m.get("content"), Some(Value::String(_) | Value::Array(_)))
        });
        if self.settings.prompt_leak && system {
            return true;
        }
        self.settings.json && Format::of_request_kind(request) != Format::Text
    }

    /// How many bytes of a streamed reply to hold back so that the start of a deny-listed
    /// phrase, or of a verbatim run of the system prompt, is still unsent when the check that
    /// stops it fires: twice the longest phrase (room for invisible characters and homoglyphs
    /// the matcher folds away) and, with a system prompt, `leak_min_words` words of 8 bytes.
    /// (A leak found only by shingle coverage may already be partly sent.)
    pub fn hold_back_bytes(&self, has_system: bool) -> usize {
        let deny = self.settings.deny.iter().map(|p| 2 * p.len() + 8).max().unwrap_or(0);
        let leak = if self.settings.prompt_leak && has_system { self.settings.leak_min_words * 8 } else { 0 };
        deny.max(leak)
    }

    /// Whether any check can fire on plain text (lets streams skip the work entirely).
    pub fn watches_text(&self) -> bool {
        !self.settings.deny.is_empty() || self.settings.prompt_leak
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn guard() -> OutputGuard {
        OutputGuard::new(&OutputGuardSettings {
            deny: vec!["Project Falcon".into()],
            prompt_leak: true,
            leak_min_words: 12,
            leak_coverage: 0.5,
            json: true,
        })
        .unwrap()
    }

    const SYSTEM: &str = "You are the billing assistant of Acme. Never offer refunds above fifty dollars \
        without a manager. Do not mention the internal escalation codes to customers under any circumstances.";

    #[test]
    fn deny_list_leaks_and_formats_are_checked() {
        let g = guard();
        assert!(matches!(g.check_text("About PROJECT\u{200B} FALCON: soon.", None), Err(OutputBlock::Deny(_))));
        let leak = "My instructions say: you are the billing assistant of Acme. Never offer refunds above fifty \
            dollars without a manager.";
        let e = g.check_text(leak, Some(SYSTEM)).unwrap_err();
        assert_eq!(e.reason_code(), "output_prompt_leak");
        assert!(g.check_text("I can refund up to the usual limit; a manager approves more.", Some(SYSTEM)).is_ok());
        assert!(g.check("{\"a\": 1}", None, &Format::JsonObject).is_ok());
        let e = g.check("Here you go: {\"a\": 1}", None, &Format::JsonObject).unwrap_err();
        assert_eq!(e.reason_code(), "output_invalid_json");
        let schema = Format::of_request(&json!({ "response_format": { "type": "json_schema",
            "json_schema": { "name": "x", "schema": { "type": "object", "required": ["city"] } } } }));
        assert!(matches!(g.check("{\"town\": \"Oslo\"}", None, &schema), Err(OutputBlock::InvalidJson(_))));
        assert_eq!(Format::of_request(&json!({})), Format::Text);
    }

    #[test]
    fn the_system_prompt_is_read_from_system_and_developer_messages() {
        let body = json!({ "messages": [{ "role": "system", "content": "A" },
                                         { "role": "developer", "content": [{ "type": "text", "text": "B" }] },
                                         { "role": "user", "content": "C" }] });
        assert_eq!(system_prompt(&body).as_deref(), Some("A\nB"));
        assert_eq!(system_prompt(&json!({ "messages": [] })), None);
    }
}
