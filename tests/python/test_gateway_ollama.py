"""The official `ollama` Python library against `llm serve`'s Ollama API
(`/api/chat`, `/api/generate`, `/api/tags`, `/api/show`, `/api/embed`), with
upstreams of every kind (OpenAI, Anthropic, Ollama) on the mock: each test
asserts the content, usage counts and done_reason the library received and
the body the upstream was sent."""

from __future__ import annotations

import base64
import json

import ollama
import pytest

from conftest import ANTHROPIC_MODELS, GATEWAY_KEY, config_toml
from gateway import Gateway, toml_str
from mock_upstream import (
    ANTHROPIC_INPUT_TOKENS,
    ANTHROPIC_OUTPUT_TOKENS,
    OLLAMA_EVAL_COUNT,
    OLLAMA_PROMPT_EVAL_COUNT,
    STRUCTURED,
    TEXT,
    MockUpstream,
    Recorded,
    Reply,
)

#: The embedding model of the Ollama-kind instance.
EMBED_MODEL = "all-minilm"
#: The vectors the mock's `/api/embed` answers, one per input (Ollama's API reference example values).
VECTORS = [
    [0.010071029, -0.0017594862, 0.05007221, 0.04692972],
    [-0.0098027075, 0.06042469, 0.025257962, -0.006364387],
]
#: A 1x1 PNG.
PNG = base64.b64decode(
    "iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mNkYPhfDwAChwGA60e6kgAAAABJRU5ErkJggg=="
)


class EmbeddingMock(MockUpstream):
    """The shared mock, plus Ollama's `POST /api/embed` for `ollama`-kind instances
    (`{"model","embeddings","total_duration","load_duration","prompt_eval_count"}`)."""

    def _dispatch(self, method: str, target: str, headers: dict[str, str], raw: bytes) -> Reply:
        path = target.split("?", 1)[0]
        instance, _, rest = path.lstrip("/").partition("/")
        kind = self._kinds.get(instance, ("", []))[0]
        if kind == "ollama" and method == "POST" and "/" + rest == "/api/embed":
            body = json.loads(raw or b"{}")
            with self._lock:
                self.records.append(Recorded(instance, method, "/" + rest, headers, raw, body))
            inputs = body["input"] if isinstance(body["input"], list) else [body["input"]]
            obj = {
                "model": body["model"],
                "embeddings": [VECTORS[i % 2] for i in range(len(inputs))],
                "total_duration": 14143917,
                "load_duration": 1019500,
                "prompt_eval_count": 4 * len(inputs),
            }
            return Reply(200, {"content-type": "application/json; charset=utf-8"}, json.dumps(obj, separators=(",", ":")).encode())
        return super()._dispatch(method, target, headers, raw)


@pytest.fixture(scope="module")
def emock() -> EmbeddingMock:
    m = EmbeddingMock()
    yield m
    m.close()


@pytest.fixture(scope="module")
def ogw(emock: EmbeddingMock) -> Gateway:
    """openai, claude and an Ollama-kind `local` serving llama3.2 and all-minilm."""
    local = f"""
[llm_providers.local]
kind = "ollama"
base_url = {toml_str(emock.add("local", "ollama", ["llama3.2"]))}
models = ["llama3.2"]
embedding_models = [{toml_str(EMBED_MODEL)}]
timeout = 30
"""
    g = Gateway(config_toml(emock, ("openai", "claude")) + local, name="ollama-door")
    yield g
    g.stop()


@pytest.fixture()
def oc(ogw: Gateway, emock: EmbeddingMock) -> ollama.Client:
    emock.reset()
    return ollama.Client(host=ogw.url, headers={"Authorization": f"Bearer {GATEWAY_KEY}"}, timeout=60)


def embeds(mock: EmbeddingMock) -> list[Recorded]:
    return [r for r in mock.records if r.path == "/api/embed"]


MESSAGES = [
    {"role": "system", "content": "You are a terse assistant."},
    {"role": "user", "content": "Say hello."},
]

CASES = [
    ("openai/gpt-4o-mini", "openai", 20, 2),
    (f"claude/{ANTHROPIC_MODELS[0]}", "claude", ANTHROPIC_INPUT_TOKENS, ANTHROPIC_OUTPUT_TOKENS),
    ("llama3.2", "local", OLLAMA_PROMPT_EVAL_COUNT, OLLAMA_EVAL_COUNT),
]


@pytest.mark.parametrize(("model", "instance", "prompt", "completion"), CASES)
def test_chat(oc: ollama.Client, emock: EmbeddingMock, model: str, instance: str, prompt: int, completion: int) -> None:
    r = oc.chat(model=model, messages=MESSAGES, options={"temperature": 0.2, "num_predict": 40, "stop": ["END"]})
    assert r.message.role == "assistant"
    assert r.message.content == TEXT
    assert r.done is True
    assert r.done_reason == "stop"
    assert (r.prompt_eval_count, r.eval_count) == (prompt, completion)
    assert r.model == model
    assert r.total_duration >= r.eval_duration >= 0
    sent = emock.last(instance).body
    assert sent["temperature" if instance != "local" else "options"] is not None
    if instance == "local":
        assert sent["options"]["temperature"] == 0.2
        assert sent["options"]["num_predict"] == 40
        assert sent["options"]["stop"] == ["END"]
        assert sent["messages"][0] == {"role": "system", "content": "You are a terse assistant."}
    elif instance == "claude":
        assert sent["system"] == "You are a terse assistant."
        assert sent["max_tokens"] == 40
        assert sent["stop_sequences"] == ["END"]
        assert sent["messages"] == [{"role": "user", "content": "Say hello."}]
    else:
        assert sent["temperature"] == 0.2
        assert sent.get("max_completion_tokens", sent.get("max_tokens")) == 40
        assert sent["messages"][1] == {"role": "user", "content": "Say hello."}


@pytest.mark.parametrize(("model", "instance", "prompt", "completion"), CASES)
def test_chat_stream(oc: ollama.Client, emock: EmbeddingMock, model: str, instance: str, prompt: int, completion: int) -> None:
    parts = list(oc.chat(model=model, messages=MESSAGES, stream=True))
    assert len(parts) >= 2
    assert "".join(p.message.content or "" for p in parts) == TEXT
    assert all(not p.done for p in parts[:-1])
    last = parts[-1]
    assert last.done is True and last.done_reason == "stop"
    if instance != "openai":
        # The OpenAI mock sends usage only when asked; otherwise the gateway estimates it.
        assert (last.prompt_eval_count, last.eval_count) == (prompt, completion)
    else:
        assert last.prompt_eval_count > 0 and last.eval_count > 0
    assert emock.last(instance).body["stream"] is True


def test_generate(oc: ollama.Client, emock: EmbeddingMock) -> None:
    r = oc.generate(model="llama3.2", prompt="Say hello.", system="Be terse.", options={"seed": 42})
    assert r.response == TEXT
    assert r.done_reason == "stop"
    assert (r.prompt_eval_count, r.eval_count) == (OLLAMA_PROMPT_EVAL_COUNT, OLLAMA_EVAL_COUNT)
    sent = emock.last("local").body
    assert sent["messages"] == [{"role": "system", "content": "Be terse."}, {"role": "user", "content": "Say hello."}]
    assert sent["options"]["seed"] == 42

    parts = list(oc.generate(model="openai/gpt-4o-mini", prompt="Say hello.", stream=True))
    assert "".join(p.response for p in parts) == TEXT
    assert parts[-1].done and parts[-1].done_reason == "stop"


def test_format_and_images(oc: ollama.Client, emock: EmbeddingMock) -> None:
    schema = {"type": "object", "properties": {"name": {"type": "string"}}, "required": ["name"]}
    r = oc.chat(
        model="llama3.2",
        messages=[{"role": "user", "content": "Which city is this?", "images": [PNG]}],
        format=schema,
    )
    assert json.loads(r.message.content) == STRUCTURED
    sent = emock.last("local").body
    assert sent["format"] == schema
    assert sent["messages"][0]["images"] == [base64.b64encode(PNG).decode()]

    r = oc.chat(model="openai/gpt-4o-mini", messages=[{"role": "user", "content": "A city as JSON"}], format="json")
    assert json.loads(r.message.content) == STRUCTURED
    assert emock.last("openai").body["response_format"] == {"type": "json_object"}


def test_tool_round_trip(oc: ollama.Client, emock: EmbeddingMock) -> None:
    call = {
        "id": "chatcmpl-tool",
        "object": "chat.completion",
        "created": 1756300002,
        "model": "gpt-4o-mini-2024-07-18",
        "choices": [
            {
                "index": 0,
                "message": {
                    "role": "assistant",
                    "content": None,
                    "tool_calls": [
                        {"id": "call_abc123", "type": "function", "function": {"name": "get_weather", "arguments": '{"city":"Paris"}'}}
                    ],
                    "refusal": None,
                    "annotations": [],
                },
                "logprobs": None,
                "finish_reason": "tool_calls",
            }
        ],
        "usage": {"prompt_tokens": 58, "completion_tokens": 15, "total_tokens": 73},
    }
    emock.script("openai", Reply.json(200, call, indent=2))

    def get_weather(city: str) -> str:
        """Weather of a city.

        Args:
          city: The city
        """
        return "sunny"

    messages = [{"role": "user", "content": "Weather in Paris?"}]
    r = oc.chat(model="openai/gpt-4o-mini", messages=messages, tools=[get_weather])
    assert r.done_reason == "stop"
    assert (r.prompt_eval_count, r.eval_count) == (58, 15)
    (tc,) = r.message.tool_calls
    assert tc.function.name == "get_weather"
    assert tc.function.arguments == {"city": "Paris"}
    sent = emock.last("openai").body
    assert sent["tools"][0]["function"]["name"] == "get_weather"
    assert sent["tools"][0]["function"]["parameters"]["properties"]["city"]["type"] == "string"

    messages += [r.message, {"role": "tool", "tool_name": "get_weather", "content": get_weather(**tc.function.arguments)}]
    r = oc.chat(model="openai/gpt-4o-mini", messages=messages, tools=[get_weather])
    assert r.message.content == TEXT
    sent = emock.last("openai").body
    # The library sends tool calls back without their id: the gateway names
    # the call and answers it with the same id.
    call_id = sent["messages"][1]["tool_calls"][0]["id"]
    assert call_id
    assert json.loads(sent["messages"][1]["tool_calls"][0]["function"]["arguments"]) == {"city": "Paris"}
    assert sent["messages"][2] == {"role": "tool", "tool_call_id": call_id, "content": "sunny"}


def test_list_and_show(oc: ollama.Client) -> None:
    names = [m.model for m in oc.list().models]
    assert names == ["openai/gpt-4o-mini", "openai/gpt-4o", f"claude/{ANTHROPIC_MODELS[0]}", "local/llama3.2", f"local/{EMBED_MODEL}"]
    first = oc.list().models[0]
    assert first.details.family == "openai" and len(first.digest) == 64 and first.modified_at is not None

    s = oc.show("llama3.2")
    assert s.capabilities == ["completion", "tools", "vision"]
    assert s.details.family == "ollama"
    assert oc.show(EMBED_MODEL).capabilities == ["embedding"]
    with pytest.raises(ollama.ResponseError) as e:
        oc.show("no-such-model")
    assert e.value.status_code == 404
    assert e.value.error == "model 'no-such-model' not found"


def test_embed(oc: ollama.Client, emock: EmbeddingMock) -> None:
    r = oc.embed(model=EMBED_MODEL, input=["Why is the sky blue?", "Why is the grass green?"])
    assert r.model == EMBED_MODEL
    assert [[round(x, 7) for x in v] for v in r.embeddings] == [[round(x, 7) for x in v] for v in VECTORS]
    assert r.prompt_eval_count == 8
    (sent,) = embeds(emock)
    assert sent.body == {"model": EMBED_MODEL, "input": ["Why is the sky blue?", "Why is the grass green?"]}

    r = oc.embed(model=f"local/{EMBED_MODEL}", input="one text")
    assert len(r.embeddings) == 1 and len(r.embeddings[0]) == 4


def test_errors(oc: ollama.Client, ogw: Gateway, emock: EmbeddingMock) -> None:
    with pytest.raises(ollama.ResponseError) as e:
        oc.chat(model="llama9:70b", messages=MESSAGES)
    assert e.value.status_code == 404
    assert e.value.error == 'model "llama9:70b" not found, try pulling it first'

    with pytest.raises(ollama.ResponseError) as e:
        oc.chat(model="llama3.2", messages=MESSAGES, options={"top_k": 40})
    assert e.value.status_code == 400
    assert "`options.top_k`" in e.value.error

    with pytest.raises(ollama.ResponseError) as e:
        oc.chat(model="llama3.2", messages=MESSAGES, think=True)
    assert e.value.status_code == 400 and "`think`" in e.value.error

    # Without the gateway key.
    with pytest.raises(ollama.ResponseError) as e:
        ollama.Client(host=ogw.url).list()
    assert e.value.status_code == 401
    assert emock.generations() == []
