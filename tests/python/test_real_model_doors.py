"""The gateway's other protocol doors (OpenAI Responses, Anthropic Messages,
embeddings through OpenAI and Ollama) answered by a real llama.cpp
`llama-server` serving SmolLM2 through `llm serve`, with the official SDKs.

Runs when LLAMA_SERVER and SMOLLM2_GGUF are set (see `.ci/real-model.sh`), as
`test_real_model.py` does, whose server and gateway fixtures it reuses. Only
protocol facts are asserted, never the wording of the tiny model's answers.
"""

from __future__ import annotations

import base64
import math
import struct

import anthropic
import httpx
import ollama
import openai
import pytest
from gateway import Gateway, toml_str
from test_real_model import (  # noqa: F401  (fixtures are used by name)
    KEY,
    LLAMA_SERVER,
    LONG_PROMPT,
    MODEL,
    OPENAI_KIND,
    SEED,
    SMOLLM2_GGUF,
    LlamaServer,
    anthropic_prompt_tokens,
    llama,
    real_gateway,
    sdk,
)

pytestmark = pytest.mark.skipif(
    not (LLAMA_SERVER and SMOLLM2_GGUF),
    reason="LLAMA_SERVER and SMOLLM2_GGUF are not set (eval \"$(.ci/real-model.sh)\" sets them)",
)

QUESTION = "Name three colours."


# --------------------------------------------------------------------------- OpenAI Responses


def test_responses_usage_equals_the_servers(sdk, llama):
    r = sdk.responses.create(model=OPENAI_KIND, input=QUESTION, max_output_tokens=16, temperature=0)
    # Responses has no `seed`; at temperature 0 the server samples greedily, so
    # the direct call with a seed generates the same tokens.
    direct = llama.chat(
        messages=[{"role": "user", "content": QUESTION}], max_tokens=16, temperature=0, seed=SEED
    )
    assert r.status in ("completed", "incomplete")
    if r.status == "incomplete":
        assert r.incomplete_details.reason == "max_output_tokens"
        assert direct["choices"][0]["finish_reason"] == "length"
    else:
        assert direct["choices"][0]["finish_reason"] == "stop"
    assert r.output_text
    assert r.output_text == direct["choices"][0]["message"]["content"]
    assert r.usage.input_tokens == direct["usage"]["prompt_tokens"]
    assert r.usage.output_tokens == direct["usage"]["completion_tokens"]
    assert r.usage.total_tokens == r.usage.input_tokens + r.usage.output_tokens


def test_responses_cut_at_max_output_tokens_is_incomplete(sdk):
    r = sdk.responses.create(
        model=OPENAI_KIND, input=LONG_PROMPT[0]["content"], max_output_tokens=5, temperature=0
    )
    assert r.status == "incomplete"
    assert r.incomplete_details.reason == "max_output_tokens"
    assert r.output_text
    assert r.usage.output_tokens == 5


def test_responses_stream_events_in_order(sdk):
    kwargs = dict(model=OPENAI_KIND, input=QUESTION, max_output_tokens=16, temperature=0)
    whole = sdk.responses.create(**kwargs)
    events = list(sdk.responses.create(**kwargs, stream=True))
    types = [e.type for e in events]
    assert types[:2] == ["response.created", "response.in_progress"]
    assert types[-1] in ("response.completed", "response.incomplete")
    assert types.count("response.completed") + types.count("response.incomplete") == 1
    message = [
        "response.output_item.added",
        "response.content_part.added",
        "response.output_text.done",
        "response.content_part.done",
        "response.output_item.done",
    ]
    positions = [types.index(t) for t in message]
    assert positions == sorted(positions), types
    deltas = [i for i, t in enumerate(types) if t == "response.output_text.delta"]
    assert deltas, types
    assert positions[1] < deltas[0] and deltas[-1] < positions[2], types
    assert [e.sequence_number for e in events] == list(range(len(events)))
    text = "".join(e.delta for e in events if e.type == "response.output_text.delta")
    done = next(e for e in events if e.type == "response.output_text.done")
    assert text and done.text == text
    final = events[-1].response
    assert final.status == whole.status
    assert final.output_text == text == whole.output_text
    assert final.usage.input_tokens == whole.usage.input_tokens
    assert final.usage.output_tokens == whole.usage.output_tokens


# --------------------------------------------------------------------------- legacy Completions


def test_legacy_completions_usage_equals_the_servers(sdk, llama):
    # The prompt goes upstream as one user message.
    r = sdk.completions.create(model=OPENAI_KIND, prompt=QUESTION, max_tokens=16, temperature=0, seed=SEED)
    direct = llama.chat(messages=[{"role": "user", "content": QUESTION}], max_tokens=16, temperature=0, seed=SEED)
    assert r.object == "text_completion"
    assert r.choices[0].text
    assert r.choices[0].text == direct["choices"][0]["message"]["content"]
    assert r.choices[0].finish_reason == direct["choices"][0]["finish_reason"]
    assert r.usage.prompt_tokens == direct["usage"]["prompt_tokens"]
    assert r.usage.completion_tokens == direct["usage"]["completion_tokens"]


def test_legacy_completions_stream_equals_json_answer(sdk):
    kwargs = dict(model=OPENAI_KIND, prompt=LONG_PROMPT[0]["content"], max_tokens=6, temperature=0, seed=SEED)
    whole = sdk.completions.create(**kwargs)
    text, usage, finishes = "", None, []
    for chunk in sdk.completions.create(**kwargs, stream=True, stream_options={"include_usage": True}):
        if chunk.usage is not None:
            usage = chunk.usage
        for c in chunk.choices:
            text += c.text
            if c.finish_reason:
                finishes.append(c.finish_reason)
    assert whole.choices[0].finish_reason == "length"
    assert text == whole.choices[0].text
    assert finishes == ["length"]
    assert usage is not None and usage.completion_tokens == 6 == whole.usage.completion_tokens
    assert usage.prompt_tokens == whole.usage.prompt_tokens


# --------------------------------------------------------------------------- Anthropic Messages


#: The installed SDK's `messages.create` has no `temperature` parameter; the
#: door takes the field and forwards it.
T0 = {"temperature": 0}


@pytest.fixture()
def claude(real_gateway: Gateway):
    c = anthropic.Anthropic(base_url=real_gateway.url, api_key=KEY, max_retries=0, timeout=120)
    yield c
    c.close()


def test_anthropic_door_on_openai_kind_usage_equals_the_servers(claude, llama):
    messages = [{"role": "user", "content": QUESTION}]
    m = claude.messages.create(model=OPENAI_KIND, messages=messages, max_tokens=24, extra_body=T0)
    direct = llama.chat(messages=messages, max_tokens=24, temperature=0)
    assert m.type == "message" and m.role == "assistant"
    text = "".join(b.text for b in m.content if b.type == "text")
    assert text
    assert text == direct["choices"][0]["message"]["content"]
    expected_stop = {"stop": "end_turn", "length": "max_tokens"}[direct["choices"][0]["finish_reason"]]
    assert m.stop_reason == expected_stop
    # The server's prompt cache may report part of the prompt as cached; the
    # door splits it into input_tokens and cache_read_input_tokens.
    assert anthropic_prompt_tokens(m.usage.model_dump()) == direct["usage"]["prompt_tokens"]
    assert m.usage.output_tokens == direct["usage"]["completion_tokens"]


def test_anthropic_door_stop_reason_max_tokens(claude):
    m = claude.messages.create(model=OPENAI_KIND, messages=LONG_PROMPT, max_tokens=5, extra_body=T0)
    assert m.stop_reason == "max_tokens"
    assert m.usage.output_tokens == 5
    assert m.usage.input_tokens + (m.usage.cache_read_input_tokens or 0) > 0
    assert any(b.type == "text" and b.text for b in m.content)


def test_anthropic_door_stream_equals_json_answer(claude):
    kwargs = dict(model=OPENAI_KIND, messages=LONG_PROMPT, max_tokens=8, extra_body=T0)
    whole = claude.messages.create(**kwargs)
    with claude.messages.stream(**kwargs) as stream:
        text = "".join(stream.text_stream)
        final = stream.get_final_message()
    assert text
    assert text == "".join(b.text for b in whole.content if b.type == "text")
    assert final.stop_reason == "max_tokens" == whole.stop_reason
    assert final.usage.output_tokens == 8 == whole.usage.output_tokens
    assert anthropic_prompt_tokens(final.usage.model_dump()) == anthropic_prompt_tokens(whole.usage.model_dump())


# --------------------------------------------------------------------------- embeddings


EMBED_INPUTS = ["a", "b"]


@pytest.fixture(scope="module")
def embed_server() -> LlamaServer:
    # A chat model serves OpenAI embeddings only with a pooling type.
    s = LlamaServer("--embeddings", "--pooling", "mean")
    yield s
    s.stop()


@pytest.fixture(scope="module")
def embed_gateway(embed_server: LlamaServer) -> Gateway:
    config = f"""
[llm_providers.llama-embed]
kind = "openai"
base_url = {toml_str(embed_server.url + "/v1")}
embedding_models = ["{MODEL}"]
timeout = 120

[routing.retry]
max_retries = 0

[caching]
enabled = false

[gateway]
api_keys = [{toml_str(KEY)}]
"""
    g = Gateway(config, name="real-embed")
    yield g
    g.stop()


@pytest.fixture(scope="module")
def direct_vectors(embed_server: LlamaServer) -> tuple[list[list[float]], int]:
    r = httpx.post(f"{embed_server.url}/v1/embeddings", json={"model": MODEL, "input": EMBED_INPUTS}, timeout=120)
    r.raise_for_status()
    body = r.json()
    data = sorted(body["data"], key=lambda d: d["index"])
    return [d["embedding"] for d in data], body["usage"]["prompt_tokens"]


def assert_close(got: list[list[float]], want: list[list[float]]) -> None:
    assert len(got) == len(want)
    for g, w in zip(got, want):
        assert len(g) == len(w)
        assert all(math.isclose(a, b, abs_tol=1e-4) for a, b in zip(g, w))


@pytest.mark.parametrize("encoding", [None, "float"], ids=["sdk-default-base64", "float"])
def test_embeddings_have_the_real_length(embed_gateway, direct_vectors, encoding):
    want, tokens = direct_vectors
    assert len(want) == 2 and len(want[0]) > 0
    c = openai.OpenAI(base_url=embed_gateway.base_url, api_key=KEY, max_retries=0, timeout=120)
    try:
        kwargs = {} if encoding is None else {"encoding_format": encoding}
        r = c.embeddings.create(model=MODEL, input=EMBED_INPUTS, **kwargs)
    finally:
        c.close()
    assert [d.index for d in r.data] == [0, 1]
    assert_close([d.embedding for d in r.data], want)
    assert r.usage.prompt_tokens == tokens


def test_embeddings_base64_on_the_wire(embed_gateway, direct_vectors):
    # What the SDK asks for by default, checked at the byte level.
    want, _ = direct_vectors
    r = httpx.post(
        f"{embed_gateway.base_url}/embeddings",
        json={"model": MODEL, "input": EMBED_INPUTS, "encoding_format": "base64"},
        headers={"Authorization": f"Bearer {KEY}"},
        timeout=120,
    )
    assert r.status_code == 200, r.text
    got = []
    for d in r.json()["data"]:
        assert isinstance(d["embedding"], str)
        raw = base64.b64decode(d["embedding"])
        got.append(list(struct.unpack(f"<{len(raw) // 4}f", raw)))
    assert_close(got, want)


def test_ollama_embed_through_the_gateway(embed_gateway, direct_vectors):
    want, tokens = direct_vectors
    oc = ollama.Client(host=embed_gateway.url, headers={"Authorization": f"Bearer {KEY}"}, timeout=120)
    r = oc.embed(model=MODEL, input=EMBED_INPUTS)
    assert len(r.embeddings) == 2
    assert [len(v) for v in r.embeddings] == [len(v) for v in want]
    assert_close([list(v) for v in r.embeddings], want)
    assert r.prompt_eval_count == tokens
