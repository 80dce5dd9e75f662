"""The gateway's other OpenAI doors as the official OpenAI Python SDK sees them:
`responses.create` (JSON, `stream=True`, a function-tool round trip, structured
output), `completions.create` and `embeddings.create` (which asks for base64
by default), each checked against what the upstream (the mock) received."""

from __future__ import annotations

import base64
import json
import struct
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import openai
import pytest
from conftest import GATEWAY_KEY
from gateway import Gateway, toml_str
from mock_upstream import (
    ANTHROPIC_INPUT_TOKENS,
    ANTHROPIC_OUTPUT_TOKENS,
    OLLAMA_EVAL_COUNT,
    OLLAMA_PROMPT_EVAL_COUNT,
    OPENAI_USAGE,
    STRUCTURED,
    TEXT,
    MockUpstream,
    Reply,
)

OPENAI = "openai/gpt-4o-mini"
CLAUDE = "claude/claude-sonnet-4-5-20250929"
LOCAL = "local/llama3.2"

CITY_TOOL = {
    "type": "function",
    "name": "get_city",
    "description": "Facts about a city.",
    "parameters": {
        "type": "object",
        "properties": {"name": {"type": "string"}, "country": {"type": "string"}, "population": {"type": "integer"}},
        "required": ["name", "country", "population"],
    },
    "strict": False,
}


def openai_tool_call_reply(arguments: str) -> Reply:
    """An OpenAI chat completion that calls `get_city` (the API's layout)."""
    return Reply.json(
        200,
        {
            "id": "chatcmpl-C9xQ2d7LkzP4mWm1nHqYt0bR8sVjF",
            "object": "chat.completion",
            "created": 1756300000,
            "model": "gpt-4o-mini-2024-07-18",
            "choices": [
                {
                    "index": 0,
                    "message": {
                        "role": "assistant",
                        "content": None,
                        "tool_calls": [
                            {
                                "id": "call_Xq3vL0d9GmJbT8wR2nK5sY7c",
                                "type": "function",
                                "function": {"name": "get_city", "arguments": arguments},
                            }
                        ],
                        "refusal": None,
                        "annotations": [],
                    },
                    "logprobs": None,
                    "finish_reason": "tool_calls",
                }
            ],
            "usage": OPENAI_USAGE,
            "service_tier": "default",
            "system_fingerprint": "fp_560af6e559",
        },
        indent=2,
    )


# --------------------------------------------------------------------------- responses


@pytest.mark.parametrize(
    "model, instance, usage",
    [
        (OPENAI, "openai", (20, 2)),
        (CLAUDE, "claude", (ANTHROPIC_INPUT_TOKENS, ANTHROPIC_OUTPUT_TOKENS)),
        (LOCAL, "local", (OLLAMA_PROMPT_EVAL_COUNT, OLLAMA_EVAL_COUNT)),
    ],
)
def test_responses_create_json(client: openai.OpenAI, mock: MockUpstream, model, instance, usage):
    r = client.responses.create(
        model=model, input="Say hello.", instructions="Be terse.", max_output_tokens=50, temperature=0.2,
        metadata={"trace": "t-1"},
    )
    assert r.object == "response"
    assert r.id.startswith("resp_")
    assert r.status == "completed"
    assert r.output_text == TEXT
    assert r.output[0].type == "message" and r.output[0].role == "assistant"
    assert (r.usage.input_tokens, r.usage.output_tokens) == usage
    assert r.usage.total_tokens == sum(usage)
    assert r.metadata == {"trace": "t-1"}
    body = mock.last(instance).body
    if instance == "claude":
        assert body["system"] == "Be terse."
        assert body["messages"] == [{"role": "user", "content": "Say hello."}]
        assert body["max_tokens"] == 50
    elif instance == "local":
        assert body["messages"] == [{"role": "system", "content": "Be terse."}, {"role": "user", "content": "Say hello."}]
        assert body["options"]["num_predict"] == 50
    else:
        assert body["messages"] == [{"role": "system", "content": "Be terse."}, {"role": "user", "content": "Say hello."}]
        assert body["max_tokens"] == 50
        assert "metadata" not in body and "store" not in body


@pytest.mark.parametrize("model, instance", [(OPENAI, "openai"), (CLAUDE, "claude"), (LOCAL, "local")])
def test_responses_create_stream(client: openai.OpenAI, mock: MockUpstream, model, instance):
    events = list(client.responses.create(model=model, input=[{"role": "user", "content": "Say hello."}], stream=True))
    types = [e.type for e in events]
    assert types[:4] == ["response.created", "response.in_progress", "response.output_item.added", "response.content_part.added"]
    assert types[-4:] == ["response.output_text.done", "response.content_part.done", "response.output_item.done", "response.completed"]
    assert [e.sequence_number for e in events] == list(range(len(events)))
    text = "".join(e.delta for e in events if e.type == "response.output_text.delta")
    assert text == TEXT
    final = events[-1].response
    assert final.status == "completed"
    assert final.output_text == TEXT
    assert final.usage is not None and final.usage.output_tokens > 0
    assert mock.last(instance).body["stream"] is True


def test_responses_stream_helper_collects_the_final_response(client: openai.OpenAI):
    with client.responses.stream(model=LOCAL, input="Say hello.") as stream:
        deltas = [e.delta for e in stream if e.type == "response.output_text.delta"]
        final = stream.get_final_response()
    assert "".join(deltas) == TEXT
    assert final.output_text == TEXT
    assert final.usage.input_tokens == OLLAMA_PROMPT_EVAL_COUNT


def test_responses_function_tool_round_trip_openai(client: openai.OpenAI, mock: MockUpstream):
    args = json.dumps({"name": "Paris"})
    mock.script("openai", openai_tool_call_reply(args))
    r = client.responses.create(model=OPENAI, input="Tell me about Paris.", tools=[CITY_TOOL])
    calls = [o for o in r.output if o.type == "function_call"]
    assert len(calls) == 1 and r.status == "completed"
    call = calls[0]
    assert (call.call_id, call.name, call.arguments) == ("call_Xq3vL0d9GmJbT8wR2nK5sY7c", "get_city", args)
    sent = mock.last("openai").body
    assert sent["tools"] == [
        {"type": "function", "function": {"name": "get_city", "description": "Facts about a city.", "parameters": CITY_TOOL["parameters"]}}
    ]

    # The tool runs on the client; the call and its output go back as items.
    follow = client.responses.create(
        model=OPENAI,
        input=[
            {"role": "user", "content": "Tell me about Paris."},
            {"type": "function_call", "call_id": call.call_id, "name": call.name, "arguments": call.arguments},
            {"type": "function_call_output", "call_id": call.call_id, "output": json.dumps(STRUCTURED)},
        ],
        tools=[CITY_TOOL],
    )
    assert follow.output_text == TEXT
    sent = mock.last("openai").body
    assert sent["messages"][1] == {
        "role": "assistant",
        "content": None,
        "tool_calls": [{"id": call.call_id, "type": "function", "function": {"name": "get_city", "arguments": args}}],
    }
    assert sent["messages"][2] == {"role": "tool", "tool_call_id": call.call_id, "content": json.dumps(STRUCTURED)}


def test_responses_function_tool_round_trip_claude_streamed(client: openai.OpenAI, mock: MockUpstream):
    events = list(
        client.responses.create(
            model=CLAUDE, input="Tell me about Paris.", tools=[CITY_TOOL],
            tool_choice={"type": "function", "name": "get_city"}, stream=True,
        )
    )
    types = [e.type for e in events]
    assert "response.function_call_arguments.delta" in types
    assert types[-3:] == ["response.function_call_arguments.done", "response.output_item.done", "response.completed"]
    done = [e for e in events if e.type == "response.function_call_arguments.done"][0]
    assert json.loads(done.arguments) == STRUCTURED
    call = events[-1].response.output[-1]
    assert call.type == "function_call" and call.call_id == "toolu_01NRLabsLyVHZPKxbKvkfSMn"
    assert mock.last("claude").body["tool_choice"] == {"type": "tool", "name": "get_city"}

    r = client.responses.create(
        model=CLAUDE,
        input=[
            {"role": "user", "content": "Tell me about Paris."},
            {"type": "function_call", "call_id": call.call_id, "name": "get_city", "arguments": call.arguments},
            {"type": "function_call_output", "call_id": call.call_id, "output": "ok"},
        ],
        tools=[CITY_TOOL],
    )
    assert r.output_text == TEXT
    msgs = mock.last("claude").body["messages"]
    assert msgs[1]["content"][0]["type"] == "tool_use" and msgs[1]["content"][0]["input"] == STRUCTURED
    assert msgs[2]["content"] == [{"type": "tool_result", "tool_use_id": call.call_id, "content": "ok"}]


def test_responses_structured_output(client: openai.OpenAI, mock: MockUpstream):
    schema = {
        "type": "object",
        "properties": {"name": {"type": "string"}, "country": {"type": "string"}, "population": {"type": "integer"}},
        "required": ["name", "country", "population"],
        "additionalProperties": False,
    }
    r = client.responses.create(
        model=OPENAI, input="Paris?",
        text={"format": {"type": "json_schema", "name": "city", "schema": schema, "strict": True}},
    )
    assert json.loads(r.output_text) == STRUCTURED
    assert mock.last("openai").body["response_format"] == {
        "type": "json_schema", "json_schema": {"name": "city", "schema": schema, "strict": True}
    }


def test_responses_refusals_are_400s_naming_the_field(client: openai.OpenAI, mock: MockUpstream):
    with pytest.raises(openai.BadRequestError) as e:
        client.responses.create(model=OPENAI, input="x", previous_response_id="resp_abc")
    assert e.value.body["param"] == "previous_response_id"
    assert "stateless" in e.value.body["message"]
    with pytest.raises(openai.BadRequestError) as e:
        client.responses.create(model=OPENAI, input="x", tools=[{"type": "web_search"}])
    assert e.value.body["param"] == "tools[0].type"
    assert "web_search" in e.value.body["message"]
    assert mock.generations() == []


def test_responses_mid_stream_failure_is_response_failed(client: openai.OpenAI, mock: MockUpstream):
    cut = [
        b'{"model":"llama3.2","created_at":"2025-08-27T10:15:02.123456789Z","message":{"role":"assistant","content":"Hello"},"done":false}\n',
        b'{"error":"an error was encountered while running the model"}\n',
    ]
    mock.script("local", Reply(200, {"content-type": "application/x-ndjson"}, chunks=cut))
    events = list(client.responses.create(model=LOCAL, input="x", stream=True))
    assert events[-1].type == "response.failed"
    assert "response.completed" not in [e.type for e in events]
    assert events[-1].response.status == "failed"
    assert "an error was encountered" in events[-1].response.error.message


# --------------------------------------------------------------------------- completions


def test_completions_create(client: openai.OpenAI, mock: MockUpstream):
    r = client.completions.create(model=OPENAI, prompt="Say hello.", max_tokens=20, stop=["\n"])
    assert r.object == "text_completion"
    assert r.id.startswith("cmpl-")
    assert r.choices[0].text == TEXT
    assert r.choices[0].finish_reason == "stop"
    assert (r.usage.prompt_tokens, r.usage.completion_tokens, r.usage.total_tokens) == (20, 2, 22)
    body = mock.last("openai").body
    assert body["messages"] == [{"role": "user", "content": "Say hello."}]
    assert body["max_tokens"] == 20 and body["stop"] == ["\n"]


def test_completions_stream(client: openai.OpenAI, mock: MockUpstream):
    chunks = list(
        client.completions.create(model=CLAUDE, prompt="Say hello.", stream=True, stream_options={"include_usage": True})
    )
    text = "".join(c.choices[0].text for c in chunks if c.choices)
    finishes = [c.choices[0].finish_reason for c in chunks if c.choices and c.choices[0].finish_reason]
    assert text == TEXT
    assert finishes == ["stop"]
    assert chunks[-1].usage.completion_tokens == ANTHROPIC_OUTPUT_TOKENS
    assert mock.last("claude").body["messages"] == [{"role": "user", "content": "Say hello."}]


def test_completions_refuse_suffix(client: openai.OpenAI, mock: MockUpstream):
    with pytest.raises(openai.BadRequestError) as e:
        client.completions.create(model=OPENAI, prompt="def f(", suffix="return 1")
    assert e.value.body["param"] == "suffix"
    assert mock.generations() == []


# --------------------------------------------------------------------------- embeddings

#: Two 4-dimensional vectors whose values are exact in f32.
VECTORS = [[0.5, -0.25, 0.125, 1.0], [-1.5, 0.75, 0.0, 2.0]]


class EmbedUpstream:
    """An Ollama server's `POST /api/embed` (and `GET /api/tags`), answering
    `VECTORS[i % 2]` for input i, recording each request body."""

    def __init__(self) -> None:
        self.bodies: list[dict] = []
        upstream = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *_args) -> None:
                pass

            def _send(self, status: int, body: bytes) -> None:
                self.send_response(status)
                self.send_header("content-type", "application/json; charset=utf-8")
                self.send_header("content-length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def do_GET(self) -> None:  # noqa: N802
                if self.path == "/api/tags":
                    self._send(200, b'{"models":[]}')
                elif self.path == "/api/version":
                    self._send(200, b'{"version":"0.12.6"}')
                else:
                    self._send(404, b'{"error":"not found"}')

            def do_POST(self) -> None:  # noqa: N802
                raw = self.rfile.read(int(self.headers.get("content-length") or 0))
                if self.path != "/api/embed":
                    self._send(404, b'{"error":"not found"}')
                    return
                body = json.loads(raw)
                upstream.bodies.append(body)
                vectors = [VECTORS[i % 2] for i in range(len(body["input"]))]
                answer = {"model": body["model"], "embeddings": vectors, "total_duration": 14143917,
                          "load_duration": 1019500, "prompt_eval_count": 4 * len(vectors)}
                self._send(200, json.dumps(answer, separators=(",", ":")).encode())

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        threading.Thread(target=self.server.serve_forever, daemon=True).start()
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture(scope="module")
def embed_upstream():
    u = EmbedUpstream()
    yield u
    u.close()


@pytest.fixture(scope="module")
def embed_client(embed_upstream: EmbedUpstream):
    config = f"""
[llm_providers.local]
kind = "ollama"
base_url = {toml_str(embed_upstream.url)}
models = ["llama3.2"]
embedding_models = ["nomic-embed-text"]
timeout = 30

[routing]
default_embedding_model = "nomic-embed-text"

[routing.retry]
max_retries = 0

[caching]
enabled = true

[gateway]
api_keys = [{toml_str(GATEWAY_KEY)}]
"""
    g = Gateway(config, name="embeddings")
    c = openai.OpenAI(base_url=g.base_url, api_key=GATEWAY_KEY, max_retries=0, timeout=60)
    yield c
    c.close()
    g.stop()


def test_embeddings_create_default_base64(embed_client: openai.OpenAI, embed_upstream: EmbedUpstream):
    raw = embed_client.embeddings.with_raw_response.create(model="nomic-embed-text", input=["alpha", "beta"])
    sent = json.loads(raw.http_request.content)
    assert sent["encoding_format"] == "base64", "the SDK asks for base64 by default"
    wire = json.loads(raw.text)
    assert isinstance(wire["data"][0]["embedding"], str)
    assert struct.unpack("<4f", base64.b64decode(wire["data"][1]["embedding"])) == tuple(VECTORS[1])
    r = raw.parse()
    assert [d.embedding for d in r.data] == VECTORS
    assert [d.index for d in r.data] == [0, 1]
    assert r.model == "nomic-embed-text"
    assert (r.usage.prompt_tokens, r.usage.total_tokens) == (8, 8)
    assert embed_upstream.bodies[-1] == {"model": "nomic-embed-text", "input": ["alpha", "beta"]}


def test_embeddings_create_float_and_cache(embed_client: openai.OpenAI, embed_upstream: EmbedUpstream):
    before = len(embed_upstream.bodies)
    r = embed_client.embeddings.create(model="nomic-embed-text", input="gamma", encoding_format="float", dimensions=4)
    assert r.data[0].embedding == VECTORS[0]
    assert embed_upstream.bodies[-1] == {"model": "nomic-embed-text", "input": ["gamma"], "dimensions": 4}
    # gamma is cached now; only delta goes upstream, the answer keeps the request's order.
    r = embed_client.embeddings.create(model="nomic-embed-text", input=["delta", "gamma"], dimensions=4)
    assert [d.embedding for d in r.data] == [VECTORS[0], VECTORS[0]]
    assert embed_upstream.bodies[-1]["input"] == ["delta"]
    assert len(embed_upstream.bodies) == before + 2


def test_embeddings_unknown_model_is_404(embed_client: openai.OpenAI):
    with pytest.raises(openai.NotFoundError) as e:
        embed_client.embeddings.create(model="text-embedding-3-large", input="x")
    assert e.value.body["code"] == "model_not_found"
    assert "text-embedding-3-large" in e.value.body["message"]
