"""The server's queue: requests wait in order, N worker threads run them, and each keeps its status, logs and result.

Kept apart from HTTP so the protocol routes stay thin and the queue can be tested without a server. States are
fal's (IN_QUEUE → IN_PROGRESS → COMPLETED); a failed run is COMPLETED with an error and a non-200 result, as on fal.
"""

from __future__ import annotations

import logging
import threading
import time
import uuid
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, timezone
from enum import Enum
from pathlib import Path
from typing import Any

log = logging.getLogger(__name__)

_MAX_LOG_LINES = 500


class JobState(str, Enum):
    IN_QUEUE = "IN_QUEUE"
    IN_PROGRESS = "IN_PROGRESS"
    COMPLETED = "COMPLETED"


@dataclass(frozen=True)
class Outcome:
    """What the result route answers: the HTTP status and the JSON body; ``error`` set when the run failed."""

    status_code: int
    body: dict[str, Any]
    error: str | None = None
    error_type: str | None = None

    @property
    def ok(self) -> bool:
        return self.status_code == 200


@dataclass
class Job:
    """One queued request. Mutated only under the manager's lock (logs are appended under it too)."""

    endpoint: str
    body: bytes
    user_id: str
    webhook_url: str | None
    base_url: str
    request_id: str = field(default_factory=lambda: str(uuid.uuid4()))
    state: JobState = JobState.IN_QUEUE
    created_at: float = field(default_factory=time.time)
    started_at: float | None = None
    finished_at: float | None = None
    logs: list[dict[str, str]] = field(default_factory=list)
    outcome: Outcome | None = None
    cancel_event: threading.Event = field(default_factory=threading.Event)

    @property
    def inference_time(self) -> float | None:
        if self.started_at is None or self.finished_at is None:
            return None
        return round(self.finished_at - self.started_at, 3)


def _now_iso() -> str:
    return datetime.now(timezone.utc).isoformat(timespec="milliseconds").replace("+00:00", "Z")


class JobContext:
    """What a processor sees of its job: logs, progress, cancellation, a work dir and a place to publish files."""

    def __init__(self, job: Job, manager: JobManager, work_dir: Path, files_dir: Path) -> None:
        self._job = job
        self._manager = manager
        self.work_dir = work_dir
        self.files_dir = files_dir
        self._last_pct = -1

    @property
    def request_id(self) -> str:
        return self._job.request_id

    def log(self, message: str, level: str = "INFO") -> None:
        self._manager.append_log(self._job, message, level)

    def progress(self, done: int, total: int) -> None:
        """Progress becomes log lines (fal has no progress field), one per 5 %."""
        pct = int(100 * done / total) if total else 0
        if pct >= self._last_pct + 5 or (done == total and pct != self._last_pct):
            self._last_pct = pct
            self.log(f"Processed {done}/{total} frames ({pct}%)")

    def cancelled(self) -> bool:
        return self._job.cancel_event.is_set()

    def file_url(self, name: str) -> str:
        return f"{self._job.base_url.rstrip('/')}/files/{self._job.request_id}/{name}"


Runner = Callable[[Job, JobContext], Outcome]
CompletionHook = Callable[[Job], None]


class JobManager:
    """A FIFO of jobs and a pool of worker threads that run them one at a time each."""

    def __init__(self, runner: Runner, data_dir: Path, workers: int = 1, on_complete: CompletionHook | None = None):
        self._runner = runner
        self._on_complete = on_complete
        self._workers = max(1, workers)
        self._data_dir = data_dir
        self._jobs: dict[str, Job] = {}
        self._queue: deque[Job] = deque()
        self._cond = threading.Condition()
        self._threads: list[threading.Thread] = []
        self._stopping = False

    # -- lifecycle ---------------------------------------------------------------------------------------
    def start(self) -> None:
        for i in range(self._workers):
            t = threading.Thread(target=self._work, name=f"engine-worker-{i}", daemon=True)
            t.start()
            self._threads.append(t)

    def shutdown(self, timeout: float = 5.0) -> None:
        with self._cond:
            self._stopping = True
            for job in self._jobs.values():
                job.cancel_event.set()
            self._cond.notify_all()
        for t in self._threads:
            t.join(timeout)

    # -- queries -----------------------------------------------------------------------------------------
    def submit(self, job: Job) -> int:
        """Queue a job; returns its queue position (0 = next)."""
        with self._cond:
            self._jobs[job.request_id] = job
            self._queue.append(job)
            self._cond.notify()
            return len(self._queue) - 1

    def get(self, request_id: str) -> Job | None:
        with self._cond:
            return self._jobs.get(request_id)

    def queue_length(self) -> int:
        with self._cond:
            return len(self._queue)

    def position(self, job: Job) -> int:
        with self._cond:
            try:
                return self._queue.index(job)
            except ValueError:
                return 0

    def snapshot(self, job: Job) -> tuple[JobState, list[dict[str, str]], Outcome | None, int]:
        """A consistent view for the status route: state, a copy of the logs, the outcome, the queue position."""
        with self._cond:
            pos = self._queue.index(job) if job.state == JobState.IN_QUEUE and job in self._queue else 0
            return job.state, list(job.logs), job.outcome, pos

    def append_log(self, job: Job, message: str, level: str = "INFO") -> None:
        with self._cond:
            if len(job.logs) >= _MAX_LOG_LINES:
                del job.logs[1 : len(job.logs) - _MAX_LOG_LINES + 2]
            job.logs.append({"message": message, "level": level, "source": "USER", "timestamp": _now_iso()})

    def cancel(self, request_id: str) -> str | None:
        """"CANCELLATION_REQUESTED" (queued: removed; running: signalled), "ALREADY_COMPLETED", or None if unknown."""
        removed: Job | None = None
        with self._cond:
            job = self._jobs.get(request_id)
            if job is None:
                return None
            if job.state == JobState.COMPLETED:
                return "ALREADY_COMPLETED"
            job.cancel_event.set()
            if job.state == JobState.IN_QUEUE:
                self._queue.remove(job)
                job.state = JobState.COMPLETED
                job.finished_at = time.time()
                job.outcome = cancelled_outcome()
                removed = job
        if removed is not None:
            self.append_log(removed, "Request cancelled before it started", "WARN")
            self._notify(removed)
        return "CANCELLATION_REQUESTED"

    def purge(self, older_than: float) -> list[Job]:
        """Forget completed jobs finished before ``older_than`` (epoch seconds); returns them for file cleanup."""
        with self._cond:
            old = [
                j for j in self._jobs.values()
                if j.state == JobState.COMPLETED and (j.finished_at or 0) < older_than
            ]
            for j in old:
                del self._jobs[j.request_id]
            return old

    # -- workers -----------------------------------------------------------------------------------------
    def _work(self) -> None:
        while True:
            with self._cond:
                while not self._queue and not self._stopping:
                    self._cond.wait()
                if self._stopping:
                    return
                job = self._queue.popleft()
                job.state = JobState.IN_PROGRESS
                job.started_at = time.time()
            self._run(job)

    def _run(self, job: Job) -> None:
        work_dir = self._data_dir / "work" / job.request_id
        files_dir = self._data_dir / "files" / job.request_id
        work_dir.mkdir(parents=True, exist_ok=True)
        files_dir.mkdir(parents=True, exist_ok=True)
        ctx = JobContext(job, self, work_dir, files_dir)
        self.append_log(job, "Request started")
        try:
            outcome = self._runner(job, ctx)
        except Exception:  # noqa: BLE001 - the runner maps known errors; anything else is an internal error
            log.exception("request %s failed", job.request_id)
            outcome = internal_error_outcome()
        finally:
            _rmtree(work_dir)
            job.body = b""  # inputs can be large data URIs; they are not needed once the run is over
        if job.cancel_event.is_set() and outcome.ok:
            outcome = cancelled_outcome()
        if not outcome.ok:
            _rmtree(files_dir)
        self.append_log(job, "Request completed" if outcome.ok else f"Request failed: {outcome.error}",
                        "INFO" if outcome.ok else "ERROR")
        with self._cond:
            job.outcome = outcome
            job.finished_at = time.time()
            job.state = JobState.COMPLETED
        self._notify(job)

    def _notify(self, job: Job) -> None:
        if self._on_complete is not None:
            try:
                self._on_complete(job)
            except Exception:  # noqa: BLE001 - a webhook problem must never stop a worker
                log.exception("completion hook failed for %s", job.request_id)


def cancelled_outcome() -> Outcome:
    return Outcome(
        499,
        {"detail": "Request was cancelled by the client", "error_type": "client_cancelled"},
        error="Request was cancelled by the client",
        error_type="client_cancelled",
    )


def internal_error_outcome() -> Outcome:
    return Outcome(
        500,
        {"detail": "Internal server error while processing the request", "error_type": "runner_server_error"},
        error="Internal server error while processing the request",
        error_type="runner_server_error",
    )


def _rmtree(path: Path) -> None:
    import shutil

    shutil.rmtree(path, ignore_errors=True)
