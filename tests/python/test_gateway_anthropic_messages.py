"""`llm serve` as the official Anthropic Python SDK sees it (`/v1/messages`,
`count_tokens`, `models.list`), served by upstreams of every kind, checked
against what the upstream (the mock) received."""

from __future__ import annotations

import json

import anthropic
import pytest
from conftest import GATEWAY_KEY, OPENAI_KEY, ANTHROPIC_KEY
from mock_upstream import (
    ANTHROPIC_INPUT_TOKENS,
    ANTHROPIC_OUTPUT_TOKENS,
    OLLAMA_EVAL_COUNT,
    OLLAMA_PROMPT_EVAL_COUNT,
    OPENAI_USAGE,
    STRUCTURED,
    TEXT,
    TEXT_PARTS,
    MockUpstream,
    Reply,
    anthropic_error,
    ollama_error,
    openai_error,
)

OPENAI = "openai/gpt-4o-mini"
CLAUDE = "claude/claude-sonnet-4-5-20250929"
LOCAL = "local/llama3.2"
USER = [{"role": "user", "content": "Say hello."}]

#: (model, upstream instance, input tokens, output tokens) per provider kind.
KINDS = [
    pytest.param(OPENAI, "openai", OPENAI_USAGE["prompt_tokens"], OPENAI_USAGE["completion_tokens"], id="openai"),
    pytest.param(CLAUDE, "claude", ANTHROPIC_INPUT_TOKENS, ANTHROPIC_OUTPUT_TOKENS, id="anthropic"),
    pytest.param(LOCAL, "local", OLLAMA_PROMPT_EVAL_COUNT, OLLAMA_EVAL_COUNT, id="ollama"),
]

CITY_TOOL = {
    "name": "get_city",
    "description": "Facts about a city",
    "input_schema": {
        "type": "object",
        "properties": {"name": {"type": "string"}, "country": {"type": "string"}, "population": {"type": "integer"}},
        "required": ["name"],
    },
}


@pytest.fixture()
def claude(gateway):
    """The SDK pointed at the gateway: `base_url` is the gateway's root."""
    c = anthropic.Anthropic(base_url=gateway.url, api_key=GATEWAY_KEY, max_retries=0, timeout=60)
    yield c
    c.close()


def upstream_system_and_user(instance: str, body: dict) -> tuple[str, str]:
    """The system prompt and the user text as the upstream of `instance` got them."""
    if instance == "claude":
        system = body["system"]
        if isinstance(system, list):
            system = "".join(b["text"] for b in system)
        content = body["messages"][0]["content"]
        if isinstance(content, list):
            content = "".join(b.get("text", "") for b in content)
        return system, content
    assert body["messages"][0]["role"] == "system"
    return body["messages"][0]["content"], body["messages"][1]["content"]


def upstream_max_tokens(instance: str, body: dict) -> int:
    if instance == "local":
        return body["options"]["num_predict"]
    if instance == "openai":
        return body.get("max_completion_tokens", body.get("max_tokens"))
    return body["max_tokens"]


@pytest.mark.parametrize("model,instance,input_tokens,output_tokens", KINDS)
def test_messages_create(claude, mock: MockUpstream, model, instance, input_tokens, output_tokens) -> None:
    msg = claude.messages.create(
        model=model,
        max_tokens=64,
        system="You are a terse assistant.",
        messages=USER,
        # Sampling options are API fields this SDK version no longer types.
        extra_body={"temperature": 0.2},
        stop_sequences=["END"],
        metadata={"user_id": "user-42"},
    )
    assert msg.type == "message" and msg.role == "assistant"
    assert msg.id.startswith("msg_")
    assert [b.type for b in msg.content] == ["text"]
    assert msg.content[0].text == TEXT
    assert msg.stop_reason == "end_turn"
    assert msg.stop_sequence is None
    assert msg.usage.input_tokens == input_tokens
    assert msg.usage.output_tokens == output_tokens

    body = mock.last(instance).body
    assert upstream_system_and_user(instance, body) == ("You are a terse assistant.", "Say hello.")
    assert upstream_max_tokens(instance, body) == 64
    if instance == "local":
        assert body["options"]["temperature"] == pytest.approx(0.2)
        assert body["options"]["stop"] == ["END"]
    else:
        assert body["temperature"] == pytest.approx(0.2)
        assert body["stop" if instance == "openai" else "stop_sequences"] == ["END"]
    if instance == "openai":
        assert body["user"] == "user-42"
        assert "top_p" not in body
    if instance == "claude":
        assert body["metadata"] == {"user_id": "user-42"}
    # The gateway's key stays with the gateway.
    headers = mock.last(instance).headers
    assert GATEWAY_KEY not in json.dumps(headers)


@pytest.mark.parametrize("model,instance,input_tokens,output_tokens", KINDS)
def test_messages_stream(claude, mock: MockUpstream, model, instance, input_tokens, output_tokens) -> None:
    with claude.messages.stream(model=model, max_tokens=64, messages=USER) as stream:
        pieces = list(stream.text_stream)
        final = stream.get_final_message()
    assert "".join(pieces) == TEXT
    assert pieces == TEXT_PARTS
    assert final.content[0].text == TEXT
    assert final.stop_reason == "end_turn"
    assert final.usage.output_tokens == output_tokens
    assert final.usage.input_tokens == input_tokens
    assert mock.last(instance).body["stream"] is True


def test_raw_stream_events_are_in_anthropics_order(claude, mock: MockUpstream) -> None:
    events = claude.messages.create(model=CLAUDE, max_tokens=64, messages=USER, stream=True)
    kinds = [e.type for e in events]
    assert kinds == [
        "message_start",
        "content_block_start",
        "content_block_delta",
        "content_block_delta",
        "content_block_stop",
        "message_delta",
        "message_stop",
    ]


def openai_tool_call_reply(name: str, arguments: dict) -> Reply:
    """An OpenAI chat completion that calls one tool (the API's shape)."""
    obj = {
        "id": "chatcmpl-C9xQ4hV2bQn6Xc8pRs1Tf3Jk5Lw7Ne",
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
                        {
                            "id": "call_abc123",
                            "type": "function",
                            "function": {"name": name, "arguments": json.dumps(arguments)},
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
    }
    return Reply.json(200, obj, indent=2)


def test_tool_round_trip_through_an_openai_upstream(claude, mock: MockUpstream) -> None:
    mock.script("openai", openai_tool_call_reply("get_city", {"name": "Paris"}))
    question = {"role": "user", "content": "Tell me about Paris."}
    msg = claude.messages.create(
        model=OPENAI,
        max_tokens=100,
        tools=[CITY_TOOL],
        tool_choice={"type": "any", "disable_parallel_tool_use": True},
        messages=[question],
    )
    assert msg.stop_reason == "tool_use"
    [call] = [b for b in msg.content if b.type == "tool_use"]
    assert call.name == "get_city"
    assert call.input == {"name": "Paris"}
    assert call.id == "call_abc123"
    body = mock.last("openai").body
    assert body["tool_choice"] == "required"
    assert body["parallel_tool_calls"] is False
    assert body["tools"] == [
        {
            "type": "function",
            "function": {"name": "get_city", "description": "Facts about a city", "parameters": CITY_TOOL["input_schema"]},
        }
    ]

    result = {"type": "tool_result", "tool_use_id": call.id, "content": json.dumps(STRUCTURED)}
    final = claude.messages.create(
        model=OPENAI,
        max_tokens=100,
        tools=[CITY_TOOL],
        messages=[question, {"role": "assistant", "content": msg.content}, {"role": "user", "content": [result]}],
    )
    assert final.content[0].text == TEXT
    assert final.stop_reason == "end_turn"
    sent = mock.last("openai").body["messages"]
    assert sent[1]["role"] == "assistant"
    assert sent[1]["tool_calls"][0]["id"] == "call_abc123"
    assert json.loads(sent[1]["tool_calls"][0]["function"]["arguments"]) == {"name": "Paris"}
    assert sent[2] == {"role": "tool", "tool_call_id": "call_abc123", "content": json.dumps(STRUCTURED)}


def test_forced_tool_through_an_anthropic_upstream_json_and_stream(claude, mock: MockUpstream) -> None:
    msg = claude.messages.create(
        model=CLAUDE,
        max_tokens=100,
        tools=[CITY_TOOL],
        tool_choice={"type": "tool", "name": "get_city"},
        messages=[{"role": "user", "content": "Tell me about Paris."}],
    )
    assert msg.stop_reason == "tool_use"
    assert msg.content[0].type == "tool_use"
    assert msg.content[0].input == STRUCTURED
    body = mock.last("claude").body
    assert body["tool_choice"]["type"] == "tool" and body["tool_choice"]["name"] == "get_city"
    assert body["tools"][0]["name"] == "get_city"
    assert body["tools"][0]["input_schema"] == CITY_TOOL["input_schema"]

    with claude.messages.stream(
        model=CLAUDE,
        max_tokens=100,
        tools=[CITY_TOOL],
        tool_choice={"type": "tool", "name": "get_city"},
        messages=[{"role": "user", "content": "Tell me about Paris."}],
    ) as stream:
        final = stream.get_final_message()
    assert final.stop_reason == "tool_use"
    assert final.content[0].type == "tool_use"
    assert final.content[0].name == "get_city"
    assert final.content[0].input == STRUCTURED


def test_count_tokens(claude, mock: MockUpstream) -> None:
    counted = claude.messages.count_tokens(model=OPENAI, system="You are a terse assistant.", messages=USER)
    assert counted.input_tokens > 0
    longer = claude.messages.count_tokens(
        model=OPENAI, system="You are a terse assistant.", messages=USER + [{"role": "assistant", "content": "Hello there, friend!"}]
    )
    assert longer.input_tokens > counted.input_tokens
    assert mock.generations() == [], "counting asks no upstream"


def test_models_list(claude) -> None:
    models = list(claude.models.list())
    ids = [m.id for m in models]
    for expected in (OPENAI, "openai/gpt-4o", CLAUDE, LOCAL):
        assert expected in ids
    assert all(m.type == "model" and m.lifecycle == "active" for m in models)
    assert models[0].display_name == models[0].id
    assert models[0].created_at.year >= 2024


def test_errors_in_anthropics_shape(gateway, claude, mock: MockUpstream) -> None:
    bad = anthropic.Anthropic(base_url=gateway.url, api_key="wrong-key", max_retries=0)
    with pytest.raises(anthropic.AuthenticationError) as e:
        bad.messages.create(model=OPENAI, max_tokens=10, messages=USER)
    assert e.value.status_code == 401
    assert e.value.body["error"]["type"] == "authentication_error"

    with pytest.raises(anthropic.BadRequestError) as e:
        claude.messages.create(model=OPENAI, max_tokens=10, messages=USER, extra_body={"top_k": 5})
    assert e.value.body["type"] == "error"
    assert e.value.body["error"]["type"] == "invalid_request_error"
    assert e.value.body["error"]["message"].startswith("top_k:")

    with pytest.raises(anthropic.BadRequestError) as e:
        claude.messages.create(
            model=CLAUDE, max_tokens=1024, messages=USER, thinking={"type": "enabled", "budget_tokens": 2048}
        )
    assert e.value.body["error"]["message"].startswith("thinking.enabled.budget_tokens:")

    with pytest.raises(anthropic.NotFoundError) as e:
        claude.messages.create(model="nope/nothing", max_tokens=10, messages=USER)
    assert e.value.body["error"]["type"] == "not_found_error"
    assert mock.generations() == [], "refused requests reach no upstream"


def test_every_provider_overloaded_is_529(claude, mock: MockUpstream) -> None:
    def overloaded(kind: str) -> Reply:
        if kind == "anthropic":
            return anthropic_error(529, "Overloaded", "overloaded_error")
        if kind == "openai":
            return openai_error(503, "The engine is currently overloaded, please try again later", "server_error", None)
        return ollama_error(503, "server busy, please try again.  maximum pending requests exceeded")

    mock.script_all(overloaded)
    with pytest.raises(anthropic.OverloadedError) as e:
        claude.messages.create(model=CLAUDE, max_tokens=10, messages=USER)
    assert e.value.status_code == 529
    assert e.value.body["error"]["type"] == "overloaded_error"
    text = json.dumps(e.value.body)
    assert ANTHROPIC_KEY not in text and OPENAI_KEY not in text


def test_mid_stream_failure_is_an_error_event(claude, mock: MockUpstream) -> None:
    def cut(_req) -> Reply:
        start = {
            "type": "message_start",
            "message": {
                "id": "msg_01XFDUDYJgAACzvnptvVoYEM",
                "type": "message",
                "role": "assistant",
                "model": "claude-sonnet-4-5-20250929",
                "content": [],
                "stop_reason": None,
                "stop_sequence": None,
                "usage": {"input_tokens": 16, "output_tokens": 1},
            },
        }
        events = [
            ("message_start", json.dumps(start, separators=(",", ":"))),
            ("content_block_start", '{"type":"content_block_start","index":0,"content_block":{"type":"text","text":""}}'),
            ("content_block_delta", '{"type":"content_block_delta","index":0,"delta":{"type":"text_delta","text":"Hello"}}'),
            ("error", '{"type":"error","error":{"details":null,"type":"overloaded_error","message":"Overloaded"}}'),
        ]
        chunks = [f"event: {n}\ndata: {d}\n\n".encode() for n, d in events]
        return Reply(200, {"content-type": "text/event-stream; charset=utf-8"}, chunks=chunks)

    mock.script("claude", cut)
    got = []
    with pytest.raises(anthropic.APIStatusError) as e:
        with claude.messages.stream(model=CLAUDE, max_tokens=64, messages=USER) as stream:
            for text in stream.text_stream:
                got.append(text)
    assert got == ["Hello"]
    assert e.value.body["type"] == "error"
    assert e.value.body["error"]["type"] == "overloaded_error"


def test_bearer_keys_work_too(gateway) -> None:
    c = anthropic.Anthropic(base_url=gateway.url, auth_token=GATEWAY_KEY, api_key=None, max_retries=0)
    msg = c.messages.create(model=LOCAL, max_tokens=10, messages=USER)
    assert msg.content[0].text == TEXT
