//! Tests of the chat → Responses translation, plain and streamed.

use super::*;
use crate::gateway::sse::SseParser;

fn echo() -> Map<String, Value> {
    let mut e = Map::new();
    e.insert("instructions".into(), json!("Be brief."));
    e.insert("tools".into(), json!([]));
    e
}

#[test]
fn a_reply_becomes_a_response_with_its_items_usage_and_status() {
    let v = json!({ "id": "chatcmpl-abc", "created": 1700000000, "model": "m", "choices": [{ "finish_reason": "length",
        "message": { "content": "Hello", "reasoning_content": "Greet.", "tool_calls": [
            { "id": "call_1", "type": "function", "function": { "name": "weather", "arguments": "{\"city\":\"Oslo\"}" } }] } }],
        "usage": { "prompt_tokens": 9, "completion_tokens": 2, "total_tokens": 11,
                   "prompt_tokens_details": { "cached_tokens": 4 }, "completion_tokens_details": { "reasoning_tokens": 1 } },
        "keel": { "trace_id": "tr_1" } });
    let r = to_response("resp_abc", &v, &echo());
    assert_eq!(
        (r["id"].as_str(), r["object"].as_str(), r["created_at"].as_u64()),
        (Some("resp_abc"), Some("response"), Some(1700000000))
    );
    assert_eq!(
        (r["status"].as_str(), r["incomplete_details"]["reason"].as_str()),
        (Some("incomplete"), Some("max_output_tokens"))
    );
    assert_eq!(r["instructions"], "Be brief.");
    let out = r["output"].as_array().unwrap();
    assert_eq!(
        out[0],
        json!({ "type": "reasoning", "id": "rs_abc", "summary": [], "content": [{ "type": "reasoning_text", "text": "Greet." }] })
    );
    assert_eq!((out[1]["type"].as_str(), out[1]["content"][0]["text"].as_str()), (Some("message"), Some("Hello")));
    assert_eq!(
        out[2],
        json!({ "type": "function_call", "id": "fc_1", "call_id": "call_1", "name": "weather", "arguments": "{\"city\":\"Oslo\"}", "status": "completed" })
    );
    assert_eq!(
        r["usage"],
        json!({ "input_tokens": 9, "input_tokens_details": { "cached_tokens": 4 }, "output_tokens": 2,
                "output_tokens_details": { "reasoning_tokens": 1 }, "total_tokens": 11 })
    );
    assert_eq!(r["keel"]["trace_id"], "tr_1");

    let plain = to_response(
        "resp_x",
        &json!({ "id": "chatcmpl-x", "choices": [{ "message": { "content": "ok" }, "finish_reason": "stop" }] }),
        &echo(),
    );
    assert_eq!((plain["status"].as_str(), plain["usage"].is_null()), (Some("completed"), true));
    let refused =
        to_response("resp_x", &json!({ "choices": [{ "message": { "content": null, "refusal": "No." } }] }), &echo());
    assert_eq!(refused["output"][0]["content"][0], json!({ "type": "refusal", "refusal": "No." }));
}

fn translate(src: &str) -> Vec<Value> {
    let mut t = ToResponses::new("resp_s".into(), echo());
    let mut out = String::new();
    for piece in src.as_bytes().chunks(13) {
        out.push_str(&t.feed(piece));
    }
    let events = SseParser::default().push(out.as_bytes());
    events
        .iter()
        .map(|e| {
            let d: Value = serde_json::from_str(&e.data).unwrap();
            assert_eq!(e.event.as_deref(), d["type"].as_str(), "the event name is the data's type");
            d
        })
        .collect()
}

fn types(events: &[Value]) -> Vec<String> {
    events.iter().map(|e| e["type"].as_str().unwrap().trim_start_matches("response.").to_string()).collect()
}

fn chunk(delta: Value, finish: Value) -> String {
    format!(
        "data: {}\n\n",
        json!({ "id": "chatcmpl-s", "created": 5, "model": "m", "choices": [{ "index": 0, "delta": delta, "finish_reason": finish }] })
    )
}

#[test]
fn a_text_stream_becomes_response_events_in_order() {
    let src = [
        chunk(json!({ "role": "assistant", "content": "" }), Value::Null),
        chunk(json!({ "reasoning_content": "Think." }), Value::Null),
        chunk(json!({ "content": "Hel" }), Value::Null),
        chunk(json!({ "content": "lo" }), Value::Null),
        chunk(json!({}), json!("stop")),
        "data: {\"choices\":[],\"usage\":{\"prompt_tokens\":3,\"completion_tokens\":2}}\n\ndata: [DONE]\n\n".into(),
    ]
    .concat();
    let evs = translate(&src);
    assert_eq!(
        types(&evs),
        [
            "created",
            "in_progress",
            "output_item.added",
            "reasoning_text.delta",
            "reasoning_text.done",
            "output_item.done",
            "output_item.added",
            "content_part.added",
            "output_text.delta",
            "output_text.delta",
            "output_text.done",
            "content_part.done",
            "output_item.done",
            "completed"
        ]
    );
    let seq: Vec<u64> = evs.iter().map(|e| e["sequence_number"].as_u64().unwrap()).collect();
    assert_eq!(seq, (0..evs.len() as u64).collect::<Vec<_>>());
    assert_eq!(
        (evs[0]["response"]["id"].as_str(), evs[0]["response"]["status"].as_str()),
        (Some("resp_s"), Some("in_progress"))
    );
    assert_eq!(
        (evs[8]["item_id"].as_str(), evs[8]["output_index"].as_u64(), evs[8]["delta"].as_str()),
        (Some("msg_s"), Some(1), Some("Hel"))
    );
    assert_eq!(evs[10]["text"], "Hello");
    let done = &evs[13]["response"];
    assert_eq!(done["status"], "completed");
    assert_eq!(done["output"][1]["content"][0]["text"], "Hello");
    assert_eq!(done["output"][0]["content"][0]["text"], "Think.");
    assert_eq!((done["usage"]["input_tokens"].as_u64(), done["usage"]["total_tokens"].as_u64()), (Some(3), Some(5)));
    assert_eq!(done["instructions"], "Be brief.");
}

#[test]
fn streamed_tool_calls_become_function_call_items() {
    let src = [
        chunk(json!({ "role": "assistant", "tool_calls": [{ "index": 0, "id": "call_9", "type": "function", "function": { "name": "weather", "arguments": "" } }] }), Value::Null),
        chunk(json!({ "tool_calls": [{ "index": 0, "function": { "arguments": "{\"city\":" } }] }), Value::Null),
        chunk(json!({ "tool_calls": [{ "index": 1, "id": "call_10", "type": "function", "function": { "name": "now", "arguments": "{}" } }] }), Value::Null),
        chunk(json!({ "tool_calls": [{ "index": 0, "function": { "arguments": "\"Oslo\"}" } }] }), Value::Null),
        chunk(json!({}), json!("tool_calls")),
        "data: [DONE]\n\n".into(),
    ]
    .concat();
    let evs = translate(&src);
    assert_eq!(
        types(&evs),
        [
            "created",
            "in_progress",
            "output_item.added",
            "function_call_arguments.delta",
            "function_call_arguments.done",
            "output_item.done",
            "output_item.added",
            "function_call_arguments.delta",
            "function_call_arguments.delta",
            "function_call_arguments.done",
            "output_item.done",
            "completed"
        ]
    );
    assert_eq!(evs[2]["item"]["call_id"], "call_9");
    // The first call's late argument delta still names its item and grows its arguments.
    assert_eq!((evs[8]["item_id"].as_str(), evs[8]["output_index"].as_u64()), (Some("fc_9"), Some(0)));
    let out = &evs[11]["response"]["output"];
    assert_eq!(
        serde_json::from_str::<Value>(out[0]["arguments"].as_str().unwrap()).unwrap(),
        json!({ "city": "Oslo" })
    );
    assert_eq!((out[1]["name"].as_str(), out[1]["arguments"].as_str()), (Some("now"), Some("{}")));
}

#[test]
fn a_failure_mid_stream_ends_with_an_error_and_response_failed() {
    let src = [
        chunk(json!({ "content": "half" }), Value::Null),
        "data: {\"error\":{\"message\":\"upstream cut\",\"code\":\"stream_interrupted\"}}\n\n".into(),
        chunk(json!({ "content": "more" }), Value::Null),
        "data: [DONE]\n\n".into(),
    ]
    .concat();
    let evs = translate(&src);
    let t = types(&evs);
    assert_eq!(&t[t.len() - 2..], ["error", "failed"]);
    assert!(!t.iter().any(|t| t == "completed"), "{t:?}");
    assert_eq!(
        (evs[t.len() - 2]["code"].as_str(), evs[t.len() - 2]["message"].as_str()),
        (Some("stream_interrupted"), Some("upstream cut"))
    );
    assert_eq!(evs[t.len() - 1]["response"]["status"], "failed");
    let empty = translate("data: [DONE]\n\n");
    assert_eq!(
        empty.last().unwrap()["response"]["output"][0]["content"][0]["text"],
        "",
        "an empty reply has its empty message"
    );
}
