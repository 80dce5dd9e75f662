"""CORS: a gateway with `[gateway] cors_origins` answers browser preflights."""

from __future__ import annotations

import json
import urllib.error
import urllib.request

from conftest import CORS_ORIGIN, GATEWAY_KEY


def request(url: str, method: str, headers: dict[str, str], body: bytes | None = None):
    req = urllib.request.Request(url, data=body, method=method, headers=headers)
    try:
        with urllib.request.urlopen(req, timeout=30) as r:
            return r.status, {k.lower(): v for k, v in r.headers.items()}, r.read()
    except urllib.error.HTTPError as e:
        return e.code, {k.lower(): v for k, v in e.headers.items()}, e.read()


def test_preflight_is_answered_with_the_allow_headers(cors_gateway):
    status, headers, _ = request(
        f"{cors_gateway.base_url}/chat/completions",
        "OPTIONS",
        {
            "Origin": CORS_ORIGIN,
            "Access-Control-Request-Method": "POST",
            "Access-Control-Request-Headers": "authorization, content-type",
        },
    )
    # A preflight carries no credentials: it must not need the bearer key.
    assert status in (200, 204), f"preflight answered {status}"
    assert headers.get("access-control-allow-origin") in (CORS_ORIGIN, "*")
    methods = headers.get("access-control-allow-methods", "").upper()
    assert "POST" in methods or methods == "*"
    allowed = headers.get("access-control-allow-headers", "").lower()
    assert allowed == "*" or ("authorization" in allowed and "content-type" in allowed), allowed


def test_cross_origin_post_carries_allow_origin(cors_gateway, mock):
    body = json.dumps({"model": "auto", "messages": [{"role": "user", "content": "hi"}]}).encode()
    status, headers, _ = request(
        f"{cors_gateway.base_url}/chat/completions",
        "POST",
        {"Origin": CORS_ORIGIN, "Authorization": f"Bearer {GATEWAY_KEY}", "Content-Type": "application/json"},
        body,
    )
    assert status == 200
    assert headers.get("access-control-allow-origin") in (CORS_ORIGIN, "*")


def test_other_origins_are_not_allowed(cors_gateway):
    _, headers, _ = request(
        f"{cors_gateway.base_url}/chat/completions",
        "OPTIONS",
        {"Origin": "http://evil.example.test", "Access-Control-Request-Method": "POST"},
    )
    assert headers.get("access-control-allow-origin") not in ("http://evil.example.test", "*")


def test_no_cors_headers_without_cors_origins(gateway):
    status, headers, _ = request(
        f"{gateway.base_url}/models",
        "GET",
        {"Origin": CORS_ORIGIN, "Authorization": f"Bearer {GATEWAY_KEY}"},
    )
    assert status == 200
    assert "access-control-allow-origin" not in headers
