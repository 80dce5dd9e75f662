"""Virtual keys as the official SDKs see them: a key created through the admin
API works with the OpenAI and Anthropic SDKs; over its request rate or budget
the SDKs raise `RateLimitError` with the gateway's body; a model it may not use
is a `PermissionDeniedError`; `llm keys` and `llm usage` work on the same store
from the command line."""

from __future__ import annotations

import json
import tempfile
import time
import urllib.request
from pathlib import Path

import anthropic
import ollama
import openai
import pytest
from conftest import ANTHROPIC_MODELS, GATEWAY_KEY, config_toml
from gateway import Gateway, run_llm, toml_str
from mock_upstream import openai_error

MASTER_KEY = "mk-test-master-5f2a9c0e7b1d4386"
USER = [{"role": "user", "content": "Say hello."}]


@pytest.fixture(scope="module")
def store_dir() -> Path:
    return Path(tempfile.mkdtemp(prefix="llm-keys-store-"))


@pytest.fixture(scope="module")
def keys_config(mock, store_dir: Path) -> str:
    """openai and claude instances on the mock (openai priced), virtual keys on
    a SQLite file every `llm` command of this module shares."""
    extra = f"""master_key = {toml_str(MASTER_KEY)}

[gateway.store]
url = {toml_str("sqlite://" + str(store_dir / "keys.db"))}
spend_flush_interval = 0.1
key_cache_ttl = 0

[llm_providers.openai.pricing."gpt-4o-mini"]
input_per_1m = 1000.0
output_per_1m = 1000.0
"""
    return config_toml(mock, ("openai", "claude"), extra)


@pytest.fixture(scope="module")
def keys_gateway(keys_config: str) -> Gateway:
    g = Gateway(keys_config, name="keys")
    yield g
    g.stop()


def admin(gw: Gateway, method: str, path: str, body: dict | None = None) -> tuple[int, dict]:
    data = json.dumps(body).encode() if body is not None else None
    req = urllib.request.Request(f"{gw.url}{path}", data=data, method=method)
    req.add_header("Authorization", f"Bearer {MASTER_KEY}")
    req.add_header("Content-Type", "application/json")
    try:
        with urllib.request.urlopen(req, timeout=30) as r:
            return r.status, json.loads(r.read())
    except urllib.error.HTTPError as e:
        return e.code, json.loads(e.read() or b"null")


def new_key(gw: Gateway, **fields) -> str:
    status, body = admin(gw, "POST", "/admin/keys", {"name": "sdk", **fields})
    assert status == 201, body
    assert body["key"].startswith("sk-llm-")
    assert "hash" not in body
    return body["key"]


def away_from_a_minute_edge() -> None:
    """Rate windows are whole minutes: start at least 10 s before the next."""
    into = time.time() % 60
    if into > 50:
        time.sleep(60 - into + 0.05)


def oai(gw: Gateway, key: str) -> openai.OpenAI:
    return openai.OpenAI(base_url=gw.base_url, api_key=key, max_retries=0, timeout=60)


def claude(gw: Gateway, key: str) -> anthropic.Anthropic:
    return anthropic.Anthropic(base_url=gw.url, api_key=key, max_retries=0, timeout=60)


def test_a_created_key_works_with_both_sdks(keys_gateway: Gateway) -> None:
    key = new_key(keys_gateway)
    with oai(keys_gateway, key) as c:
        r = c.chat.completions.create(model="openai/gpt-4o-mini", messages=USER)
        assert r.choices[0].message.content == "Hello!"
    with claude(keys_gateway, key) as c:
        m = c.messages.create(model="claude/claude-sonnet-4-5-20250929", max_tokens=16, messages=USER)
        assert m.content[0].text == "Hello!"
    # The configuration file's key keeps working.
    with oai(keys_gateway, GATEWAY_KEY) as c:
        c.chat.completions.create(model="openai/gpt-4o-mini", messages=USER)


def test_over_the_request_rate_the_sdks_raise_rate_limit_error(keys_gateway: Gateway) -> None:
    key = new_key(keys_gateway, rpm=1)
    away_from_a_minute_edge()
    with oai(keys_gateway, key) as c:
        raw = c.chat.completions.with_raw_response.create(model="openai/gpt-4o-mini", messages=USER)
        assert raw.headers["x-ratelimit-limit-requests"] == "1"
        assert raw.headers["x-ratelimit-remaining-requests"] == "0"
        with pytest.raises(openai.RateLimitError) as e:
            c.chat.completions.create(model="openai/gpt-4o-mini", messages=USER)
    assert e.value.status_code == 429
    assert e.value.code == "rate_limit_exceeded"
    assert e.value.type == "requests"
    assert int(e.value.response.headers["retry-after"]) >= 1
    with claude(keys_gateway, key) as c:
        with pytest.raises(anthropic.RateLimitError) as ae:
            c.messages.create(model="claude/claude-sonnet-4-5-20250929", max_tokens=16, messages=USER)
    assert ae.value.body["type"] == "error"
    assert ae.value.body["error"]["type"] == "rate_limit_error"


def test_over_the_budget_the_sdks_raise_rate_limit_error_insufficient_quota(keys_gateway: Gateway) -> None:
    # $0.05 at $0.001 a token: the first call (about 16 + 16 tokens reserved,
    # 22 charged) fits, then the reservations no longer do.
    key = new_key(keys_gateway, budget_usd=0.05, budget_period="daily")
    with oai(keys_gateway, key) as c:
        c.chat.completions.create(model="openai/gpt-4o-mini", messages=USER, max_tokens=16)
        with pytest.raises(openai.RateLimitError) as e:
            for _ in range(5):
                c.chat.completions.create(model="openai/gpt-4o-mini", messages=USER, max_tokens=16)
    assert e.value.code == "insufficient_quota"
    assert e.value.type == "insufficient_quota"
    assert "budget" in e.value.message
    assert int(e.value.response.headers["retry-after"]) >= 1, "a daily budget says when it resets"
    with claude(keys_gateway, key) as c:
        with pytest.raises(anthropic.RateLimitError) as ae:
            c.messages.create(model="openai/gpt-4o-mini", max_tokens=16, messages=USER)
    assert ae.value.body["error"]["type"] == "rate_limit_error"
    assert "budget" in ae.value.body["error"]["message"]


def test_a_model_the_key_may_not_use_is_permission_denied(keys_gateway: Gateway) -> None:
    key = new_key(keys_gateway, models=["openai/*"])
    with oai(keys_gateway, key) as c:
        c.chat.completions.create(model="gpt-4o-mini", messages=USER)
    with claude(keys_gateway, key) as c:
        with pytest.raises(anthropic.PermissionDeniedError) as ae:
            c.messages.create(model="claude/claude-sonnet-4-5-20250929", max_tokens=16, messages=USER)
    assert ae.value.body["error"]["type"] == "permission_error"
    with oai(keys_gateway, "sk-llm-" + "0" * 43) as c:
        with pytest.raises(openai.AuthenticationError):
            c.chat.completions.create(model="gpt-4o-mini", messages=USER)


def test_a_key_lists_only_the_models_it_may_use(keys_gateway: Gateway) -> None:
    key = new_key(keys_gateway, models=["openai/*"])
    with oai(keys_gateway, key) as c:
        ids = [m.id for m in c.models.list()]
        assert ids and all(i.startswith("openai/") for i in ids), ids
        with pytest.raises(openai.NotFoundError):
            c.models.retrieve("claude/claude-sonnet-4-5-20250929")
    with oai(keys_gateway, GATEWAY_KEY) as c:
        everything = [m.id for m in c.models.list()]
    assert set(ids) < set(everything), everything
    assert any(i.startswith("claude/") for i in everything), everything
    with claude(keys_gateway, key) as c:
        assert [m.id for m in c.models.list()] == ids
    tags = ollama.Client(host=keys_gateway.url, headers={"Authorization": f"Bearer {key}"}, timeout=60).list()
    assert [m.model for m in tags.models] == ids


def test_a_keys_request_never_falls_back_to_a_model_it_may_not_use(keys_gateway: Gateway, mock) -> None:
    boom = lambda: openai_error(500, "The server had an error.", "server_error", None)  # noqa: E731
    narrow = new_key(keys_gateway, models=["openai/*"])
    mock.script("openai", boom())
    with oai(keys_gateway, narrow) as c:
        with pytest.raises(openai.InternalServerError):
            c.chat.completions.create(model="openai/gpt-4o-mini", messages=USER)
    assert len(mock.generations("openai")) == 1
    assert mock.generations("claude") == [], "the key's prompt reached a model it may not use"

    wide = new_key(keys_gateway, models=["openai/*", "claude/*"])
    mock.script("openai", boom())
    with oai(keys_gateway, wide) as c:
        r = c.chat.completions.create(model="openai/gpt-4o-mini", messages=USER)
    assert r.choices[0].message.content
    sent = mock.last("claude")
    assert sent.body["model"] == ANTHROPIC_MODELS[0]
    assert "Say hello." in json.dumps(sent.body["messages"])


def test_llm_keys_and_usage_on_the_command_line(keys_gateway: Gateway, keys_config: str) -> None:
    done = run_llm(
        keys_config,
        "keys", "create", "--name", "cli-app", "--budget", "5", "--period", "monthly",
        "--rpm", "60", "--models", "openai/*", "--json",
    )
    assert done.returncode == 0, done.stderr.decode()
    created = json.loads(done.stdout)
    key, key_id = created["key"], created["id"]
    assert key.startswith("sk-llm-") and created["rpm"] == 60 and created["budget_period"] == "monthly"

    # The text form prints the key once too.
    text = run_llm(keys_config, "keys", "create", "--name", "printed")
    assert text.returncode == 0
    assert "sk-llm-" in text.stdout.decode()

    listed = run_llm(keys_config, "keys", "list")
    assert listed.returncode == 0
    out = listed.stdout.decode()
    assert key_id in out and "cli-app" in out and key not in out

    with oai(keys_gateway, key) as c:
        c.chat.completions.create(model="openai/gpt-4o-mini", messages=USER)

    # The spend log is written in the background: poll the report.
    deadline = time.monotonic() + 30
    row = None
    while time.monotonic() < deadline:
        report = run_llm(keys_config, "usage", "--by", "key", "--json")
        assert report.returncode == 0, report.stderr.decode()
        row = next((r for r in json.loads(report.stdout) if r["group"] == key_id), None)
        if row:
            break
        time.sleep(0.1)
    assert row is not None and row["requests"] == 1 and row["name"] == "cli-app"
    assert abs(row["cost_usd"] - 0.022) < 1e-9
    table = run_llm(keys_config, "usage", "--by", "key").stdout.decode()
    assert "REQUESTS" in table and key_id in table and "TOTAL" in table
    by_model = run_llm(keys_config, "usage", "--by", "model").stdout.decode()
    assert "gpt-4o-mini" in by_model

    shown = json.loads(run_llm(keys_config, "keys", "show", key_id, "--json").stdout)
    assert abs(shown["spent_usd"] - 0.022) < 1e-9

    updated = run_llm(keys_config, "keys", "update", key_id, "--rpm", "0", "--json")
    assert json.loads(updated.stdout)["rpm"] is None

    rotated = json.loads(run_llm(keys_config, "keys", "rotate", key_id, "--json").stdout)
    assert rotated["key"] != key
    with oai(keys_gateway, key) as c:
        with pytest.raises(openai.AuthenticationError):
            c.chat.completions.create(model="openai/gpt-4o-mini", messages=USER)

    revoked = run_llm(keys_config, "keys", "revoke", key_id)
    assert revoked.returncode == 0
    with oai(keys_gateway, rotated["key"]) as c:
        with pytest.raises(openai.AuthenticationError) as e:
            c.chat.completions.create(model="openai/gpt-4o-mini", messages=USER)
    assert "revoked" in e.value.message

    missing = run_llm(keys_config, "keys", "show", "key_0000000000000000")
    assert missing.returncode == 1
