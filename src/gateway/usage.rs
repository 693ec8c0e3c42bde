//! Tokens and cost of one completion: the provider's `usage` when it sends one, else an
//! estimate with the model's tiktoken encoding (o200k for GPT-4o/4.1/5 and o-series names,
//! cl100k otherwise), marked `estimated`. Cost is integer nano-dollars, never a float.

use serde::Serialize;
use serde_json::Value;

use crate::config::limits::Price;
use crate::metrics;

/// Tokens overhead OpenAI's chat format adds per message, and once per reply.
const PER_MESSAGE: u64 = 4;
const PER_REPLY: u64 = 3;

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
pub struct Usage {
    pub prompt_tokens: u64,
    pub completion_tokens: u64,
    /// Prompt tokens served from the provider's prompt cache (a subset of `prompt_tokens`).
    pub cached_tokens: u64,
    /// True when any count came from the tokenizer rather than the provider.
    pub estimated: bool,
    pub cost_nanodollars: u64,
}

/// Whether a chat request asks for its stream's final usage chunk.
pub fn asks_usage(body: &Value) -> bool {
    body.pointer("/stream_options/include_usage").and_then(Value::as_bool).unwrap_or(false)
}

impl Usage {
    pub fn total_tokens(&self) -> u64 {
        self.prompt_tokens + self.completion_tokens
    }

    /// The sum of two calls' usage (estimated if either was).
    pub fn plus(self, o: Usage) -> Usage {
        Usage {
            prompt_tokens: self.prompt_tokens + o.prompt_tokens,
            completion_tokens: self.completion_tokens + o.completion_tokens,
            cached_tokens: self.cached_tokens + o.cached_tokens,
            estimated: self.estimated || o.estimated,
            cost_nanodollars: self.cost_nanodollars + o.cost_nanodollars,
        }
    }

    /// Sets `cost_nanodollars` from `price` (0 without one).
    pub fn priced(mut self, price: Option<&Price>) -> Self {
        self.cost_nanodollars = price.map_or(0, |p| cost_nanodollars(p, &self));
        self
    }

    /// Adds the counts to `keel_tokens_total` and `keel_cost_nanodollars_total`.
    pub fn count(&self, model: &str) {
        let m = metrics::global();
        for (kind, n) in
            [("prompt", self.prompt_tokens), ("completion", self.completion_tokens), ("cached", self.cached_tokens)]
        {
            m.inc("keel_tokens_total", "Tokens by model and kind", &[("model", model), ("kind", kind)], n);
        }
        m.inc(
            "keel_cost_nanodollars_total",
            "Cost in nano-dollars by model",
            &[("model", model)],
            self.cost_nanodollars,
        );
    }
}

/// `Σ tokens × nano-dollars per million / 10⁶`, rounded up to a whole nano-dollar, in u128.
pub fn cost_nanodollars(price: &Price, u: &Usage) -> u64 {
    let cached = u.cached_tokens.min(u.prompt_tokens);
    let fresh = u.prompt_tokens - cached;
    let part = |tokens: u64, price: u64| u128::from(tokens) * u128::from(price);
    let micro = part(fresh, price.input)
        .saturating_add(part(cached, price.cached_input))
        .saturating_add(part(u.completion_tokens, price.output));
    u64::try_from(micro.div_ceil(1_000_000)).unwrap_or(u64::MAX)
}

/// The worst case of a call: every prompt token fresh, every reserved completion token used.
pub fn worst_case_nanodollars(price: Option<&Price>, prompt: u64, completion: u64) -> u64 {
    let u = Usage { prompt_tokens: prompt, completion_tokens: completion, ..Default::default() };
    price.map_or(0, |p| cost_nanodollars(p, &u))
}

fn bpe(model: &str) -> &'static tiktoken_rs::CoreBPE {
    use tiktoken_rs::tokenizer::{get_tokenizer, Tokenizer};
    match get_tokenizer(model) {
        Some(Tokenizer::O200kBase | Tokenizer::O200kHarmony) => tiktoken_rs::o200k_base_singleton(),
        _ => tiktoken_rs::cl100k_base_singleton(),
    }
}

/// Tokens of a text under the model's encoding.
pub fn count_text(model: &str, text: &str) -> u64 {
    bpe(model).encode_ordinary(text).len() as u64
}

fn content_text(content: &Value) -> String {
    match content {
        Value::String(s) => s.clone(),
        Value::Array(parts) => {
            parts.iter().filter_map(|p| p.get("text").and_then(Value::as_str)).collect::<Vec<_>>().join("\n")
        }
        _ => String::new(),
    }
}

/// Prompt tokens of a request body's `messages` (text parts, names and the format overhead).
pub fn estimate_prompt(model: &str, body: &Value) -> u64 {
    let Some(messages) = body.get("messages").and_then(Value::as_array) else { return 0 };
    let enc = bpe(model);
    let mut n = PER_REPLY;
    for m in messages {
        n += PER_MESSAGE;
        for field in ["role", "name"] {
            if let Some(s) = m.get(field).and_then(Value::as_str) {
                n += enc.encode_ordinary(s).len() as u64;
            }
        }
        if let Some(c) = m.get("content") {
            n += enc.encode_ordinary(&content_text(c)).len() as u64;
        }
    }
    n
}

/// The tokens of an embeddings request's `input`: a string, an array of strings, or token
/// arrays (counted as they are).
pub fn estimate_input(model: &str, body: &Value) -> u64 {
    let count = |v: &Value| match v {
        Value::String(s) => count_text(model, s),
        Value::Array(tokens) => tokens.len() as u64,
        _ => 0,
    };
    match body.get("input") {
        Some(Value::Array(items)) if items.iter().all(Value::is_number) => items.len() as u64,
        Some(Value::Array(items)) => items.iter().map(count).sum(),
        Some(v) => count(v),
        None => 0,
    }
}

/// The usage of a non-streamed reply: the provider's counts, or an estimate when absent.
pub fn of_response(model: &str, request: &Value, response: &Value) -> Usage {
    if let Some(u) = provider_usage(response.get("usage")) {
        return u;
    }
    let text: String = response
        .get("choices")
        .and_then(Value::as_array)
        .map(|cs| cs.iter().filter_map(|c| c.pointer("/message/content")).map(content_text).collect())
        .unwrap_or_default();
    Usage {
        prompt_tokens: estimate_prompt(model, request),
        completion_tokens: count_text(model, &text),
        cached_tokens: 0,
        estimated: true,
        cost_nanodollars: 0,
    }
}

/// `usage.{prompt_tokens, completion_tokens, prompt_tokens_details.cached_tokens}` when present.
pub fn provider_usage(usage: Option<&Value>) -> Option<Usage> {
    let u = usage?;
    let prompt = u.get("prompt_tokens")?.as_u64()?;
    let completion = u.get("completion_tokens")?.as_u64()?;
    let cached = u.pointer("/prompt_tokens_details/cached_tokens").and_then(Value::as_u64).unwrap_or(0);
    Some(Usage {
        prompt_tokens: prompt,
        completion_tokens: completion,
        cached_tokens: cached.min(prompt),
        estimated: false,
        cost_nanodollars: 0,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn cost_is_exact_integer_arithmetic() {
        // $0.15 / $0.60 / $0.075 per million tokens.
        let p = Price { input: 150_000_000, output: 600_000_000, cached_input: 75_000_000 };
        let u = Usage { prompt_tokens: 1_000, completion_tokens: 500, cached_tokens: 200, ..Default::default() };
        // 800×150 + 200×75 + 500×600 = 120_000 + 15_000 + 300_000 = 435_000 nano-dollars.
        assert_eq!(cost_nanodollars(&p, &u), 435_000);
        let one = Usage { prompt_tokens: 1, ..Default::default() };
        assert_eq!(cost_nanodollars(&Price { input: 1, output: 1, cached_input: 1 }, &one), 1, "rounded up");
        let big = Usage { prompt_tokens: u64::MAX, completion_tokens: u64::MAX, ..Default::default() };
        assert_eq!(cost_nanodollars(&Price { input: u64::MAX, output: u64::MAX, cached_input: 0 }, &big), u64::MAX);
        assert_eq!(worst_case_nanodollars(Some(&p), 1_000_000, 1_000_000), 750_000_000);
    }

    #[test]
    fn provider_usage_wins_and_its_absence_is_estimated() {
        let req = json!({ "messages": [{ "role": "user", "content": "Hello there, how are you?" }] });
        let with = json!({ "choices": [], "usage": { "prompt_tokens": 9, "completion_tokens": 4,
                           "prompt_tokens_details": { "cached_tokens": 5 } } });
        let u = of_response("gpt-4o", &req, &with);
        assert_eq!((u.prompt_tokens, u.completion_tokens, u.cached_tokens, u.estimated), (9, 4, 5, false));
        let without = json!({ "choices": [{ "message": { "role": "assistant", "content": "I am fine, thanks." } }] });
        let u = of_response("gpt-4o", &req, &without);
        assert!(u.estimated);
        assert!(u.prompt_tokens > 7 && u.completion_tokens >= 4, "{u:?}");
        assert_eq!(count_text("gpt-4", "hello world"), 2);
    }
}
