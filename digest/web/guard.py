"""The web pages' guards: rate limits, CSRF tokens and the editor token.

The rate limits live in the process's memory: one `digest web` process, or one per client
address behind a load balancer that keeps clients on one process. A restart forgets them.
"""

from __future__ import annotations

import hmac
import secrets
import threading
from collections import deque

from starlette.requests import Request

from digest.edition.signing import sign, unsign

CSRF_COOKIE = "digest_csrf"
CSRF_FIELD = "csrf_token"
_CSRF_PURPOSE = "csrf"
_PRUNE_AT = 10_000


class RateLimiter:
    """At most `limit` hits per `window` seconds for each key (a sliding window)."""

    def __init__(self, limit: int, window: float) -> None:
        self.limit = limit
        self.window = window
        self._hits: dict[str, deque[float]] = {}
        self._lock = threading.Lock()

    def allow(self, key: str, now: float) -> bool:
        """Count a hit for `key` at `now` (monotonic seconds); False if it is over the limit.

        A refused hit is not counted, so a client that stops is let in again after `window`.
        """
        with self._lock:
            if len(self._hits) > _PRUNE_AT:
                self._prune(now)
            hits = self._hits.setdefault(key, deque())
            while hits and hits[0] <= now - self.window:
                hits.popleft()
            if len(hits) >= self.limit:
                return False
            hits.append(now)
            return True

    def _prune(self, now: float) -> None:
        for key in [
            k for k, hits in self._hits.items() if not hits or hits[-1] <= now - self.window
        ]:
            del self._hits[key]


def client_address(request: Request) -> str:
    """The client's IP as uvicorn reports it (X-Forwarded-For only from trusted proxies)."""
    return request.client.host if request.client else "unknown"


class Csrf:
    """Double-submit CSRF tokens: a random value in a cookie, its signature in the form."""

    def __init__(self, *, secret: bytes, key_id: int, secrets_by_id: dict[int, bytes]) -> None:
        self._secret = secret
        self._key_id = key_id
        self._secrets = secrets_by_id

    def cookie_value(self, request: Request) -> str:
        """The visitor's CSRF cookie value, or a new one if they have none."""
        current = request.cookies.get(CSRF_COOKIE, "")
        return current if 16 <= len(current) <= 64 else secrets.token_urlsafe(24)

    def form_token(self, cookie_value: str) -> str:
        """The value of the form's hidden field that goes with the cookie."""
        return sign(
            cookie_value.encode(), purpose=_CSRF_PURPOSE, secret=self._secret, key_id=self._key_id
        )

    def valid(self, request: Request, form_value: object) -> bool:
        """True if the form's field is the signature of the cookie sent with it."""
        cookie = request.cookies.get(CSRF_COOKIE, "")
        if not cookie or not isinstance(form_value, str) or len(form_value) > 256:
            return False
        signed = unsign(form_value, purpose=_CSRF_PURPOSE, secrets=self._secrets)
        return signed is not None and hmac.compare_digest(signed, cookie.encode())


def editor_allowed(request: Request, configured: str) -> bool:
    """True if the request carries the configured editor token (header or ?token=).

    An empty configured token turns the editor pages off.
    """
    if not configured:
        return False
    header = request.headers.get("x-editor-token", "")
    bearer = request.headers.get("authorization", "")
    given = header or (bearer[7:] if bearer.lower().startswith("bearer ") else "")
    given = given or request.query_params.get("token", "")
    return hmac.compare_digest(given.encode(), configured.encode())
