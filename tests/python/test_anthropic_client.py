"""The real `anthropic` client against Keel's `/v1/messages`: the grounded `keel` model (key in
`x-api-key`, plain and streamed), and a gateway route whose provider is a fake Anthropic
Messages API (a tiny Python server), with an overloaded 529 retried."""
import json
import os
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import anthropic
import pytest
from anthropic import Anthropic

from conftest import quick_anthropic_proxy, respond, start_keel, stop_keel, stored_trace

QUESTION = "How long do I have to return an item?"
OVERLOADED = {"left": 0}
SEEN = []


def test_grounded_answer_through_the_messages_api(keel_url, keel_key):
    c = Anthropic(base_url=keel_url, api_key=keel_key, max_retries=0)
    m = c.messages.create(model="keel", max_tokens=512, messages=[{"role": "user", "content": QUESTION}])
    assert m.type == "message" and m.role == "assistant"
    text = m.content[0].text
    assert "30 days" in text and "[1]" in text
    assert m.stop_reason == "end_turn"
    ext = m.model_extra["keel"]
    assert ext["grounded"] is True and ext["citations"]
    assert m.usage.output_tokens > 0


def test_grounded_answer_streams_as_message_events(keel_url, keel_key):
    c = Anthropic(base_url=keel_url, api_key=keel_key, max_retries=0)
    with c.messages.stream(model="keel", max_tokens=512, messages=[{"role": "user", "content": QUESTION}]) as s:
        pieces = list(s.text_stream)
        final = s.get_final_message()
    assert len(pieces) > 1
    assert "30 days" in "".join(pieces)
    assert final.content[0].text == "".join(pieces)
    assert final.stop_reason == "end_turn"


def test_a_wrong_key_is_an_authentication_error(keel_url):
    c = Anthropic(base_url=keel_url, api_key="kl_wrong", max_retries=0)
    with pytest.raises(anthropic.AuthenticationError):
        c.messages.create(model="keel", max_tokens=10, messages=[{"role": "user", "content": "hi"}])


class Upstream(BaseHTTPRequestHandler):
    def log_message(self, *args):
        pass

    def send(self, status, payload, ctype="application/json"):
        respond(self, status, payload, ctype)

    def do_POST(self):
        body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
        SEEN.append((self.path, self.headers.get("x-api-key"), body))
        if OVERLOADED["left"] > 0:
            OVERLOADED["left"] -= 1
            self.send(529, json.dumps({"type": "error", "error": {"type": "overloaded_error", "message": "busy"}}))
            return
        if body.get("stream"):
            events = [
                ("message_start", {"type": "message_start", "message": {"id": "msg_1", "type": "message",
                    "role": "assistant", "content": [], "model": body["model"], "stop_reason": None,
                    "usage": {"input_tokens": 9, "output_tokens": 1}}}),
                ("content_block_start", {"type": "content_block_start", "index": 0,
                                         "content_block": {"type": "text", "text": ""}}),
            ] + [("content_block_delta", {"type": "content_block_delta", "index": 0,
                                          "delta": {"type": "text_delta", "text": t}}) for t in ["Hello", " from", " claude"]] + [
                ("content_block_stop", {"type": "content_block_stop", "index": 0}),
                ("message_delta", {"type": "message_delta", "delta": {"stop_reason": "end_turn"},
                                   "usage": {"output_tokens": 3}}),
                ("message_stop", {"type": "message_stop"}),
            ]
            self.send(200, "".join(f"event: {n}\ndata: {json.dumps(d)}\n\n" for n, d in events), "text/event-stream")
            return
        self.send(200, json.dumps({"id": "msg_1", "type": "message", "role": "assistant", "model": body["model"],
                                   "content": [{"type": "text", "text": "Hello from claude"}],
                                   "stop_reason": "end_turn", "usage": {"input_tokens": 9, "output_tokens": 3}}))


@pytest.fixture(scope="module")
def gateway_url(tmp_path_factory):
    upstream = ThreadingHTTPServer(("127.0.0.1", 0), Upstream)
    threading.Thread(target=upstream.serve_forever, daemon=True).start()
    tmp = tmp_path_factory.mktemp("anthropic")
    cfg = tmp / "keel.toml"
    cfg.write_text(f"""
[gateway]
backoff_base = "10ms"
backoff_max = "50ms"

[[providers]]
name = "claude"
kind = "anthropic"
base_url = "http://127.0.0.1:{upstream.server_port}/v1"
api_key_env = "KEEL_TEST_ANTHROPIC_KEY"

[[routes]]
model = "sonnet"
targets = [{{ provider = "claude", model = "claude-sonnet-test" }}]
""")
    env = dict(os.environ, KEEL_TEST_ANTHROPIC_KEY="sk-ant-secret")
    proc, url = start_keel(["--config", str(cfg), "--data-dir", str(tmp / "data"), "serve", "--no-auth"], env=env)
    yield url
    stop_keel(proc)
    upstream.shutdown()


@pytest.fixture(scope="module")
def quick_url(tmp_path_factory):
    """Quick proxy mode in front of the fake Anthropic API: no config file."""
    url, stop = quick_anthropic_proxy(Upstream, tmp_path_factory.mktemp("anthropic-quick"), "claude-quick",
                                      "sk-ant-quick")
    yield url
    stop()


def test_gateway_route_to_an_anthropic_provider(gateway_url):
    OVERLOADED["left"] = 1
    before = len(SEEN)
    c = Anthropic(base_url=gateway_url, api_key="unused", max_retries=0)
    r = c.messages.with_raw_response.create(model="sonnet", max_tokens=100, system="Be brief.",
                                            messages=[{"role": "user", "content": "hi"}])
    assert r.headers["x-keel-attempts"] == "2"
    m = r.parse()
    assert m.content[0].text == "Hello from claude"
    assert (m.usage.input_tokens, m.usage.output_tokens) == (9, 3)
    path, key, sent = SEEN[-1]
    assert len(SEEN) - before == 2
    assert path == "/v1/messages" and key == "sk-ant-secret"
    assert sent["system"] == "Be brief." and sent["model"] == "claude-sonnet-test"

    with c.messages.stream(model="sonnet", max_tokens=100, messages=[{"role": "user", "content": "hi"}]) as s:
        pieces = list(s.text_stream)
        final = s.get_final_message()
    assert pieces == ["Hello", " from", " claude"]
    assert final.usage.output_tokens == 3


def test_gateway_route_is_also_an_openai_model(gateway_url):
    from openai import OpenAI
    r = OpenAI(base_url=gateway_url + "/v1", api_key="unused", max_retries=0).chat.completions.create(
        model="sonnet", messages=[{"role": "user", "content": "hi"}])
    assert r.choices[0].message.content == "Hello from claude"
    assert r.usage.prompt_tokens == 9


def test_quick_proxy_mode_fronts_anthropic(quick_url):
    """`keel serve --anthropic-base-url URL --model M`: both client libraries, one upstream."""
    from openai import OpenAI
    r = OpenAI(base_url=quick_url + "/v1", api_key="unused", max_retries=0).chat.completions.with_raw_response.create(
        model="claude-quick", messages=[{"role": "user", "content": "hi"}])
    c = r.parse()
    assert c.choices[0].message.content == "Hello from claude"
    path, key, sent = SEEN[-1]
    assert path == "/v1/messages" and key == "sk-ant-quick" and sent["model"] == "claude-quick"
    t = stored_trace(quick_url, r.headers["x-keel-trace-id"])
    assert t["route"] == "gateway" and t["output"]["usage"]["prompt_tokens"] == 9
    assert t["output"]["reply"] == "Hello from claude"

    a = Anthropic(base_url=quick_url, api_key="unused", max_retries=0)
    with a.messages.stream(model="claude-quick", max_tokens=50, messages=[{"role": "user", "content": "hi"}]) as s:
        assert "".join(s.text_stream) == "Hello from claude"
