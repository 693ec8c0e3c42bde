//! The HTTP API end to end on the sample knowledge base: answers with citations, the bad-input
//! table, streaming, traces, and determinism across a restart.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic, reason = "test code: a panic is a failed test")]

mod common;

use serde_json::{json, Value};

async fn setup() -> Option<(tempfile::TempDir, keel::config::Config, std::sync::Arc<keel::embedding::Embedder>)> {
    let embedder = common::embedder()?;
    let tmp = tempfile::tempdir().unwrap();
    let cfg = common::config(tmp.path());
    let r = common::ingest_paths(&cfg, &embedder, &[common::repo().join("sample-kb")], false).await;
    assert!(r.added.len() >= 30, "sample KB has {} pages", r.added.len());
    assert!(r.skipped.is_empty(), "{:?}", r.skipped);
    Some((tmp, cfg, embedder))
}

async fn post(client: &reqwest::Client, url: &str, body: &Value) -> (u16, Value) {
    let res = client.post(url).json(body).send().await.unwrap();
    let status = res.status().as_u16();
    (status, res.json().await.unwrap_or(Value::Null))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn grounded_answers_cite_the_page_that_holds_the_fact() {
    let Some((_tmp, cfg, embedder)) = setup().await else { return };
    let server = common::Server::start(cfg, embedder).await;
    let client = reqwest::Client::new();
    let facts = common::facts();
    assert!(facts.len() >= 30);
    let mut cited_right_page = 0;
    let mut number_found = 0;
    let mut with_number = 0;
    for (q, fact, page) in &facts {
        let (status, a) = post(&client, &server.url("/v1/answer"), &json!({ "question": q })).await;
        assert_eq!(status, 200, "{a}");
        assert_eq!(a["grounded"], true, "{q}: {a}");
        assert_eq!(a["escalate"], false, "{q}: {a}");
        let cites = a["citations"].as_array().unwrap();
        assert!(!cites.is_empty(), "{q}");
        // Every [n] in the text refers to a listed citation.
        let text = a["answer"].as_str().unwrap();
        for c in cites {
            assert!(text.contains(&format!("[{}]", c["n"])), "{q}: citation {} unused in {text}", c["n"]);
        }
        if cites.iter().any(|c| c["doc"].as_str().unwrap().ends_with(page.as_str())) {
            cited_right_page += 1;
        }
        let first_number: Option<String> = fact
            .split(|c: char| !(c.is_ascii_digit() || c == '.' || c == ','))
            .find(|t| t.chars().any(|c| c.is_ascii_digit()))
            .map(|t| t.trim_matches(|c| c == '.' || c == ',').to_string());
        if let Some(n) = first_number {
            with_number += 1;
            if text.contains(&n) {
                number_found += 1;
            }
        }
    }
    let n = facts.len();
    eprintln!(
        "sample KB: right page cited {cited_right_page}/{n}; fact's number in answer {number_found}/{with_number}"
    );
    assert!(cited_right_page * 100 >= n * 80, "right page cited for only {cited_right_page}/{n}");
    assert!(number_found * 100 >= with_number * 60, "fact's number in only {number_found}/{with_number} answers");
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn off_topic_questions_escalate_without_invented_text() {
    let Some((_tmp, cfg, embedder)) = setup().await else { return };
    let server = common::Server::start(cfg, embedder).await;
    let client = reqwest::Client::new();
    let qs = common::offtopic();
    let mut escalated = 0;
    for q in &qs {
        let (status, a) = post(&client, &server.url("/v1/answer"), &json!({ "question": q })).await;
        assert_eq!(status, 200);
        if a["escalate"] == true {
            escalated += 1;
            assert_eq!(a["reason"], "no_evidence");
            assert_eq!(a["citations"].as_array().unwrap().len(), 0);
            assert_eq!(a["answer"].as_str().unwrap(), keel::answer::extractive::NOT_FOUND);
        }
    }
    eprintln!("off-topic: {escalated}/{} escalated", qs.len());
    assert!(escalated * 100 >= qs.len() * 60, "only {escalated}/{} off-topic questions escalated", qs.len());
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_inputs_get_precise_openai_shaped_errors() {
    let Some((_tmp, cfg, embedder)) = setup().await else { return };
    let mut cfg = cfg;
    cfg.server.max_body_bytes = 64 * 1024;
    let server = common::Server::start(cfg, embedder).await;
    let client = reqwest::Client::new();
    let chat = server.url("/v1/chat/completions");
    let answer = server.url("/v1/answer");
    let big = "x".repeat(100 * 1024);
    // (url, content type, body, status, code, text the message must contain)
    let cases: Vec<(&str, &str, String, u16, &str, &str)> = vec![
        (
            &chat,
            "application/json",
            "{\"model\": \"keel\", \"messages\": [".into(),
            400,
            "invalid_json",
            "malformed JSON",
        ),
        (&chat, "application/json", "".into(), 400, "invalid_json", "malformed JSON"),
        (
            &chat,
            "application/json",
            "{\"model\":\"keel\",\"messages\":[]} trailing".into(),
            400,
            "invalid_json",
            "trailing",
        ),
        (&chat, "application/json", "{\"model\":\"keel\"}".into(), 422, "invalid_field", "messages"),
        (
            &chat,
            "application/json",
            "{\"model\":\"keel\",\"messages\":\"hi\"}".into(),
            422,
            "invalid_field",
            "messages",
        ),
        (
            &chat,
            "application/json",
            "{\"model\":\"keel\",\"messages\":[{\"role\":\"wizard\",\"content\":\"x\"}]}".into(),
            422,
            "invalid_field",
            "messages[0].role",
        ),
        (&chat, "application/json", "{\"model\":\"keel\",\"mesages\":[]}".into(), 422, "invalid_field", "mesages"),
        (
            &chat,
            "application/json",
            "{\"model\":\"gpt-9\",\"messages\":[{\"role\":\"user\",\"content\":\"hi\"}]}".into(),
            404,
            "model_not_found",
            "gpt-9",
        ),
        (
            &chat,
            "application/json",
            "{\"model\":\"keel\",\"messages\":[]}".into(),
            400,
            "invalid_value",
            "at least one message",
        ),
        (
            &chat,
            "application/json",
            "{\"model\":\"keel\",\"messages\":[{\"role\":\"system\",\"content\":\"x\"}]}".into(),
            400,
            "invalid_value",
            "role `user`",
        ),
        (
            &chat,
            "application/json",
            "{\"model\":\"keel\",\"messages\":[{\"role\":\"user\",\"content\":\"  \"}]}".into(),
            400,
            "invalid_value",
            "messages[0].content",
        ),
        (
            &chat,
            "text/plain",
            "{\"model\":\"keel\",\"messages\":[]}".into(),
            415,
            "unsupported_media_type",
            "application/json",
        ),
        (
            &chat,
            "application/json",
            format!("{{\"model\":\"keel\",\"messages\":[{{\"role\":\"user\",\"content\":\"{big}\"}}]}}"),
            413,
            "body_too_large",
            "65536",
        ),
        (&answer, "application/json", "{\"question\": 42}".into(), 422, "invalid_field", "question"),
        (&answer, "application/json", "{\"question\": \"hi\", \"topk\": 3}".into(), 422, "invalid_field", "topk"),
        (&answer, "application/json", "{\"question\": \"hi\", \"top_k\": -1}".into(), 422, "invalid_field", "top_k"),
        (&answer, "application/json", "{\"question\": \"hi\", \"top_k\": 0}".into(), 422, "invalid_field", "top_k"),
        (&answer, "application/json", "{\"question\": \"\\u0000\\u0001   \"}".into(), 400, "invalid_value", "empty"),
        (
            &answer,
            "application/json",
            format!("{{\"question\": \"{}\"}}", "why ".repeat(2000)),
            400,
            "invalid_value",
            "limit is 4000",
        ),
        (
            &answer,
            "application/json",
            "\"just a string\"".into(),
            422,
            "invalid_field",
            "expected struct AnswerRequest",
        ),
    ];
    for (url, ct, body, status, code, needle) in cases {
        let res = client.post(url).header("content-type", ct).body(body.clone()).send().await.unwrap();
        let got = res.status().as_u16();
        let v: Value = res.json().await.unwrap_or(Value::Null);
        let shown: String = body.chars().take(80).collect();
        assert_eq!(got, status, "{shown}: {v}");
        assert_eq!(v["error"]["code"], code, "{shown}: {v}");
        let msg = v["error"]["message"].as_str().unwrap_or("");
        assert!(msg.contains(needle), "{shown}: message `{msg}` lacks `{needle}`");
        assert!(v["error"]["type"].is_string());
    }
    // Unknown routes and wrong methods are errors in the same shape.
    let res = client.get(server.url("/v1/nothing")).send().await.unwrap();
    assert_eq!(res.status().as_u16(), 404);
    assert_eq!(res.json::<Value>().await.unwrap()["error"]["code"], "unknown_route");
    let res = client.get(server.url("/v1/answer")).send().await.unwrap();
    assert_eq!(res.status().as_u16(), 405);
    assert_eq!(res.json::<Value>().await.unwrap()["error"]["code"], "method_not_allowed");
    // The server still answers after all of that.
    let (status, _) = post(&client, &answer, &json!({ "question": "How long do I have to return an item?" })).await;
    assert_eq!(status, 200);
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn chat_completions_plain_and_streaming_carry_citations() {
    let Some((_tmp, cfg, embedder)) = setup().await else { return };
    let server = common::Server::start(cfg, embedder).await;
    let client = reqwest::Client::new();
    let body =
        json!({ "model": "keel", "messages": [{ "role": "user", "content": "How much does express shipping cost?" }] });
    let res = client.post(server.url("/v1/chat/completions")).json(&body).send().await.unwrap();
    assert_eq!(res.status(), 200);
    let trace_header = res.headers().get("x-keel-trace-id").unwrap().to_str().unwrap().to_string();
    let v: Value = res.json().await.unwrap();
    assert_eq!(v["object"], "chat.completion");
    let content = v["choices"][0]["message"]["content"].as_str().unwrap().to_string();
    assert!(content.contains("[1]") && content.contains("Sources:"), "{content}");
    assert!(content.contains("14.95"), "{content}");
    assert_eq!(v["keel"]["trace_id"], trace_header.as_str());
    assert!(!v["keel"]["citations"].as_array().unwrap().is_empty());

    let mut sbody = body.clone();
    sbody["stream"] = json!(true);
    let res = client.post(server.url("/v1/chat/completions")).json(&sbody).send().await.unwrap();
    assert_eq!(res.status(), 200);
    assert!(res.headers()["content-type"].to_str().unwrap().starts_with("text/event-stream"));
    let text = res.text().await.unwrap();
    let datas: Vec<&str> = text.lines().filter_map(|l| l.strip_prefix("data: ")).collect();
    assert_eq!(datas.last(), Some(&"[DONE]"));
    let mut streamed = String::new();
    let mut finish = None;
    let mut ext = Value::Null;
    for d in &datas[..datas.len() - 1] {
        let c: Value = serde_json::from_str(d).unwrap();
        assert_eq!(c["object"], "chat.completion.chunk");
        if let Some(s) = c["choices"][0]["delta"]["content"].as_str() {
            streamed.push_str(s);
        }
        if c["choices"][0]["finish_reason"].is_string() {
            finish = Some(c["choices"][0]["finish_reason"].clone());
            ext = c["keel"].clone();
        }
    }
    assert_eq!(finish, Some(json!("stop")));
    assert_eq!(streamed, content, "streamed text equals the non-streamed answer");
    assert!(!ext["citations"].as_array().unwrap().is_empty());

    // Models, health and readiness.
    let m = server.get_json("/v1/models").await;
    assert_eq!(m["data"][0]["id"], "keel");
    let r = server.get_json("/readyz").await;
    assert_eq!(r["status"], "ready");
    assert!(r["chunks"].as_u64().unwrap() > 30);
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_request_leaves_a_trace_with_a_span_per_stage() {
    let Some((_tmp, cfg, embedder)) = setup().await else { return };
    let server = common::Server::start(cfg, embedder).await;
    let client = reqwest::Client::new();
    let (_, a) =
        post(&client, &server.url("/v1/answer"), &json!({ "question": "Is there a restocking fee on returns?" })).await;
    let id = a["trace_id"].as_str().unwrap();
    let t = server.get_json(&format!("/v1/traces/{id}")).await;
    let names: Vec<&str> = t["spans"].as_array().unwrap().iter().map(|s| s["name"].as_str().unwrap()).collect();
    assert_eq!(names, ["input", "conversation", "approved", "snapshot", "retrieve", "generate", "record"]);
    let retrieve = &t["spans"][4];
    let hits = retrieve["attrs"]["hits"].as_array().unwrap();
    assert!(!hits.is_empty() && hits[0]["chunk"].is_string() && hits[0]["cosine"].is_number());
    assert_eq!(t["output"]["answer"], a["answer"]);
    // Spans are ordered and inside the request.
    let total = t["duration_us"].as_u64().unwrap();
    for s in t["spans"].as_array().unwrap() {
        assert!(s["start_us"].as_u64().unwrap() + s["duration_us"].as_u64().unwrap() <= total);
    }
    let res = client.get(server.url("/v1/traces/tr_nope")).send().await.unwrap();
    assert_eq!(res.status(), 404);
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn same_question_same_bytes_before_and_after_a_restart() {
    let Some((_tmp, cfg, embedder)) = setup().await else { return };
    let questions = ["How long is the return label valid?", "Do you ship to Canada?", "How do I reset my password?"];
    let ask = |server: &common::Server, q: &str| {
        let url = server.url("/v1/answer");
        let q = q.to_string();
        async move {
            let (_, mut v) = post(&reqwest::Client::new(), &url, &json!({ "question": q })).await;
            v.as_object_mut().unwrap().remove("trace_id");
            serde_json::to_string(&v).unwrap()
        }
    };
    let server = common::Server::start(cfg.clone(), embedder.clone()).await;
    let mut first = Vec::new();
    for q in questions {
        let a = ask(&server, q).await;
        assert_eq!(a, ask(&server, q).await, "same server, same question: {q}");
        first.push(a);
    }
    server.stop().await;
    let server = common::Server::start(cfg, embedder).await;
    for (q, before) in questions.iter().zip(&first) {
        assert_eq!(&ask(&server, q).await, before, "after restart: {q}");
    }
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_semantic_cache_reuses_grounded_answers_per_tenant_and_never_across_questions() {
    let Some((_tmp, mut cfg, embedder)) = setup().await else { return };
    cfg.gateway.cache.semantic = true;
    // Snapshots (deterministic mode) would answer a repeated normalised question first.
    cfg.answer.deterministic = false;
    let server = common::Server::start(cfg, embedder).await;
    let client = reqwest::Client::new();
    let ask = |q: &str| {
        let client = client.clone();
        let url = server.url("/v1/answer");
        let body = json!({ "question": q });
        async move {
            let res = client.post(url).json(&body).send().await.unwrap();
            let hit = res.headers().get("x-keel-cache").map(|v| v.to_str().unwrap().to_string());
            (hit, res.json::<Value>().await.unwrap())
        }
    };
    let (hit, first) = ask("How long do I have to return an item?").await;
    assert_eq!(hit, None);
    assert_eq!(server.span(&first["trace_id"], "semantic_cache").await["hit"], false);
    // The same question, differently typed: answered from the cache, no retrieval.
    let (hit, again) = ask("how long do I have to return an item").await;
    assert_eq!(hit.as_deref(), Some("semantic-hit"), "{again}");
    assert_eq!(again["answer"], first["answer"]);
    assert_eq!(again["cache"]["trace_id"], first["trace_id"]);
    assert!(again["cache"]["similarity"].as_f64().unwrap() >= 0.95);
    let names = server.span_names(&again["trace_id"]).await;
    assert!(!names.contains(&"retrieve".to_string()), "{names:?}");
    // Another tenant has its own cache.
    let q = keel::pipeline::Question::new("How long do I have to return an item?", "test").tenant("other");
    let other = server.app.pipeline.run(q).await.unwrap();
    assert!(other.cache.is_none());
    // Distinct questions never share an answer: every other fact question is a miss.
    let mut hits = Vec::new();
    for (q, _, _) in common::facts() {
        let (hit, a) = ask(&q).await;
        if hit.is_some() && a["cache"]["trace_id"] != first["trace_id"] {
            hits.push(q.clone());
        }
    }
    assert!(hits.is_empty(), "distinct questions answered from the cache: {hits:?}");
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_grounded_model_is_metered_under_the_key_and_its_limits() {
    let Some((_tmp, cfg, embedder)) = setup().await else { return };
    let server = common::Server::start_with(cfg, embedder, true).await;
    let store = &server.app.store;
    let (rec, key) = keel::auth::create_key(store, "acme", &["query".into()]).await.unwrap();
    let limits = keel::config::limits::KeyLimits { rpm: Some(2), ..Default::default() };
    store.usage.set_key_limits(&rec.id, &limits).await.unwrap();
    let client = reqwest::Client::new();
    let mut statuses = Vec::new();
    for q in ["How long do I have to return an item?", "How much does express shipping cost?", "Do you price match?"] {
        let res = client
            .post(server.url("/v1/chat/completions"))
            .bearer_auth(&key)
            .json(&json!({ "model": "keel", "messages": [{ "role": "user", "content": q }] }))
            .send()
            .await
            .unwrap();
        statuses.push(res.status().as_u16());
        if res.status() == 429 {
            assert!(res.headers().contains_key("retry-after"));
            assert!(res.text().await.unwrap().contains("requests per minute 2/2"));
        }
    }
    assert_eq!(statuses, [200, 200, 429]);
    let totals = store.usage.usage_totals(None).await.unwrap();
    let keel = totals.iter().find(|t| t.model == "keel" && t.key_id == rec.id).expect("grounded usage recorded");
    assert_eq!((keel.tenant.as_str(), keel.requests), ("acme", 2));
    assert!(keel.completion_tokens > 0 && keel.estimated_requests == 2, "{keel:?}");
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_in_process_model_answers_embeddings_with_its_own_vectors() {
    let Some((_tmp, cfg, embedder)) = setup().await else { return };
    let server = common::Server::start(cfg, embedder.clone()).await;
    let client = reqwest::Client::new();
    let url = server.url("/v1/embeddings");
    let texts = ["How long do refunds take?", "Do you ship to Canada?"];
    let (status, v) = post(&client, &url, &json!({ "model": "all-MiniLM-L6-v2", "input": texts })).await;
    assert_eq!(status, 200, "{v}");
    let want = embedder.embed(&texts).unwrap();
    let dim = embedder.dim();
    let tokens: usize = embedder.tokenize(&texts).unwrap().iter().map(Vec::len).sum();
    assert_eq!(
        (v["model"].as_str(), v["usage"]["prompt_tokens"].as_u64()),
        (Some("all-MiniLM-L6-v2"), Some(tokens as u64))
    );
    for (i, d) in v["data"].as_array().unwrap().iter().enumerate() {
        assert_eq!(d["index"], i);
        let got: Vec<f32> = d["embedding"].as_array().unwrap().iter().map(|x| x.as_f64().unwrap() as f32).collect();
        assert_eq!(got, want[i * dim..(i + 1) * dim], "input {i}");
    }
    // Base64: little-endian f32 bytes of the same vector.
    let (status, v) =
        post(&client, &url, &json!({ "model": "all-MiniLM-L6-v2", "input": texts[1], "encoding_format": "base64" }))
            .await;
    assert_eq!(status, 200, "{v}");
    let bytes = {
        use base64::Engine as _;
        base64::engine::general_purpose::STANDARD.decode(v["data"][0]["embedding"].as_str().unwrap()).unwrap()
    };
    let got: Vec<f32> = bytes.chunks(4).map(|b| f32::from_le_bytes(b.try_into().unwrap())).collect();
    assert_eq!(got, want[dim..2 * dim]);
    // What the model cannot do is named.
    for (body, param) in [
        (json!({ "model": "all-MiniLM-L6-v2", "input": [101, 2000] }), "input"),
        (json!({ "model": "all-MiniLM-L6-v2", "input": "x", "dimensions": 128 }), "dimensions"),
    ] {
        let (status, v) = post(&client, &url, &body).await;
        assert_eq!((status, v["error"]["param"].as_str()), (422, Some(param)), "{v}");
    }
    let models = server.get_json("/v1/models").await;
    assert!(models["data"].as_array().unwrap().iter().any(|m| m["id"] == "all-MiniLM-L6-v2"), "{models}");
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_responses_face_answers_with_the_grounded_pipeline_plain_and_streamed() {
    let Some((_tmp, cfg, embedder)) = setup().await else { return };
    let server = common::Server::start(cfg, embedder).await;
    let client = reqwest::Client::new();
    let body = json!({ "model": "keel", "input": [{ "role": "user", "content": [
        { "type": "input_text", "text": "How much does express shipping cost?" }] }] });
    let (status, r) = post(&client, &server.url("/v1/responses"), &body).await;
    assert_eq!(status, 200, "{r}");
    assert_eq!((r["object"].as_str(), r["status"].as_str()), (Some("response"), Some("completed")));
    let text = r["output"][0]["content"][0]["text"].as_str().unwrap().to_string();
    assert!(text.contains("14.95") && text.contains("[1]"), "{text}");
    assert!(!r["keel"]["citations"].as_array().unwrap().is_empty(), "{r}");
    assert!(r["usage"]["output_tokens"].as_u64().unwrap() > 0);

    let mut sbody = body.clone();
    sbody["stream"] = json!(true);
    let res = client.post(server.url("/v1/responses")).json(&sbody).send().await.unwrap();
    assert!(res.headers()["content-type"].to_str().unwrap().starts_with("text/event-stream"));
    let events: Vec<Value> = res
        .text()
        .await
        .unwrap()
        .lines()
        .filter_map(|l| l.strip_prefix("data: "))
        .map(|d| serde_json::from_str(d).unwrap())
        .collect();
    let streamed: String = events
        .iter()
        .filter(|e| e["type"] == "response.output_text.delta")
        .map(|e| e["delta"].as_str().unwrap())
        .collect();
    assert_eq!(streamed, text, "streamed text equals the plain answer");
    let last = events.last().unwrap();
    assert_eq!(last["type"], "response.completed");
    assert!(!last["response"]["keel"]["citations"].as_array().unwrap().is_empty());

    // An unknown previous response is a 404 naming the field; the grounded answer was kept.
    let (status, e) = post(
        &client,
        &server.url("/v1/responses"),
        &json!({ "model": "keel", "input": "x", "previous_response_id": "resp_1" }),
    )
    .await;
    assert_eq!((status, e["error"]["param"].as_str()), (404, Some("previous_response_id")));
    let kept = server.get_json(&format!("/v1/responses/{}", r["id"].as_str().unwrap())).await;
    assert_eq!(kept, r, "kept as returned");
    let (status, e) = post(&client, &server.url("/v1/responses"), &json!({ "model": "keel", "imput": "x" })).await;
    assert_eq!(status, 422, "{e}");
    server.stop().await;
}
