"""The real `openai` Python package talks to `keel serve` unchanged: plain and streaming."""
import openai
import pytest
from openai import OpenAI


KEY = None


@pytest.fixture(autouse=True)
def _key(keel_key):
    global KEY
    KEY = keel_key


def client(url, key=None):
    return OpenAI(base_url=url + "/v1", api_key=key or KEY, max_retries=0)


def test_a_wrong_key_is_rejected(keel_url):
    with pytest.raises(openai.AuthenticationError):
        client(keel_url, key="kl_wrong_key").models.list()


def test_chat_completion_returns_a_cited_answer(keel_url):
    r = client(keel_url).chat.completions.create(
        model="keel", messages=[{"role": "user", "content": "How long do I have to return an item?"}]
    )
    text = r.choices[0].message.content
    assert "30 days" in text
    assert "[1]" in text and "Sources:" in text
    assert r.choices[0].finish_reason == "stop"
    ext = r.model_extra["keel"]
    assert ext["grounded"] is True and ext["escalate"] is False
    assert ext["citations"][0]["doc"].endswith(".md") or ext["citations"][0]["doc"].endswith(".html")
    assert r.usage.total_tokens > 0


def test_streaming_yields_the_same_answer(keel_url):
    c = client(keel_url)
    msgs = [{"role": "user", "content": "How much does express shipping cost?"}]
    plain = c.chat.completions.create(model="keel", messages=msgs).choices[0].message.content
    parts, finish, ext = [], None, None
    for chunk in c.chat.completions.create(model="keel", messages=msgs, stream=True):
        if chunk.choices and chunk.choices[0].delta.content:
            parts.append(chunk.choices[0].delta.content)
        if chunk.choices and chunk.choices[0].finish_reason:
            finish = chunk.choices[0].finish_reason
            ext = chunk.model_extra.get("keel")
    assert "".join(parts) == plain
    assert "14.95" in plain
    assert finish == "stop"
    assert ext and ext["citations"]


def test_unknown_question_escalates(keel_url):
    r = client(keel_url).chat.completions.create(
        model="keel", messages=[{"role": "user", "content": "Do you offer a student discount?"}]
    )
    assert r.model_extra["keel"]["escalate"] is True
    assert "can't find this in the documentation" in r.choices[0].message.content


def test_errors_surface_as_openai_exceptions(keel_url):
    c = client(keel_url)
    with pytest.raises(openai.NotFoundError) as e:
        c.chat.completions.create(model="no-such-model", messages=[{"role": "user", "content": "hi"}])
    assert "no-such-model" in str(e.value)
    with pytest.raises(openai.BadRequestError):
        c.chat.completions.create(model="keel", messages=[])


def test_models_list(keel_url):
    ids = [m.id for m in client(keel_url).models.list()]
    assert "keel" in ids


def test_embeddings_from_the_in_process_model(keel_url):
    c = client(keel_url)
    texts = ["How long do refunds take?", "How many days until I get my money back?", "Do you sell gift cards?"]
    # The client's default (base64) and floats give the same unit vectors.
    b64 = c.embeddings.create(model="all-MiniLM-L6-v2", input=texts)
    flt = c.embeddings.create(model="all-MiniLM-L6-v2", input=texts, encoding_format="float")
    assert [len(d.embedding) for d in b64.data] == [384, 384, 384]
    for a, b in zip(b64.data, flt.data):
        assert max(abs(x - y) for x, y in zip(a.embedding, b.embedding)) < 1e-6
        assert abs(sum(x * x for x in a.embedding) - 1.0) < 1e-3
    assert b64.usage.prompt_tokens > 0
    dot = lambda a, b: sum(x * y for x, y in zip(a.embedding, b.embedding))
    # A paraphrase is nearer than another topic.
    assert dot(b64.data[0], b64.data[1]) > dot(b64.data[0], b64.data[2])
    assert "all-MiniLM-L6-v2" in [m.id for m in c.models.list().data]
