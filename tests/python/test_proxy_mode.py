"""Quick proxy mode with the real `openai` client: Keel in front of a fake OpenAI-compatible
upstream (a tiny Python server), plain and streaming, with retries on an upstream 503, and
embeddings for a second model name (`--also-model`)."""
import base64
import json
import struct
import subprocess
import threading
import urllib.request
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import openai
import pytest
from openai import OpenAI

from conftest import KEEL, respond, send_completion, start_keel, stop_keel, stored_trace

VECTOR = [0.5, -0.25, 1.0]

FAILS = {"left": 0}
SEEN = []


class Upstream(BaseHTTPRequestHandler):
    def log_message(self, *args):
        pass

    def do_POST(self):
        body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
        SEEN.append(body["model"])
        if self.path == "/v1/embeddings":
            inputs = body["input"] if isinstance(body["input"], list) else [body["input"]]
            if body.get("encoding_format") == "base64":
                vec = base64.b64encode(struct.pack("<3f", *VECTOR)).decode()
            else:
                vec = VECTOR
            data = [{"object": "embedding", "index": i, "embedding": vec} for i in range(len(inputs))]
            reply = {"object": "list", "data": data, "model": body["model"],
                     "usage": {"prompt_tokens": 4 * len(inputs), "total_tokens": 4 * len(inputs)}}
            respond(self, 200, json.dumps(reply))
            return
        if FAILS["left"] > 0:
            FAILS["left"] -= 1
            self.send_response(503)
            self.send_header("Content-Type", "application/json")
            self.end_headers()
            self.wfile.write(b'{"error":{"message":"overloaded"}}')
            return
        if body.get("stream"):
            self.send_response(200)
            self.send_header("Content-Type", "text/event-stream")
            self.end_headers()
            for piece in ["Hello", " from", " upstream"]:
                chunk = {"id": "c1", "object": "chat.completion.chunk", "created": 1, "model": body["model"],
                         "choices": [{"index": 0, "delta": {"content": piece}, "finish_reason": None}]}
                self.wfile.write(f"data: {json.dumps(chunk)}\n\n".encode())
                self.wfile.flush()
            last = {"id": "c1", "object": "chat.completion.chunk", "created": 1, "model": body["model"],
                    "choices": [{"index": 0, "delta": {}, "finish_reason": "stop"}]}
            self.wfile.write(f"data: {json.dumps(last)}\n\n".encode())
            # Like OpenAI: a final usage-only chunk, only when the request asks for it.
            if (body.get("stream_options") or {}).get("include_usage"):
                usage = {"id": "c1", "object": "chat.completion.chunk", "created": 1, "model": body["model"],
                         "choices": [], "usage": {"prompt_tokens": 9, "completion_tokens": 3, "total_tokens": 12}}
                self.wfile.write(f"data: {json.dumps(usage)}\n\n".encode())
            self.wfile.write(b"data: [DONE]\n\n")
            return
        send_completion(self, body["model"], "Hello from upstream", (5, 3))


@pytest.fixture(scope="module")
def proxy_url(tmp_path_factory):
    upstream = ThreadingHTTPServer(("127.0.0.1", 0), Upstream)
    threading.Thread(target=upstream.serve_forever, daemon=True).start()
    data = str(tmp_path_factory.mktemp("proxy"))
    proc, url = start_keel(["--data-dir", data, "serve", "--no-auth",
                            "--openai-base-url", f"http://127.0.0.1:{upstream.server_port}/v1",
                            "--model", "tiny-model", "--also-model", "tiny-embed", "--deadline", "10s"])
    yield url
    stop_keel(proc)
    upstream.shutdown()


def client(url):
    return OpenAI(base_url=url + "/v1", api_key="unused", max_retries=0)


def test_plain_completion_passes_through_with_retry(proxy_url):
    FAILS["left"] = 1
    before = len(SEEN)
    r = client(proxy_url).chat.completions.with_raw_response.create(
        model="tiny-model", messages=[{"role": "user", "content": "hi"}])
    assert r.headers["x-keel-attempts"] == "2"
    assert float(r.headers["x-keel-overhead-ms"]) >= 0
    c = r.parse()
    assert c.choices[0].message.content == "Hello from upstream"
    assert c.usage.total_tokens == 8
    assert len(SEEN) - before == 2
    # The request's trace: both attempts, the provider's usage, the messages.
    t = stored_trace(proxy_url, r.headers["x-keel-trace-id"])
    assert t["route"] == "gateway" and t["status"] == "ok"
    provider = next(s for s in t["spans"] if s["name"] == "provider")
    assert provider["attrs"]["calls"] == 2
    assert t["output"]["usage"]["prompt_tokens"] == 5
    assert t["input"]["messages"] == [{"role": "user", "content": "hi"}]


def test_streaming_passes_through_chunk_by_chunk(proxy_url):
    parts = []
    for chunk in client(proxy_url).chat.completions.create(
            model="tiny-model", messages=[{"role": "user", "content": "hi"}], stream=True):
        if chunk.choices and chunk.choices[0].delta.content:
            parts.append(chunk.choices[0].delta.content)
    assert parts == ["Hello", " from", " upstream"]


def test_streams_are_metered_with_the_providers_usage(proxy_url):
    msgs = [{"role": "user", "content": "hi"}]
    # The client did not ask: no usage chunk reaches it, but the trace has the provider's counts.
    raw = client(proxy_url).chat.completions.with_raw_response.create(model="tiny-model", messages=msgs, stream=True)
    chunks = list(raw.parse())
    assert all(c.usage is None for c in chunks)
    assert "".join(c.choices[0].delta.content or "" for c in chunks if c.choices) == "Hello from upstream"
    t = stored_trace(proxy_url, raw.headers["x-keel-trace-id"])
    assert t["output"]["usage"]["prompt_tokens"] == 9 and t["output"]["usage"]["estimated"] is False
    # The client asked: it gets the provider's usage chunk.
    chunks = list(client(proxy_url).chat.completions.create(
        model="tiny-model", messages=msgs, stream=True, stream_options={"include_usage": True}))
    assert chunks[-1].usage is not None and chunks[-1].usage.total_tokens == 12


def test_unknown_model_is_a_not_found_error(proxy_url):
    with pytest.raises(openai.NotFoundError):
        client(proxy_url).chat.completions.create(model="gpt-nope", messages=[{"role": "user", "content": "hi"}])


def test_status_and_metrics_show_the_breaker(proxy_url):
    out = subprocess.run([KEEL, "status", "--url", proxy_url], capture_output=True, text=True, check=True).stdout
    assert "upstream/tiny-model" in out and "closed" in out
    text = urllib.request.urlopen(proxy_url + "/metrics", timeout=5).read().decode()
    assert 'keel_breaker_state{target="upstream/tiny-model"} 0' in text
    assert 'keel_gateway_attempts_total{target="upstream/tiny-model",outcome="ok"}' in text


def test_embeddings_through_the_gateway_with_the_openai_client(proxy_url):
    c = client(proxy_url)
    # The client asks for base64 by default and decodes it: the bytes passed through intact.
    res = c.embeddings.with_raw_response.create(model="tiny-embed", input=["first text", "second text"])
    out = res.parse()
    assert [d.index for d in out.data] == [0, 1]
    assert all(d.embedding == VECTOR for d in out.data)
    assert out.usage.prompt_tokens == 8
    assert res.headers["x-keel-tokens"] == "8/0"
    assert res.headers["x-keel-attempts"] == "1"
    # Floats asked for explicitly, one string.
    out = c.embeddings.create(model="tiny-embed", input="one text", encoding_format="float")
    assert out.data[0].embedding == VECTOR
    # An empty input is refused before any upstream call, naming the field.
    with pytest.raises(openai.UnprocessableEntityError) as e:
        c.embeddings.create(model="tiny-embed", input="")
    assert e.value.body["param"] == "input"
    with pytest.raises(openai.NotFoundError):
        c.embeddings.create(model="no-such-embedder", input="x")
