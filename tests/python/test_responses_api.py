"""`/v1/responses` with the real `openai` client (`client.responses.create`): Keel in quick proxy
mode in front of a fake chat-completions upstream, plain, streamed, a whole function-calling
loop, a conversation continued with `previous_response_id` (then fetched and deleted), a
stream that breaks halfway, and the requests Keel refuses."""
import json
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import openai
import pytest
from openai import OpenAI

from conftest import respond, start_keel, stop_keel

SEEN = []


def sse(handler, chunks, done=True):
    handler.send_response(200)
    handler.send_header("Content-Type", "text/event-stream")
    handler.end_headers()
    for c in chunks:
        handler.wfile.write(f"data: {json.dumps(c)}\n\n".encode())
        handler.wfile.flush()
    if done:
        handler.wfile.write(b"data: [DONE]\n\n")


def chunk(model, delta, finish=None):
    return {"id": "chatcmpl-r1", "object": "chat.completion.chunk", "created": 7, "model": model,
            "choices": [{"index": 0, "delta": delta, "finish_reason": finish}]}


class Upstream(BaseHTTPRequestHandler):
    """Answers a chat request: with a tool call when tools are offered and no tool result has
    come back yet, else with text naming the last message; `BREAK` in the question cuts the
    stream after its first piece."""

    def log_message(self, *args):
        pass

    def do_POST(self):
        body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
        SEEN.append(body)
        model, last = body["model"], body["messages"][-1]
        wants_call = body.get("tools") and last["role"] != "tool"
        if body.get("stream"):
            if "BREAK" in str(last.get("content")):
                sse(self, [chunk(model, {"role": "assistant", "content": "Half"})], done=False)
                return
            pieces = [chunk(model, {"role": "assistant", "content": "Hello"}), chunk(model, {"content": " there"}),
                      chunk(model, {}, "stop")]
            if (body.get("stream_options") or {}).get("include_usage"):
                pieces.append({"id": "chatcmpl-r1", "object": "chat.completion.chunk", "created": 7, "model": model,
                               "choices": [], "usage": {"prompt_tokens": 6, "completion_tokens": 2, "total_tokens": 8}})
            sse(self, pieces)
            return
        if wants_call:
            message = {"role": "assistant", "content": None, "tool_calls": [
                {"id": "call_w1", "type": "function",
                 "function": {"name": "get_weather", "arguments": json.dumps({"city": "Oslo"})}}]}
            finish = "tool_calls"
        else:
            message = {"role": "assistant", "content": f"Answer to: {last['content']}"}
            finish = "stop"
        reply = {"id": "chatcmpl-r2", "object": "chat.completion", "created": 9, "model": model,
                 "choices": [{"index": 0, "message": message, "finish_reason": finish}],
                 "usage": {"prompt_tokens": 11, "completion_tokens": 4, "total_tokens": 15}}
        respond(self, 200, json.dumps(reply))


@pytest.fixture(scope="module")
def client(tmp_path_factory):
    upstream = ThreadingHTTPServer(("127.0.0.1", 0), Upstream)
    threading.Thread(target=upstream.serve_forever, daemon=True).start()
    data = str(tmp_path_factory.mktemp("responses"))
    proc, url = start_keel(["--data-dir", data, "serve", "--no-auth",
                            "--openai-base-url", f"http://127.0.0.1:{upstream.server_port}/v1",
                            "--model", "tiny-model", "--deadline", "10s"])
    yield OpenAI(base_url=url + "/v1", api_key="unused", max_retries=0)
    stop_keel(proc)
    upstream.shutdown()


def test_a_plain_response_through_the_gateway(client):
    raw = client.responses.with_raw_response.create(model="tiny-model", instructions="Be brief.", input="Hi there",
                                                    max_output_tokens=40, reasoning={"effort": "low"})
    r = raw.parse()
    assert r.id.startswith("resp_") and r.object == "response" and r.status == "completed"
    assert r.output_text == "Answer to: Hi there"
    assert (r.usage.input_tokens, r.usage.output_tokens, r.usage.total_tokens) == (11, 4, 15)
    assert r.instructions == "Be brief." and r.max_output_tokens == 40
    sent = SEEN[-1]
    assert sent["messages"] == [{"role": "system", "content": "Be brief."}, {"role": "user", "content": "Hi there"}]
    assert (sent["max_completion_tokens"], sent["reasoning_effort"]) == (40, "low")
    assert raw.headers["x-keel-attempts"] == "1" and raw.headers["x-keel-target"]


def test_a_function_calling_loop_round_trips_the_output_items(client):
    tools = [{"type": "function", "name": "get_weather", "description": "Weather in a city",
              "parameters": {"type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]}}]
    history = [{"role": "user", "content": "Weather in Oslo?"}]
    first = client.responses.create(model="tiny-model", input=history, tools=tools)
    calls = [o for o in first.output if o.type == "function_call"]
    assert len(calls) == 1 and calls[0].name == "get_weather" and json.loads(calls[0].arguments) == {"city": "Oslo"}
    assert SEEN[-1]["tools"][0]["function"]["name"] == "get_weather"
    # The SDK's documented loop: the model's output items go back in, then the tool's result.
    history += first.output
    history.append({"type": "function_call_output", "call_id": calls[0].call_id, "output": "rain, 4 °C"})
    second = client.responses.create(model="tiny-model", input=history, tools=tools)
    assert second.output_text == "Answer to: rain, 4 °C"
    sent = SEEN[-1]["messages"]
    assert sent[1]["role"] == "assistant" and sent[1]["tool_calls"][0]["id"] == calls[0].call_id
    assert sent[2] == {"role": "tool", "tool_call_id": calls[0].call_id, "content": "rain, 4 °C"}


def test_a_streamed_response_arrives_as_response_events(client):
    events = list(client.responses.create(model="tiny-model", input="Stream it", stream=True))
    kinds = [e.type for e in events]
    assert kinds[:2] == ["response.created", "response.in_progress"]
    assert kinds[-1] == "response.completed"
    text = "".join(e.delta for e in events if e.type == "response.output_text.delta")
    assert text == "Hello there"
    done = events[-1].response
    assert done.output_text == "Hello there" and done.usage.total_tokens == 8
    assert [e.sequence_number for e in events] == list(range(len(events)))


def test_a_stream_that_breaks_ends_with_an_error_not_a_completion(client):
    events = list(client.responses.create(model="tiny-model", input="BREAK please", stream=True))
    kinds = [e.type for e in events]
    assert "response.output_text.delta" in kinds, kinds
    assert kinds[-2:] == ["error", "response.failed"], kinds
    assert "response.completed" not in kinds


def test_a_conversation_continues_from_a_stored_response(client):
    first = client.responses.create(model="tiny-model", instructions="Be brief.", input="My name is Ada.")
    assert first.store is True
    second = client.responses.create(model="tiny-model", input="What is my name?", previous_response_id=first.id)
    assert second.previous_response_id == first.id
    sent = SEEN[-1]["messages"]
    assert [m["role"] for m in sent] == ["user", "assistant", "user"], sent
    assert sent[0]["content"] == "My name is Ada." and sent[1]["content"] == first.output_text
    fetched = client.responses.retrieve(first.id)
    assert fetched.id == first.id and fetched.output_text == first.output_text
    client.responses.delete(first.id)
    with pytest.raises(openai.NotFoundError):
        client.responses.retrieve(first.id)
    with pytest.raises(openai.NotFoundError) as e:
        client.responses.create(model="tiny-model", input="Again?", previous_response_id=first.id)
    assert e.value.body["param"] == "previous_response_id"
    unkept = client.responses.create(model="tiny-model", input="Forget me.", store=False)
    assert unkept.store is False
    with pytest.raises(openai.NotFoundError):
        client.responses.retrieve(unkept.id)


def test_what_keel_cannot_do_is_a_clear_400(client):
    with pytest.raises(openai.BadRequestError) as e:
        client.responses.create(model="tiny-model", input="Hi", background=True)
    assert e.value.body["param"] == "background"
    with pytest.raises(openai.BadRequestError) as e:
        client.responses.create(model="tiny-model", input="Hi", tools=[{"type": "web_search"}])
    assert e.value.body["param"] == "tools[0].type"
    with pytest.raises(openai.NotFoundError):
        client.responses.create(model="no-such-model", input="Hi")
