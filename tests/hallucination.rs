//! The hallucination firewall end to end: the grounded pipeline with a generative answerer
//! behind the gateway, against a scripted fake OpenAI-compatible provider that answers each
//! sample-KB fact question either faithfully (copying the fact's sentence from the fenced
//! sources it receives, with the right `[n]`) or with invented policy (a changed number, an
//! invented fee, a wrong duration, a negated rule). Invented text must never reach the client,
//! plain or streamed; the figures are printed for the report. Also: `repair` and `escalate`.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic, reason = "test code: a panic is a failed test")]

mod common;

use std::collections::{HashMap, VecDeque};
use std::sync::{Arc, Mutex};

use axum::extract::State;
use axum::routing::post;
use axum::{Json, Router};
use keel::config::gateway::{ProviderConfig, ProviderKind, RouteConfig, TargetConfig};
use keel::config::{Config, Generator, GroundingPolicy};
use serde_json::{json, Value};
use unicode_segmentation::UnicodeSegmentation;

const ROUTE: &str = "fake-llm";

#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
enum Kind {
    Faithful,
    Number,
    Fee,
    Duration,
    Negation,
    /// Leaks the system prompt's canary, spaced out letter by letter.
    Leak,
}

const INVENTED: [Kind; 4] = [Kind::Number, Kind::Fee, Kind::Duration, Kind::Negation];

/// What the fake replied: the text, and the invented claim that must never reach a client.
#[derive(Clone, Debug)]
struct Reply {
    kind: Kind,
    text: String,
    faithful: String,
    needle: Option<String>,
    messages: usize,
}

#[derive(Clone)]
struct Fake {
    facts: Arc<HashMap<String, String>>,
    script: Arc<Mutex<VecDeque<Kind>>>,
    log: Arc<Mutex<Vec<Reply>>>,
}

impl Fake {
    fn push(&self, kinds: &[Kind]) {
        self.script.lock().unwrap().extend(kinds.iter().copied());
    }
    fn calls(&self) -> usize {
        self.log.lock().unwrap().len()
    }
    fn last(&self) -> Reply {
        self.log.lock().unwrap().last().cloned().unwrap()
    }
}

/// `(id, text)` of each `<source id="n" …>` fence, and the question, from the first user message.
fn parse_prompt(user: &str) -> (Vec<(usize, String)>, String) {
    let mut sources = Vec::new();
    let mut rest = user;
    while let Some(open) = rest.find("<source id=\"") {
        let after = &rest[open + 12..];
        let id: usize = after[..after.find('"').unwrap()].parse().unwrap();
        let body_start = after.find(">\n").unwrap() + 2;
        let body_end = after.find("\n</source>").unwrap();
        sources.push((id, after[body_start..body_end].to_string()));
        rest = &after[body_end..];
    }
    let question = user.rsplit("Question: ").next().unwrap_or("").trim().to_string();
    (sources, question)
}

fn words(s: &str) -> Vec<String> {
    s.split(|c: char| !c.is_alphanumeric()).filter(|w| w.len() > 1).map(str::to_lowercase).collect()
}

/// The source sentences, as a model would quote them (no list markers, no headings).
fn sentences(text: &str) -> Vec<String> {
    let mut out = Vec::new();
    for line in text.lines() {
        let line = line.trim();
        if line.starts_with('#') || line.starts_with('|') {
            continue;
        }
        for s in line.unicode_sentences() {
            let s = s.trim().trim_start_matches(['-', '*', ' ']).trim();
            if s.split_whitespace().count() >= 4 {
                out.push(s.to_string());
            }
        }
    }
    out
}

/// The sentence of the sources that best states `fact` (numbers first), and its source id.
fn faithful(sources: &[(usize, String)], question: &str, fact: &str) -> (usize, String) {
    let fact_words = words(fact);
    let q_words = words(question);
    let mut best = (f32::MIN, 0, String::new());
    for (id, text) in sources {
        for s in sentences(text) {
            let w = words(&s);
            let numbers = fact_words.iter().filter(|f| f.chars().any(|c| c.is_ascii_digit()) && w.contains(f)).count();
            let fact_hits = fact_words.iter().filter(|f| w.contains(f)).count();
            let q_hits = q_words.iter().filter(|f| w.contains(f)).count();
            let score = 3.0 * numbers as f32 + fact_hits as f32 + 0.3 * q_hits as f32 - 0.01 * w.len() as f32;
            if score > best.0 {
                best = (score, *id, s);
            }
        }
    }
    (best.1, best.2)
}

/// "Sentence [n]." with the marker before the final punctuation.
fn cite(sentence: &str, n: usize) -> String {
    let body = sentence.trim_end();
    match body.char_indices().last() {
        Some((at, ch)) if matches!(ch, '.' | '!' | '?') => format!("{} [{n}]{ch}", &body[..at]),
        _ => format!("{body} [{n}]."),
    }
}

fn change_number(s: &str) -> String {
    let Some(start) = s.find(|c: char| c.is_ascii_digit()) else {
        return insert_before_end(s, " within 48 hours");
    };
    let len = s[start..].find(|c: char| !c.is_ascii_digit()).unwrap_or(s.len() - start);
    let n: u64 = s[start..start + len].parse().unwrap_or(0);
    format!("{}{}{}", &s[..start], n + 17, &s[start + len..])
}

fn insert_before_end(s: &str, insert: &str) -> String {
    let body = s.trim_end_matches(['.', '!', '?']);
    format!("{body}{insert}{}", &s[body.len()..])
}

const UNITS: [(&str, &str); 6] = [
    ("minute", "hours"),
    ("hour", "days"),
    ("business day", "weeks"),
    ("day", "weeks"),
    ("week", "months"),
    ("year", "months"),
];

fn wrong_duration(s: &str) -> String {
    let lower = s.to_lowercase();
    for (unit, other) in UNITS {
        let Some(at) = lower.find(unit) else { continue };
        // The number right before the unit ("30 days", "7-day").
        let head = s[..at].trim_end_matches([' ', '-']);
        let digits = head.len() - head.trim_end_matches(|c: char| c.is_ascii_digit()).len();
        if digits == 0 {
            continue;
        }
        let n: u64 = head[head.len() - digits..].parse().unwrap_or(1);
        let end = at + unit.len() + usize::from(s[at + unit.len()..].starts_with('s'));
        return format!("{}{} {other}{}", &head[..head.len() - digits], n * 2 + 3, &s[end..]);
    }
    insert_before_end(s, " within 90 days")
}

const NEGATIONS: [(&str, &str); 16] = [
    (" cannot ", " can "),
    (" can not ", " can "),
    (" do not ", " do "),
    (" does not ", " does "),
    (" is not ", " is "),
    (" are not ", " are "),
    (" never ", " always "),
    (" not ", " "),
    (" can ", " cannot "),
    (" must ", " must not "),
    (" will ", " will not "),
    (" is ", " is not "),
    (" are ", " are not "),
    (" may ", " may not "),
    (" ship ", " do not ship "),
    (" have ", " do not have "),
];

fn negate(s: &str) -> String {
    for (from, to) in NEGATIONS {
        if let Some(at) = s.find(from) {
            return format!("{}{to}{}", &s[..at], &s[at + from.len()..]);
        }
    }
    format!("It is not true that {}{}", s[..1].to_lowercase(), &s[1..])
}

fn strip_marker(s: &str) -> String {
    let mut out = s.to_string();
    while let (Some(a), Some(b)) = (out.find(" ["), out.find(']')) {
        if b < a {
            break;
        }
        out.replace_range(a..=b, "");
    }
    out
}

/// Whether the invented claim `needle` is in a response (markers ignored, plain or streamed).
fn reaches_client(raw: &str, text: &str, needle: &str) -> bool {
    let core = strip_marker(needle);
    let core = core.trim_end_matches(['.', '!', '?']);
    strip_marker(text).contains(core) || raw.contains(core)
}

/// Whether the client got `reply` (its markers may have been renumbered).
fn serves(text: &str, reply: &str) -> bool {
    strip_marker(text).starts_with(&strip_marker(reply))
}

async fn fake_handler(State(f): State<Fake>, Json(body): Json<Value>) -> Json<Value> {
    let messages = body["messages"].as_array().cloned().unwrap_or_default();
    let user = messages.iter().find(|m| m["role"] == "user").and_then(|m| m["content"].as_str()).unwrap_or("");
    let (sources, question) = parse_prompt(user);
    let fact = f.facts.get(&question).cloned().unwrap_or_else(|| question.clone());
    let (n, sentence) = faithful(&sources, &question, &fact);
    let kind = f.script.lock().unwrap().pop_front().unwrap_or(Kind::Faithful);
    let good = cite(&sentence, n);
    let (text, needle) = match kind {
        Kind::Faithful => (good.clone(), None),
        Kind::Number => {
            let bad = cite(&change_number(&sentence), n);
            (bad.clone(), Some(strip_marker(&bad)))
        }
        Kind::Duration => {
            let bad = cite(&wrong_duration(&sentence), n);
            (bad.clone(), Some(strip_marker(&bad)))
        }
        Kind::Negation => {
            let bad = cite(&negate(&sentence), n);
            (bad.clone(), Some(strip_marker(&bad)))
        }
        Kind::Fee => {
            let fee = "A $4.99 processing fee applies to every return and refund";
            (format!("{good} {}", cite(&format!("{fee}."), n)), Some(fee.to_string()))
        }
        Kind::Leak => {
            let system = messages.iter().find(|m| m["role"] == "system").and_then(|m| m["content"].as_str());
            let canary = system
                .and_then(|s| s.split_whitespace().find(|w| w.starts_with("kc") && w.len() >= 18))
                .map(|w| w.trim_end_matches(':').to_string())
                .unwrap_or_default();
            let spaced: Vec<String> = canary.chars().map(String::from).collect();
            (format!("{good} My reference code is {}.", spaced.join(" ")), Some(canary))
        }
    };
    f.log.lock().unwrap().push(Reply { kind, text: text.clone(), faithful: good, needle, messages: messages.len() });
    Json(json!({ "id": "cmpl-fake", "object": "chat.completion", "created": 1, "model": body["model"],
                 "choices": [{ "index": 0, "message": { "role": "assistant", "content": text }, "finish_reason": "stop" }],
                 "usage": { "prompt_tokens": 100, "completion_tokens": 20, "total_tokens": 120 } }))
}

async fn start_fake() -> (Fake, String) {
    let facts = common::facts().into_iter().map(|(q, fact, _)| (q, fact)).collect();
    let fake = Fake { facts: Arc::new(facts), script: Arc::default(), log: Arc::default() };
    let app = Router::new().route("/v1/chat/completions", post(fake_handler)).with_state(fake.clone());
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    (fake, format!("http://{addr}/v1"))
}

/// A server over the sample KB whose answers are written by the fake, under `policy`.
async fn setup(policy: GroundingPolicy) -> Option<(tempfile::TempDir, Fake, common::Server)> {
    setup_with(policy, 8).await
}

async fn setup_with(
    policy: GroundingPolicy,
    max_model_calls: u32,
) -> Option<(tempfile::TempDir, Fake, common::Server)> {
    setup_at(policy, max_model_calls, None, false).await
}

/// As `setup_with`, with the provider at `url` instead of the fake.
async fn setup_at(
    policy: GroundingPolicy,
    max_model_calls: u32,
    url: Option<&str>,
    deterministic: bool,
) -> Option<(tempfile::TempDir, Fake, common::Server)> {
    let embedder = common::embedder()?;
    let tmp = tempfile::tempdir().unwrap();
    let mut cfg: Config = common::config(tmp.path());
    common::ingest_paths(&cfg, &embedder, &[common::repo().join("sample-kb")], false).await;
    let (fake, fake_url) = start_fake().await;
    let url = url.map_or(fake_url, str::to_string);
    cfg.gateway.providers = vec![ProviderConfig {
        name: "fake".into(),
        kind: ProviderKind::OpenAi,
        base_url: url,
        api_key_env: None,
        stream_usage: true,
        wire: Default::default(),
        timeouts: Default::default(),
    }];
    cfg.gateway.routes = vec![RouteConfig {
        model: ROUTE.into(),
        targets: vec![TargetConfig { provider: "fake".into(), model: "fake-model".into(), price: None, weight: None }],
        price: None,
        rules: vec![],
        guard: None,
    }];
    cfg.answer.generator = Generator::Route(ROUTE.into());
    cfg.answer.grounding_policy = policy;
    cfg.gateway.max_model_calls = max_model_calls;
    // These tests ask one question many times with different scripted replies: every ask must
    // reach the model, so answer snapshots (deterministic mode) are off here and tested below.
    cfg.answer.deterministic = deterministic;
    let server = common::Server::start(cfg, embedder).await;
    Some((tmp, fake, server))
}

/// Asks through `/v1/chat/completions` (model `keel`): the raw body, the assistant text (SSE
/// deltas reassembled when streaming) and the `keel` extension.
async fn ask(server: &common::Server, question: &str, stream: bool) -> (String, String, Value) {
    let body = json!({ "model": "keel", "messages": [{ "role": "user", "content": question }], "stream": stream });
    let res = reqwest::Client::new().post(server.url("/v1/chat/completions")).json(&body).send().await.unwrap();
    assert_eq!(res.status().as_u16(), 200);
    let raw = res.text().await.unwrap();
    if !stream {
        let v: Value = serde_json::from_str(&raw).unwrap();
        let text = v["choices"][0]["message"]["content"].as_str().unwrap().to_string();
        return (raw, text, v["keel"].clone());
    }
    let (mut text, mut keel) = (String::new(), Value::Null);
    for line in raw.lines().filter_map(|l| l.strip_prefix("data: ")).filter(|l| *l != "[DONE]") {
        let v: Value = serde_json::from_str(line).unwrap();
        if let Some(piece) = v["choices"][0]["delta"]["content"].as_str() {
            text.push_str(piece);
        }
        if !v["keel"].is_null() {
            keel = v["keel"].clone();
        }
    }
    (raw, text, keel)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn invented_policy_is_stopped_and_faithful_answers_pass() {
    let Some((_tmp, fake, server)) = setup(GroundingPolicy::FallbackExtractive).await else { return };
    let facts = common::facts();
    assert!(facts.len() >= 30);
    let (mut faithful_total, mut faithful_passed) = (0, 0);
    let mut invented: HashMap<Kind, (u32, u32)> = HashMap::new();
    let mut leaks = Vec::new();
    let mut wrongly_stopped = Vec::new();
    let mut missed = Vec::new();
    for (i, (q, _, _)) in facts.iter().enumerate() {
        for (j, kind) in std::iter::once(Kind::Faithful).chain(INVENTED).enumerate() {
            let stream = (i + j) % 2 == 1;
            let before = fake.calls();
            fake.push(&[kind]);
            let (raw, text, keel) = ask(&server, q, stream).await;
            if fake.calls() == before {
                // No evidence: the model was not called (the no-evidence escalation answered).
                fake.script.lock().unwrap().clear();
                assert_eq!(keel["reason"], "no_evidence", "{q}");
                continue;
            }
            let reply = fake.last();
            assert_eq!(reply.kind, kind);
            let served_generated = keel["versions"]["model"] == ROUTE;
            assert_eq!(keel["versions"]["prompt"] == "grounded-v1", served_generated, "{keel}");
            if kind == Kind::Faithful {
                faithful_total += 1;
                if served_generated && serves(&text, &reply.faithful) {
                    faithful_passed += 1;
                } else {
                    wrongly_stopped.push(format!("{q} → {}", reply.text));
                }
                continue;
            }
            let needle = reply.needle.clone().unwrap();
            let e = invented.entry(kind).or_default();
            e.0 += 1;
            let reached = reaches_client(&raw, &text, &needle);
            if served_generated {
                // Not stopped: the detector below must see it (proves it would see a leak).
                assert!(reached, "the leak detector misses a served invention: {text}");
                missed.push(format!("{kind:?}: {}", reply.text));
            } else {
                e.1 += 1;
                if reached {
                    leaks.push(format!("{kind:?} (stream {stream}): {needle}"));
                }
            }
        }
    }
    let (inv_total, inv_stopped) = invented.values().fold((0, 0), |a, v| (a.0 + v.0, a.1 + v.1));
    let pct = |a: u32, b: u32| 100.0 * f64::from(a) / f64::from(b.max(1));
    eprintln!("hallucination firewall on the sample KB ({} fact questions):", facts.len());
    for kind in INVENTED {
        let (t, s) = invented.get(&kind).copied().unwrap_or_default();
        eprintln!("  invented {kind:?}: {s}/{t} stopped ({:.1} %)", pct(s, t));
    }
    eprintln!("  invented, all kinds: {inv_stopped}/{inv_total} stopped ({:.1} %)", pct(inv_stopped, inv_total));
    eprintln!("  faithful: {faithful_passed}/{faithful_total} passed ({:.1} %)", pct(faithful_passed, faithful_total));
    eprintln!("  stopped invented text reaching a client: {}", leaks.len());
    for m in &missed {
        eprintln!("  MISSED {m}");
    }
    for w in &wrongly_stopped {
        eprintln!("  WRONGLY STOPPED {w}");
    }
    assert!(leaks.is_empty(), "stopped text reached a client: {leaks:#?}");
    assert!(inv_total >= 100 && faithful_total >= 25, "{inv_total} invented, {faithful_total} faithful");
    assert!(pct(inv_stopped, inv_total) >= 95.0, "invented stopped: {inv_stopped}/{inv_total}");
    assert!(pct(faithful_passed, faithful_total) >= 95.0, "faithful passed: {faithful_passed}/{faithful_total}");
    let metrics = reqwest::Client::new().get(server.url("/metrics")).send().await.unwrap().text().await.unwrap();
    assert!(metrics.contains("keel_grounding_total{outcome=\"fallback_extractive\"}"), "{metrics}");
    server.stop().await;
}

async fn trace(server: &common::Server, id: &str) -> Value {
    let t = server.get_json(&format!("/v1/traces/{id}")).await;
    t["spans"].as_array().unwrap().iter().find(|s| s["name"] == "generate").unwrap()["attrs"].clone()
}

const Q: &str = "How long do I have to return an item?";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn repair_gets_one_more_call_and_its_answer_is_checked_again() {
    let Some((_tmp, fake, server)) = setup(GroundingPolicy::Repair).await else { return };
    // First reply invents a number, the repair is faithful: the repaired answer is served.
    fake.push(&[Kind::Number, Kind::Faithful]);
    let (_, text, keel) = ask(&server, Q, false).await;
    assert_eq!(fake.calls(), 2);
    let repair = fake.last();
    assert_eq!(repair.messages, 4, "system, user, the first reply, the repair request");
    assert_eq!(keel["versions"]["model"], ROUTE, "{keel}");
    assert!(serves(&text, &repair.faithful), "{text}");
    let attrs = trace(&server, keel["trace_id"].as_str().unwrap()).await;
    assert_eq!(attrs["model_calls"], 2, "{attrs}");
    // Both calls' usage (the provider's: 100 + 20 each) is the answer's, not an estimate.
    assert_eq!(keel["usage"]["prompt_tokens"], 200, "{keel}");
    assert_eq!(keel["usage"]["completion_tokens"], 40, "{keel}");
    assert_eq!(keel["usage_estimated"], false, "{keel}");
    assert_eq!(attrs["grounding"]["supported"], false, "{attrs}");
    assert_eq!(attrs["repair_grounding"]["supported"], true, "{attrs}");
    assert!(attrs["grounding"]["claims"][0]["missing"].to_string().contains("number"), "{attrs}");

    // Still invented after the repair: the extractive answer, and nothing invented leaks.
    fake.push(&[Kind::Fee, Kind::Negation]);
    let (raw, text, keel) = ask(&server, Q, true).await;
    assert_eq!(fake.calls(), 4);
    assert_eq!(keel["versions"]["model"], "keel-extractive@1", "{keel}");
    assert!(!reaches_client(&raw, &text, fake.last().needle.as_deref().unwrap()) && !raw.contains("$4.99"), "{text}");
    let attrs = trace(&server, keel["trace_id"].as_str().unwrap()).await;
    assert_eq!(attrs["model_calls"], 2, "{attrs}");
    assert!(attrs["grounding_fallback"]["reason"].as_str().unwrap().contains("after repair"), "{attrs}");
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_loop_guard_counts_the_repair_call() {
    // One model call per request: the repair is refused by the loop guard, extractive answers.
    let Some((_tmp, fake, server)) = setup_with(GroundingPolicy::Repair, 1).await else { return };
    fake.push(&[Kind::Duration, Kind::Faithful]);
    let (raw, text, keel) = ask(&server, Q, false).await;
    assert_eq!(fake.calls(), 1);
    assert_eq!(keel["versions"]["model"], "keel-extractive@1", "{keel}");
    assert!(!reaches_client(&raw, &text, fake.last().needle.as_deref().unwrap()), "{text}");
    let attrs = trace(&server, keel["trace_id"].as_str().unwrap()).await;
    assert_eq!(attrs["model_calls"], 1, "{attrs}");
    assert!(attrs["repair_error"].as_str().unwrap().contains("limit of 1 model calls"), "{attrs}");
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn escalate_policy_opens_an_escalation_instead_of_answering() {
    let Some((_tmp, fake, server)) = setup(GroundingPolicy::Escalate).await else { return };
    fake.push(&[Kind::Fee]);
    let (raw, text, keel) = ask(&server, Q, false).await;
    assert_eq!(fake.calls(), 1);
    assert_eq!(keel["escalate"], true, "{keel}");
    assert_eq!(keel["reason"], "low_grounding", "{keel}");
    assert!(keel["escalation"].as_str().unwrap().starts_with("esc_"), "{keel}");
    assert!(!raw.contains("$4.99") && !text.contains("$4.99"), "{raw}");
    let id = keel["escalation"].as_str().unwrap();
    let e = server.get_json(&format!("/v1/admin/escalations/{id}")).await;
    assert_eq!(e["reason"], "low_grounding", "{e}");

    // A faithful reply under the same policy is served as generated.
    fake.push(&[Kind::Faithful]);
    let (_, text, keel) = ask(&server, Q, false).await;
    assert_eq!(keel["escalate"], false, "{keel}");
    assert!(serves(&text, &fake.last().faithful), "{text}");
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_provider_failure_is_a_gateway_error_not_an_answer() {
    // Nothing listens on port 9: every attempt fails, the client gets the gateway's 502.
    let dead = Some("http://127.0.0.1:9/v1");
    let Some((_tmp, _fake, server)) = setup_at(GroundingPolicy::FallbackExtractive, 8, dead, false).await else {
        return;
    };
    let res =
        reqwest::Client::new().post(server.url("/v1/answer")).json(&json!({ "question": Q })).send().await.unwrap();
    assert_eq!(res.status().as_u16(), 502);
    let body: Value = res.json().await.unwrap();
    assert_eq!(body["error"]["code"], "upstream_failed", "{body}");
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn deterministic_mode_returns_the_stored_answer_though_the_model_would_say_something_else() {
    let Some((_tmp, fake, server)) = setup_at(GroundingPolicy::FallbackExtractive, 8, None, true).await else {
        return;
    };
    let q = "How long do I have to return an item?";
    fake.push(&[Kind::Faithful]);
    let (_, first_text, first) = ask(&server, q, false).await;
    assert_eq!(fake.calls(), 1);
    assert!(first["snapshot"].is_string(), "{first}");
    // The model would now answer differently (an invented duration, then a faithful rewording),
    // but the same normalised question under the same versions gets the stored answer.
    fake.push(&[Kind::Duration, Kind::Faithful]);
    for variant in [q, "how long do i have to return an item", "How long do I have to return an item ?"] {
        let (_, text, keel) = ask(&server, variant, variant.ends_with(" ?")).await;
        assert_eq!(text, first_text, "{variant}");
        assert_eq!(keel["snapshot"], first["snapshot"]);
        assert_eq!(keel["citations"], first["citations"]);
    }
    assert_eq!(fake.calls(), 1, "answered from the snapshot: no model call");
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_answer_marked_wrong_is_stopped_when_the_model_says_it_again() {
    let Some((_tmp, fake, server)) = setup_at(GroundingPolicy::FallbackExtractive, 8, None, false).await else {
        return;
    };
    let c = reqwest::Client::new();
    let q = "How long do I have to return an item?";
    fake.push(&[Kind::Faithful]);
    let (_, _, first) = ask(&server, q, false).await;
    assert_eq!(first["versions"]["model"], "fake-llm", "{first}");
    // An operator marks it wrong; the approved variant the correction creates is then retired,
    // so the question reaches the model again.
    let cor: Value = c
        .post(server.url("/v1/admin/corrections"))
        .json(&json!({ "trace_id": first["trace_id"], "text": "Returns are accepted for 45 days.", "reason": "policy changed" }))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let id = cor["approved_id"].as_str().unwrap();
    let res = c
        .post(server.url(&format!("/v1/admin/approved/{id}/retire")))
        .json(&json!({ "expected_version": 1 }))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 200);
    fake.push(&[Kind::Faithful]);
    let (_, _, again) = ask(&server, q, false).await;
    assert_eq!(fake.calls(), 2, "the model was asked");
    assert_eq!(again["versions"]["model"], "keel-extractive@1", "the repeated wrong answer was replaced: {again}");
    let generate = server.span(&again["trace_id"], "generate").await;
    assert_eq!(generate["repeats_correction"], cor["id"]);
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_reply_that_leaks_the_system_prompt_canary_is_withheld() {
    let Some((tmp, fake, server)) = setup(GroundingPolicy::FallbackExtractive).await else { return };
    fake.push(&[Kind::Leak]);
    let (raw, text, keel) = ask(&server, "How long do I have to return an item?", false).await;
    let canary = fake.last().needle.unwrap();
    assert!(canary.starts_with("kc") && canary.len() >= 18, "the fake found the canary: {canary}");
    assert_eq!(keel["versions"]["model"], "keel-extractive@1", "{keel}");
    let squashed: String = raw.chars().filter(char::is_ascii_alphanumeric).collect();
    assert!(!squashed.contains(&canary), "no trace of the canary reaches the client");
    assert!(!text.contains("reference code"), "{text}");
    let generate = server.span(&keel["trace_id"], "generate").await;
    assert_eq!(generate["canary_leak"], true);
    // The input that caused it waits in the signature quarantine (inactive until approved).
    let id = generate["quarantined"].as_str().expect("the input was quarantined").to_string();
    let local = std::fs::read_to_string(tmp.path().join("data").join("signatures.jsonl"))
        .or_else(|_| std::fs::read_to_string(tmp.path().join("signatures.jsonl")))
        .unwrap();
    let entry: Value =
        local.lines().filter_map(|l| serde_json::from_str(l).ok()).find(|v: &Value| v["id"] == id).unwrap();
    assert_eq!((entry["status"].as_str(), entry["kind"].as_str()), (Some("quarantined"), Some("attack")));
    assert_eq!(entry["text"], "How long do I have to return an item?");
    server.stop().await;
}
