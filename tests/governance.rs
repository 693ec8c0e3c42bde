//! Governance end to end over HTTP on the sample knowledge base: approved-answer precedence,
//! versions and concurrent edits, the turn limit and idle timeout across a restart, the
//! escalation life cycle with a human reply delivered into the conversation, and the
//! approved-answer false-match rate on unrelated customer questions (BANKING77 test).

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic, reason = "test code: a panic is a failed test")]

mod common;

use std::time::Duration;

use serde_json::{json, Value};

async fn setup() -> Option<(tempfile::TempDir, keel::config::Config, std::sync::Arc<keel::embedding::Embedder>)> {
    let embedder = common::embedder()?;
    let tmp = tempfile::tempdir().unwrap();
    let cfg = common::config(tmp.path());
    common::ingest_paths(&cfg, &embedder, &[common::repo().join("sample-kb")], false).await;
    Some((tmp, cfg, embedder))
}

async fn send(req: reqwest::RequestBuilder) -> (u16, Value) {
    let res = req.send().await.unwrap();
    let status = res.status().as_u16();
    (status, res.json().await.unwrap_or(Value::Null))
}

fn ask(c: &reqwest::Client, s: &common::Server, q: &str, conv: Option<&str>) -> reqwest::RequestBuilder {
    let mut body = json!({ "question": q });
    if let Some(id) = conv {
        body["conversation"] = json!(id);
    }
    c.post(s.url("/v1/answer")).json(&body)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn approved_answers_take_precedence_are_versioned_and_never_lose_a_concurrent_edit() {
    let Some((_tmp, cfg, embedder)) = setup().await else { return };
    let s = common::Server::start(cfg, embedder).await;
    let c = reqwest::Client::new();
    let text = "You can return any item within 30 days of delivery. Trailhead Club members get 60 days.";
    // The document id as the knowledge base knows it (ids depend on the ingest path).
    let (_, plain) = send(ask(&c, &s, "How long do I have to return an item?", None)).await;
    let doc = plain["citations"][0]["doc"].as_str().unwrap().to_string();
    assert!(doc.ends_with("returns/return-policy.md"), "{doc}");
    let (st, a) = send(c.post(s.url("/v1/admin/approved")).json(&json!({
        "question": "How long do I have to return an item?",
        "answer": text,
        "intent": "returns",
        "cites": [doc],
    })))
    .await;
    assert_eq!(st, 201, "{a}");
    let id = a["id"].as_str().unwrap().to_string();
    assert_eq!(a["version"], 1);

    // A rephrased question gets the approved text verbatim, with id and version, before retrieval.
    let (st, r) = send(ask(&c, &s, "how long do i have to return an item", None)).await;
    assert_eq!(st, 200);
    assert_eq!(r["answer"], text);
    assert_eq!(r["approved"]["id"], id.as_str());
    assert_eq!(r["approved"]["version"], 1);
    assert_eq!(r["citations"][0]["doc"], doc.as_str());
    assert_eq!(r["citations"][0]["title"], "Return Policy", "the title comes from the index");
    let names = s.span_names(&r["trace_id"]).await;
    assert_eq!(names, ["input", "conversation", "approved", "record"], "no retrieval after an approved match");

    // An unrelated question is not captured by the approved answer.
    let (_, r) = send(ask(&c, &s, "How do I reset my password?", None)).await;
    assert!(r["approved"].is_null(), "{r}");
    assert!(r["answer"].as_str().unwrap().to_lowercase().contains("password"));

    // Two editors read version 1 and write at once: exactly one wins, the other gets 409.
    let edit = |answer: &str| {
        c.patch(s.url(&format!("/v1/admin/approved/{id}"))).json(&json!({ "expected_version": 1, "answer": answer }))
    };
    let ((s1, b1), (s2, b2)) = tokio::join!(send(edit("Edit by Ann: 30 days.")), send(edit("Edit by Bob: 30 days.")));
    let mut statuses = [s1, s2];
    statuses.sort();
    assert_eq!(statuses, [200, 409], "{b1} {b2}");
    let loser = if s1 == 409 { &b1 } else { &b2 };
    assert_eq!(loser["error"]["code"], "conflict");
    assert!(loser["error"]["message"].as_str().unwrap().contains("version 2"), "{loser}");
    let winner = if s1 == 200 { &b1 } else { &b2 };
    let (_, h) = send(c.get(s.url(&format!("/v1/admin/approved/{id}")))).await;
    let versions: Vec<i64> = h["history"].as_array().unwrap().iter().map(|v| v["version"].as_i64().unwrap()).collect();
    assert_eq!(versions, [1, 2]);
    assert_eq!(h["current"]["answer"], winner["answer"]);
    // The server serves the new version at once.
    let (_, r) = send(ask(&c, &s, "How long do I have to return an item?", None)).await;
    assert_eq!(r["answer"], winner["answer"]);
    assert_eq!(r["approved"]["version"], 2);

    // Stale retire → 409; current retire → not served any more (retrieval answers instead).
    let (st, _) =
        send(c.post(s.url(&format!("/v1/admin/approved/{id}/retire"))).json(&json!({ "expected_version": 1 }))).await;
    assert_eq!(st, 409);
    let (st, _) =
        send(c.post(s.url(&format!("/v1/admin/approved/{id}/retire"))).json(&json!({ "expected_version": 2 }))).await;
    assert_eq!(st, 200);
    let (_, r) = send(ask(&c, &s, "How long do I have to return an item?", None)).await;
    assert!(r["approved"].is_null(), "{r}");
    assert!(r["answer"].as_str().unwrap().contains("30 days"), "{r}");

    // Bad input is precise.
    let (st, e) = send(c.post(s.url("/v1/admin/approved")).json(&json!({ "question": " ", "answer": "x" }))).await;
    assert_eq!((st, e["error"]["param"].as_str()), (422, Some("question")), "{e}");
    let (st, e) =
        send(c.post(s.url("/v1/admin/approved")).json(&json!({ "question": "q", "answer": "a", "colour": 1 }))).await;
    assert_eq!(st, 422, "{e}");
    let (st, e) = send(
        c.post(s.url("/v1/admin/approved")).json(&json!({ "question": "q", "answer": "a", "cites": ["nope.md"] })),
    )
    .await;
    assert_eq!((st, e["error"]["param"].as_str()), (422, Some("cites")), "{e}");
    let (st, _) = send(c.patch(s.url("/v1/admin/approved/apr_nope")).json(&json!({ "expected_version": 1 }))).await;
    assert_eq!(st, 404);
    s.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn turn_limit_and_idle_timeout_survive_a_restart() {
    let Some((_tmp, mut cfg, embedder)) = setup().await else { return };
    cfg.governance.turn_limit = 2;
    cfg.governance.idle_timeout = Duration::from_millis(1500);
    let c = reqwest::Client::new();
    let s = common::Server::start(cfg.clone(), embedder.clone()).await;
    let (_, r) = send(ask(&c, &s, "How do I reset my password?", Some("conv-a"))).await;
    assert_eq!(r["conversation"]["user_turns"], 1);
    assert_eq!(r["escalate"], false);
    let (_, r) = send(ask(&c, &s, "Do you ship to Canada?", Some("conv-a"))).await;
    assert_eq!(r["conversation"]["user_turns"], 2);
    s.stop().await;

    // A restart does not reset the count: the third turn is over the limit.
    let s = common::Server::start(cfg.clone(), embedder.clone()).await;
    let (st, r) = send(ask(&c, &s, "How long is the return label valid?", Some("conv-a"))).await;
    assert_eq!(st, 200);
    assert_eq!(r["escalate"], true, "{r}");
    assert_eq!(r["reason"], "turn_limit");
    let summary = r["answer"].as_str().unwrap();
    assert!(summary.contains("limit") && summary.to_lowercase().contains("password"), "{summary}");
    let esc = r["escalation"].as_str().unwrap().to_string();
    let (_, e) = send(c.get(s.url(&format!("/v1/admin/escalations/{esc}")))).await;
    assert_eq!(e["reason"], "turn_limit");
    assert_eq!(e["conversation_id"], "conv-a");
    assert!(e["transcript"].as_array().unwrap().len() >= 5, "{e}");
    // Another conversation is unaffected.
    let (_, r) = send(ask(&c, &s, "Do you ship to Canada?", Some("conv-b"))).await;
    assert_eq!(r["conversation"]["user_turns"], 1);
    s.stop().await;

    // Idle past the timeout, across a restart: the conversation is closed.
    tokio::time::sleep(Duration::from_millis(1700)).await;
    let s = common::Server::start(cfg, embedder).await;
    let (st, e) = send(ask(&c, &s, "Do you ship to Canada?", Some("conv-b"))).await;
    assert_eq!(st, 409, "{e}");
    assert_eq!(e["error"]["code"], "conversation_closed");
    assert!(e["error"]["message"].as_str().unwrap().contains("idle_timeout"), "{e}");
    // A conversation id of visible ASCII only.
    let (st, _) = send(ask(&c, &s, "Do you ship to Canada?", Some("has space"))).await;
    assert_eq!(st, 400);
    s.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn escalation_life_cycle_with_a_human_reply_delivered_into_the_conversation() {
    let Some((_tmp, cfg, embedder)) = setup().await else { return };
    let s = common::Server::start(cfg, embedder).await;
    let c = reqwest::Client::new();
    send(ask(&c, &s, "Do you ship to Canada?", Some("conv-h"))).await;
    let (_, r) = send(ask(&c, &s, "agent please", Some("conv-h"))).await;
    assert_eq!((r["escalate"].as_bool(), r["reason"].as_str()), (Some(true), Some("user_requested_human")), "{r}");
    let id = r["escalation"].as_str().unwrap().to_string();
    // Asking again joins the same open escalation.
    let (_, r2) = send(ask(&c, &s, "talk to a person", Some("conv-h"))).await;
    assert_eq!(r2["escalation"], id.as_str());

    let (_, list) = send(c.get(s.url("/v1/admin/escalations?status=open"))).await;
    let list = list["escalations"].as_array().unwrap();
    assert_eq!(list.len(), 1);
    assert!(list[0]["trace_ids"].as_array().unwrap().len() >= 2);
    assert_eq!(list[0]["transcript"][0]["text"], "Do you ship to Canada?");

    let url = |action: &str| s.url(&format!("/v1/admin/escalations/{id}/{action}"));
    let (st, e) = send(c.post(url("claim")).json(&json!({ "assignee": "alice" }))).await;
    assert_eq!((st, e["status"].as_str()), (200, Some("claimed")));
    let (st, e) = send(c.post(url("claim")).json(&json!({ "assignee": "bob" }))).await;
    assert_eq!(st, 409, "{e}");
    assert!(e["error"]["message"].as_str().unwrap().contains("alice"));

    let (st, e) = send(c.post(url("reply")).json(&json!({ "text": "Hi, Alice here: yes, we ship to Canada." }))).await;
    assert_eq!((st, e["status"].as_str()), (200, Some("replied")), "{e}");
    assert!(e["first_reply_at_ms"].as_i64().unwrap() >= e["created_at_ms"].as_i64().unwrap());
    // A waiting client polls and gets the reply once.
    let (_, p) = send(c.get(s.url("/v1/conversations/conv-h/messages"))).await;
    assert_eq!(p["messages"][0]["text"], "Hi, Alice here: yes, we ship to Canada.");
    assert_eq!(p["messages"][0]["role"], "human");
    let (_, p) = send(c.get(s.url("/v1/conversations/conv-h/messages"))).await;
    assert_eq!(p["messages"].as_array().unwrap().len(), 0);
    // A second reply reaches the user's next request instead.
    send(c.post(url("reply")).json(&json!({ "text": "Anything else?" }))).await;
    let (_, r) = send(ask(&c, &s, "How much does it cost?", Some("conv-h"))).await;
    assert_eq!(r["answer"], "Anything else?");
    assert_eq!(r["reason"], "human_reply");

    let (st, e) = send(c.post(url("resolve")).json(&json!({}))).await;
    assert_eq!((st, e["status"].as_str()), (200, Some("resolved")));
    assert!(e["resolved_at_ms"].as_i64().is_some());
    let (st, _) = send(c.post(url("resolve")).json(&json!({}))).await;
    assert_eq!(st, 409);
    let (st, _) = send(c.post(s.url("/v1/admin/escalations/esc_nope/claim")).json(&json!({ "assignee": "a" }))).await;
    assert_eq!(st, 404);
    // The same question three times in a row: a person takes over.
    for (i, q) in ["How do I reset my password?", "how can I reset my password please", "reset my password, how?"]
        .iter()
        .enumerate()
    {
        let (_, r) = send(ask(&c, &s, q, Some("conv-r"))).await;
        if i < 2 {
            assert_eq!(r["escalate"], false, "{r}");
        } else {
            assert_eq!((r["reason"].as_str(), r["escalation"].is_string()), (Some("repeated_rephrasing"), true), "{r}");
        }
    }
    // Off-topic questions open an escalation with the no-evidence reason.
    let (_, r) = send(ask(&c, &s, "What is the boiling point of tungsten?", None)).await;
    assert_eq!((r["reason"].as_str(), r["escalation"].is_string()), (Some("no_evidence"), true), "{r}");
    s.stop().await;
}

/// Approved answers for the sample knowledge base (its own FACTS questions), and paraphrases
/// that must match them.
fn approved_set() -> Vec<(&'static str, &'static str)> {
    vec![
        ("How long do I have to return an item?", "how many days do i have to send an item back"),
        ("Is there a restocking fee on returns?", "do you charge a restocking fee when I return something"),
        ("How do I reset my password?", "how can i reset my password"),
        ("Do you ship to Canada?", "can you ship my order to canada"),
        ("How long is the return label valid?", "how long is my return label valid for"),
        ("How do I cancel my order?", "how can I cancel an order"),
        ("What payment methods do you accept?", "which payment methods do you take"),
        ("How long does the warranty last?", "what is the length of the warranty"),
    ]
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn approved_answers_rarely_capture_unrelated_customer_questions() {
    let Some(embedder) = common::embedder() else { return };
    let data = common::repo().join("../shared/data/injection/benign/banking77_test.jsonl");
    let Ok(text) = std::fs::read_to_string(&data) else {
        eprintln!("SKIPPED: {} not found", data.display());
        return;
    };
    let cfg = keel::config::Config::default().governance;
    let set = keel::governance::approved::ApprovedSet::default();
    let approved: Vec<_> = approved_set()
        .iter()
        .enumerate()
        .map(|(i, (q, _))| keel::governance::ApprovedAnswer {
            id: format!("a{i}"),
            version: 1,
            question: q.to_string(),
            answer: "x".into(),
            intent: None,
            cites: vec![],
            status: "active".into(),
            author: "t".into(),
            created_at_ms: 0,
        })
        .collect();
    set.replace(approved, &embedder).unwrap();
    let embed = |q: &str| embedder.embed(&[keel::governance::normalize_question(q).as_str()]).unwrap();

    // Paraphrases match their own answer.
    let mut hits = 0;
    for (i, (_, p)) in approved_set().iter().enumerate() {
        let m = set.best(&embed(p), cfg.approved_threshold, cfg.approved_margin);
        if m.accepted && m.best.as_ref().unwrap().0.id == format!("a{i}") {
            hits += 1;
        }
    }
    let questions: Vec<String> = text
        .lines()
        .filter_map(|l| serde_json::from_str::<Value>(l).ok())
        .filter_map(|v| v["text"].as_str().map(str::to_string))
        .collect();
    let mut false_matches = 0;
    for chunk in questions.chunks(64) {
        let norm: Vec<String> = chunk.iter().map(|q| keel::governance::normalize_question(q)).collect();
        let refs: Vec<&str> = norm.iter().map(String::as_str).collect();
        let vecs = embedder.embed(&refs).unwrap();
        for v in vecs.chunks_exact(embedder.dim()) {
            if set.best(v, cfg.approved_threshold, cfg.approved_margin).accepted {
                false_matches += 1;
            }
        }
    }
    let rate = false_matches as f64 / questions.len() as f64;
    eprintln!(
        "approved answers: {hits}/{} paraphrases matched; false matches on BANKING77 test: {false_matches}/{} = {:.2}%",
        approved_set().len(),
        questions.len(),
        rate * 100.0
    );
    assert!(questions.len() > 3000);
    assert!(hits * 4 >= approved_set().len() * 3, "paraphrases matched: {hits}");
    assert!(rate <= 0.01, "false-match rate {rate}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn snapshots_answer_byte_for_byte_corrections_take_over_and_history_shows_the_change() {
    let Some(embedder) = common::embedder() else { return };
    let tmp = tempfile::tempdir().unwrap();
    let cfg = common::config(&tmp.path().join("data"));
    let kb = tmp.path().join("kb");
    std::fs::create_dir_all(&kb).unwrap();
    let page = |days: u32| {
        format!("# Shipping to Canada\n\nWe ship to Canada. Delivery to Canada takes {days} business days after dispatch.\n")
    };
    std::fs::write(kb.join("shipping.md"), page(7)).unwrap();
    std::fs::write(kb.join("returns.md"), "# Returns\n\nYou can return an item within 30 days of delivery.\n").unwrap();
    common::ingest_paths(&cfg, &embedder, std::slice::from_ref(&kb), false).await;
    let c = reqwest::Client::new();
    let q = "How long does delivery to Canada take?";

    let s = common::Server::start(cfg.clone(), embedder.clone()).await;
    let (_, first) = send(ask(&c, &s, q, None)).await;
    assert!(first["answer"].as_str().unwrap().contains("7 business days"), "{first}");
    let snap = first["snapshot"].as_str().unwrap().to_string();
    // Asked again (different case and punctuation): the stored answer, byte for byte.
    let (_, again) = send(ask(&c, &s, "how long does delivery to canada take", None)).await;
    assert_eq!(again["snapshot"], snap.as_str());
    let strip = |mut v: Value| {
        v.as_object_mut().unwrap().remove("trace_id");
        v.to_string()
    };
    assert_eq!(strip(again.clone()), strip(first.clone()));
    let names = s.span_names(&again["trace_id"]).await;
    assert_eq!(names, ["input", "conversation", "approved", "snapshot", "record"], "a hit skips retrieval");
    s.stop().await;

    // The page changes: a new corpus version, a new answer, and the history shows the diff.
    std::fs::write(kb.join("shipping.md"), page(5)).unwrap();
    common::ingest_paths(&cfg, &embedder, &[kb], false).await;
    let s = common::Server::start(cfg, embedder).await;
    let (_, changed) = send(ask(&c, &s, q, None)).await;
    assert!(changed["answer"].as_str().unwrap().contains("5 business days"), "{changed}");
    assert_ne!(changed["snapshot"], snap.as_str());
    let (st, h) = send(c.get(s.url("/v1/admin/answers/history")).query(&[("question", q)])).await;
    assert_eq!(st, 200, "{h}");
    let h = h["history"].as_array().unwrap();
    assert_eq!(h.len(), 2, "{h:?}");
    assert_ne!(h[0]["versions"]["corpus"], h[1]["versions"]["corpus"]);
    let diff = h[1]["diff"].as_str().unwrap();
    assert!(diff.contains("[-7-]") && diff.contains("{+5+}"), "{diff}");

    // A correction by trace id: matching questions get it, before retrieval.
    let text = "Delivery to Canada takes 5 to 8 business days; customs can add 2 days.";
    let (st, cor) = send(c.post(s.url("/v1/admin/corrections")).json(&json!({
        "trace_id": changed["trace_id"], "text": text, "reason": "customs delays were missing"
    })))
    .await;
    assert_eq!(st, 201, "{cor}");
    assert_eq!(cor["wrong_answer"], changed["answer"]);
    let (_, fixed) = send(ask(&c, &s, "how long does delivery to canada take?", None)).await;
    assert_eq!(fixed["answer"], text);
    assert_eq!(fixed["approved"]["id"], cor["approved_id"]);
    let (st, e) = send(
        c.post(s.url("/v1/admin/corrections")).json(&json!({ "trace_id": "tr_nope", "text": "x", "reason": "y" })),
    )
    .await;
    assert_eq!(st, 404, "{e}");
    s.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_correction_in_evidence_mode_becomes_the_top_cited_source() {
    let Some(embedder) = common::embedder() else { return };
    let tmp = tempfile::tempdir().unwrap();
    let mut cfg = common::config(&tmp.path().join("data"));
    cfg.governance.corrections = keel::config::CorrectionMode::Evidence;
    let kb = tmp.path().join("kb");
    std::fs::create_dir_all(&kb).unwrap();
    std::fs::write(
        kb.join("shipping.md"),
        "# Shipping to Canada\n\nWe ship to Canada. Delivery to Canada takes 7 business days after dispatch.\n",
    )
    .unwrap();
    common::ingest_paths(&cfg, &embedder, std::slice::from_ref(&kb), false).await;
    let s = common::Server::start(cfg, embedder).await;
    let c = reqwest::Client::new();
    let q = "How long does delivery to Canada take?";
    let (_, first) = send(ask(&c, &s, q, None)).await;
    let text = "Delivery to Canada takes 10 business days while customs checks are slower.";
    let (st, cor) = send(c.post(s.url("/v1/admin/corrections")).json(&json!({
        "trace_id": first["trace_id"], "text": text, "reason": "customs delays"
    })))
    .await;
    assert_eq!(st, 201, "{cor}");
    let (_, fixed) = send(ask(&c, &s, "how long does delivery to canada take", None)).await;
    assert!(fixed["approved"].is_null(), "evidence mode does not serve it verbatim: {fixed}");
    assert_eq!(fixed["citations"][0]["doc"], format!("correction:{}", cor["approved_id"].as_str().unwrap()));
    assert!(fixed["answer"].as_str().unwrap().contains("10 business days"), "{fixed}");
    s.stop().await;
}
