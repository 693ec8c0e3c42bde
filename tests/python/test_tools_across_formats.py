"""Tools across wire formats, with the real clients. The `openai` client calls tools through
Keel's quick proxy mode in front of a fake Anthropic Messages API, and the `anthropic` client
through quick mode in front of a fake OpenAI-compatible API: the tool definitions, the model's
tool call, the tool's result and the final answer cross the translation both ways, plain and
streamed (each client assembles the streamed call from its deltas)."""
import json
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest
from anthropic import Anthropic
from openai import OpenAI

from conftest import quick_anthropic_proxy, respond, start_keel, stop_keel

SEEN = []
TOOLS = [{"type": "function", "function": {
    "name": "get_weather", "description": "Current weather in a city",
    "parameters": {"type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]}}}]


def events(body):
    """The stream of one reply: a tool call when no tool result came back yet, else text."""
    start = {"type": "message_start", "message": {"id": "msg_s", "type": "message", "role": "assistant",
             "content": [], "model": body["model"], "usage": {"input_tokens": 30, "output_tokens": 1}}}
    out = [start]
    if not has_result(body):
        out += [
            {"type": "content_block_start", "index": 0,
             "content_block": {"type": "tool_use", "id": "toolu_s", "name": "get_weather", "input": {}}},
            {"type": "content_block_delta", "index": 0, "delta": {"type": "input_json_delta", "partial_json": '{"ci'}},
            {"type": "content_block_delta", "index": 0, "delta": {"type": "input_json_delta", "partial_json": 'ty": "Oslo"}'}},
            {"type": "content_block_stop", "index": 0},
            {"type": "message_delta", "delta": {"stop_reason": "tool_use"}, "usage": {"output_tokens": 12}},
        ]
    else:
        out += [
            {"type": "content_block_start", "index": 0, "content_block": {"type": "text", "text": ""}},
            {"type": "content_block_delta", "index": 0, "delta": {"type": "text_delta", "text": "It is " + result_text(body)}},
            {"type": "content_block_stop", "index": 0},
            {"type": "message_delta", "delta": {"stop_reason": "end_turn"}, "usage": {"output_tokens": 5}},
        ]
    out.append({"type": "message_stop"})
    return "".join(f"event: {e['type']}\ndata: {json.dumps(e)}\n\n" for e in out)


def results(body):
    return [b for m in body["messages"] if isinstance(m["content"], list)
            for b in m["content"] if b.get("type") == "tool_result"]


def has_result(body):
    return bool(results(body))


def result_text(body):
    return results(body)[-1]["content"]


class Upstream(BaseHTTPRequestHandler):
    def log_message(self, *args):
        pass

    def send(self, payload, ctype="application/json"):
        respond(self, 200, payload, ctype)

    def do_POST(self):
        body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
        SEEN.append(body)
        if body.get("stream"):
            self.send(events(body), "text/event-stream")
        elif has_result(body):
            self.send(json.dumps({"id": "msg_2", "type": "message", "role": "assistant", "model": body["model"],
                                  "content": [{"type": "text", "text": "It is " + result_text(body)}],
                                  "stop_reason": "end_turn", "usage": {"input_tokens": 40, "output_tokens": 6}}))
        else:
            self.send(json.dumps({"id": "msg_1", "type": "message", "role": "assistant", "model": body["model"],
                                  "content": [{"type": "tool_use", "id": "toolu_1", "name": "get_weather",
                                               "input": {"city": "Paris"}}],
                                  "stop_reason": "tool_use", "usage": {"input_tokens": 30, "output_tokens": 12}}))


@pytest.fixture(scope="module")
def client(tmp_path_factory):
    url, stop = quick_anthropic_proxy(Upstream, tmp_path_factory.mktemp("tools"), "claude-tools", "sk-ant-tools")
    yield OpenAI(base_url=url + "/v1", api_key="unused", max_retries=0)
    stop()


def test_a_tool_call_round_trip(client):
    messages = [{"role": "user", "content": "What is the weather in Paris?"}]
    first = client.chat.completions.create(model="claude-tools", messages=messages, tools=TOOLS,
                                           tool_choice="required")
    choice = first.choices[0]
    assert choice.finish_reason == "tool_calls"
    call = choice.message.tool_calls[0]
    assert (call.id, call.type, call.function.name) == ("toolu_1", "function", "get_weather")
    assert json.loads(call.function.arguments) == {"city": "Paris"}
    sent = SEEN[-1]
    assert sent["tools"][0]["name"] == "get_weather"
    assert sent["tools"][0]["input_schema"]["required"] == ["city"]
    assert sent["tool_choice"] == {"type": "any"}

    messages.append(choice.message.model_dump(exclude_none=True))
    messages.append({"role": "tool", "tool_call_id": call.id, "content": "21°C and clear"})
    final = client.chat.completions.create(model="claude-tools", messages=messages, tools=TOOLS)
    assert final.choices[0].message.content == "It is 21°C and clear"
    assert final.choices[0].finish_reason == "stop"
    sent = SEEN[-1]
    assert sent["messages"][1]["content"] == [
        {"type": "tool_use", "id": "toolu_1", "name": "get_weather", "input": {"city": "Paris"}}]
    assert sent["messages"][2]["content"] == [
        {"type": "tool_result", "tool_use_id": "toolu_1", "content": "21°C and clear"}]


def test_a_streamed_tool_call_is_assembled_by_the_client(client):
    messages = [{"role": "user", "content": "And in Oslo?"}]
    calls, finish = {}, None
    for chunk in client.chat.completions.create(model="claude-tools", messages=messages, tools=TOOLS, stream=True):
        if not chunk.choices:
            continue
        for d in chunk.choices[0].delta.tool_calls or []:
            c = calls.setdefault(d.index, {"id": None, "name": None, "arguments": ""})
            c["id"] = d.id or c["id"]
            if d.function:
                c["name"] = d.function.name or c["name"]
                c["arguments"] += d.function.arguments or ""
        finish = chunk.choices[0].finish_reason or finish
    assert list(calls) == [0] and finish == "tool_calls"
    call = calls[0]
    assert (call["id"], call["name"]) == ("toolu_s", "get_weather")
    assert json.loads(call["arguments"]) == {"city": "Oslo"}

    messages.append({"role": "assistant", "tool_calls": [
        {"id": call["id"], "type": "function", "function": {"name": call["name"], "arguments": call["arguments"]}}]})
    messages.append({"role": "tool", "tool_call_id": call["id"], "content": "3°C"})
    text = "".join(c.choices[0].delta.content or "" for c in
                   client.chat.completions.create(model="claude-tools", messages=messages, tools=TOOLS, stream=True)
                   if c.choices)
    assert text == "It is 3°C"


OPENAI_SEEN = []


class OpenAIUpstream(BaseHTTPRequestHandler):
    """A fake OpenAI-compatible API: a tool call until a tool message comes back, then text."""

    def log_message(self, *args):
        pass

    def do_POST(self):
        body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
        OPENAI_SEEN.append(body)
        done = [m for m in body["messages"] if m["role"] == "tool"]
        if done:
            message, finish = {"role": "assistant", "content": "It is " + done[-1]["content"]}, "stop"
        else:
            message, finish = {"role": "assistant", "content": None, "tool_calls": [
                {"id": "call_1", "type": "function",
                 "function": {"name": "get_weather", "arguments": '{"city": "Rome"}'}}]}, "tool_calls"
        if body.get("stream"):
            delta = ({"role": "assistant", "content": message["content"]} if done else
                     {"role": "assistant", "tool_calls": [dict(message["tool_calls"][0], index=0)]})
            chunks = [{"id": "chatcmpl-s", "object": "chat.completion.chunk", "model": body["model"],
                       "choices": [{"index": 0, "delta": d, "finish_reason": f}]}
                      for d, f in [(delta, None), ({}, finish)]]
            chunks.append({"id": "chatcmpl-s", "object": "chat.completion.chunk", "model": body["model"],
                           "choices": [], "usage": {"prompt_tokens": 20, "completion_tokens": 7, "total_tokens": 27}})
            respond(self, 200, "".join(f"data: {json.dumps(c)}\n\n" for c in chunks) + "data: [DONE]\n\n",
                    "text/event-stream")
            return
        respond(self, 200, json.dumps({"id": "chatcmpl-1", "object": "chat.completion", "model": body["model"],
                                       "choices": [{"index": 0, "message": message, "finish_reason": finish}],
                                       "usage": {"prompt_tokens": 20, "completion_tokens": 7, "total_tokens": 27}}))


@pytest.fixture(scope="module")
def anthropic_client(tmp_path_factory):
    upstream = ThreadingHTTPServer(("127.0.0.1", 0), OpenAIUpstream)
    threading.Thread(target=upstream.serve_forever, daemon=True).start()
    tmp = tmp_path_factory.mktemp("tools-openai")
    proc, url = start_keel(["--data-dir", str(tmp), "serve", "--no-auth", "--openai-base-url",
                            f"http://127.0.0.1:{upstream.server_port}/v1", "--model", "gpt-tools"])
    yield Anthropic(base_url=url, api_key="unused", max_retries=0)
    stop_keel(proc)
    upstream.shutdown()


ANTHROPIC_TOOLS = [{"name": "get_weather", "description": "Current weather in a city",
                    "input_schema": {"type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]}}]


def test_the_anthropic_client_calls_tools_on_an_openai_model(anthropic_client):
    messages = [{"role": "user", "content": "Weather in Rome?"}]
    first = anthropic_client.messages.create(model="gpt-tools", max_tokens=200, messages=messages,
                                             tools=ANTHROPIC_TOOLS, tool_choice={"type": "tool", "name": "get_weather"})
    assert first.stop_reason == "tool_use"
    use = [b for b in first.content if b.type == "tool_use"][0]
    assert (use.id, use.name, use.input) == ("call_1", "get_weather", {"city": "Rome"})
    sent = OPENAI_SEEN[-1]
    assert sent["tools"][0]["function"]["name"] == "get_weather"
    assert sent["tools"][0]["function"]["parameters"]["required"] == ["city"]
    assert sent["tool_choice"] == {"type": "function", "function": {"name": "get_weather"}}

    messages.append({"role": "assistant", "content": [b.model_dump(exclude_none=True) for b in first.content]})
    messages.append({"role": "user", "content": [{"type": "tool_result", "tool_use_id": use.id, "content": "25°C"}]})
    final = anthropic_client.messages.create(model="gpt-tools", max_tokens=200, messages=messages, tools=ANTHROPIC_TOOLS)
    assert final.content[0].text == "It is 25°C" and final.stop_reason == "end_turn"
    sent = OPENAI_SEEN[-1]
    assert sent["messages"][1]["tool_calls"][0]["id"] == "call_1"
    assert json.loads(sent["messages"][1]["tool_calls"][0]["function"]["arguments"]) == {"city": "Rome"}
    assert sent["messages"][2] == {"role": "tool", "tool_call_id": "call_1", "content": "25°C"}

    with anthropic_client.messages.stream(model="gpt-tools", max_tokens=200, tools=ANTHROPIC_TOOLS,
                                          messages=messages[:1]) as s:
        streamed = s.get_final_message()
    use = [b for b in streamed.content if b.type == "tool_use"][0]
    assert (use.id, use.name, use.input) == ("call_1", "get_weather", {"city": "Rome"})
    assert streamed.stop_reason == "tool_use"
