#!/usr/bin/env bash
# A throwaway PostgreSQL server on a free loopback port, for the tests of the
# gateway's PostgreSQL store.
#
#   eval "$(.ci/postgres.sh start)"    # installs postgresql when missing
#   ...                                # LLM_TEST_POSTGRES_URL is set
#   .ci/postgres.sh stop "$LLM_TEST_POSTGRES_DIR"
#
# `server-stop DIR` and `server-start DIR` stop and start the server of a
# running cluster again (same port, same data): tests of a database that
# goes away mid-run use them.
#
# `start` prints shell lines to stdout for the caller to eval:
# LLM_TEST_POSTGRES_URL (postgres://postgres:…@127.0.0.1:PORT/llm_test, password
# authentication) and LLM_TEST_POSTGRES_DIR (the cluster's directory, for
# `stop`). The cluster lives in a fresh temporary directory and runs as the
# unprivileged `postgres` user when started by root (PostgreSQL refuses to run
# as root). With `openssl` on PATH the server also accepts TLS (a self-signed
# certificate made here: clients connect with `sslmode=require`). Progress and
# errors go to stderr; any failure exits non-zero.
set -euo pipefail

say() { echo "postgres: $*" >&2; }

# The newest installed server's bin directory (Debian keeps them off PATH).
pg_bindir() {
    local d
    d=$(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -n 1)
    if [ -n "$d" ] && [ -x "$d/initdb" ]; then
        echo "$d"
    elif command -v initdb >/dev/null && command -v pg_ctl >/dev/null; then
        dirname "$(command -v initdb)"
    fi
}

# Runs a server tool as the cluster's owner.
as_owner() {
    if [ "$(id -u)" = 0 ]; then
        runuser -u postgres -- "$@"
    else
        "$@"
    fi
}

start() {
    local bin
    bin=$(pg_bindir)
    if [ -z "$bin" ]; then
        if [ "$(id -u)" != 0 ]; then
            say "PostgreSQL is not installed and installing it needs root (apt-get install postgresql)"
            exit 1
        fi
        say "installing postgresql"
        apt-get update >&2
        DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends postgresql >&2
        bin=$(pg_bindir)
        [ -n "$bin" ] || { say "postgresql installed but initdb not found"; exit 1; }
    fi
    if [ "$(id -u)" = 0 ] && ! id postgres >/dev/null 2>&1; then
        useradd --system --no-create-home --shell /usr/sbin/nologin postgres
    fi

    local dir password
    dir=$(mktemp -d "${TMPDIR:-/tmp}/llm-pg.XXXXXX")
    password=llm_test_$RANDOM$RANDOM
    printf '%s\n' "$password" >"$dir/pwfile"
    mkdir "$dir/data" "$dir/sock"
    if [ "$(id -u)" = 0 ]; then
        chown -R postgres: "$dir"
    fi
    chmod 700 "$dir"
    as_owner "$bin/initdb" -D "$dir/data" -U postgres --pwfile="$dir/pwfile" \
        --auth-local=trust --auth-host=scram-sha-256 -E UTF8 --locale=C.UTF-8 \
        >"$dir/initdb.log" 2>&1 || {
        cat "$dir/initdb.log" >&2
        rm -rf "$dir"
        exit 1
    }
    rm -f "$dir/pwfile"

    local tls=""
    if command -v openssl >/dev/null; then
        openssl req -x509 -newkey rsa:2048 -nodes -days 7 -subj /CN=127.0.0.1 \
            -keyout "$dir/server.key" -out "$dir/server.crt" >/dev/null 2>&1
        chmod 600 "$dir/server.key"
        if [ "$(id -u)" = 0 ]; then
            chown postgres: "$dir/server.key" "$dir/server.crt"
        fi
        tls="-c ssl=on -c ssl_cert_file=$dir/server.crt -c ssl_key_file=$dir/server.key"
    fi

    local port="" p
    for _ in 1 2 3 4 5; do
        p=$((20000 + RANDOM % 40000))
        # Taken if something accepts a connection on it.
        (exec 3<>"/dev/tcp/127.0.0.1/$p") 2>/dev/null && continue
        # A scratch server: durability is not needed, speed is.
        echo "-p $p -k $dir/sock -c listen_addresses=127.0.0.1 -c fsync=off \
-c synchronous_commit=off -c full_page_writes=off -c max_connections=200 $tls" >"$dir/pg_opts"
        if server_start "$dir" >&2; then
            port=$p
            break
        fi
    done
    if [ -z "$port" ]; then
        say "the server did not start"
        cat "$dir/server.log" >&2 || true
        rm -rf "$dir"
        exit 1
    fi
    if ! as_owner "$bin/createdb" -h "$dir/sock" -p "$port" -U postgres llm_test; then
        stop "$dir"
        exit 1
    fi
    say "listening on 127.0.0.1:$port (cluster in $dir)"
    echo "export LLM_TEST_POSTGRES_URL='postgres://postgres:$password@127.0.0.1:$port/llm_test'"
    echo "export LLM_TEST_POSTGRES_DIR='$dir'"
}

# Starts the cluster in DIR with the options `start` chose.
server_start() {
    local dir=$1 bin
    bin=$(pg_bindir)
    as_owner "$bin/pg_ctl" -D "$dir/data" -l "$dir/server.log" -w -t 60 \
        -o "$(cat "$dir/pg_opts")" start
}

# Stops the server of DIR, keeping the cluster.
server_stop() {
    local dir=$1 bin
    bin=$(pg_bindir)
    as_owner "$bin/pg_ctl" -D "$dir/data" -m fast -w stop
}

stop() {
    local dir=${1:-}
    [ -n "$dir" ] && [ -d "$dir/data" ] || return 0
    local bin
    bin=$(pg_bindir)
    if [ -n "$bin" ]; then
        as_owner "$bin/pg_ctl" -D "$dir/data" -m immediate -w stop >/dev/null 2>&1 || true
    fi
    rm -rf "$dir"
}

case "${1:-}" in
    start) start ;;
    stop) stop "${2:-}" ;;
    server-start) server_start "${2:?cluster directory}" >&2 ;;
    server-stop) server_stop "${2:?cluster directory}" >&2 ;;
    *)
        echo "usage: $0 start | stop DIR | server-stop DIR | server-start DIR" >&2
        exit 2
        ;;
esac
