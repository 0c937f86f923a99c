"""The ``Idempotency-Key`` contract: the same request sent twice has the effect of one.

A client that may retry a write sends ``Idempotency-Key: <unique value>``. The first request with
a key claims it, does its work and stores its response *in the same MULTI/EXEC as its state change
and its outbox event*, so either all three happen or none. A retry with the same key and the same
request gets the stored response again (``Idempotent-Replayed: true``) and changes nothing; the
same key with a different request is refused (422), and a retry while the first is still running
is told to come back (409, ``Retry-After``). This follows the IETF draft "The Idempotency-Key HTTP
Header Field".

How a service uses it (``scope`` is whose keys these are - the kiosk id or the person's subject -
so two clients choosing the same key never meet)::

    @router.post("/sessions", status_code=201)
    async def post_session(
        request: Request, session: SessionIn, kiosk: Kiosk, key: IdempotencyKey, store: Store
    ) -> Response:
        fingerprint = request_fingerprint(request.method, request.url.path, await request.body())
        if key is not None and (replay := await store.idem.begin(kiosk.subject, key, fingerprint)):
            return replay.to_response()
        try:
            body = ...  # the response body, as bytes
            async with store.redis.pipeline(transaction=True) as pipe:
                # optional: await store.idem.watch(pipe, kiosk.subject, key) with other WATCHes
                pipe.multi()
                ...  # the state change and outbox.stage(pipe, event)
                if key is not None:
                    store.idem.record(pipe, kiosk.subject, key, fingerprint, 201, body,
                                      {"content-type": "application/json"})
                await pipe.execute()
        except Exception:
            if key is not None:
                await store.idem.release(kiosk.subject, key)  # a retry may try again at once
            raise
        return Response(body, status_code=201, media_type="application/json")

Redis layout: one string per key, ``<prefix>:<service>:idem:<scope>:<key>``, holding JSON: while a
request runs ``{"state": "pending", "fingerprint", "token"}`` with a ``lock_seconds`` expiry, then
``{"state": "done", "fingerprint", "response"}`` for ``ttl_seconds``.

The claim's random token lives in the request's context (a ``ContextVar``), so ``release()`` only
ever drops the claim this very request made - never one another request (or a later retry,
after our claim expired) holds. Call ``begin``, ``watch`` and ``release`` from the same task
(not through ``asyncio.create_task`` or, on Python 3.11, ``asyncio.wait_for``, which run the call
in a task of its own); a claim whose token is lost simply expires after ``lock_seconds``.

Requests that fail validation never get here (FastAPI answers 422 before the endpoint runs), so
bad input claims nothing. A domain refusal after ``begin`` (say 409 conflict) either releases
the claim, so a retry is judged afresh, or is ``record``-ed like any other response.
"""

from __future__ import annotations

import hashlib
import secrets
from contextvars import ContextVar
from typing import Annotated, Literal

from fastapi import Depends, Header, Response
from pydantic import BaseModel, ConfigDict, Field
from redis.asyncio import Redis
from redis.asyncio.client import Pipeline

from services.plumbing.problems import Problem
from services.plumbing.redis_replies import reply_text
from services.plumbing.settings import HubSettings

IDEMPOTENCY_HEADER = "Idempotency-Key"
REPLAYED_HEADER = "Idempotent-Replayed"
_MAX_KEY_LENGTH = 255

# Claim the key only if nothing is stored under it; otherwise hand back what is (a running
# request's claim or a finished response). One script, so no check-then-write race.
_CLAIM_SCRIPT = """
local current = redis.call('GET', KEYS[1])
if current then
  return current
end
redis.call('SET', KEYS[1], ARGV[1], 'PX', ARGV[2])
return false
"""

# Drop the claim only if it is still ours (the whole claim value, random token included).
_RELEASE_SCRIPT = """
if redis.call('GET', KEYS[1]) == ARGV[1] then
  return redis.call('DEL', KEYS[1])
end
return 0
"""

# Response headers that describe one transfer, not the response; a replay gets fresh ones.
_UNSTORED_HEADERS = frozenset(
    {
        "connection",
        "content-length",
        "date",
        "keep-alive",
        "server",
        "transfer-encoding",
        "x-request-id",
    }
)

# The claims this request (task) holds: Redis key -> claim value. Copied on write, so requests
# never share one mapping even if one task starts another.
_claims: ContextVar[dict[str, str] | None] = ContextVar("kanalhub_idempotency_claims", default=None)
# A task that loops over many requests (a batch job) must not grow the mapping without bound;
# one request holds a claim or two at a time, so the oldest entries are long finished.
_MAX_CLAIMS_PER_CONTEXT = 64


def _remember(redis_key: str, claim: str) -> None:
    claims = dict(_claims.get() or {})
    claims.pop(redis_key, None)
    claims[redis_key] = claim
    while len(claims) > _MAX_CLAIMS_PER_CONTEXT:
        del claims[next(iter(claims))]
    _claims.set(claims)


def _held(redis_key: str) -> str | None:
    return (_claims.get() or {}).get(redis_key)


def _forget(redis_key: str) -> None:
    claims = dict(_claims.get() or {})
    if claims.pop(redis_key, None) is not None:
        _claims.set(claims)


async def idempotency_key_header(
    idempotency_key: Annotated[
        str | None,
        Header(
            alias=IDEMPOTENCY_HEADER,
            description="Makes a retried write safe: the same key and request twice act once. "
            "1-255 printable ASCII characters, unique per request (a UUID is a good choice).",
        ),
    ] = None,
) -> str | None:
    """FastAPI dependency: the request's ``Idempotency-Key``, or ``None`` if it sent none.

    The draft standard sends the key as a structured-field string (in double quotes); plain
    values are accepted as well. Anything else than 1-255 printable ASCII characters is a 400.
    """
    if idempotency_key is None:
        return None
    key = idempotency_key
    if len(key) >= 2 and key.startswith('"') and key.endswith('"'):
        key = key[1:-1]
    if not (1 <= len(key) <= _MAX_KEY_LENGTH and key.isascii() and key.isprintable()):
        raise Problem(
            400,
            "idempotency-key-invalid",
            "Idempotency-Key invalid",
            detail=f"The {IDEMPOTENCY_HEADER} header must be 1-{_MAX_KEY_LENGTH} printable "
            "ASCII characters.",
        )
    return key


IdempotencyKey = Annotated[str | None, Depends(idempotency_key_header)]


def request_fingerprint(method: str, path: str, body: bytes) -> str:
    """SHA-256 hex of what makes two requests "the same": method, path and body bytes.

    Include the query string in ``path`` if it changes what the request does.
    """
    digest = hashlib.sha256()
    # Method and path cannot contain a newline, so this framing is unambiguous.
    digest.update(f"{method.upper()} {path}\n".encode())
    digest.update(body)
    return digest.hexdigest()


class StoredResponse(BaseModel):
    """A response kept for replay: status, headers and the exact body bytes."""

    # bytes travel as base64 in the stored JSON, so any body (not only UTF-8) survives.
    model_config = ConfigDict(frozen=True, ser_json_bytes="base64", val_json_bytes="base64")

    status: int = Field(ge=100, le=599)
    body: bytes
    headers: dict[str, str] = Field(default_factory=dict)

    def to_response(self) -> Response:
        """The stored response, verbatim, marked ``Idempotent-Replayed: true``."""
        return Response(
            content=self.body,
            status_code=self.status,
            headers={**self.headers, REPLAYED_HEADER: "true"},
        )


class _Entry(BaseModel):
    """What is stored under an idempotency key."""

    model_config = ConfigDict(frozen=True)

    state: Literal["pending", "done"]
    fingerprint: str
    token: str | None = None
    response: StoredResponse | None = None


def _escape_scope(scope: str) -> str:
    # The scope sits between ':' separators and may itself contain ':' (an OIDC subject can be
    # a URL). Escaping keeps scope "a:b" + key "c" apart from scope "a" + key "b:c".
    return scope.replace("%", "%25").replace(":", "%3A")


class IdempotencyStore:
    """Claims idempotency keys and stores responses for replay, in the service's Redis."""

    def __init__(
        self,
        redis: Redis,
        settings: HubSettings,
        service: str,
        ttl_seconds: int = 24 * 3600,
        lock_seconds: int = 30,
    ) -> None:
        self._redis = redis
        self._settings = settings
        self.service = service
        # How long a finished response is replayed: longer than any client keeps retrying.
        self.ttl_seconds = ttl_seconds
        # How long a claim outlives a request that died without release(); keep it above the
        # request timeout, or a slow request can lose its claim to a retry.
        self.lock_seconds = lock_seconds
        self._claim = redis.register_script(_CLAIM_SCRIPT)
        self._release = redis.register_script(_RELEASE_SCRIPT)

    def key_for(self, scope: str, key: str) -> str:
        """The Redis key holding ``key``'s claim or stored response."""
        return self._settings.key(self.service, "idem", _escape_scope(scope), key)

    async def begin(self, scope: str, key: str, fingerprint: str) -> StoredResponse | None:
        """Claim ``key`` for this request; ``None`` means go ahead and do the work.

        Returns the stored response when the same request already completed (replay it).
        Raises ``Problem`` 422 ``idempotency-key-reused`` when the key was used for a different
        request, 409 ``request-in-progress`` (``Retry-After: 1``) while another request holds it.
        """
        redis_key = self.key_for(scope, key)
        claim = _Entry(
            state="pending", fingerprint=fingerprint, token=secrets.token_urlsafe(16)
        ).model_dump_json()
        current = await self._claim(keys=[redis_key], args=[claim, self.lock_seconds * 1000])
        if current is None:
            _remember(redis_key, claim)
            return None
        entry = _Entry.model_validate_json(reply_text(current))
        if entry.fingerprint != fingerprint:
            raise Problem(
                422,
                "idempotency-key-reused",
                "Idempotency-Key reused",
                detail=f"This {IDEMPOTENCY_HEADER} was already used for a different request; "
                "use a new key for a new request.",
            )
        if entry.state == "pending" or entry.response is None:
            raise Problem(
                409,
                "request-in-progress",
                "Request in progress",
                detail=f"A request with this {IDEMPOTENCY_HEADER} is still being processed; "
                "retry shortly to get its response.",
                headers={"Retry-After": "1"},
            )
        return entry.response

    async def watch(self, pipe: Pipeline, scope: str, key: str) -> None:
        """WATCH ``key`` on ``pipe`` and check this request still holds its claim.

        Optional, for work that may outlast ``lock_seconds``: if the claim expired and a retry
        took the key, this raises ``Problem`` 409 now, and if a retry takes it between here and
        EXEC, the transaction fails with ``WatchError`` - either way the work is not done twice.
        Call before ``pipe.multi()``.
        """
        redis_key = self.key_for(scope, key)
        await pipe.watch(redis_key)
        current = await pipe.get(redis_key)
        if current is None or reply_text(current) != _held(redis_key):
            raise Problem(
                409,
                "request-in-progress",
                "Request in progress",
                detail="This request took too long and lost its claim; retry to get the result.",
                headers={"Retry-After": "1"},
            )

    def record(
        self,
        pipe: Pipeline,
        scope: str,
        key: str,
        fingerprint: str,
        status: int,
        body: bytes,
        headers: dict[str, str],
    ) -> None:
        """Queue the response into the caller's MULTI/EXEC ``pipe``; nothing is sent yet.

        Stored for ``ttl_seconds`` by the caller's EXEC, together with its state change; the
        same write replaces this request's claim, so the key is released in that step too.
        Headers that describe a single transfer (``content-length``, ``date`` ...) are dropped.
        """
        if not pipe.is_transaction:
            raise ValueError(
                "record() needs a MULTI/EXEC pipeline: redis.pipeline(transaction=True)"
            )
        if pipe.watching and not pipe.explicit_transaction:
            # After WATCH a pipeline runs commands at once; the write would escape the EXEC.
            raise RuntimeError("call pipe.multi() before record()")
        stored = {
            name.lower(): value
            for name, value in headers.items()
            if name.lower() not in _UNSTORED_HEADERS
        }
        entry = _Entry(
            state="done",
            fingerprint=fingerprint,
            response=StoredResponse(status=status, body=body, headers=stored),
        )
        pipe.set(self.key_for(scope, key), entry.model_dump_json(), ex=self.ttl_seconds)

    async def release(self, scope: str, key: str) -> None:
        """Drop this request's claim after it failed, so a retry can proceed at once.

        Does nothing if this request holds no claim on ``key`` (it never claimed it, or the claim
        expired and was taken by another request, or the response was stored).
        """
        redis_key = self.key_for(scope, key)
        claim = _held(redis_key)
        if claim is None:
            return
        await self._release(keys=[redis_key], args=[claim])
        _forget(redis_key)
