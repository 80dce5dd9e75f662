"""Fixtures: one mock upstream and gateways configured against it."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parent))

from gateway import Gateway, toml_str  # noqa: E402
from mock_upstream import MockUpstream  # noqa: E402

#: Bearer key clients must send to the gateway.
GATEWAY_KEY = "gw-test-key-2b7e151628aed2a6"
#: Keys the gateway sends upstream; they must never come back to a client.
OPENAI_KEY = "sk-upstream-secret-key-0123456789abcdef"
ANTHROPIC_KEY = "sk-ant-api03-upstream-secret-0123456789"
#: A browser origin allowed by the CORS gateway.
CORS_ORIGIN = "http://app.example.test"

OPENAI_MODELS = ["gpt-4o-mini", "gpt-4o"]
ANTHROPIC_MODELS = ["claude-sonnet-4-5-20250929"]
OLLAMA_MODELS = ["llama3.2"]


def config_toml(mock: MockUpstream, instances: tuple[str, ...] = ("openai", "claude", "local"), gateway_extra: str = "") -> str:
    """A configuration with the given instances (openai: `openai` kind,
    claude: `anthropic` kind, local: `ollama` kind), all on the mock, the cache
    off and no retries, so every call reaches the upstream exactly once."""
    parts = []
    if "openai" in instances:
        parts.append(
            f"""
[llm_providers.openai]
kind = "openai"
api_key = {toml_str(OPENAI_KEY)}
base_url = {toml_str(mock.add("openai", "openai", OPENAI_MODELS) + "/v1")}
models = {OPENAI_MODELS!r}
default_model = "gpt-4o-mini"
timeout = 30
""".replace("'", '"')
        )
    if "claude" in instances:
        parts.append(
            f"""
[llm_providers.claude]
kind = "anthropic"
api_key = {toml_str(ANTHROPIC_KEY)}
base_url = {toml_str(mock.add("claude", "anthropic", ANTHROPIC_MODELS))}
models = {ANTHROPIC_MODELS!r}
timeout = 30
""".replace("'", '"')
        )
    if "local" in instances:
        parts.append(
            f"""
[llm_providers.local]
kind = "ollama"
base_url = {toml_str(mock.add("local", "ollama", OLLAMA_MODELS))}
models = {OLLAMA_MODELS!r}
timeout = 30
""".replace("'", '"')
        )
    parts.append(
        f"""
[routing]
strategy = "cost_optimized"

[routing.retry]
max_retries = 0

[caching]
enabled = false

[monitoring]
enabled = true
prometheus_port = 0

[gateway]
api_keys = [{toml_str(GATEWAY_KEY)}]
{gateway_extra}
"""
    )
    return "".join(parts)


@pytest.fixture(scope="session")
def mock() -> MockUpstream:
    m = MockUpstream()
    yield m
    m.close()


@pytest.fixture(autouse=True)
def _fresh_mock(request: pytest.FixtureRequest) -> None:
    """Every test starts with no recorded requests and no scripted replies."""
    if "mock" in request.fixturenames:
        request.getfixturevalue("mock").reset()


@pytest.fixture(scope="session")
def gateway(mock: MockUpstream) -> Gateway:
    """The gateway with all three instances (openai, claude, local)."""
    g = Gateway(config_toml(mock), name="main")
    yield g
    g.stop()


@pytest.fixture(scope="session")
def openai_only_gateway(mock: MockUpstream) -> Gateway:
    """A gateway whose only instance is the OpenAI-kind one (so `auto` goes there)."""
    g = Gateway(config_toml(mock, ("openai",)), name="openai-only")
    yield g
    g.stop()


@pytest.fixture(scope="session")
def cors_gateway(mock: MockUpstream) -> Gateway:
    """A gateway with `[gateway] cors_origins` set."""
    g = Gateway(config_toml(mock, ("openai",), f"cors_origins = [{toml_str(CORS_ORIGIN)}]"), name="cors")
    yield g
    g.stop()


@pytest.fixture()
def client(gateway: Gateway):
    import openai

    c = openai.OpenAI(base_url=gateway.base_url, api_key=GATEWAY_KEY, max_retries=0, timeout=60)
    yield c
    c.close()


@pytest.hookimpl(tryfirst=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo) -> None:
    """On failure, attach the tail of the gateway's log to the report."""
    if call.when != "call" or call.excinfo is None:
        return
    for name in ("gateway", "openai_only_gateway", "cors_gateway"):
        g = item.funcargs.get(name) if hasattr(item, "funcargs") else None
        if isinstance(g, Gateway):
            item.add_report_section("call", f"{name} log", g.log_tail(30))
