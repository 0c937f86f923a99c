"""A limit on failed device-token attempts per client address (429 with ``Retry-After``).

Each request with an unknown device token counts against its client address in Redis, so all
replicas share one count per address and fixed window of a minute. Past
``failed_token_attempts_per_minute`` in the window, the answer to such a request is 429
instead of 401 until the window ends.

The token is checked first and only a failure counts or is refused: a kiosk with a valid token
is never slowed, even when it shares its address (a library's NAT) with a client that keeps
failing. The tokens carry 256 random bits, so guessing one is hopeless at any rate; what the
limit bounds is the cost and noise of a client hammering the service with bad tokens (a
script, or a kiosk stuck with a stale token), and it tells such a client to back off.

Behind a reverse proxy the client address is the proxy's unless uvicorn trusts its
``X-Forwarded-For`` (``FORWARDED_ALLOW_IPS``); then every failing client shares the proxy's
count, which still never holds back a valid token.
"""

from __future__ import annotations

import math
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from fastapi import Request

from services.kvik import metrics
from services.kvik.settings import KvikSettings
from services.kvik.store import KvikStore
from services.plumbing.problems import Problem

WINDOW_MS = 60_000
UNKNOWN_ADDRESS = "unknown"
"""The count for requests without a client address (a transport that gives none)."""


def client_address(request: Request) -> str:
    """The client's address as the server saw it (after any trusted proxy headers)."""
    return request.client.host if request.client is not None else UNKNOWN_ADDRESS


def _is_unknown_token(problem: Problem) -> bool:
    # Only a token the store did not know: a revoked kiosk's token (kiosk-inactive) is a real
    # device that an administrator must deal with, not a guess.
    return problem.status == 401 and problem.slug == "token-invalid"


@asynccontextmanager
async def token_failures_limited(
    store: KvikStore, settings: KvikSettings, address: str
) -> AsyncIterator[None]:
    """Run a device-token check; an unknown-token 401 from it is counted for ``address``
    and becomes 429 once the address is past its limit for the current window."""
    try:
        yield
    except Problem as problem:
        if not _is_unknown_token(problem):
            raise
        attempts, left_ms = await store.count_token_failure(address, WINDOW_MS)
        if attempts <= settings.failed_token_attempts_per_minute:
            metrics.TOKEN_FAILURES.labels("401").inc()
            raise
        metrics.TOKEN_FAILURES.labels("429").inc()
        raise Problem(
            429,
            "token-attempts-limited",
            "Too many failed token attempts",
            detail=(
                f"More than {settings.failed_token_attempts_per_minute} unknown device tokens "
                "came from this address within a minute; retry after the pause."
            ),
            headers={"Retry-After": str(max(1, math.ceil(left_ms / 1000)))},
            # A 429, yet a refused authentication all the same: logged as a security event.
            refusal="too many unknown device tokens",
        ) from None
