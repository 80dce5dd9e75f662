"""A mock upstream speaking three provider protocols on one loopback port.

Each provider instance of the gateway's configuration gets its own path prefix
(``http://127.0.0.1:PORT/<instance>``) and a protocol kind:

- ``openai``: ``POST /v1/chat/completions`` (JSON, or server-sent events ending
  in ``data: [DONE]``), ``GET /v1/models``;
- ``anthropic``: ``POST /v1/messages`` (JSON, or named server-sent events),
  ``GET /v1/models``;
- ``ollama``: ``POST /api/chat`` (NDJSON stream by default, one JSON object with
  ``"stream": false``), ``GET /api/version``, ``GET /api/tags``, ``GET /``.

Answers use the byte layouts the real services send (see the protocols
reference): OpenAI JSON bodies pretty-printed with two spaces, OpenAI stream
chunks compact with one ``data:`` line and a blank line per event, Anthropic
compact JSON with ``event:`` lines and a ``{"type": "ping"}``, Ollama compact
NDJSON with Go's key order.

Every request is recorded (method, path, headers, raw body, parsed JSON), so a
test asserts what the upstream received. A test can queue replies per instance
(``script``) to answer with an error or a custom body; otherwise the default
answer is a short text, or, when the request asks for structured output
(OpenAI ``response_format``, Ollama ``format``, an Anthropic forced tool), the
JSON of ``structured``.
"""

from __future__ import annotations

import json
import threading
from collections import deque
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, Callable

#: The answer text of a default reply, split as a stream sends it.
TEXT_PARTS = ["Hello", "!"]
TEXT = "".join(TEXT_PARTS)

#: The object returned when a request asks for structured output.
STRUCTURED = {"name": "Paris", "country": "France", "population": 2102650}

OPENAI_USAGE = {
    "prompt_tokens": 20,
    "completion_tokens": 2,
    "total_tokens": 22,
    "prompt_tokens_details": {"cached_tokens": 0, "audio_tokens": 0},
    "completion_tokens_details": {
        "reasoning_tokens": 0,
        "audio_tokens": 0,
        "accepted_prediction_tokens": 0,
        "rejected_prediction_tokens": 0,
    },
}
ANTHROPIC_INPUT_TOKENS = 16
ANTHROPIC_OUTPUT_TOKENS = 5
OLLAMA_PROMPT_EVAL_COUNT = 31
OLLAMA_EVAL_COUNT = 2

GENERATION_PATHS = ("/v1/chat/completions", "/chat/completions", "/v1/messages", "/api/chat", "/api/generate")


@dataclass
class Recorded:
    """One request the mock received."""

    instance: str
    method: str
    path: str
    headers: dict[str, str]
    raw: bytes
    body: Any = None

    @property
    def is_generation(self) -> bool:
        return self.method == "POST" and self.path.endswith(GENERATION_PATHS)


@dataclass
class Reply:
    """A scripted answer: a status, headers and either a body or stream chunks."""

    status: int = 200
    headers: dict[str, str] = field(default_factory=dict)
    body: bytes = b""
    chunks: list[bytes] | None = None

    @staticmethod
    def json(status: int, obj: Any, indent: int | None = None) -> "Reply":
        if indent:
            text = json.dumps(obj, indent=indent, ensure_ascii=False)
        else:
            text = json.dumps(obj, separators=(",", ":"), ensure_ascii=False)
        return Reply(status, {"content-type": "application/json"}, text.encode())


#: A reply given per request: a fixed Reply, or a function of the request.
Script = Reply | Callable[[Recorded], Reply]


def openai_error(status: int, message: str, type_: str, code: str | None, param: str | None = None) -> Reply:
    """An OpenAI error body (pretty-printed, as the API sends it)."""
    body = {"error": {"message": message, "type": type_, "param": param, "code": code}}
    reply = Reply.json(status, body, indent=2)
    reply.headers["x-request-id"] = "req_0c9e5a8d1b7f4e3a9d2c6b1e8f4a7d30"
    return reply


def anthropic_error(status: int, message: str, type_: str) -> Reply:
    body = {"type": "error", "error": {"type": type_, "message": message}, "request_id": "req_011CSHoEeqs5C35K2UUqR7Fy"}
    reply = Reply.json(status, body)
    reply.headers["request-id"] = "req_011CSHoEeqs5C35K2UUqR7Fy"
    return reply


def ollama_error(status: int, message: str) -> Reply:
    reply = Reply.json(status, {"error": message})
    reply.headers["content-type"] = "application/json; charset=utf-8"
    return reply


def _compact(obj: Any) -> str:
    return json.dumps(obj, separators=(",", ":"), ensure_ascii=False)


def _go_json(obj: Any) -> str:
    """Go encoding/json: compact, with <, > and & escaped."""
    return _compact(obj).replace("<", "\\u003c").replace(">", "\\u003e").replace("&", "\\u0026")


# --------------------------------------------------------------------------- OpenAI


def _token_logprob(token: str, logprob: float, alt: str, alt_logprob: float, top: int) -> dict:
    entry = {"token": token, "logprob": logprob, "bytes": list(token.encode()), "top_logprobs": []}
    candidates = [(token, logprob), (alt, alt_logprob)]
    for t, lp in candidates[:top]:
        entry["top_logprobs"].append({"token": t, "logprob": lp, "bytes": list(t.encode())})
    return entry


OPENAI_LOGPROBS = [("Hello", -0.31725305, "Hi", -1.3190403), ("!", -0.02380986, ".", -3.787621)]


def openai_logprobs(parts: list[str], top: int) -> list[dict]:
    out = []
    for i, part in enumerate(parts):
        _, lp, alt, alt_lp = OPENAI_LOGPROBS[i % len(OPENAI_LOGPROBS)]
        out.append(_token_logprob(part, lp, alt, alt_lp, top))
    return out


def _openai_answer_parts(body: dict) -> list[str]:
    rf = body.get("response_format") or {}
    if rf.get("type") in ("json_schema", "json_object"):
        text = _compact(STRUCTURED)
        return [text[: len(text) // 2], text[len(text) // 2 :]]
    return list(TEXT_PARTS)


def openai_chat(req: Recorded) -> Reply:
    body = req.body or {}
    model = body.get("model", "gpt-4o-mini")
    parts = _openai_answer_parts(body)
    want_logprobs = bool(body.get("logprobs"))
    top = int(body.get("top_logprobs") or 0)
    if body.get("stream"):
        base = {
            "id": "chatcmpl-C9xQ3fT0aZk8Wb2nLq5Ve7Yh1Rm4Pd6Gs",
            "object": "chat.completion.chunk",
            "created": 1756300001,
            "model": model,
            "service_tier": "default",
            "system_fingerprint": "fp_560af6e559",
        }
        include_usage = bool((body.get("stream_options") or {}).get("include_usage"))

        def chunk(choices: list, obfuscation: str) -> bytes:
            obj = dict(base, choices=choices)
            if include_usage:
                obj["usage"] = None
            obj["obfuscation"] = obfuscation
            return f"data: {_compact(obj)}\n\n".encode()

        chunks = [
            chunk(
                [{"index": 0, "delta": {"role": "assistant", "content": "", "refusal": None}, "logprobs": None, "finish_reason": None}],
                "Qm3xT",
            )
        ]
        lps = openai_logprobs(parts, top)
        for i, part in enumerate(parts):
            lp = {"content": [lps[i]], "refusal": None} if want_logprobs else None
            chunks.append(
                chunk([{"index": 0, "delta": {"content": part}, "logprobs": lp, "finish_reason": None}], "p8Kd")
            )
        chunks.append(chunk([{"index": 0, "delta": {}, "logprobs": None, "finish_reason": "stop"}], "V1"))
        if include_usage:
            obj = dict(base, choices=[], usage=OPENAI_USAGE, obfuscation="a7Tq")
            chunks.append(f"data: {_compact(obj)}\n\n".encode())
        chunks.append(b"data: [DONE]\n\n")
        return Reply(200, {"content-type": "text/event-stream; charset=utf-8"}, chunks=chunks)
    logprobs = {"content": openai_logprobs(parts, top), "refusal": None} if want_logprobs else None
    obj = {
        "id": "chatcmpl-C9xQ2d7LkzP4mWm1nHqYt0bR8sVjE",
        "object": "chat.completion",
        "created": 1756300000,
        "model": model,
        "choices": [
            {
                "index": 0,
                "message": {"role": "assistant", "content": "".join(parts), "refusal": None, "annotations": []},
                "logprobs": logprobs,
                "finish_reason": "stop",
            }
        ],
        "usage": OPENAI_USAGE,
        "service_tier": "default",
        "system_fingerprint": "fp_560af6e559",
    }
    reply = Reply.json(200, obj, indent=2)
    reply.headers["x-request-id"] = "req_7b4c1e2f9a0d4e6b8c3f5a1d2e9b0c47"
    return reply


def openai_models(_req: Recorded, models: list[str]) -> Reply:
    data = [{"id": m, "object": "model", "created": 1721172741, "owned_by": "system"} for m in models]
    return Reply.json(200, {"object": "list", "data": data}, indent=2)


# --------------------------------------------------------------------------- Anthropic


def anthropic_messages(req: Recorded) -> Reply:
    body = req.body or {}
    model = body.get("model", "claude-sonnet-4-5-20250929")
    choice = body.get("tool_choice") or {}
    forced = choice.get("name") if choice.get("type") == "tool" else None
    usage_start = {
        "input_tokens": ANTHROPIC_INPUT_TOKENS,
        "cache_creation_input_tokens": 0,
        "cache_read_input_tokens": 0,
        "cache_creation": {"ephemeral_5m_input_tokens": 0, "ephemeral_1h_input_tokens": 0},
        "output_tokens": 1,
        "service_tier": "standard",
    }
    stop_reason = "tool_use" if forced else "end_turn"
    if body.get("stream"):
        events: list[tuple[str, str]] = []
        start_msg = {
            "id": "msg_01XFDUDYJgAACzvnptvVoYEM",
            "type": "message",
            "role": "assistant",
            "model": model,
            "content": [],
            "stop_reason": None,
            "stop_sequence": None,
            "usage": usage_start,
        }
        events.append(("message_start", _compact({"type": "message_start", "message": start_msg})))
        if forced:
            block = {"type": "tool_use", "id": "toolu_01NRLabsLyVHZPKxbKvkfSMn", "name": forced, "input": {}}
            events.append(("content_block_start", _compact({"type": "content_block_start", "index": 0, "content_block": block})))
            events.append(("ping", '{"type": "ping"}'))
            text = _compact(STRUCTURED)
            for frag in ("", text[:9], text[9:]):
                delta = {"type": "input_json_delta", "partial_json": frag}
                events.append(("content_block_delta", _compact({"type": "content_block_delta", "index": 0, "delta": delta})))
        else:
            block = {"type": "text", "text": ""}
            events.append(("content_block_start", _compact({"type": "content_block_start", "index": 0, "content_block": block})))
            events.append(("ping", '{"type": "ping"}'))
            for part in TEXT_PARTS:
                delta = {"type": "text_delta", "text": part}
                events.append(("content_block_delta", _compact({"type": "content_block_delta", "index": 0, "delta": delta})))
        events.append(("content_block_stop", _compact({"type": "content_block_stop", "index": 0})))
        md = {
            "type": "message_delta",
            "delta": {"stop_reason": stop_reason, "stop_sequence": None},
            "usage": {"output_tokens": ANTHROPIC_OUTPUT_TOKENS},
        }
        events.append(("message_delta", _compact(md)))
        events.append(("message_stop", _compact({"type": "message_stop"})))
        chunks = [f"event: {name}\ndata: {data}\n\n".encode() for name, data in events]
        return Reply(200, {"content-type": "text/event-stream; charset=utf-8", "request-id": "req_011CSLsW7mFqvHHnzrKdKjAE"}, chunks=chunks)
    if forced:
        content = [{"type": "tool_use", "id": "toolu_01D7FLrfh4GYq7yT1ULFeyMV", "name": forced, "input": STRUCTURED}]
    else:
        content = [{"type": "text", "text": TEXT}]
    usage = dict(usage_start, output_tokens=ANTHROPIC_OUTPUT_TOKENS)
    obj = {
        "id": "msg_01XFDUDYJgAACzvnptvVoYEL",
        "type": "message",
        "role": "assistant",
        "model": model,
        "content": content,
        "stop_reason": stop_reason,
        "stop_sequence": None,
        "usage": usage,
    }
    reply = Reply.json(200, obj)
    reply.headers["request-id"] = "req_011CSLsW7mFqvHHnzrKdKjAE"
    return reply


def anthropic_models(_req: Recorded, models: list[str]) -> Reply:
    data = [{"type": "model", "id": m, "display_name": m, "created_at": "2025-09-29T00:00:00Z"} for m in models]
    return Reply.json(
        200,
        {"data": data, "has_more": False, "first_id": models[0] if models else None, "last_id": models[-1] if models else None},
    )


# --------------------------------------------------------------------------- Ollama


def ollama_chat(req: Recorded) -> Reply:
    body = req.body or {}
    model = body.get("model", "llama3.2")
    fmt = body.get("format")
    parts = list(TEXT_PARTS)
    if fmt:
        text = _compact(STRUCTURED)
        parts = [text[: len(text) // 2], text[len(text) // 2 :]]
    final_stats = {
        "total_duration": 412345678,
        "load_duration": 23456789,
        "prompt_eval_count": OLLAMA_PROMPT_EVAL_COUNT,
        "prompt_eval_duration": 98765432,
        "eval_count": OLLAMA_EVAL_COUNT,
        "eval_duration": 45678901,
    }
    if body.get("stream", True):
        lines = []
        for i, part in enumerate(parts):
            lines.append(
                {
                    "model": model,
                    "created_at": f"2025-08-27T10:15:02.1{i}3456789Z",
                    "message": {"role": "assistant", "content": part},
                    "done": False,
                }
            )
        last = {
            "model": model,
            "created_at": "2025-08-27T10:15:02.160129032Z",
            "message": {"role": "assistant", "content": ""},
            "done": True,
            "done_reason": "stop",
        }
        last.update(final_stats)
        lines.append(last)
        chunks = [(_go_json(line) + "\n").encode() for line in lines]
        return Reply(200, {"content-type": "application/x-ndjson"}, chunks=chunks)
    obj = {
        "model": model,
        "created_at": "2025-08-27T10:15:02.160129032Z",
        "message": {"role": "assistant", "content": "".join(parts)},
        "done": True,
        "done_reason": "stop",
    }
    obj.update(final_stats)
    return Reply(200, {"content-type": "application/json; charset=utf-8"}, _go_json(obj).encode())


def ollama_tags(_req: Recorded, models: list[str]) -> Reply:
    entries = []
    for m in models:
        name = m if ":" in m else f"{m}:latest"
        entries.append(
            {
                "name": name,
                "model": name,
                "modified_at": "2025-05-04T17:37:44.706015396-07:00",
                "size": 2019393189,
                "digest": "a80c4f17acd55265feec403c7aef86be0c25983ab279d83f3bcd3abbcb5b8b72",
                "details": {
                    "parent_model": "",
                    "format": "gguf",
                    "family": "llama",
                    "families": ["llama"],
                    "parameter_size": "3.2B",
                    "quantization_level": "Q4_K_M",
                },
            }
        )
    return Reply(200, {"content-type": "application/json; charset=utf-8"}, _go_json({"models": entries}).encode())


# --------------------------------------------------------------------------- server


class MockUpstream:
    """The mock server; ``add(instance, kind, models)`` before use."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._kinds: dict[str, tuple[str, list[str]]] = {}
        self._scripts: dict[str, deque[Script]] = {}
        self.records: list[Recorded] = []
        mock = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *_args: Any) -> None:
                pass

            def _handle(self) -> None:
                length = int(self.headers.get("content-length") or 0)
                raw = self.rfile.read(length) if length else b""
                reply = mock._dispatch(self.command, self.path, dict((k.lower(), v) for k, v in self.headers.items()), raw)
                self.send_response(reply.status)
                for k, v in reply.headers.items():
                    self.send_header(k, v)
                if reply.chunks is None:
                    self.send_header("content-length", str(len(reply.body)))
                    self.end_headers()
                    if self.command != "HEAD":
                        self.wfile.write(reply.body)
                    self.wfile.flush()
                    return
                self.send_header("transfer-encoding", "chunked")
                self.end_headers()
                for c in reply.chunks:
                    self.wfile.write(f"{len(c):x}\r\n".encode() + c + b"\r\n")
                    self.wfile.flush()
                self.wfile.write(b"0\r\n\r\n")
                self.wfile.flush()

            do_GET = do_POST = do_HEAD = do_PUT = do_DELETE = do_OPTIONS = _handle

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._server.daemon_threads = True
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)
        self._thread.start()

    @property
    def port(self) -> int:
        return self._server.server_address[1]

    def add(self, instance: str, kind: str, models: list[str]) -> str:
        """Serves `instance` with protocol `kind`; returns its base URL root."""
        self._kinds[instance] = (kind, models)
        return f"http://127.0.0.1:{self.port}/{instance}"

    def script(self, instance: str, *replies: Script) -> None:
        """Queues replies for the next generation requests of `instance`."""
        with self._lock:
            self._scripts.setdefault(instance, deque()).extend(replies)

    def script_all(self, make: Callable[[str], Script], times: int = 8) -> None:
        """Queues `make(kind)` for every instance, `times` times."""
        for instance, (kind, _) in self._kinds.items():
            self.script(instance, *[make(kind) for _ in range(times)])

    def reset(self) -> None:
        with self._lock:
            self.records.clear()
            self._scripts.clear()

    def generations(self, instance: str | None = None) -> list[Recorded]:
        with self._lock:
            return [r for r in self.records if r.is_generation and (instance is None or r.instance == instance)]

    def last(self, instance: str) -> Recorded:
        got = self.generations(instance)
        assert got, f"upstream {instance!r} received no generation request; all: {[(r.instance, r.path) for r in self.generations()]}"
        return got[-1]

    def close(self) -> None:
        self._server.shutdown()
        self._server.server_close()

    def _dispatch(self, method: str, target: str, headers: dict[str, str], raw: bytes) -> Reply:
        path = target.split("?", 1)[0]
        segments = path.split("/", 2)
        instance = segments[1] if len(segments) > 1 else ""
        rest = "/" + (segments[2] if len(segments) > 2 else "")
        body = None
        if raw:
            try:
                body = json.loads(raw)
            except ValueError:
                body = None
        rec = Recorded(instance, method, rest, headers, raw, body)
        with self._lock:
            self.records.append(rec)
            scripted = None
            queue = self._scripts.get(instance)
            if rec.is_generation and queue:
                scripted = queue.popleft()
        if scripted is not None:
            return scripted(rec) if callable(scripted) else scripted
        if instance not in self._kinds:
            return Reply.json(404, {"error": f"no instance {instance!r}"})
        kind, models = self._kinds[instance]
        if kind == "openai":
            if method == "POST" and rest.endswith("/chat/completions"):
                return openai_chat(rec)
            if method == "GET" and rest.rstrip("/").endswith("/models"):
                return openai_models(rec, models)
            return openai_error(404, f"Unknown request URL: {method} {rest}.", "invalid_request_error", "unknown_url")
        if kind == "anthropic":
            if method == "POST" and rest == "/v1/messages":
                return anthropic_messages(rec)
            if method == "GET" and rest.startswith("/v1/models"):
                return anthropic_models(rec, models)
            return anthropic_error(404, "Not found", "not_found_error")
        if kind == "ollama":
            if method == "POST" and rest == "/api/chat":
                return ollama_chat(rec)
            if rest == "/api/version":
                return Reply(200, {"content-type": "application/json; charset=utf-8"}, b'{"version":"0.12.6"}')
            if rest == "/api/tags":
                return ollama_tags(rec, models)
            if rest == "/":
                return Reply(200, {"content-type": "text/plain; charset=utf-8"}, b"Ollama is running")
            return Reply(404, {"content-type": "text/plain"}, b"404 page not found")
        return Reply.json(500, {"error": f"unknown kind {kind}"})
