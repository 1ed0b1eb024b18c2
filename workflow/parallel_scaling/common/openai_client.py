"""One OpenAI-compatible endpoint over HTTP: requests with bounded retries, keys kept in the environment.

Why our own small client: the prediction and translation jobs run in the main environment and in the
GPU nodes' conda environments, neither of which carries an HTTP client beyond the standard library;
a job sends JSON bodies and reads JSON answers, which ``urllib`` does, one blocking request per
worker thread (:mod:`parallel_scaling.common.served` bounds how many are in flight).

What it guarantees:

* **Retries that end.** 429, 408, 409 and 5xx answers, timeouts, refused and dropped connections are
  retried up to ``retries`` times, waiting ``Retry-After`` when the server says how long (seconds or
  an HTTP date, capped at :data:`MAX_WAIT_S`), else 1, 2, 4 ... seconds up to :data:`MAX_BACKOFF_S`.
  Any other 4xx is the request's own fault and fails at once. The error names the endpoint (no
  credentials), the status or the connection error, the item and the server's message.
* **The key stays in the environment.** It is read from the variable named in the config
  (``key_env``) when the client is made, sent only in the ``Authorization`` header, and never
  printed: :func:`public_url` is the only form of the URL that leaves this module.
"""

from __future__ import annotations

import email.utils
import http.client
import json
import os
import random
import socket
import threading
import time
import urllib.error
import urllib.parse
import urllib.request
from dataclasses import dataclass, field
from typing import Any, Callable

#: the longest wait a ``Retry-After`` answer gets (a longer one is cut here and said in the log)
MAX_WAIT_S = 300.0
#: exponential backoff without ``Retry-After``: 1, 2, 4, ... seconds, at most this
MAX_BACKOFF_S = 60.0
#: statuses worth another try: rate limits, request timeouts, conflicts, server errors
RETRY_STATUSES = frozenset({408, 409, 429, 500, 502, 503, 504})


class EndpointError(RuntimeError):
    """A request that failed for good; the message names the endpoint, the status and the item."""

    def __init__(self, message: str, status: int | None = None) -> None:
        super().__init__(message)
        self.status = status


def public_url(url: str) -> str:
    """The URL without user, password, query and fragment: what logs and records may show."""
    parts = urllib.parse.urlsplit(url)
    host = parts.hostname or ""
    if parts.port:
        host = f"{host}:{parts.port}"
    return urllib.parse.urlunsplit((parts.scheme, host, parts.path.rstrip("/"), "", ""))


def retry_after(value: str | None, now: float | None = None) -> float | None:
    """Seconds to wait from a ``Retry-After`` header (delta-seconds or an HTTP date); None if absent
    or unreadable."""
    if not value:
        return None
    value = value.strip()
    try:
        return max(0.0, float(value))
    except ValueError:
        pass
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    return max(0.0, when.timestamp() - (time.time() if now is None else now))


@dataclass
class Stats:
    """Counts for the job's log: requests sent, retried, tokens the server reported."""

    requests: int = 0
    retries: int = 0
    prompt_tokens: int = 0
    completion_tokens: int = 0
    #: the ``model`` and ``system_fingerprint`` of the answers: what answered, as the server says
    answered_by: set[tuple[str | None, str | None]] = field(default_factory=set)


class Endpoint:
    """``base_url`` (e.g. ``http://127.0.0.1:8000/v1``) with its key, timeout and retry budget."""

    def __init__(self, base_url: str, *, key_env: str | None = None, timeout_s: float = 600.0,
                 retries: int = 8, key_name: str = "key_env",
                 sleep: Callable[[float], None] = time.sleep, log: Callable[[str], None] | None = None) -> None:
        if not base_url or not urllib.parse.urlsplit(base_url).scheme.startswith("http"):
            raise EndpointError(f"served endpoint {base_url!r}: not an http(s) URL")
        parts = urllib.parse.urlsplit(base_url)
        if parts.password or parts.username:
            raise EndpointError(f"served endpoint {public_url(base_url)}: the URL holds credentials; put the "
                                f"key in an environment variable and name it in {key_name}")
        self.base_url = base_url.rstrip("/")
        self.url = public_url(base_url)
        self.timeout_s, self.retries = float(timeout_s), int(retries)
        self.sleep, self.log = sleep, log or (lambda _m: None)
        self.stats = Stats()
        self.lock = threading.Lock()  # the stats, from the worker threads
        self._headers = {"Content-Type": "application/json", "Accept": "application/json"}
        if key_env:
            key = os.environ.get(key_env)
            if not key:
                raise EndpointError(f"{key_name}: the environment variable {key_env!r} is not set (or empty) in "
                                    f"this job; it must hold the API key of {self.url}")
            self._headers["Authorization"] = f"Bearer {key}"

    def __repr__(self) -> str:  # never the headers
        return f"Endpoint({self.url!r})"

    # ----------------------------------------------------------------------------------------------

    def _once(self, method: str, path: str, body: Any | None) -> tuple[int, dict[str, str], bytes]:
        data = None if body is None else json.dumps(body).encode()
        req = urllib.request.Request(self.base_url + path, data=data, method=method, headers=self._headers)
        try:
            with urllib.request.urlopen(req, timeout=self.timeout_s) as resp:
                return resp.status, dict(resp.headers.items()), resp.read()
        except urllib.error.HTTPError as exc:
            with exc:
                return exc.code, dict(exc.headers.items()) if exc.headers else {}, exc.read()

    def request(self, method: str, path: str, body: Any | None = None, *, item: str = "",
                retries: int | None = None) -> Any:
        """The JSON answer of one request, retried as the module says; ``item`` names what it is for."""
        budget = self.retries if retries is None else retries
        what = f"{method} {self.url}{path}" + (f" for {item}" if item else "")
        attempt = 0
        while True:
            wait: float | None = None
            with self.lock:
                self.stats.requests += 1
            try:
                status, headers, raw = self._once(method, path, body)
            except (TimeoutError, socket.timeout) as exc:
                problem, status = f"no answer within {self.timeout_s:g} s ({exc.__class__.__name__})", None
            except (urllib.error.URLError, http.client.HTTPException, ConnectionError, OSError) as exc:
                reason = getattr(exc, "reason", exc)
                if isinstance(reason, (TimeoutError, socket.timeout)):
                    problem = f"no answer within {self.timeout_s:g} s"
                else:
                    problem = f"connection failed ({reason.__class__.__name__}: {reason})"
                status = None
            else:
                if 200 <= status < 300:
                    try:
                        return json.loads(raw)
                    except ValueError:
                        problem = f"status {status} with a body that is not JSON ({raw[:200]!r})"
                else:
                    message = _server_message(raw)
                    problem = f"status {status}" + (f": {message}" if message else "")
                    if status not in RETRY_STATUSES:
                        raise EndpointError(f"{what} failed with {problem} (not retried: the request itself "
                                            "was refused)", status)
                    wait = retry_after(headers.get("Retry-After") or headers.get("retry-after"))
            if attempt >= budget:
                raise EndpointError(f"{what} failed {attempt + 1} times; the last: {problem}. Everything "
                                    "answered before is saved: run the job again to ask only for what is "
                                    "missing", status)
            attempt += 1
            with self.lock:
                self.stats.retries += 1
            if wait is None:
                wait = min(MAX_BACKOFF_S, 2.0 ** (attempt - 1)) * (1 + random.random() / 4)
            elif wait > MAX_WAIT_S:
                self.log(f"[served] {self.url} asked to wait {wait:.0f} s (Retry-After); waiting {MAX_WAIT_S:.0f} s")
                wait = MAX_WAIT_S
            self.log(f"[served] {what}: {problem}; retry {attempt} of {budget} in {wait:.1f} s")
            self.sleep(wait)

    def post(self, path: str, body: Any, *, item: str = "") -> Any:
        return self.request("POST", path, body, item=item)

    def get(self, path: str, *, retries: int = 0) -> Any:
        return self.request("GET", path, retries=retries)


def _server_message(raw: bytes) -> str:
    """The error message of an OpenAI-style error body, else the start of the body."""
    try:
        data = json.loads(raw)
    except ValueError:
        return raw[:200].decode("utf-8", errors="replace").strip()
    if isinstance(data, dict):
        err = data.get("error", data)
        if isinstance(err, dict):
            return str(err.get("message") or err)[:300]
        return str(err)[:300]
    return str(data)[:300]
