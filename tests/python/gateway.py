"""Starting `llm serve` (and `llm` commands) on a configuration written to a temp dir."""

from __future__ import annotations

import json
import os
import re
import subprocess
import tempfile
import threading
import time
import urllib.error
import urllib.request
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
#: How long a gateway may take to start listening and report healthy.
START_TIMEOUT = 60.0


def llm_bin() -> str:
    path = os.environ.get("LLM_BIN") or str(ROOT / "target" / "debug" / "llm")
    if not os.access(path, os.X_OK):
        raise RuntimeError(f"{path} is missing: build it with `cargo build -p llm-cli` (or set LLM_BIN)")
    return path


def toml_str(s: str) -> str:
    return json.dumps(s)


class GatewayError(RuntimeError):
    pass


class Gateway:
    """A running `llm serve --addr 127.0.0.1:0` on `config` (TOML text)."""

    def __init__(
        self, config: str, name: str = "gateway", env: dict[str, str] | None = None, require_healthy: bool = True
    ) -> None:
        """Starts the gateway and waits until `/health` answers 200 (any answer
        when `require_healthy` is false: for configurations meant to fail)."""
        self.dir = Path(tempfile.mkdtemp(prefix=f"llm-{name}-"))
        self.config_path = self.dir / "llm.toml"
        self.config_path.write_text(config)
        self.log_path = self.dir / "serve.log"
        self._log = open(self.log_path, "wb")
        run_env = dict(os.environ)
        run_env.setdefault("RUST_LOG", "info")
        run_env["NO_COLOR"] = "1"
        run_env.pop("LLM_CONFIG", None)
        run_env.update(env or {})
        self.proc = subprocess.Popen(
            [llm_bin(), "--config", str(self.config_path), "serve", "--addr", "127.0.0.1:0"],
            stdout=subprocess.PIPE,
            stderr=self._log,
            cwd=self.dir,
            env=run_env,
        )
        self.url = self._read_address()
        self.base_url = f"{self.url}/v1"
        self._wait_healthy(require_healthy)

    def _read_address(self) -> str:
        # `llm serve` prints "listening on http://ADDR (...)" once it listens.
        found: list[str] = []

        def reader() -> None:
            assert self.proc.stdout is not None
            for line in iter(self.proc.stdout.readline, b""):
                m = re.search(rb"listening on (http://[0-9.:\[\]]+)", line)
                if m and not found:
                    found.append(m.group(1).decode())

        t = threading.Thread(target=reader, daemon=True)
        t.start()
        deadline = time.monotonic() + START_TIMEOUT
        while not found:
            if self.proc.poll() is not None:
                t.join(timeout=1)
                if found:
                    break
                raise GatewayError(f"llm serve exited with {self.proc.returncode}:\n{self.log_tail()}")
            if time.monotonic() > deadline:
                self.stop()
                raise GatewayError(f"llm serve did not print its address:\n{self.log_tail()}")
            time.sleep(0.05)
        return found[0]

    def _wait_healthy(self, require_healthy: bool) -> None:
        deadline = time.monotonic() + START_TIMEOUT
        last = ""
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise GatewayError(f"llm serve exited with {self.proc.returncode}:\n{self.log_tail()}")
            try:
                with urllib.request.urlopen(f"{self.url}/health?probe=1", timeout=10) as r:
                    if r.status == 200:
                        return
            except urllib.error.HTTPError as e:
                if not require_healthy:
                    return
                last = f"{e.code} {e.read()[:500]!r}"
            except OSError as e:
                last = str(e)
            time.sleep(0.1)
        self.stop()
        raise GatewayError(f"llm serve never became healthy (last: {last}):\n{self.log_tail()}")

    def log_tail(self, n: int = 60) -> str:
        try:
            if not self._log.closed:
                self._log.flush()
            lines = self.log_path.read_text(errors="replace").splitlines()
        except OSError:
            return ""
        return "\n".join(lines[-n:])

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout=20)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self._log.close()


def run_llm(config: str, *args: str, timeout: float = 120) -> subprocess.CompletedProcess:
    """Runs `llm --config <config> ARGS…` and returns the finished process."""
    d = Path(tempfile.mkdtemp(prefix="llm-cmd-"))
    path = d / "llm.toml"
    path.write_text(config)
    env = dict(os.environ)
    env.pop("LLM_CONFIG", None)
    return subprocess.run(
        [llm_bin(), "--config", str(path), *args],
        capture_output=True,
        cwd=d,
        env=env,
        timeout=timeout,
    )
