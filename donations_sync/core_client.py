"""HTTP client of the donation & fulfillment core: JSON in and out, a bearer token, timeouts, an
idempotency key on writes, and every failure classified as worth retrying or not.

The change feed (donations_sync.feed) reads with it; an outbox that sends decisions to the core
writes with it. Callers decide what to do with a failure by its class:

- ``CoreRetryableError``: the core may answer differently later (connection refused or dropped,
  timeout, 5xx, 408, 425, 429, an answer cut short or not JSON). Try again later, with backoff;
  ``retry_after`` carries the core's Retry-After in seconds when it sent one.
- ``CorePermanentError``: the core refused this request as it is (other 4xx). Sending it again
  unchanged gets the same answer.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any

import requests
from django.conf import settings

RETRYABLE_STATUSES = frozenset({408, 425, 429, 500, 502, 503, 504})


class CoreError(Exception):
    retryable: bool = False

    def __init__(
        self, message: str, *, status: int | None = None, retry_after: float | None = None
    ) -> None:
        super().__init__(message)
        self.status = status
        self.retry_after = retry_after


class CoreRetryableError(CoreError):
    retryable = True


class CorePermanentError(CoreError):
    retryable = False


class CoreNotConfigured(CorePermanentError):
    pass


@dataclass(frozen=True)
class CoreResponse:
    status: int
    data: Any
    headers: dict[str, str] = field(default_factory=dict)


def _retry_after(response: requests.Response) -> float | None:
    value = response.headers.get("Retry-After", "")
    try:
        return max(0.0, float(value))
    except ValueError:
        return None  # an HTTP date: rare from an API; the caller's own backoff applies


class CoreClient:
    def __init__(
        self,
        *,
        base_url: str,
        token: str = "",
        connect_timeout: float = 5.0,
        read_timeout: float = 30.0,
        session: requests.Session | None = None,
    ) -> None:
        if not base_url:
            raise CoreNotConfigured("CORE_API_URL が設定されていません")
        self.base_url = base_url.rstrip("/")
        self.token = token
        self.timeout = (connect_timeout, read_timeout)
        self.session = session or requests.Session()

    def request(
        self,
        method: str,
        path: str,
        *,
        params: dict[str, Any] | None = None,
        json_body: Any = None,
        idempotency_key: str | None = None,
    ) -> CoreResponse:
        """One request, no retries here: the caller's schedule (beat, outbox) retries."""
        headers = {"Accept": "application/json"}
        if self.token:
            headers["Authorization"] = f"Bearer {self.token}"
        if idempotency_key:
            headers["Idempotency-Key"] = idempotency_key
        data = None
        if json_body is not None:
            headers["Content-Type"] = "application/json"
            data = json.dumps(json_body, ensure_ascii=False).encode("utf-8")
        url = f"{self.base_url}/{path.lstrip('/')}"
        try:
            response = self.session.request(
                method, url, params=params, data=data, headers=headers, timeout=self.timeout
            )
            body = response.content  # reads it all: a connection cut mid-body raises here
        except requests.Timeout as exc:
            raise CoreRetryableError(f"基幹システムが時間内に応答しません: {exc}") from exc
        except requests.RequestException as exc:
            # Refused, reset, dropped mid-answer (ChunkedEncodingError), DNS: all transient.
            raise CoreRetryableError(f"基幹システムに接続できません: {exc}") from exc
        status = response.status_code
        if status >= 400:
            excerpt = body[:200].decode("utf-8", errors="replace")
            message = f"基幹システムが {status} を返しました: {excerpt}"
            if status in RETRYABLE_STATUSES or status >= 500:
                raise CoreRetryableError(message, status=status, retry_after=_retry_after(response))
            raise CorePermanentError(message, status=status)
        if not body:
            return CoreResponse(status=status, data=None, headers=dict(response.headers))
        try:
            parsed = json.loads(body)
        except ValueError as exc:
            # A proxy's error page or a truncated answer: the core itself speaks JSON.
            raise CoreRetryableError(
                f"基幹システムの応答が JSON として読めません: {exc}", status=status
            ) from exc
        return CoreResponse(status=status, data=parsed, headers=dict(response.headers))

    def get(self, path: str, *, params: dict[str, Any] | None = None) -> CoreResponse:
        return self.request("GET", path, params=params)

    def post(
        self, path: str, *, json_body: Any, idempotency_key: str | None = None
    ) -> CoreResponse:
        return self.request("POST", path, json_body=json_body, idempotency_key=idempotency_key)


def core_client() -> CoreClient:
    """The client configured by settings (CORE_API_URL, CORE_API_TOKEN, timeouts)."""
    return CoreClient(
        base_url=settings.CORE_API_URL,
        token=settings.CORE_API_TOKEN,
        connect_timeout=settings.CORE_API_CONNECT_TIMEOUT,
        read_timeout=settings.CORE_API_READ_TIMEOUT,
    )
