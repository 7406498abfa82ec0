"""Client for fal's queue protocol (fal.ai itself, or the project's engine speaking the same protocol).

Submit is sent exactly once: a retried POST is a second, separately billed job. Its failures are split
by what we know: refused before sending (PROVIDER_UNAVAILABLE, safe to try again), rejected with an
answer (PROVIDER_REJECTED, with the provider's detail), or sent with no usable answer
(SUBMIT_OUTCOME_UNKNOWN: the job may exist; the reconciler must find out, never blindly resubmit).
Status, result and cancel are idempotent reads/requests and are retried with backoff and jitter.
"""

from __future__ import annotations

import random
import time
from collections.abc import Callable
from typing import Any
from urllib.parse import quote

import httpx
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from .api_models import Endpoint, QueueStatus, QueueSubmitResponse
from .errors import ErrorCode, PipelineError

USER_AGENT = "faceswap-pipeline/0.1 (httpx)"
RETRY_STATUS = frozenset({408, 429, 500, 502, 503, 504})
DEFAULT_TIMEOUT = httpx.Timeout(30.0, connect=10.0)


class ProviderError(PipelineError):
    """An HTTP-level failure of the provider. `retryable` means trying again later is safe."""

    def __init__(
        self,
        status_code: int | None,
        detail: Any = None,
        *,
        code: str = ErrorCode.PROVIDER_FAILED,
        message: str | None = None,
        retryable: bool = False,
        error_type: str | None = None,
    ) -> None:
        text = message or _detail_text(detail) or f"provider answered HTTP {status_code}"
        super().__init__(code, text, detail)
        self.status_code = status_code
        self.retryable = retryable
        self.error_type = error_type


class RetryPolicy(BaseModel):
    """Exponential backoff with jitter, bounded attempts (total, including the first)."""

    model_config = ConfigDict(frozen=True)

    max_attempts: int = Field(default=5, ge=1, le=20)
    base_delay: float = Field(default=0.5, ge=0)
    max_delay: float = Field(default=10.0, ge=0)
    jitter: tuple[float, float] = (0.5, 1.5)

    def delay(self, attempt: int, rand: Callable[[], float] = random.random) -> float:
        """Delay before retry number `attempt` (1-based)."""
        low, high = self.jitter
        raw = min(self.max_delay, self.base_delay * (2 ** (attempt - 1)))
        return min(self.max_delay, raw * (low + (high - low) * rand()))


def _detail_text(detail: Any) -> str:
    if isinstance(detail, str):
        return detail
    if isinstance(detail, list) and detail:
        parts = []
        for item in detail[:5]:
            if isinstance(item, dict):
                loc = ".".join(str(p) for p in item.get("loc", []) if p != "body")
                parts.append(f"{loc}: {item.get('msg', item)}" if loc else str(item.get("msg", item)))
            else:
                parts.append(str(item))
        return "; ".join(parts)
    if isinstance(detail, dict):
        return str(detail.get("detail") or detail.get("error") or detail.get("status") or "")
    return ""


def _body(response: httpx.Response) -> Any:
    try:
        return response.json()
    except ValueError:
        return response.text[:2000] or None


def _detail_of(response: httpx.Response) -> Any:
    body = _body(response)
    if isinstance(body, dict) and "detail" in body:
        return body["detail"]
    return body


class FalQueueClient:
    """submit / status / result / cancel against `{base_url}/{app_id}`. The key is never logged."""

    def __init__(
        self,
        base_url: str,
        app_id: str,
        key: str,
        http: httpx.Client | None = None,
        retry: RetryPolicy = RetryPolicy(),
        *,
        timeout: httpx.Timeout = DEFAULT_TIMEOUT,
        sleep: Callable[[float], None] = time.sleep,
        rand: Callable[[], float] = random.random,
    ) -> None:
        self._base = base_url.rstrip("/")
        self._app_id = app_id.strip("/")
        self._headers = {"Authorization": f"Key {key}", "User-Agent": USER_AGENT, "Accept": "application/json"}
        self._http = http or httpx.Client(timeout=timeout, follow_redirects=False)
        self._timeout = timeout
        self._retry = retry
        self._sleep = sleep
        self._rand = rand

    def __repr__(self) -> str:  # no key in reprs or logs
        return f"FalQueueClient(base_url={self._base!r}, app_id={self._app_id!r})"

    # -- URLs -------------------------------------------------------------------------------------
    def submit_url(self, endpoint: Endpoint) -> str:
        return f"{self._base}/{endpoint.fal_id(self._app_id)}"

    def request_url(self, request_id: str, suffix: str = "") -> str:
        """Sub-path-less form `{base}/{app_id}/requests/{id}[/status|/cancel]` (protocol ref §1.2)."""
        rid = quote(request_id, safe="")
        return f"{self._base}/{self._app_id}/requests/{rid}{suffix}"

    # -- submit (never retried) -------------------------------------------------------------------
    def submit(self, endpoint: Endpoint, input_model: BaseModel, webhook_url: str | None) -> QueueSubmitResponse:
        """POST the input once. Raises ProviderError with code PROVIDER_UNAVAILABLE / _REJECTED / SUBMIT_OUTCOME_UNKNOWN."""
        params = {"fal_webhook": webhook_url} if webhook_url else None
        body = input_model.model_dump(mode="json", exclude_none=True)
        try:
            response = self._http.post(
                self.submit_url(endpoint), params=params, json=body, headers=self._headers, timeout=self._timeout
            )
        except (httpx.ConnectError, httpx.ConnectTimeout, httpx.PoolTimeout, httpx.UnsupportedProtocol) as exc:
            raise ProviderError(
                None, str(exc), code=ErrorCode.PROVIDER_UNAVAILABLE,
                message=f"provider not reachable, nothing was sent: {type(exc).__name__}", retryable=True,
            ) from exc
        except httpx.TransportError as exc:
            raise ProviderError(
                None, str(exc), code=ErrorCode.SUBMIT_OUTCOME_UNKNOWN,
                message=f"submit sent but no answer ({type(exc).__name__}); the job may exist at the provider",
            ) from exc
        if response.is_success:
            try:
                return QueueSubmitResponse.model_validate(response.json())
            except (ValueError, ValidationError) as exc:
                raise ProviderError(
                    response.status_code, _body(response), code=ErrorCode.SUBMIT_OUTCOME_UNKNOWN,
                    message="submit answered 2xx without a usable request_id",
                ) from exc
        status = response.status_code
        detail = _detail_of(response)
        error_type = response.headers.get("x-fal-error-type")
        if status in (429, 503):
            # Refused outright (queue full / unavailable): nothing was enqueued, trying later is safe.
            raise ProviderError(status, detail, code=ErrorCode.PROVIDER_UNAVAILABLE, retryable=True, error_type=error_type)
        if 400 <= status < 500 and status != 408:
            raise ProviderError(status, detail, code=ErrorCode.PROVIDER_REJECTED, error_type=error_type)
        raise ProviderError(
            status, detail, code=ErrorCode.SUBMIT_OUTCOME_UNKNOWN, error_type=error_type,
            message=f"submit answered HTTP {status}; the job may exist at the provider",
        )

    # -- idempotent calls (retried) ---------------------------------------------------------------
    def status(self, endpoint: Endpoint | None, request_id: str, logs: bool = True) -> QueueStatus:
        """Queue status (IN_QUEUE / IN_PROGRESS / COMPLETED, maybe error). `endpoint` is not part of the URL."""
        response = self._call("GET", self.request_url(request_id, "/status"), params={"logs": "1" if logs else "0"})
        if not response.is_success:
            raise ProviderError(response.status_code, _detail_of(response), code=ErrorCode.PROVIDER_REJECTED)
        try:
            return QueueStatus.model_validate(response.json())
        except (ValueError, ValidationError) as exc:
            raise ProviderError(response.status_code, _body(response), code=ErrorCode.PROVIDER_BAD_RESPONSE,
                                message="status answer is not a queue status") from exc

    def result(self, endpoint: Endpoint | None, request_id: str) -> dict[str, Any]:
        """The model output (raw JSON). A failed run raises ProviderError(status_code, detail), e.g. 422."""
        response = self._call("GET", self.request_url(request_id))
        if not response.is_success:
            raise ProviderError(
                response.status_code, _detail_of(response), code=ErrorCode.PROVIDER_FAILED,
                error_type=response.headers.get("x-fal-error-type"),
            )
        try:
            data = response.json()
        except ValueError as exc:
            raise ProviderError(response.status_code, _body(response), code=ErrorCode.PROVIDER_BAD_RESPONSE,
                                message="result is not JSON") from exc
        if not isinstance(data, dict):
            raise ProviderError(response.status_code, data, code=ErrorCode.PROVIDER_BAD_RESPONSE,
                                message="result is not a JSON object")
        return data

    def cancel(self, endpoint: Endpoint | None, request_id: str) -> bool:
        """True if cancellation was requested; False if the request had already completed (not an error)."""
        response = self._call("PUT", self.request_url(request_id, "/cancel"))
        if response.is_success:
            return True
        body = _body(response)
        if response.status_code == 400 and "ALREADY_COMPLETED" in str(body):
            return False
        raise ProviderError(response.status_code, _detail_of(response), code=ErrorCode.PROVIDER_REJECTED)

    def _call(self, method: str, url: str, params: dict[str, str] | None = None) -> httpx.Response:
        """Send with bounded retries on 408/429/5xx and transport errors; returns the last answer."""
        attempt = 0
        while True:
            attempt += 1
            try:
                response = self._http.request(method, url, params=params, headers=self._headers, timeout=self._timeout)
            except httpx.TransportError as exc:
                if attempt >= self._retry.max_attempts:
                    raise ProviderError(None, str(exc), code=ErrorCode.PROVIDER_UNAVAILABLE, retryable=True,
                                        message=f"provider unreachable after {attempt} attempts: {type(exc).__name__}") from exc
                self._sleep(self._retry.delay(attempt, self._rand))
                continue
            if response.status_code not in RETRY_STATUS or _user_timeout(response):
                return response
            if attempt >= self._retry.max_attempts:
                raise ProviderError(response.status_code, _detail_of(response), code=ErrorCode.PROVIDER_UNAVAILABLE,
                                    retryable=True, message=f"provider answered HTTP {response.status_code} {attempt} times")
            self._sleep(self._delay(response, attempt))

    def _delay(self, response: httpx.Response, attempt: int) -> float:
        delay = self._retry.delay(attempt, self._rand)
        retry_after = response.headers.get("retry-after", "")
        if retry_after.isdigit():
            delay = max(delay, min(float(retry_after), self._retry.max_delay))
        return delay

    def close(self) -> None:
        self._http.close()


def _user_timeout(response: httpx.Response) -> bool:
    """504 caused by the caller's own X-Fal-Request-Timeout is final (both official clients agree)."""
    return response.status_code == 504 and "x-fal-request-timeout-type" in response.headers
