"""One log for every part of the local stack: prefixed lines on the console and in ``stack.log``.

Logger names start with ``local.``, never ``faceswap``: Powertools adds a filter to the root handlers that drops
every record whose logger name contains its service name ("faceswap").

Each thread names the part it works for (``moto``, ``engine``, ``gateway``, ``relay``, ``submit_job`` …); handler
output printed to stdout (Powertools' JSON lines, EMF metrics) is routed through the same log with the name of
the function being invoked, so a job can be followed across parts in one place.
"""

from __future__ import annotations

import io
import logging
import sys
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import IO

_state = threading.local()
_COLOURS = {
    "moto": 90, "engine": 35, "gateway": 36, "relay": 33, "consumer": 33, "timer": 33, "stack": 32,
    "submit_job": 34, "webhook": 34, "store_result": 34, "reconcile_jobs": 34,
}


def current_component() -> str:
    return getattr(_state, "component", None) or threading.current_thread().name


@contextmanager
def component(name: str) -> Iterator[None]:
    """Attribute every log line (and printed line) of this thread to ``name`` for the block."""
    previous = getattr(_state, "component", None)
    _state.component = name
    try:
        yield
    finally:
        _state.component = previous


def set_component(name: str) -> None:
    _state.component = name


class _ComponentFilter(logging.Filter):
    def filter(self, record: logging.LogRecord) -> bool:
        if not hasattr(record, "component"):
            record.component = "moto" if record.name.startswith(("werkzeug", "moto")) else current_component()
        return True


class _ConsoleFilter(logging.Filter):
    """Moto's per-request access lines go to the file only unless verbose (SQS long polls are chatty)."""

    def __init__(self, verbose: bool) -> None:
        super().__init__()
        self.verbose = verbose

    def filter(self, record: logging.LogRecord) -> bool:
        return self.verbose or not (record.name.startswith("werkzeug") and record.levelno < logging.WARNING)


class _ColourFormatter(logging.Formatter):
    def __init__(self, colour: bool) -> None:
        super().__init__("%(asctime)s.%(msecs)03d %(component)-14s| %(message)s", "%H:%M:%S")
        self.colour = colour

    def format(self, record: logging.LogRecord) -> str:
        text = super().format(record)
        code = _COLOURS.get(getattr(record, "component", ""), 0)
        return f"\x1b[{code}m{text}\x1b[0m" if self.colour and code else text


class LineWriter(io.TextIOBase):
    """A text stream that logs each complete line under the current thread's component (for sys.stdout)."""

    def __init__(self, level: int = logging.INFO) -> None:
        super().__init__()
        self._level = level
        self._buffers: dict[int, str] = {}
        self._lock = threading.Lock()

    def writable(self) -> bool:
        return True

    def write(self, text: str) -> int:
        ident = threading.get_ident()
        with self._lock:
            pending = self._buffers.pop(ident, "") + text
            *lines, rest = pending.split("\n")
            if rest:
                self._buffers[ident] = rest
        for line in lines:
            if line.strip():
                logging.getLogger("local.output").log(self._level, line.rstrip())
        return len(text)

    def flush(self) -> None:
        return None


def setup(log_file: Path, *, console: bool = True, verbose: bool = False, capture_stdio: bool = True) -> None:
    """Route all logging (and, if asked, stdout/stderr) to the console with prefixes and to ``log_file``."""
    log_file.parent.mkdir(parents=True, exist_ok=True)
    root = logging.getLogger()
    for handler in list(root.handlers):
        root.removeHandler(handler)
    root.setLevel(logging.INFO)
    file_handler = logging.FileHandler(log_file, encoding="utf-8")
    file_handler.addFilter(_ComponentFilter())
    file_handler.setFormatter(_ColourFormatter(colour=False))
    root.addHandler(file_handler)
    if console:
        real_stdout: IO[str] = sys.__stdout__ or sys.stdout
        console_handler = logging.StreamHandler(real_stdout)
        console_handler.addFilter(_ComponentFilter())
        console_handler.addFilter(_ConsoleFilter(verbose))
        console_handler.setFormatter(_ColourFormatter(colour=real_stdout.isatty()))
        root.addHandler(console_handler)
    logging.getLogger("werkzeug").setLevel(logging.INFO)
    for noisy in ("botocore", "boto3", "urllib3", "httpx", "httpcore", "s3transfer"):
        logging.getLogger(noisy).setLevel(logging.WARNING)
    if capture_stdio:
        sys.stdout = LineWriter(logging.INFO)  # type: ignore[assignment]
        sys.stderr = LineWriter(logging.WARNING)  # type: ignore[assignment]


def pipe_lines(stream: IO[bytes], name: str) -> threading.Thread:
    """Log each line a child process writes, under ``name``, until the stream closes."""

    def pump() -> None:
        set_component(name)
        log = logging.getLogger(f"local.{name}")
        for raw in iter(stream.readline, b""):
            line = raw.decode("utf-8", "replace").rstrip()
            if line:
                log.info(line)

    thread = threading.Thread(target=pump, name=f"{name}-log", daemon=True)
    thread.start()
    return thread
