"""The engine's queue-protocol server as a child process of the stack, with its output in the stack log."""

from __future__ import annotations

import logging
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import httpx

from faceswap_local import logs

log = logging.getLogger("local.engine")

def die_with_parent() -> None:
    """Linux: the child gets SIGTERM if the stack dies without stopping it (kill -9), so no engine is orphaned."""
    try:
        import ctypes

        ctypes.CDLL("libc.so.6", use_errno=True).prctl(1, signal.SIGTERM)  # PR_SET_PDEATHSIG
    except (OSError, AttributeError):
        pass


_LAUNCH = "import sys; from faceswap_engine.cli import main; sys.exit(main())"


class EngineProcess:
    """``faceswap-engine serve`` on host:port with a data dir; ready once its JWKS answers."""

    def __init__(self, host: str, port: int, data_dir: Path, key: str, workers: int = 1,
                 weights: Path | None = None) -> None:
        self.host, self.port, self.data_dir, self.key = host, port, data_dir, key
        self.workers, self.weights = workers, weights
        self.proc: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"http://{self.host}:{self.port}"

    def command(self) -> list[str]:
        cmd = [sys.executable, "-c", _LAUNCH, "serve", "--host", self.host, "--port", str(self.port),
               "--data-dir", str(self.data_dir)]  # the key goes in ENGINE_KEY, not on the command line
        if self.workers > 1:
            cmd += ["--workers", str(self.workers)]
        if self.weights:
            cmd += ["--weights", str(self.weights)]
        return cmd

    def launch(self) -> None:
        """Start the process; ``wait_ready`` blocks until it serves (model loading takes a few seconds)."""
        self.data_dir.mkdir(parents=True, exist_ok=True)
        env = dict(os.environ)
        env.setdefault("PYTHONUNBUFFERED", "1")
        env["ENGINE_KEY"] = self.key
        self.proc = subprocess.Popen(self.command(), stdout=subprocess.PIPE, stderr=subprocess.STDOUT, env=env,
                                     start_new_session=True, preexec_fn=die_with_parent)
        assert self.proc.stdout is not None
        logs.pipe_lines(self.proc.stdout, "engine")
        log.info("engine pid %d: %s", self.proc.pid, " ".join(self.command()[3:]))

    def wait_ready(self, timeout: float) -> None:
        assert self.proc is not None
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"engine server exited with {self.proc.returncode}; see the stack log")
            try:
                if httpx.get(f"{self.url}/.well-known/jwks.json", timeout=2).status_code == 200:
                    return
            except httpx.HTTPError:
                pass
            time.sleep(0.25)
        raise TimeoutError(f"engine server did not answer on {self.url} within {timeout:.0f}s")

    def stop(self, timeout: float = 10.0) -> None:
        if self.proc is None or self.proc.poll() is not None:
            return
        self.proc.send_signal(signal.SIGTERM)
        try:
            self.proc.wait(timeout)
        except subprocess.TimeoutExpired:
            log.warning("engine did not stop in %.0fs; killing pid %d", timeout, self.proc.pid)
            self.proc.kill()
            self.proc.wait(5)
