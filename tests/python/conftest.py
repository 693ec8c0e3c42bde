"""Starts a real `keel serve` over the sample knowledge base for the client tests."""
import json
import os
import socket
import subprocess
import tempfile
import time
import urllib.error
import urllib.request

import pytest

REPO = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", ".."))
KEEL = os.environ.get("KEEL_BIN", os.path.join(REPO, "target", "debug", "keel"))


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def send_completion(handler, model, content, usage):
    """Answers a fake upstream's request (`handler`: a BaseHTTPRequestHandler) with an
    OpenAI chat completion of `content`, naming `model`, with `usage` (prompt, completion)."""
    prompt, completion = usage
    reply = {"id": "c1", "object": "chat.completion", "created": 1, "model": model,
             "choices": [{"index": 0, "message": {"role": "assistant", "content": content},
                          "finish_reason": "stop"}],
             "usage": {"prompt_tokens": prompt, "completion_tokens": completion,
                       "total_tokens": prompt + completion}}
    respond(handler, 200, json.dumps(reply))


def respond(handler, status, text, ctype="application/json"):
    """Sends `text` as a fake upstream's whole reply (`handler`: a BaseHTTPRequestHandler)."""
    data = text.encode()
    handler.send_response(status)
    handler.send_header("Content-Type", ctype)
    handler.send_header("Content-Length", str(len(data)))
    handler.end_headers()
    handler.wfile.write(data)


def start_keel(args, env=None, ready=False, timeout=120):
    """Starts `keel ARGS --listen 127.0.0.1:PORT` and waits for /healthz (or, with `ready`, for
    /readyz to say ready). Returns the process and its base URL."""
    port = free_port()
    proc = subprocess.Popen([KEEL, *args, "--listen", f"127.0.0.1:{port}"], cwd=REPO, env=env)
    url = f"http://127.0.0.1:{port}"
    deadline = time.time() + timeout
    while True:
        try:
            with urllib.request.urlopen(url + ("/readyz" if ready else "/healthz"), timeout=2) as r:
                if not ready or json.load(r)["status"] == "ready":
                    return proc, url
        except Exception:
            pass
        if proc.poll() is not None:
            raise RuntimeError(f"keel {' '.join(args)} exited early")
        if time.time() > deadline:
            proc.kill()
            raise RuntimeError(f"keel {' '.join(args)} did not start in {timeout} s")
        time.sleep(0.05)


def stop_keel(proc):
    proc.terminate()
    proc.wait(timeout=30)


def quick_anthropic_proxy(handler, tmp, model, key):
    """Starts a fake Anthropic Messages API (`handler`: a BaseHTTPRequestHandler class) and
    Keel's quick proxy mode in front of it, the key in KEEL_TEST_ANTHROPIC_KEY. Returns Keel's
    URL and a function that stops both."""
    import threading
    from http.server import ThreadingHTTPServer

    upstream = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    threading.Thread(target=upstream.serve_forever, daemon=True).start()
    env = dict(os.environ, KEEL_TEST_ANTHROPIC_KEY=key)
    proc, url = start_keel(["--data-dir", str(tmp), "serve", "--no-auth",
                            "--anthropic-base-url", f"http://127.0.0.1:{upstream.server_port}/v1",
                            "--api-key-env", "KEEL_TEST_ANTHROPIC_KEY", "--model", model], env=env)

    def stop():
        stop_keel(proc)
        upstream.shutdown()
    return url, stop


def stored_trace(url, trace_id, key=None):
    """GET /v1/traces/ID (a stream's trace is written when it ends: polled briefly)."""
    headers = {"Authorization": f"Bearer {key}"} if key else {}
    for _ in range(40):
        try:
            with urllib.request.urlopen(urllib.request.Request(f"{url}/v1/traces/{trace_id}", headers=headers), timeout=5) as r:
                return json.load(r)
        except urllib.error.HTTPError as e:
            if e.code != 404:
                raise
        time.sleep(0.05)
    raise AssertionError(f"trace {trace_id} was never stored")


@pytest.fixture(scope="session")
def keel_data():
    return tempfile.mkdtemp(prefix="keel-py-")


@pytest.fixture(scope="session")
def keel_key(keel_data):
    out = subprocess.run([KEEL, "--data-dir", keel_data, "keys", "create", "--tenant", "pytest", "--scopes", "query", "--json"],
                         check=True, capture_output=True, text=True, cwd=REPO).stdout
    return json.loads(out)["key"]


@pytest.fixture(scope="session")
def keel_url(keel_data, keel_key):
    data = keel_data
    subprocess.run([KEEL, "--data-dir", data, "ingest", os.path.join(REPO, "sample-kb")], check=True, cwd=REPO)
    proc, url = start_keel(["--data-dir", data, "serve"], ready=True)
    yield url
    stop_keel(proc)
