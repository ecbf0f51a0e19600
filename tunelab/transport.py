"""The one way Tunelab's clients talk to the API: the SDK, `tunelab.client`, the worker
and the command line all send their requests through `Transport`.

It owns the server's base URL and the Bearer token, the wire form of NaN and the
infinities, the error every failed call raises, and the retry policy:

- Sent again, whatever the call: a connection that could not be made (nothing reached
  the server), 503 (the API rolled the request back: its database was restarting or
  busy) and 429. Their `Retry-After` is waited out.
- Sent again only when the call is idempotent: an answer that never came (a timeout or
  a connection dropped after sending), 502 and 504 (a proxy between us and the API; the
  API may have acted). GET, PUT, DELETE and HEAD are idempotent; a POST is when its
  caller says so. Metric reports (keyed by name and step), heartbeats, log chunks (keyed
  by offset) and completions (the server keeps its first verdict) are; an ask is not: a
  second ask whose first answer was lost would hand out a second trial.
- Never sent again: any other 4xx or 5xx, and a streamed body (it cannot be replayed).

Waits grow exponentially with jitter, and the whole call is bounded by `retry_for_s`:
when the next wait would pass that bound, the last error is raised instead.

httpx is used when it can be imported (a pooled keep-alive connection, proxies from the
environment); otherwise the standard library, so that a training script needs nothing
beyond Python to report its metrics.
"""

from __future__ import annotations

import email.utils
import json
import math
import os
import random
import threading
import time
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

DEFAULT_URL = "http://127.0.0.1:8000"
IDEMPOTENT_METHODS = frozenset({"GET", "HEAD", "PUT", "DELETE", "OPTIONS"})
# The server did nothing with the request: sending it again is safe for any call.
_REFUSED_STATUSES = frozenset({429, 503})
# A proxy's answer: the API behind it may or may not have acted.
_PROXY_STATUSES = frozenset({502, 504})

# A request's body: bytes (sent again when a retry is due) or a stream (sent once).
Body = bytes | Iterable[bytes] | None

_NON_FINITE = {"NaN": math.nan, "Infinity": math.inf, "-Infinity": -math.inf}


def encode_float(value: float) -> float | str:
    """JSON has no NaN or infinity: they travel as the strings "NaN", "Infinity" and
    "-Infinity", which the API reads back as floats."""
    if math.isfinite(value):
        return value
    return "NaN" if math.isnan(value) else ("Infinity" if value > 0 else "-Infinity")


def decode_float(value: Any) -> Any:
    """The other way: "NaN", "Infinity" and "-Infinity" back to floats; anything else as is.
    Applied only to fields that hold numbers, so a categorical value "NaN" stays text."""
    if isinstance(value, str):
        return _NON_FINITE.get(value, value)
    return value


def _to_wire(value: Any) -> Any:
    """A request body with every float in its wire form, at any depth."""
    if isinstance(value, float):
        return encode_float(value)
    if isinstance(value, dict):
        return {key: _to_wire(item) for key, item in value.items()}
    if isinstance(value, (list, tuple)):
        return [_to_wire(item) for item in value]
    return value


class TunelabError(Exception):
    """A failed call: the HTTP status (None when no answer came), what went wrong, the
    field of the request it is about, and the seconds the server asked to wait."""

    def __init__(
        self,
        status_code: int | None,
        detail: str,
        field: str | None = None,
        retry_after: float | None = None,
    ) -> None:
        shown = detail if status_code is None else f"{status_code}: {detail}"
        super().__init__(shown + (f" (field: {field})" if field else ""))
        self.status_code = status_code
        self.detail = detail
        self.field = field
        self.retry_after = retry_after


class Unreachable(TunelabError):
    """No answer from the server within the retry time: down, unknown, or too slow."""

    def __init__(self, url: str, reason: str) -> None:
        super().__init__(None, f"cannot reach {url}: {reason}")
        self.url = url


@dataclass(frozen=True)
class RetryPolicy:
    """How long a call keeps trying, and how long it waits between tries."""

    retry_for_s: float = 30.0
    first_wait_s: float = 0.05
    max_wait_s: float = 2.0

    def wait_s(self, attempt: int, retry_after: float | None) -> float:
        """The pause before try `attempt + 1`: the server's Retry-After, if it sent one,
        plus a backoff drawn from the upper half of an exponentially growing window, so
        that workers cut off together do not come back together."""
        window = min(self.max_wait_s, self.first_wait_s * 2.0**attempt)
        return (retry_after or 0.0) + random.uniform(window / 2, window)


@dataclass(frozen=True)
class _Answer:
    status: int
    headers: Mapping[str, str]  # lower-case names
    body: bytes


class _NotSent(Exception):
    """The request never reached the server (no connection could be made)."""


class _NoAnswer(Exception):
    """The request may have reached the server, but no answer came back."""


class _HttpxBackend:
    def __init__(self, timeout_s: float) -> None:
        import httpx

        self._httpx = httpx
        # One pooled client: its keep-alive connection saves a handshake per call.
        self.client = httpx.Client(timeout=timeout_s)

    def send(self, method: str, url: str, headers: Mapping[str, str], body: Body) -> _Answer:
        httpx = self._httpx
        try:
            response = self.client.request(method, url, headers=headers, content=body)
        except (httpx.ConnectError, httpx.ConnectTimeout, httpx.PoolTimeout) as exc:
            raise _NotSent(str(exc) or type(exc).__name__) from exc
        except httpx.TransportError as exc:
            raise _NoAnswer(str(exc) or type(exc).__name__) from exc
        return _Answer(
            response.status_code,
            {k.lower(): v for k, v in response.headers.items()},
            response.content,
        )

    def close(self) -> None:
        self.client.close()


class _UrllibBackend:
    def __init__(self, timeout_s: float) -> None:
        self.timeout_s = timeout_s

    def send(self, method: str, url: str, headers: Mapping[str, str], body: Body) -> _Answer:
        request = urllib.request.Request(url, data=body, headers=dict(headers), method=method)
        try:
            with urllib.request.urlopen(request, timeout=self.timeout_s) as response:
                return _Answer(
                    response.status,
                    {k.lower(): v for k, v in response.headers.items()},
                    response.read(),
                )
        except urllib.error.HTTPError as exc:
            with exc:
                return _Answer(exc.code, {k.lower(): v for k, v in exc.headers.items()}, exc.read())
        except urllib.error.URLError as exc:
            # Raised while connecting or sending, before any answer was awaited.
            raise _NotSent(str(exc.reason)) from exc
        except OSError as exc:  # also http.client's errors reading the answer
            raise _NoAnswer(str(exc) or type(exc).__name__) from exc

    def close(self) -> None:
        pass


def _backend(timeout_s: float, name: str | None) -> _HttpxBackend | _UrllibBackend:
    if name == "urllib":
        return _UrllibBackend(timeout_s)
    if name == "httpx":
        return _HttpxBackend(timeout_s)
    try:
        return _HttpxBackend(timeout_s)
    except ImportError:
        return _UrllibBackend(timeout_s)


def _retry_after(headers: Mapping[str, str]) -> float | None:
    """Retry-After in seconds, from either of its forms (seconds or an HTTP date)."""
    value = headers.get("retry-after", "").strip()
    if not value:
        return None
    if value.isdigit():
        return float(value)
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    return max(0.0, when.timestamp() - time.time())


def _error(answer: _Answer) -> TunelabError:
    text = answer.body.decode("utf-8", errors="replace")
    detail, field = text or f"HTTP {answer.status}", None
    if answer.headers.get("content-type", "").startswith("application/json"):
        try:
            body = json.loads(text)
        except ValueError:
            body = None
        if isinstance(body, dict) and "detail" in body:
            detail = str(body["detail"])
            field = None if body.get("field") is None else str(body["field"])
    return TunelabError(answer.status, detail, field, _retry_after(answer.headers))


def _decode(answer: _Answer) -> Any:
    if answer.status == 204 or not answer.body:
        return None
    if answer.headers.get("content-type", "").startswith("application/json"):
        return json.loads(answer.body)
    return answer.body.decode("utf-8", errors="replace")


class Transport:
    """Requests to one server's API (`{url}/api/v1`), with its token and the retry policy.

    `token` defaults to TUNELAB_TOKEN. `give_up`, once set, ends retrying at once (the
    server is this very process, shutting down). `backend` forces "httpx" or "urllib".
    Safe to share between threads."""

    def __init__(
        self,
        url: str,
        token: str | None = None,
        *,
        timeout_s: float = 30.0,
        retry_for_s: float = 30.0,
        give_up: threading.Event | None = None,
        backend: str | None = None,
    ) -> None:
        self.url = url.rstrip("/")
        scheme = urllib.parse.urlsplit(self.url).scheme
        if scheme not in ("http", "https"):
            raise TunelabError(None, f"{url!r} is not an http:// or https:// URL", "url")
        token = token if token is not None else os.environ.get("TUNELAB_TOKEN")
        self.headers = {"Authorization": f"Bearer {token}"} if token else {}
        self.policy = RetryPolicy(retry_for_s=retry_for_s)
        self.give_up = give_up
        self._backend = _backend(timeout_s, backend)

    @property
    def backend(self) -> str:
        return "httpx" if isinstance(self._backend, _HttpxBackend) else "urllib"

    def close(self) -> None:
        self._backend.close()

    def __enter__(self) -> Transport:
        return self

    def __exit__(self, *_exc: object) -> None:
        self.close()

    def request(
        self,
        method: str,
        path: str,
        *,
        json: Any = None,
        params: Mapping[str, Any] | None = None,
        content: Body = None,
        headers: Mapping[str, str] | None = None,
        idempotent: bool | None = None,
    ) -> Any:
        """One API call: the decoded JSON answer (text for other types, None when empty),
        or TunelabError. `idempotent` says whether sending the call twice has the effect
        of sending it once; by default, whether its method says so."""
        method = method.upper()
        url = self._url(path, params)
        sent_headers = {**self.headers, **(headers or {})}
        body: Body = content
        if json is not None:
            body = _json_bytes(json)
            sent_headers["Content-Type"] = "application/json"
        replayable = body is None or isinstance(body, bytes)
        if idempotent is None:
            idempotent = method in IDEMPOTENT_METHODS
        deadline = time.monotonic() + self.policy.retry_for_s
        attempt = 0
        while True:
            try:
                answer = self._backend.send(method, url, sent_headers, body)
            except _NotSent as exc:
                error: TunelabError = Unreachable(self.url, str(exc))
                error.__cause__ = exc.__cause__
                again = replayable
            except _NoAnswer as exc:
                error = Unreachable(self.url, f"no answer to {method} {path}: {exc}")
                error.__cause__ = exc.__cause__
                again = replayable and idempotent
            else:
                if answer.status < 400:
                    return _decode(answer)
                error = _error(answer)
                if answer.status in _REFUSED_STATUSES:
                    again = replayable
                else:
                    again = replayable and idempotent and answer.status in _PROXY_STATUSES
            if not again:
                raise error
            pause = self.policy.wait_s(attempt, error.retry_after)
            if time.monotonic() + pause > deadline or self._given_up(pause):
                raise error
            attempt += 1

    def _given_up(self, pause: float) -> bool:
        """Waits `pause` seconds; True when told to give up meanwhile."""
        if self.give_up is None:
            time.sleep(pause)
            return False
        return self.give_up.wait(pause)

    def _url(self, path: str, params: Mapping[str, Any] | None) -> str:
        url = f"{self.url}/api/v1{path}"
        if params:
            pairs = {key: _query_value(value) for key, value in params.items() if value is not None}
            url += "?" + urllib.parse.urlencode(pairs, doseq=True)
        return url


def _query_value(value: Any) -> Any:
    if isinstance(value, bool):
        return "true" if value else "false"
    return value


def _json_bytes(value: Any) -> bytes:
    # allow_nan=False: every non-finite float was turned into its string just before.
    return json.dumps(_to_wire(value), allow_nan=False, separators=(",", ":")).encode()
