#!/usr/bin/env bash
# The Python test suite of the gateway (tests/python), run with the official
# SDKs in a virtual environment that is created once and reused:
#
#   .ci/python.sh [pytest arguments]     set up, then run the suite
#   .ci/python.sh --setup                set up only; prints the venv's python
#
# The venv lives in $LLM_ROUTER_CACHE (default ~/.cache/llm-router)/py-venv and
# is reinstalled when tests/python/requirements.txt changes. The `llm` binary
# is LLM_BIN (default target/debug/llm; build it first with
# `cargo build -p llm-cli`). With LLAMA_SERVER and SMOLLM2_GGUF set (see
# .ci/real-model.sh), the real-model tests run too; otherwise they are skipped.
set -euo pipefail
cd "$(dirname "$0")/.."
. .ci/venv.sh

VENV=$(llm_cache_dir)/py-venv
REQ=tests/python/requirements.txt
start=$SECONDS
ensure_venv "$VENV"
PY=$VENV/bin/python
want=$(sha256sum "$REQ" | cut -d' ' -f1)
have=$(cat "$VENV/.requirements.sha256" 2>/dev/null || true)
if [ "$want" != "$have" ]; then
    echo "python: installing $(grep -v '^#' "$REQ" | tr '\n' ' ')" >&2
    "$PY" -m pip install --disable-pip-version-check -q -r "$REQ" >&2
    echo "$want" >"$VENV/.requirements.sha256"
fi
echo "python: $("$PY" --version 2>&1) in $VENV ($((SECONDS - start)) s)" >&2
echo "python: $("$PY" -m pip freeze --disable-pip-version-check 2>/dev/null \
    | grep -iE '^(openai|pydantic|anthropic|ollama|pytest|httpx)==' | tr '\n' ' ')" >&2

if [ "${1:-}" = "--setup" ]; then
    echo "$PY"
    exit 0
fi

export LLM_BIN=${LLM_BIN:-$PWD/target/debug/llm}
if [ ! -x "$LLM_BIN" ]; then
    echo "python: $LLM_BIN is missing; run 'cargo build -p llm-cli' first" >&2
    exit 1
fi
# The whole suite unless a test file or directory is named.
paths=(tests/python)
for a in "$@"; do
    case $a in -*) ;; *) [ -e "${a%%::*}" ] && paths=() ;; esac
done
exec "$PY" -m pytest -p no:cacheprovider "${paths[@]}" "$@"
