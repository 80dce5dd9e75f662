# Sourced by the CI helper scripts: a Python virtual environment that is
# created once and reused.
#
#   ensure_venv DIR   creates DIR as a venv unless a working one is there,
#                     installing Debian's python3-venv when python3 cannot
#                     bootstrap pip into a venv without it.

llm_cache_dir() {
    echo "${LLM_ROUTER_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/llm-router}"
}

ensure_venv() {
    local dir=$1
    if [ -x "$dir/bin/python" ] && "$dir/bin/python" -c 'import sys' 2>/dev/null \
        && "$dir/bin/python" -m pip --version >/dev/null 2>&1; then
        return 0
    fi
    if ! command -v python3 >/dev/null; then
        echo "python3 is missing: installing it" >&2
        apt-get update >&2
        DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends python3 >&2
    fi
    rm -rf "$dir"
    mkdir -p "$(dirname "$dir")"
    if python3 -m venv "$dir" >&2 && "$dir/bin/python" -m pip --version >/dev/null 2>&1; then
        return 0
    fi
    # Debian ships venv's pip bootstrap (ensurepip) separately, in python3-venv
    # (python3.X-venv).
    local ver
    ver=$(python3 -c 'import sys; print(f"{sys.version_info[0]}.{sys.version_info[1]}")')
    echo "python3 cannot create a venv with pip: installing python3-venv" >&2
    apt-get update >&2
    DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends \
        python3-venv "python${ver}-venv" >&2 \
        || DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends python3-venv >&2
    rm -rf "$dir"
    python3 -m venv "$dir" >&2
}

# True when PyPI answers for PACKAGE (used to tell "registry unreachable"
# from a real failure).
pypi_reachable() {
    local py=$1 package=$2
    "$py" -m pip index versions "$package" >/dev/null 2>&1
}
