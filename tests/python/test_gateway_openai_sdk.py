"""`llm serve` as the official OpenAI Python SDK sees it, checked against what
the upstream (the mock) received."""

from __future__ import annotations

import json

import openai
import pytest
from conftest import ANTHROPIC_KEY, GATEWAY_KEY, OPENAI_KEY
from mock_upstream import (
    ANTHROPIC_INPUT_TOKENS,
    ANTHROPIC_OUTPUT_TOKENS,
    OLLAMA_EVAL_COUNT,
    OLLAMA_PROMPT_EVAL_COUNT,
    OPENAI_USAGE,
    STRUCTURED,
    TEXT,
    MockUpstream,
    anthropic_error,
    ollama_error,
    openai_error,
)
from pydantic import BaseModel

OPENAI = "openai/gpt-4o-mini"
CLAUDE = "claude/claude-sonnet-4-5-20250929"
LOCAL = "local/llama3.2"
USER = [{"role": "user", "content": "Say hello."}]

# A 1x1 PNG.
PNG_B64 = "iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mNkYPhfDwAChwGA60e6kgAAAABJRU5ErkJggg=="
PNG_URL = f"data:image/png;base64,{PNG_B64}"


class City(BaseModel):
    name: str
    country: str
    population: int


def text_of(content) -> str:
    """The text of an OpenAI message content (a string or text parts)."""
    if isinstance(content, str):
        return content
    return "".join(p.get("text", "") for p in content if p.get("type") == "text")


def stream_text(stream) -> tuple[str, object, list]:
    text, usage, finishes = "", None, []
    for chunk in stream:
        if chunk.usage is not None:
            usage = chunk.usage
        for c in chunk.choices:
            if c.delta.content:
                text += c.delta.content
            if c.finish_reason:
                finishes.append(c.finish_reason)
    return text, usage, finishes


# --------------------------------------------------------------------------- minimal requests


SAMPLING_FIELDS = {
    "temperature", "top_p", "max_tokens", "max_completion_tokens", "frequency_penalty",
    "presence_penalty", "seed", "stop", "logit_bias", "n",
}


def test_minimal_request_sends_no_sampling_fields(openai_only_gateway, mock: MockUpstream):
    c = openai.OpenAI(base_url=openai_only_gateway.base_url, api_key=GATEWAY_KEY, max_retries=0)
    c.chat.completions.create(model="auto", messages=USER)
    body = mock.last("openai").body
    assert not SAMPLING_FIELDS & set(body), f"upstream body: {body}"


def test_minimal_request_sends_only_model_and_messages(openai_only_gateway, mock: MockUpstream):
    c = openai.OpenAI(base_url=openai_only_gateway.base_url, api_key=GATEWAY_KEY, max_retries=0)
    r = c.chat.completions.create(model="auto", messages=USER)
    assert r.choices[0].message.content == TEXT
    body = mock.last("openai").body
    assert set(body) == {"model", "messages"}, f"upstream body: {body}"
    assert body["model"] == "gpt-4o-mini"
    assert len(body["messages"]) == 1
    assert body["messages"][0]["role"] == "user"
    assert text_of(body["messages"][0]["content"]) == "Say hello."


def test_minimal_streamed_request_adds_only_stream_fields(openai_only_gateway, mock: MockUpstream):
    c = openai.OpenAI(base_url=openai_only_gateway.base_url, api_key=GATEWAY_KEY, max_retries=0)
    text, _, finishes = stream_text(c.chat.completions.create(model="auto", messages=USER, stream=True))
    assert text == TEXT
    assert finishes == ["stop"]
    body = mock.last("openai").body
    assert set(body) - {"stream_options"} == {"model", "messages", "stream"}, f"upstream body: {body}"
    assert body["stream"] is True


def test_minimal_request_to_anthropic_sends_no_temperature(client, mock: MockUpstream):
    client.chat.completions.create(model=CLAUDE, messages=USER)
    body = mock.last("claude").body
    # max_tokens is required by the Messages API; nothing else was asked for.
    assert set(body) == {"model", "messages", "max_tokens"}, f"upstream body: {body}"
    assert mock.last("claude").headers.get("x-api-key") == ANTHROPIC_KEY


def test_minimal_request_to_ollama_sends_no_sampling_options(client, mock: MockUpstream):
    client.chat.completions.create(model=LOCAL, messages=USER)
    body = mock.last("local").body
    options = body.get("options") or {}
    assert not {"temperature", "num_predict", "top_p", "seed"} & set(options), f"upstream body: {body}"
    assert set(body) - {"options", "stream"} == {"model", "messages"}, f"upstream body: {body}"


def test_upstream_gets_the_configured_key_not_the_gateway_key(client, mock: MockUpstream):
    client.chat.completions.create(model=OPENAI, messages=USER)
    assert mock.last("openai").headers.get("authorization") == f"Bearer {OPENAI_KEY}"


# --------------------------------------------------------------------------- answers and streams


@pytest.mark.parametrize(
    "model,prompt_tokens,completion_tokens",
    [
        (OPENAI, OPENAI_USAGE["prompt_tokens"], OPENAI_USAGE["completion_tokens"]),
        (CLAUDE, ANTHROPIC_INPUT_TOKENS, ANTHROPIC_OUTPUT_TOKENS),
        (LOCAL, OLLAMA_PROMPT_EVAL_COUNT, OLLAMA_EVAL_COUNT),
    ],
    ids=["openai", "anthropic", "ollama"],
)
def test_json_answer_text_and_usage(client, mock, model, prompt_tokens, completion_tokens):
    r = client.chat.completions.create(model=model, messages=USER)
    assert r.object == "chat.completion"
    assert r.choices[0].message.role == "assistant"
    assert r.choices[0].message.content == TEXT
    assert r.choices[0].finish_reason == "stop"
    assert r.usage.prompt_tokens == prompt_tokens
    assert r.usage.completion_tokens == completion_tokens
    assert r.usage.total_tokens == prompt_tokens + completion_tokens


@pytest.mark.parametrize(
    "model,prompt_tokens,completion_tokens",
    [
        (OPENAI, OPENAI_USAGE["prompt_tokens"], OPENAI_USAGE["completion_tokens"]),
        (CLAUDE, ANTHROPIC_INPUT_TOKENS, ANTHROPIC_OUTPUT_TOKENS),
        (LOCAL, OLLAMA_PROMPT_EVAL_COUNT, OLLAMA_EVAL_COUNT),
    ],
    ids=["openai", "anthropic", "ollama"],
)
def test_streamed_answer_text_and_usage(client, mock, model, prompt_tokens, completion_tokens):
    stream = client.chat.completions.create(
        model=model, messages=USER, stream=True, stream_options={"include_usage": True}
    )
    text, usage, finishes = stream_text(stream)
    assert text == TEXT
    assert finishes == ["stop"]
    assert usage is not None, "no usage chunk although include_usage was asked for"
    assert usage.prompt_tokens == prompt_tokens
    assert usage.completion_tokens == completion_tokens
    assert usage.total_tokens == prompt_tokens + completion_tokens


def test_stream_without_include_usage_has_no_usage(client, mock):
    stream = client.chat.completions.create(model=OPENAI, messages=USER, stream=True)
    text, usage, _ = stream_text(stream)
    assert text == TEXT
    assert usage is None


# --------------------------------------------------------------------------- structured output


def test_parse_with_openai_kind_sends_the_json_schema(client, mock):
    r = client.chat.completions.parse(model=OPENAI, messages=USER, response_format=City)
    assert r.choices[0].message.parsed == City(**STRUCTURED)
    rf = mock.last("openai").body.get("response_format")
    assert rf is not None, f"response_format did not reach the upstream: {mock.last('openai').body}"
    assert rf["type"] == "json_schema"
    assert rf["json_schema"]["name"] == "City"
    assert rf["json_schema"]["strict"] is True
    schema = rf["json_schema"]["schema"]
    assert set(schema["properties"]) == {"name", "country", "population"}
    assert schema["properties"]["population"]["type"] == "integer"
    assert schema.get("additionalProperties") is False


def test_parse_with_openai_kind_streamed(client, mock):
    with client.chat.completions.stream(model=OPENAI, messages=USER, response_format=City) as stream:
        final = stream.get_final_completion()
    assert final.choices[0].message.parsed == City(**STRUCTURED)
    assert mock.last("openai").body.get("response_format", {}).get("type") == "json_schema"


def test_parse_with_anthropic_kind_uses_a_forced_tool(client, mock):
    r = client.chat.completions.parse(model=CLAUDE, messages=USER, response_format=City)
    assert r.choices[0].message.parsed == City(**STRUCTURED)
    body = mock.last("claude").body
    tools = body.get("tools") or []
    assert len(tools) == 1, f"expected one forced tool carrying the schema: {body}"
    schema = tools[0]["input_schema"]
    assert schema["type"] == "object"
    assert set(schema["properties"]) == {"name", "country", "population"}
    assert body.get("tool_choice", {}).get("type") == "tool"
    assert body["tool_choice"]["name"] == tools[0]["name"]
    # The caller asked for no tools: the answer is content, not a tool call.
    assert not r.choices[0].message.tool_calls
    assert r.choices[0].finish_reason == "stop"


def test_parse_with_anthropic_kind_streamed(client, mock):
    with client.chat.completions.stream(model=CLAUDE, messages=USER, response_format=City) as stream:
        final = stream.get_final_completion()
    assert final.choices[0].message.parsed == City(**STRUCTURED)
    assert not final.choices[0].message.tool_calls
    assert mock.last("claude").body.get("tool_choice", {}).get("type") == "tool"


def test_parse_with_ollama_kind_sends_format_schema(client, mock):
    r = client.chat.completions.parse(model=LOCAL, messages=USER, response_format=City)
    assert r.choices[0].message.parsed == City(**STRUCTURED)
    fmt = mock.last("local").body.get("format")
    assert isinstance(fmt, dict), f"format should be the JSON schema: {mock.last('local').body}"
    assert set(fmt["properties"]) == {"name", "country", "population"}


def test_json_object_reaches_openai_upstream(client, mock):
    r = client.chat.completions.create(model=OPENAI, messages=USER, response_format={"type": "json_object"})
    assert json.loads(r.choices[0].message.content) == STRUCTURED
    assert mock.last("openai").body.get("response_format") == {"type": "json_object"}


def test_json_object_reaches_ollama_as_format_json(client, mock):
    r = client.chat.completions.create(model=LOCAL, messages=USER, response_format={"type": "json_object"})
    assert json.loads(r.choices[0].message.content) == STRUCTURED
    assert mock.last("local").body.get("format") == "json"


# --------------------------------------------------------------------------- logprobs


def test_logprobs_reach_upstream_and_come_back(client, mock):
    r = client.chat.completions.create(model=OPENAI, messages=USER, logprobs=True, top_logprobs=2)
    body = mock.last("openai").body
    assert body.get("logprobs") is True
    assert body.get("top_logprobs") == 2
    lp = r.choices[0].logprobs
    assert lp is not None and lp.content, "choices[0].logprobs did not come back"
    assert [t.token for t in lp.content] == ["Hello", "!"]
    assert lp.content[0].logprob == pytest.approx(-0.31725305)
    assert lp.content[0].bytes == list(b"Hello")
    assert [t.token for t in lp.content[0].top_logprobs] == ["Hello", "Hi"]


def test_logprobs_come_back_in_a_stream(client, mock):
    stream = client.chat.completions.create(model=OPENAI, messages=USER, logprobs=True, top_logprobs=2, stream=True)
    tokens, tops = [], []
    for chunk in stream:
        for c in chunk.choices:
            if c.logprobs and c.logprobs.content:
                for t in c.logprobs.content:
                    tokens.append(t.token)
                    tops.append([x.token for x in t.top_logprobs])
    assert tokens == ["Hello", "!"]
    assert tops[0] == ["Hello", "Hi"]
    body = mock.last("openai").body
    assert body.get("logprobs") is True and body.get("top_logprobs") == 2


# --------------------------------------------------------------------------- fields passed on


@pytest.mark.parametrize(
    "kwargs",
    [
        {"frequency_penalty": 0.5},
        {"presence_penalty": -0.25},
        {"user": "user-1234"},
        {"seed": 42},
        {"seed": -7},
        {"logit_bias": {"50256": -100, "15339": 5}},
        {"metadata": {"team": "search", "run": "7"}, "store": True},
        {"service_tier": "flex"},
        {"reasoning_effort": "low"},
    ],
    ids=lambda kw: "+".join(kw) + ("-negative" if kw.get("seed", 0) < 0 else ""),
)
def test_field_reaches_openai_upstream_verbatim(client, mock, kwargs):
    client.chat.completions.create(model=OPENAI, messages=USER, **kwargs)
    body = mock.last("openai").body
    for k, v in kwargs.items():
        assert k in body, f"{k} did not reach the upstream: {body}"
        assert body[k] == v, f"{k}: sent {v!r}, upstream got {body[k]!r}"


def test_temperature_and_max_tokens_when_set_reach_upstream(client, mock):
    client.chat.completions.create(model=OPENAI, messages=USER, temperature=0.3, max_tokens=17, top_p=0.9, stop=["END"])
    body = mock.last("openai").body
    assert body["temperature"] == pytest.approx(0.3)
    assert body.get("max_tokens", body.get("max_completion_tokens")) == 17
    assert body["top_p"] == pytest.approx(0.9)
    assert body["stop"] in (["END"], "END")


# --------------------------------------------------------------------------- images


IMAGE_MESSAGES = [
    {
        "role": "user",
        "content": [
            {"type": "text", "text": "What is in this image?"},
            {"type": "image_url", "image_url": {"url": PNG_URL, "detail": "low"}},
        ],
    }
]


def test_image_part_reaches_openai_upstream(client, mock):
    client.chat.completions.create(model=OPENAI, messages=IMAGE_MESSAGES)
    content = mock.last("openai").body["messages"][-1]["content"]
    assert isinstance(content, list), f"content: {content!r}"
    images = [p for p in content if p.get("type") == "image_url"]
    assert images == [{"type": "image_url", "image_url": {"url": PNG_URL, "detail": "low"}}]
    assert text_of(content) == "What is in this image?"


def test_image_part_reaches_anthropic_as_base64_image_block(client, mock):
    client.chat.completions.create(model=CLAUDE, messages=IMAGE_MESSAGES)
    content = mock.last("claude").body["messages"][-1]["content"]
    assert isinstance(content, list), f"content: {content!r}"
    images = [b for b in content if b.get("type") == "image"]
    assert images == [{"type": "image", "source": {"type": "base64", "media_type": "image/png", "data": PNG_B64}}]
    assert any(b.get("type") == "text" and b.get("text") == "What is in this image?" for b in content)


def test_image_part_reaches_ollama_as_images(client, mock):
    client.chat.completions.create(model=LOCAL, messages=IMAGE_MESSAGES)
    msg = mock.last("local").body["messages"][-1]
    assert msg.get("images") == [PNG_B64], f"message: {msg}"
    assert msg["content"] == "What is in this image?"


# --------------------------------------------------------------------------- refusals


@pytest.mark.parametrize(
    "field,kwargs",
    [
        ("n", {"n": 2}),
        ("modalities", {"modalities": ["text", "audio"]}),
        ("audio", {"audio": {"voice": "alloy", "format": "wav"}}),
        ("functions", {"functions": [{"name": "f", "parameters": {"type": "object", "properties": {}}}]}),
    ],
    ids=["n", "modalities", "audio", "functions"],
)
def test_unsupported_field_is_a_400_naming_it(client, mock, field, kwargs):
    with pytest.raises(openai.BadRequestError) as e:
        client.chat.completions.create(model=LOCAL, messages=USER, **kwargs)
    assert e.value.status_code == 400
    body = e.value.response.json()["error"]
    assert field in body["message"]
    assert body["param"] == field
    assert "  " not in body["message"], f"stray whitespace in the message: {body['message']!r}"
    assert not mock.generations(), "a refused request must not reach any upstream"


# --------------------------------------------------------------------------- upstream errors

CONTEXT_MESSAGE = (
    "This model's maximum context length is 128000 tokens. However, your messages resulted in "
    "131072 tokens. Please reduce the length of the messages."
)


def _context_error(kind: str):
    if kind == "openai":
        return openai_error(400, CONTEXT_MESSAGE, "invalid_request_error", "context_length_exceeded", "messages")
    if kind == "anthropic":
        return anthropic_error(400, CONTEXT_MESSAGE, "invalid_request_error")
    return ollama_error(400, CONTEXT_MESSAGE)


def test_upstream_400_surfaces_as_400_with_its_message(client, mock):
    mock.script_all(_context_error)
    with pytest.raises(openai.BadRequestError) as e:
        client.chat.completions.create(model=OPENAI, messages=USER)
    assert e.value.status_code == 400
    assert "maximum context length" in e.value.message
    # The SDK did not retry (a 400 is not retried; a 5xx would have been, max_retries aside).
    assert 1 <= len(mock.generations()) <= 3


def test_upstream_400_in_a_stream_request_surfaces_as_400(client, mock):
    mock.script_all(_context_error)
    with pytest.raises(openai.BadRequestError) as e:
        stream = client.chat.completions.create(model=OPENAI, messages=USER, stream=True)
        stream_text(stream)
    assert e.value.status_code == 400
    assert "maximum context length" in e.value.message


def test_upstream_404_model_not_found_surfaces_as_404(client, mock):
    def not_found(kind: str):
        msg = "The model `gpt-4o-mini` does not exist or you do not have access to it."
        if kind == "openai":
            return openai_error(404, msg, "invalid_request_error", "model_not_found")
        if kind == "anthropic":
            return anthropic_error(404, msg, "not_found_error")
        return ollama_error(404, msg)

    mock.script_all(not_found)
    with pytest.raises(openai.NotFoundError) as e:
        client.chat.completions.create(model=OPENAI, messages=USER)
    assert e.value.status_code == 404


MASKED_KEY_MESSAGE = (
    "Incorrect API key provided: sk-VKMIs***************************************wjh3. "
    "You can find your API key at https://platform.openai.com/account/api-keys."
)


def test_upstream_401_key_fragments_are_scrubbed(client, mock):
    def unauthorized(kind: str):
        if kind == "openai":
            return openai_error(401, MASKED_KEY_MESSAGE, "invalid_request_error", "invalid_api_key")
        if kind == "anthropic":
            return anthropic_error(401, f"invalid x-api-key {ANTHROPIC_KEY[:12]}...", "authentication_error")
        return ollama_error(401, f"unauthorized: Bearer {OPENAI_KEY}")

    mock.script_all(unauthorized)
    with pytest.raises(openai.APIStatusError) as e:
        client.chat.completions.create(model=OPENAI, messages=USER)
    raw = e.value.response.text
    assert "sk-" not in raw, f"key fragment in the gateway's error: {raw}"
    assert OPENAI_KEY not in raw and ANTHROPIC_KEY not in raw
    assert "Bearer sk" not in raw


def test_upstream_401_abbreviated_key_is_scrubbed(client, mock):
    msg = "Incorrect API key provided: sk-abc...wxyz. You can find your API key at https://platform.openai.com/account/api-keys."

    def unauthorized(kind: str):
        if kind == "openai":
            return openai_error(401, msg, "invalid_request_error", "invalid_api_key")
        if kind == "anthropic":
            return anthropic_error(401, msg, "authentication_error")
        return ollama_error(401, msg)

    mock.script_all(unauthorized)
    with pytest.raises(openai.APIStatusError) as e:
        client.chat.completions.create(model=OPENAI, messages=USER)
    assert "sk-" not in e.value.response.text, e.value.response.text


# --------------------------------------------------------------------------- routing


def test_auto_without_max_tokens_short_prompt_goes_to_the_local_instance(client, mock):
    r = client.chat.completions.with_raw_response.create(model="auto", messages=USER)
    assert r.parse().choices[0].message.content == TEXT
    assert [g.instance for g in mock.generations()] == ["local"], (
        f"served by {[g.instance for g in mock.generations()]}, header x-llm-provider={r.headers.get('x-llm-provider')}"
    )
    assert r.headers.get("x-llm-provider") == "local"
    # And the local instance was sent no invented limit.
    assert "num_predict" not in (mock.last("local").body.get("options") or {})


def test_auto_streamed_without_max_tokens_goes_to_the_local_instance(client, mock):
    text, _, _ = stream_text(client.chat.completions.create(model="auto", messages=USER, stream=True))
    assert text == TEXT
    assert [g.instance for g in mock.generations()] == ["local"]
