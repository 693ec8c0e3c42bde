//! Which chain of targets serves a request, and in what order: the route of the asked name
//! or the wildcard route with its longest prefix, the first rule whose conditions hold, and a
//! weighted chain's first pick.

use serde_json::Value;

use super::{retry, usage, Chain, Gateway, RouteInput};

impl Gateway {
    /// The route serving `model`: the route of that name, else the wildcard route with the
    /// longest prefix of it that leaves something after the prefix (rule chains, `model#n`,
    /// are not names clients use).
    fn route_name<'a>(&'a self, model: &'a str) -> Option<&'a str> {
        if model.contains('#') {
            return None;
        }
        if self.routes.contains_key(model) {
            return Some(model);
        }
        // Something must follow the prefix: it fills the targets' `*`.
        self.wildcards
            .iter()
            .find(|(prefix, _)| model.len() > prefix.len() && model.starts_with(prefix.as_str()))
            .map(|(_, name)| name.as_str())
    }

    /// Whether clients may ask for `model`.
    pub fn has_model(&self, model: &str) -> bool {
        self.route_name(model).is_some()
    }

    /// The route key that serves this request: the first rule of `model`'s route whose
    /// conditions all hold (`route#n`), else the route itself.
    pub fn resolve(&self, model: &str, input: &RouteInput<'_>) -> String {
        let name = self.route_name(model).unwrap_or(model);
        let Some(rules) = self.rules.get(name) else { return name.to_string() };
        let mut prompt_tokens = None;
        for rule in rules {
            if !rule.tenants.is_empty() && !rule.tenants.iter().any(|t| t == input.tenant) {
                continue;
            }
            if let Some(want) = &rule.intent {
                let intent = input.body.pointer("/metadata/intent").and_then(Value::as_str);
                if intent != Some(want.as_str()) {
                    continue;
                }
            }
            if rule.min_prompt_tokens.is_some() || rule.max_prompt_tokens.is_some() {
                let n = *prompt_tokens.get_or_insert_with(|| usage::estimate_prompt(model, input.body));
                if rule.min_prompt_tokens.is_some_and(|lo| n < lo) || rule.max_prompt_tokens.is_some_and(|hi| n > hi) {
                    continue;
                }
            }
            return rule.key.clone();
        }
        name.to_string()
    }

    /// The names clients may ask for (wildcard routes are patterns, not names).
    pub fn models(&self) -> Vec<String> {
        let mut m: Vec<String> = self.routes.keys().filter(|k| !k.contains(['#', '*'])).cloned().collect();
        m.sort();
        m
    }
}

impl Chain {
    /// The positions of a chain's targets in the order this request tries them: as
    /// configured, or for a weighted chain, one picked by weight first and the others after it
    /// in order.
    pub(super) fn order(&self) -> impl Iterator<Item = usize> {
        let n = self.targets.len();
        let first = match self.weights.as_ref().filter(|ws| ws.len() == n) {
            None => 0,
            Some(ws) => {
                let total: u64 = ws.iter().map(|&w| u64::from(w)).sum();
                let mut r = (retry::jitter_unit() * total as f64) as u64;
                ws.iter()
                    .position(|&w| {
                        let w = u64::from(w);
                        if r < w {
                            return true;
                        }
                        r -= w;
                        false
                    })
                    .unwrap_or(0)
            }
        };
        std::iter::once(first).filter(move |_| n > 0).chain((0..n).filter(move |&i| i != first))
    }
}
