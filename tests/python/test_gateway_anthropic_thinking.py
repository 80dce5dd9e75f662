"""Extended thinking through `llm serve` as the official Anthropic Python SDK
uses it: `messages.create(thinking=...)` and `messages.stream` reading thinking
deltas, passed through to an Anthropic upstream (checked against the body the
upstream received) and refused naming `thinking` when the model's provider has
none. The upstream answers with the examples of Anthropic's documentation
(crates/llm-anthropic/tests/fixtures; sources in its README)."""

from __future__ import annotations

from pathlib import Path

import anthropic
import pytest
from conftest import GATEWAY_KEY
from mock_upstream import MockUpstream, Reply

FIXTURES = Path(__file__).resolve().parents[2] / "crates" / "llm-anthropic" / "tests" / "fixtures"
#: "Streaming request with thinking" (docs/build-with-claude/streaming).
THINKING_STREAM = (FIXTURES / "thinking_stream.sse").read_bytes()
#: Normal and redacted thinking blocks (docs/build-with-claude/extended-thinking).
REDACTED_RESPONSE = (FIXTURES / "redacted_thinking_response.json").read_bytes()

DOC_SIGNATURE = "WaUjzkypQ2mUEVM36O2TxuC06KN8xyfbJwyem2dw3URve/op91XWHOEBLLqIOMfFG/UvLEczmEsUjavL...."
STREAM_SIGNATURE = "EqQBCgIYAhIM1gbcDa9GJwZA2b3hGgxBdjrkzLoky3dl1pkiMOYds..."
REDACTED_DATA = (
    "EmwKAhgBEgy3va3pzix/LafPsn4aDFIT2Xlxh0L5L8rLVyIwxtE3rAFBa8cr3qpPkNRj2YfWXGmKDxH4mPnZ5sQ7vB9URj2pLmN3kF8/"
    "dW5hR7xJ0aP1oLs9yTcMnKVf2wRpEGjH9XZaBt4UvDcPrQ..."
)

OPENAI = "openai/gpt-4o-mini"
CLAUDE = "claude/claude-sonnet-4-5-20250929"
THINKING = {"type": "enabled", "budget_tokens": 2048}
WEATHER = {
    "name": "get_weather",
    "description": "Current weather in a city",
    "input_schema": {"type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]},
}


@pytest.fixture()
def claude(gateway):
    c = anthropic.Anthropic(base_url=gateway.url, api_key=GATEWAY_KEY, max_retries=0, timeout=60)
    yield c
    c.close()


@pytest.fixture()
def openai_only(openai_only_gateway):
    """The SDK pointed at a gateway whose only provider (OpenAI kind) has no thinking."""
    c = anthropic.Anthropic(base_url=openai_only_gateway.url, api_key=GATEWAY_KEY, max_retries=0, timeout=60)
    yield c
    c.close()


def json_reply(body: bytes) -> Reply:
    return Reply(200, {"content-type": "application/json"}, body)


def sse_reply(body: bytes) -> Reply:
    chunks = [c.encode() for c in body.decode().split("\n\n") if c]
    return Reply(200, {"content-type": "text/event-stream; charset=utf-8"}, chunks=[c + b"\n\n" for c in chunks])


def test_messages_create_passes_thinking_through_both_ways(claude, mock: MockUpstream) -> None:
    mock.script("claude", json_reply(REDACTED_RESPONSE), json_reply(REDACTED_RESPONSE))
    question = [{"role": "user", "content": "Weather in Paris?"}]
    first = claude.messages.create(
        model=CLAUDE, max_tokens=4096, thinking=THINKING, tools=[WEATHER], messages=question
    )
    assert [b.type for b in first.content] == ["thinking", "redacted_thinking", "text"]
    assert first.content[0].thinking == "Let me analyze this step by step..."
    assert first.content[0].signature == DOC_SIGNATURE
    assert first.content[1].data == REDACTED_DATA
    assert first.content[2].text == "Based on my analysis..."
    sent = mock.last("claude").body
    assert sent["thinking"] == THINKING
    assert sent["max_tokens"] == 4096
    assert "temperature" not in sent

    # The SDK's own blocks sent back as the assistant turn, with a tool
    # result: the upstream receives them unchanged, thinking first.
    tool_use = {"type": "tool_use", "id": "toolu_01", "name": "get_weather", "input": {"city": "Paris"}}
    history = question + [
        {"role": "assistant", "content": [*first.content[:2], tool_use]},
        {"role": "user", "content": [{"type": "tool_result", "tool_use_id": "toolu_01", "content": "18°C"}]},
    ]
    claude.messages.create(model=CLAUDE, max_tokens=4096, thinking=THINKING, tools=[WEATHER], messages=history)
    sent = mock.last("claude").body
    assert sent["messages"][1] == {
        "role": "assistant",
        "content": [
            {"type": "thinking", "thinking": "Let me analyze this step by step...", "signature": DOC_SIGNATURE},
            {"type": "redacted_thinking", "data": REDACTED_DATA},
            tool_use,
        ],
    }
    assert sent["messages"][2]["content"][0]["type"] == "tool_result"


def test_messages_stream_reads_thinking_deltas(claude, mock: MockUpstream) -> None:
    mock.script("claude", sse_reply(THINKING_STREAM))
    thinking, signatures, text = [], [], []
    with claude.messages.stream(
        model=CLAUDE,
        max_tokens=16000,
        thinking={"type": "enabled", "budget_tokens": 10000},
        messages=[{"role": "user", "content": "What is 27 * 453?"}],
    ) as stream:
        for event in stream:
            if event.type == "thinking":
                thinking.append(event.thinking)
            elif event.type == "signature":
                signatures.append(event.signature)
            elif event.type == "text":
                text.append(event.text)
        final = stream.get_final_message()
    assert thinking == [
        "Let me solve this step by step:\n\n1. First break down 27 * 453",
        "\n2. 453 = 400 + 50 + 3",
        "\n3. 27 * 400 = 10,800",
        "\n4. 27 * 50 = 1,350",
        "\n5. 27 * 3 = 81",
        "\n6. 10,800 + 1,350 + 81 = 12,231",
    ]
    assert signatures == [STREAM_SIGNATURE]
    assert "".join(text) == "27 * 453 = 12,231"
    assert [b.type for b in final.content] == ["thinking", "text"]
    assert final.content[0].thinking == "".join(thinking)
    assert final.content[0].signature == STREAM_SIGNATURE
    assert final.stop_reason == "end_turn"
    sent = mock.last("claude").body
    assert sent["stream"] is True
    assert sent["thinking"] == {"type": "enabled", "budget_tokens": 10000}


def test_thinking_without_a_provider_that_has_it_is_refused_naming_the_field(
    claude, openai_only, mock: MockUpstream
) -> None:
    for thinking in (THINKING, {"type": "adaptive"}):
        with pytest.raises(anthropic.BadRequestError) as e:
            openai_only.messages.create(
                model=OPENAI, max_tokens=4096, thinking=thinking, messages=[{"role": "user", "content": "hi"}]
            )
        assert e.value.status_code == 400
        assert e.value.body["error"]["type"] == "invalid_request_error"
        assert e.value.body["error"]["message"].startswith("thinking:")
    with pytest.raises(anthropic.BadRequestError) as e:
        with openai_only.messages.stream(
            model=OPENAI, max_tokens=4096, thinking=THINKING, messages=[{"role": "user", "content": "hi"}]
        ) as stream:
            stream.get_final_message()
    assert e.value.body["error"]["message"].startswith("thinking:")
    # A budget the API refuses is refused the same way, before any upstream.
    with pytest.raises(anthropic.BadRequestError) as e:
        claude.messages.create(
            model=CLAUDE,
            max_tokens=1000,
            thinking={"type": "enabled", "budget_tokens": 2048},
            messages=[{"role": "user", "content": "hi"}],
        )
    assert e.value.body["error"]["message"].startswith("thinking.enabled.budget_tokens:")
    assert mock.generations() == [], "refused requests reach no upstream"

    # With a provider that has thinking configured, a model of one without it
    # is served by the one with it (as for every capability).
    mock.script("claude", json_reply(REDACTED_RESPONSE))
    served = claude.messages.create(
        model=OPENAI, max_tokens=4096, thinking=THINKING, messages=[{"role": "user", "content": "hi"}]
    )
    assert served.content[0].type == "thinking"
    assert [r.instance for r in mock.generations()] == ["claude"]
