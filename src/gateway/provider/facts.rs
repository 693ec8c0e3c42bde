//! What the gateway needs from an OpenAI-shaped chat completion (its usage, the first choice's
//! text, whether it already has a `keel` field), read in the same single pass that checks the
//! reply's shape: the reply is parsed once, never into a tree, and passed on as its bytes.

use serde::{Deserialize, Deserializer};
use serde_json::Value;

/// The reply's facts, as read by [`ReplyFacts::read`].
#[derive(Debug, Clone, PartialEq)]
pub struct ReplyFacts {
    /// `usage.prompt_tokens`, `usage.completion_tokens` and
    /// `usage.prompt_tokens_details.cached_tokens`, when the reply has the first two.
    pub usage: Option<(u64, u64, Option<u64>)>,
    /// The first choice's `message.content`.
    pub content: Option<Value>,
    /// The first choice's tool-call arguments, one per line ("" without tool calls): text the
    /// model wrote that the output guard reads too.
    pub tool_args: String,
    /// The first choice's reasoning (`message.reasoning_content`, as DeepSeek, vLLM and Keel's
    /// Anthropic translation send it, or `message.reasoning`, as OpenRouter and Ollama do; ""
    /// without): text the model wrote that reaches the client and the output guard reads.
    pub reasoning: String,
    /// The reply already has a `keel` field (whatever its value).
    pub has_keel: bool,
}

/// What is read; every other field is skipped unread.
#[derive(Deserialize)]
struct View {
    choices: Vec<ChoiceView>,
    #[serde(default)]
    usage: Option<UsageView>,
    #[serde(default, deserialize_with = "present")]
    keel: bool,
}

#[derive(Deserialize)]
struct ChoiceView {
    message: Option<MessageView>,
}

#[derive(Deserialize)]
struct MessageView {
    content: Option<Value>,
    #[serde(default)]
    tool_calls: Option<Vec<CallView>>,
    #[serde(default)]
    reasoning_content: Option<Value>,
    #[serde(default)]
    reasoning: Option<Value>,
}

#[derive(Deserialize)]
struct CallView {
    #[serde(default)]
    function: Option<FunctionView>,
}

#[derive(Deserialize)]
struct FunctionView {
    /// A string on the wire; anything else is read and ignored rather than failing the pass.
    #[serde(default)]
    arguments: Option<Value>,
}

#[derive(Deserialize)]
struct UsageView {
    prompt_tokens: Option<u64>,
    completion_tokens: Option<u64>,
    prompt_tokens_details: Option<Details>,
}

#[derive(Deserialize)]
struct Details {
    cached_tokens: Option<u64>,
}

/// True whenever the field is there, whatever its value (even `null`).
fn present<'de, D: Deserializer<'de>>(d: D) -> Result<bool, D::Error> {
    serde::de::IgnoredAny::deserialize(d).map(|_| true)
}

impl ReplyFacts {
    /// One pass over `bytes`: `None` unless they are a JSON object whose `choices` is an array
    /// of objects (the caller then checks the shape the slower way).
    pub fn read(bytes: &[u8]) -> Option<Self> {
        // (A struct also deserialises from an array, hence the first byte.)
        if !bytes.trim_ascii_start().starts_with(b"{") {
            return None;
        }
        let view: View = serde_json::from_slice(bytes).ok()?;
        let usage = view.usage.and_then(|u| {
            Some((u.prompt_tokens?, u.completion_tokens?, u.prompt_tokens_details.and_then(|d| d.cached_tokens)))
        });
        let message = view.choices.into_iter().next().and_then(|c| c.message);
        let (content, calls, reasoning) = message.map_or((None, None, String::new()), |m| {
            let reasoning = [m.reasoning_content, m.reasoning].into_iter().flatten().filter_map(string).collect();
            (m.content, m.tool_calls, joined(reasoning))
        });
        let args: Vec<String> = calls.into_iter().flatten().filter_map(|c| string(c.function?.arguments?)).collect();
        Some(Self { usage, content, tool_args: joined(args), reasoning, has_keel: view.keel })
    }
}

/// A string field's text (anything else is read and ignored rather than failing the pass).
fn string(v: Value) -> Option<String> {
    match v {
        Value::String(s) => Some(s),
        _ => None,
    }
}

fn joined(parts: Vec<String>) -> String {
    parts.join("\n")
}

#[cfg(test)]
mod tests {
    use super::ReplyFacts;
    use serde_json::json;

    #[test]
    fn one_pass_reads_usage_text_and_a_keel_field() {
        let f = ReplyFacts::read(
            br#" {"choices":[{"message":{"content":"hi"}}],"usage":{"prompt_tokens":9,"completion_tokens":4,
                "prompt_tokens_details":{"cached_tokens":2}},"x":[1]}"#,
        )
        .unwrap();
        assert_eq!(
            f,
            ReplyFacts {
                usage: Some((9, 4, Some(2))),
                content: Some(json!("hi")),
                tool_args: String::new(),
                reasoning: String::new(),
                has_keel: false
            }
        );
        let f = ReplyFacts::read(br#"{"choices":[],"usage":{"prompt_tokens":1},"keel":null}"#).unwrap();
        assert_eq!(
            f,
            ReplyFacts {
                usage: None,
                content: None,
                tool_args: String::new(),
                reasoning: String::new(),
                has_keel: true
            }
        );
        let f = ReplyFacts::read(
            br#"{"choices":[{"message":{"content":null,"tool_calls":[{"id":"c1","type":"function",
                "function":{"name":"f","arguments":"{\"a\":1}"}},{"function":{"name":"g","arguments":"{}"}}]}}]}"#,
        )
        .unwrap();
        assert_eq!((f.content, f.tool_args.as_str()), (None, "{\"a\":1}\n{}"));
        let f =
            ReplyFacts::read(br#"{"choices":[{"message":{"content":"30.","reasoning_content":"Policy says 30."}}]}"#)
                .unwrap();
        assert_eq!((f.content, f.reasoning.as_str()), (Some(json!("30.")), "Policy says 30."));
        let f = ReplyFacts::read(
            br#"{"choices":[{"message":{"content":"","reasoning":"Thinking.","reasoning_content":7}}]}"#,
        )
        .unwrap();
        assert_eq!(f.reasoning, "Thinking.");
        for odd in [&br#"[{"choices":[]}]"#[..], br#"{"choices":[1]}"#, br#"{"choices":{}}"#, b"{", br#"{"id":1}"#] {
            assert!(ReplyFacts::read(odd).is_none(), "{}", String::from_utf8_lossy(odd));
        }
    }
}
