"""Webhook delivery: fal's body (sorted keys, Python's default separators), signed, retried with backoff.

Delivery runs on its own small thread pool so a slow or failing receiver never holds a worker.
"""

from __future__ import annotations

import json
import logging
import random
import threading
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import httpx

from ..jobs import Job
from .signing import WebhookSigner

log = logging.getLogger(__name__)


def webhook_body(job: Job) -> bytes:
    """``{error, gateway_request_id, payload, request_id, status}`` serialized exactly like fal's deliveries."""
    outcome = job.outcome
    assert outcome is not None
    body: dict[str, Any] = {
        "request_id": job.request_id,
        "gateway_request_id": job.request_id,
        "status": "OK" if outcome.ok else "ERROR",
        "payload": outcome.body,
        "error": None if outcome.ok else f"Invalid status code: {outcome.status_code}",
    }
    return json.dumps(body, sort_keys=True).encode("utf-8")


class WebhookSender:
    def __init__(
        self,
        signer: WebhookSigner,
        *,
        max_attempts: int = 10,
        backoff_s: float = 2.0,
        max_backoff_s: float = 600.0,
        timeout_s: float = 15.0,
        threads: int = 4,
    ) -> None:
        self._signer = signer
        self._max_attempts = max_attempts
        self._backoff_s = backoff_s
        self._max_backoff_s = max_backoff_s
        self._pool = ThreadPoolExecutor(max_workers=threads, thread_name_prefix="webhook")
        self._http = httpx.Client(timeout=httpx.Timeout(timeout_s, connect=min(timeout_s, 10.0)))
        self._stop = threading.Event()
        self.deliveries: dict[str, list[int | str]] = {}  # request_id → status code (or error) per attempt

    def send(self, job: Job) -> None:
        if job.webhook_url:
            self._pool.submit(self._deliver, job)

    def close(self) -> None:
        self._stop.set()
        self._pool.shutdown(wait=False, cancel_futures=True)
        self._http.close()

    def _deliver(self, job: Job) -> None:
        body = webhook_body(job)
        attempts = self.deliveries.setdefault(job.request_id, [])
        for attempt in range(self._max_attempts):
            # Re-signed per attempt: receivers reject timestamps older than 5 minutes.
            headers = {"Content-Type": "application/json",
                       **self._signer.headers(job.request_id, job.user_id, body)}
            try:
                response = self._http.post(job.webhook_url or "", content=body, headers=headers)
                attempts.append(response.status_code)
                if 200 <= response.status_code < 300:
                    log.info("webhook for %s delivered (attempt %d)", job.request_id, attempt + 1)
                    return
            except httpx.HTTPError as exc:
                attempts.append(type(exc).__name__)
            delay = min(self._max_backoff_s, self._backoff_s * (2**attempt)) * random.uniform(0.75, 1.25)
            if self._stop.wait(delay):
                return
        log.warning("webhook for %s not delivered after %d attempts", job.request_id, self._max_attempts)
