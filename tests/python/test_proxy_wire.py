"""Quick proxy mode in front of an Azure-OpenAI-shaped upstream, with the real `openai` client:
`--model '*'` passes any model name through, the `{model}` URL placeholder puts it in the path
as the deployment, `--auth-header api-key` and `--query api-version=...` address the calls, and
a pasted API key is redacted from the trace."""
import json
import os
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest
from openai import OpenAI

from conftest import send_completion, start_keel, stop_keel, stored_trace

CALLS = []


class AzureLike(BaseHTTPRequestHandler):
    def log_message(self, *args):
        pass

    def do_POST(self):
        body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
        CALLS.append({"path": self.path, "api-key": self.headers.get("api-key"),
                      "authorization": self.headers.get("authorization"), "body": body})
        send_completion(self, body["model"], "deployed " + body["model"], (5, 3))


@pytest.fixture(scope="module")
def azure_url(tmp_path_factory):
    upstream = ThreadingHTTPServer(("127.0.0.1", 0), AzureLike)
    threading.Thread(target=upstream.serve_forever, daemon=True).start()
    data = str(tmp_path_factory.mktemp("azure"))
    env = dict(os.environ, AZURE_TEST_KEY="az-test-secret")
    proc, url = start_keel(["--data-dir", data, "serve", "--no-auth",
                            "--openai-base-url", f"http://127.0.0.1:{upstream.server_port}/openai/deployments/{{model}}",
                            "--api-key-env", "AZURE_TEST_KEY", "--auth-header", "api-key",
                            "--query", "api-version=2024-10-21", "--model", "*"], env=env)
    yield url
    stop_keel(proc)
    upstream.shutdown()


def test_any_model_reaches_its_deployment_with_the_azure_key_header(azure_url):
    client = OpenAI(base_url=azure_url + "/v1", api_key="unused", max_retries=0)
    before = len(CALLS)
    for model in ["gpt-4o", "gpt-4o-mini"]:
        r = client.chat.completions.create(model=model, messages=[{"role": "user", "content": "hi"}])
        assert r.choices[0].message.content == "deployed " + model
    calls = CALLS[before:]
    assert [c["path"] for c in calls] == [
        "/openai/deployments/gpt-4o/chat/completions?api-version=2024-10-21",
        "/openai/deployments/gpt-4o-mini/chat/completions?api-version=2024-10-21",
    ]
    assert all(c["api-key"] == "az-test-secret" and c["authorization"] is None for c in calls)


def test_a_pasted_key_is_kept_out_of_the_trace(azure_url):
    client = OpenAI(base_url=azure_url + "/v1", api_key="unused", max_retries=0)
    pasted = "sk-proj-Ab3dEf6hIj9kLm2nOp5qRs8tUv1wXy4z"
    r = client.chat.completions.with_raw_response.create(
        model="gpt-4o", messages=[{"role": "user", "content": f"why does {pasted} fail?"}])
    t = stored_trace(azure_url, r.headers["x-keel-trace-id"])
    assert t["input"]["messages"][0]["content"] == "why does [SECRET] fail?"
    assert pasted not in json.dumps(t)
