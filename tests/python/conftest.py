"""Starts a real `keel serve` over the sample knowledge base for the client tests."""
import json
import os
import socket
import subprocess
import tempfile
import time
import urllib.request

import pytest

REPO = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", ".."))
KEEL = os.environ.get("KEEL_BIN", os.path.join(REPO, "target", "debug", "keel"))


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


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
    port = free_port()
    proc = subprocess.Popen([KEEL, "--data-dir", data, "serve", "--listen", f"127.0.0.1:{port}"], cwd=REPO)
    url = f"http://127.0.0.1:{port}"
    deadline = time.time() + 120
    while True:
        try:
            with urllib.request.urlopen(url + "/readyz", timeout=2) as r:
                if json.load(r)["status"] == "ready":
                    break
        except Exception:
            if proc.poll() is not None:
                raise RuntimeError("keel serve exited early")
            if time.time() > deadline:
                proc.kill()
                raise RuntimeError("keel serve did not become ready in 120 s")
            time.sleep(0.2)
    yield url
    proc.terminate()
    proc.wait(timeout=30)
