"""The mock upstream itself, read by each provider's official SDK: what the
gateway tests rely on is what real clients of those services accept."""

from __future__ import annotations

import anthropic
import ollama
import openai
from mock_upstream import (
    ANTHROPIC_INPUT_TOKENS,
    ANTHROPIC_OUTPUT_TOKENS,
    OLLAMA_EVAL_COUNT,
    OLLAMA_PROMPT_EVAL_COUNT,
    OPENAI_USAGE,
    STRUCTURED,
    TEXT,
    MockUpstream,
    openai_error,
)
from pydantic import BaseModel

USER = [{"role": "user", "content": "Say hello."}]


class City(BaseModel):
    name: str
    country: str
    population: int


def _mock_with(mock: MockUpstream, name: str, kind: str, models: list[str]) -> str:
    return mock.add(name, kind, models)


def test_openai_sdk_reads_the_openai_mock(mock):
    base = _mock_with(mock, "sdk-openai", "openai", ["gpt-4o-mini"]) + "/v1"
    c = openai.OpenAI(base_url=base, api_key="sk-test", max_retries=0)
    r = c.chat.completions.create(model="gpt-4o-mini", messages=USER, logprobs=True, top_logprobs=2)
    assert r.choices[0].message.content == TEXT
    assert r.usage.prompt_tokens == OPENAI_USAGE["prompt_tokens"]
    assert [t.token for t in r.choices[0].logprobs.content] == ["Hello", "!"]
    text, usage = "", None
    for chunk in c.chat.completions.create(
        model="gpt-4o-mini", messages=USER, stream=True, stream_options={"include_usage": True}
    ):
        usage = chunk.usage or usage
        text += "".join(ch.delta.content or "" for ch in chunk.choices)
    assert text == TEXT
    assert usage.total_tokens == OPENAI_USAGE["total_tokens"]
    parsed = c.chat.completions.parse(model="gpt-4o-mini", messages=USER, response_format=City)
    assert parsed.choices[0].message.parsed == City(**STRUCTURED)
    assert [m.id for m in c.models.list()] == ["gpt-4o-mini"]


def test_openai_sdk_reads_a_scripted_openai_error(mock):
    base = _mock_with(mock, "sdk-openai-err", "openai", ["gpt-4o-mini"]) + "/v1"
    mock.script("sdk-openai-err", openai_error(400, "too long", "invalid_request_error", "context_length_exceeded"))
    c = openai.OpenAI(base_url=base, api_key="sk-test", max_retries=0)
    try:
        c.chat.completions.create(model="gpt-4o-mini", messages=USER)
    except openai.BadRequestError as e:
        assert e.code == "context_length_exceeded"
        assert "too long" in e.message
    else:
        raise AssertionError("no error raised")


def test_anthropic_sdk_reads_the_anthropic_mock(mock):
    base = _mock_with(mock, "sdk-anthropic", "anthropic", ["claude-sonnet-4-5-20250929"])
    c = anthropic.Anthropic(base_url=base, api_key="sk-ant-test", max_retries=0)
    m = c.messages.create(model="claude-sonnet-4-5-20250929", max_tokens=64, messages=USER)
    assert m.content[0].text == TEXT
    assert m.usage.input_tokens == ANTHROPIC_INPUT_TOKENS
    assert m.usage.output_tokens == ANTHROPIC_OUTPUT_TOKENS
    with c.messages.stream(model="claude-sonnet-4-5-20250929", max_tokens=64, messages=USER) as s:
        final = s.get_final_message()
    assert final.content[0].text == TEXT
    assert final.usage.output_tokens == ANTHROPIC_OUTPUT_TOKENS
    tool = {"name": "city", "input_schema": City.model_json_schema()}
    with c.messages.stream(
        model="claude-sonnet-4-5-20250929",
        max_tokens=64,
        messages=USER,
        tools=[tool],
        tool_choice={"type": "tool", "name": "city"},
    ) as s:
        final = s.get_final_message()
    assert final.stop_reason == "tool_use"
    assert final.content[0].input == STRUCTURED
    headers = mock.last("sdk-anthropic").headers
    # The SDK's own choice of auth header and API version; the mock accepts either.
    assert "sk-ant-test" in (headers.get("x-api-key", ""), headers.get("authorization", "").removeprefix("Bearer "))
    assert headers.get("anthropic-version")


def test_ollama_sdk_reads_the_ollama_mock(mock):
    base = _mock_with(mock, "sdk-ollama", "ollama", ["llama3.2"])
    c = ollama.Client(host=base)
    r = c.chat(model="llama3.2", messages=USER)
    assert r.message.content == TEXT
    assert r.prompt_eval_count == OLLAMA_PROMPT_EVAL_COUNT
    assert r.eval_count == OLLAMA_EVAL_COUNT
    parts = list(c.chat(model="llama3.2", messages=USER, stream=True))
    assert "".join(p.message.content for p in parts) == TEXT
    assert parts[-1].done and parts[-1].done_reason == "stop"
    r = c.chat(model="llama3.2", messages=USER, format=City.model_json_schema())
    assert City.model_validate_json(r.message.content) == City(**STRUCTURED)
    assert [m.model for m in c.list().models] == ["llama3.2:latest"]
