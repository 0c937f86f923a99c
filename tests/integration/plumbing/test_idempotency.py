"""The Idempotency-Key store against real Valkey: claims, replays, races, failed transactions."""

from __future__ import annotations

import asyncio
import json

import httpx
import pytest
from fastapi import FastAPI, Request, Response
from redis.asyncio import Redis
from redis.asyncio.client import Pipeline
from redis.exceptions import WatchError

from services.plumbing.idempotency import (
    IdempotencyKey,
    IdempotencyStore,
    StoredResponse,
    request_fingerprint,
)
from services.plumbing.problems import Problem, install_problem_handlers
from services.plumbing.settings import HubSettings

pytestmark = pytest.mark.integration

SERVICE = "probe"
SCOPE = "kiosk-7"
KEY = "9f1c2d4e-0000-4000-8000-000000000001"
BODY = json.dumps({"session_id": "s-1", "outcome": "completed"}).encode()
FINGERPRINT = request_fingerprint("POST", "/sessions", BODY)


@pytest.fixture
def store(redis_client: Redis, hub_settings: HubSettings) -> IdempotencyStore:
    return IdempotencyStore(redis_client, hub_settings, SERVICE, ttl_seconds=600, lock_seconds=30)


def start_transaction(pipe: Pipeline) -> None:
    """``pipe.multi()``; redis-py leaves it unannotated."""
    pipe.multi()  # type: ignore[no-untyped-call]


def state_key(settings: HubSettings) -> str:
    return settings.key(SERVICE, "sessions", "s-1")


async def do_the_work(
    redis: Redis, store: IdempotencyStore, settings: HubSettings, fingerprint: str = FINGERPRINT
) -> None:
    """What an endpoint does after a successful begin(): state change + response, one EXEC."""
    async with redis.pipeline(transaction=True) as pipe:
        start_transaction(pipe)
        pipe.hincrby(state_key(settings), "stored", 1)
        store.record(
            pipe,
            SCOPE,
            KEY,
            fingerprint,
            201,
            b'{"id": "s-1"}',
            {"content-type": "application/json"},
        )
        await pipe.execute()


async def test_first_begin_claims_the_key_and_returns_none(
    store: IdempotencyStore, redis_client: Redis
) -> None:
    assert await store.begin(SCOPE, KEY, FINGERPRINT) is None
    redis_key = store.key_for(SCOPE, KEY)
    assert 0 < await redis_client.pttl(redis_key) <= 30_000


async def test_recorded_response_is_replayed_for_the_same_key_and_request(
    store: IdempotencyStore, redis_client: Redis, hub_settings: HubSettings
) -> None:
    assert await store.begin(SCOPE, KEY, FINGERPRINT) is None
    await do_the_work(redis_client, store, hub_settings)

    replay = await store.begin(SCOPE, KEY, FINGERPRINT)

    assert replay == StoredResponse(
        status=201, body=b'{"id": "s-1"}', headers={"content-type": "application/json"}
    )
    response = replay.to_response()
    assert response.status_code == 201
    assert response.body == b'{"id": "s-1"}'
    assert response.headers["idempotent-replayed"] == "true"
    assert response.headers["content-type"] == "application/json"
    # The work was done once; the stored response lives for ttl_seconds.
    assert await redis_client.hget(state_key(hub_settings), "stored") == b"1"
    assert 590_000 < await redis_client.pttl(store.key_for(SCOPE, KEY)) <= 600_000


async def test_same_key_with_a_different_body_is_422_key_reused(
    store: IdempotencyStore, redis_client: Redis, hub_settings: HubSettings
) -> None:
    assert await store.begin(SCOPE, KEY, FINGERPRINT) is None
    await do_the_work(redis_client, store, hub_settings)
    other = request_fingerprint("POST", "/sessions", BODY.replace(b"completed", b"abandoned"))

    with pytest.raises(Problem) as caught:
        await store.begin(SCOPE, KEY, other)

    assert caught.value.status == 422
    assert caught.value.slug == "idempotency-key-reused"


async def test_same_key_with_a_different_body_while_in_progress_is_also_422(
    store: IdempotencyStore,
) -> None:
    assert await store.begin(SCOPE, KEY, FINGERPRINT) is None
    with pytest.raises(Problem) as caught:
        await store.begin(SCOPE, KEY, request_fingerprint("POST", "/sessions", b"{}"))
    assert caught.value.status == 422


async def test_concurrent_begins_for_one_key_give_one_claim_and_409s(
    store: IdempotencyStore,
) -> None:
    outcomes = await asyncio.gather(
        *(store.begin(SCOPE, KEY, FINGERPRINT) for _ in range(20)), return_exceptions=True
    )

    claims = [outcome for outcome in outcomes if outcome is None]
    refusals = [outcome for outcome in outcomes if isinstance(outcome, Problem)]
    assert len(claims) == 1
    assert len(refusals) == 19
    assert all(p.status == 409 and p.slug == "request-in-progress" for p in refusals)
    assert all(p.headers["Retry-After"] == "1" for p in refusals)


async def test_release_lets_a_retry_claim_the_key(store: IdempotencyStore) -> None:
    assert await store.begin(SCOPE, KEY, FINGERPRINT) is None
    with pytest.raises(Problem):
        await store.begin(SCOPE, KEY, FINGERPRINT)

    await store.release(SCOPE, KEY)

    assert await store.begin(SCOPE, KEY, FINGERPRINT) is None


async def test_release_leaves_a_claim_this_request_does_not_hold(
    store: IdempotencyStore, redis_client: Redis
) -> None:
    # Our claim expired and a retry claimed the key: our late release must not drop its claim.
    assert await store.begin(SCOPE, KEY, FINGERPRINT) is None
    redis_key = store.key_for(SCOPE, KEY)
    retry_claim = json.dumps({"state": "pending", "fingerprint": FINGERPRINT, "token": "retry"})
    await redis_client.set(redis_key, retry_claim, px=30_000)

    await store.release(SCOPE, KEY)

    assert await redis_client.get(redis_key) == retry_claim.encode()


async def test_release_from_another_task_than_the_claim_does_nothing(
    store: IdempotencyStore, redis_client: Redis
) -> None:
    # The claim is made in its own task (its own context): this test's context holds none.
    assert await asyncio.create_task(store.begin(SCOPE, KEY, FINGERPRINT)) is None
    await store.release(SCOPE, KEY)
    assert await redis_client.exists(store.key_for(SCOPE, KEY)) == 1


async def test_failed_watch_stores_neither_state_nor_response(
    store: IdempotencyStore, redis_client: Redis, hub_settings: HubSettings
) -> None:
    assert await store.begin(SCOPE, KEY, FINGERPRINT) is None

    async def work_raced_by_another_writer() -> None:
        async with redis_client.pipeline(transaction=True) as pipe:
            await pipe.watch(state_key(hub_settings))
            # Someone else changes the state between our read and our write.
            await redis_client.hset(state_key(hub_settings), "other", "1")
            start_transaction(pipe)
            pipe.hincrby(state_key(hub_settings), "stored", 1)
            store.record(pipe, SCOPE, KEY, FINGERPRINT, 201, b"{}", {})
            await pipe.execute()

    with pytest.raises(WatchError):
        await work_raced_by_another_writer()
    await store.release(SCOPE, KEY)

    assert await redis_client.hget(state_key(hub_settings), "stored") is None
    assert await redis_client.exists(store.key_for(SCOPE, KEY)) == 0
    # ...so the client's retry does the work for real.
    assert await store.begin(SCOPE, KEY, FINGERPRINT) is None


async def test_exception_before_exec_stores_neither_state_nor_response(
    store: IdempotencyStore, redis_client: Redis, hub_settings: HubSettings
) -> None:
    assert await store.begin(SCOPE, KEY, FINGERPRINT) is None

    async def work_that_fails_before_exec() -> None:
        async with redis_client.pipeline(transaction=True) as pipe:
            start_transaction(pipe)
            pipe.hincrby(state_key(hub_settings), "stored", 1)
            store.record(pipe, SCOPE, KEY, FINGERPRINT, 201, b"{}", {})
            raise RuntimeError("domain rule broke")

    with pytest.raises(RuntimeError, match="domain rule broke"):
        await work_that_fails_before_exec()

    # The claim is still there (nothing was written), until the request releases it.
    stored = await redis_client.get(store.key_for(SCOPE, KEY))
    assert stored is not None
    assert json.loads(stored)["state"] == "pending"
    assert await redis_client.exists(state_key(hub_settings)) == 0
    await store.release(SCOPE, KEY)
    assert await redis_client.exists(store.key_for(SCOPE, KEY)) == 0


async def test_watch_refuses_a_request_that_lost_its_claim(
    store: IdempotencyStore, redis_client: Redis
) -> None:
    assert await store.begin(SCOPE, KEY, FINGERPRINT) is None
    retry_claim = json.dumps({"state": "pending", "fingerprint": FINGERPRINT, "token": "retry"})
    await redis_client.set(store.key_for(SCOPE, KEY), retry_claim, px=30_000)

    async with redis_client.pipeline(transaction=True) as pipe:
        with pytest.raises(Problem) as caught:
            await store.watch(pipe, SCOPE, KEY)
    assert caught.value.status == 409


async def test_watch_then_record_stores_the_response_for_the_claim_holder(
    store: IdempotencyStore, redis_client: Redis, hub_settings: HubSettings
) -> None:
    assert await store.begin(SCOPE, KEY, FINGERPRINT) is None
    async with redis_client.pipeline(transaction=True) as pipe:
        await store.watch(pipe, SCOPE, KEY)
        start_transaction(pipe)
        pipe.hincrby(state_key(hub_settings), "stored", 1)
        store.record(pipe, SCOPE, KEY, FINGERPRINT, 200, b"ok", {"Content-Length": "2"})
        await pipe.execute()
    replay = await store.begin(SCOPE, KEY, FINGERPRINT)
    assert replay is not None
    assert replay.body == b"ok"
    assert replay.headers == {}  # per-transfer headers are not stored


async def test_record_refuses_a_pipeline_that_would_not_be_atomic(
    store: IdempotencyStore, redis_client: Redis, hub_settings: HubSettings
) -> None:
    plain = redis_client.pipeline(transaction=False)
    with pytest.raises(ValueError, match="MULTI"):
        store.record(plain, SCOPE, KEY, FINGERPRINT, 200, b"", {})
    async with redis_client.pipeline(transaction=True) as watching:
        await watching.watch(state_key(hub_settings))
        with pytest.raises(RuntimeError, match="multi"):
            store.record(watching, SCOPE, KEY, FINGERPRINT, 200, b"", {})


async def test_keys_live_under_the_service_prefix_and_scopes_cannot_collide(
    store: IdempotencyStore, hub_settings: HubSettings
) -> None:
    assert store.key_for("kiosk-7", "k").startswith(hub_settings.key(SERVICE, "idem") + ":")
    assert store.key_for("a:b", "c") != store.key_for("a", "b:c")


# --- the header and the fingerprint (pure; kept next to the store they feed) ---------------


def test_fingerprint_differs_by_method_path_and_body() -> None:
    fingerprints = {
        request_fingerprint("POST", "/sessions", b"{}"),
        request_fingerprint("PUT", "/sessions", b"{}"),
        request_fingerprint("POST", "/sessions/1", b"{}"),
        request_fingerprint("POST", "/sessions", b"{ }"),
    }
    assert len(fingerprints) == 4
    assert request_fingerprint("post", "/x", b"") == request_fingerprint("POST", "/x", b"")


@pytest.fixture
async def header_client() -> httpx.AsyncClient:
    app = FastAPI()
    install_problem_handlers(app)

    @app.post("/things")
    async def post_thing(key: IdempotencyKey) -> dict[str, str | None]:
        return {"key": key}

    return httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://test")


@pytest.mark.parametrize(
    ("sent", "seen"),
    [(None, None), ("abc-123", "abc-123"), ('"quoted key"', "quoted key"), ("k" * 255, "k" * 255)],
)
async def test_idempotency_key_header_is_optional_and_accepts_printable_ascii(
    header_client: httpx.AsyncClient, sent: str | None, seen: str | None
) -> None:
    headers = {"Idempotency-Key": sent} if sent is not None else {}
    async with header_client:
        response = await header_client.post("/things", headers=headers)
    assert response.status_code == 200
    assert response.json() == {"key": seen}


@pytest.mark.parametrize("sent", ["", '""', "k" * 256, "tab\there", "bl\u00e5b\u00e6r"])
async def test_idempotency_key_header_outside_the_rules_is_400(
    header_client: httpx.AsyncClient, sent: str
) -> None:
    async with header_client:
        response = await header_client.post(
            "/things", headers=[(b"Idempotency-Key", sent.encode("latin-1"))]
        )
    assert response.status_code == 400
    assert response.headers["content-type"] == "application/problem+json"
    assert response.json()["type"] == "https://kanalhub.dk/problems/idempotency-key-invalid"


# --- the documented endpoint flow, through FastAPI ------------------------------------------


def build_sessions_app(store: IdempotencyStore, redis: Redis, settings: HubSettings) -> FastAPI:
    """An endpoint written the way the module docstring says: begin, MULTI + record, release."""
    app = FastAPI()
    install_problem_handlers(app)
    failures_left = [1]

    @app.post("/sessions", status_code=201)
    async def post_session(request: Request, key: IdempotencyKey) -> Response:
        body = await request.body()
        fingerprint = request_fingerprint(request.method, request.url.path, body)
        if key is not None and (replay := await store.begin(SCOPE, key, fingerprint)):
            return replay.to_response()
        try:
            if b"flaky" in body and failures_left:
                failures_left.pop()
                raise RuntimeError("the first attempt fails")
            answer = json.dumps({"stored": True}).encode()
            async with redis.pipeline(transaction=True) as pipe:
                start_transaction(pipe)
                pipe.hincrby(state_key(settings), "stored", 1)
                if key is not None:
                    headers = {"content-type": "application/json"}
                    store.record(pipe, SCOPE, key, fingerprint, 201, answer, headers)
                await pipe.execute()
        except Exception:
            if key is not None:
                await store.release(SCOPE, key)
            raise
        return Response(answer, status_code=201, media_type="application/json")

    return app


async def test_endpoint_retried_with_the_same_key_acts_once_and_replays(
    store: IdempotencyStore, redis_client: Redis, hub_settings: HubSettings
) -> None:
    app = build_sessions_app(store, redis_client, hub_settings)
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://test") as client:
        first = await client.post("/sessions", content=BODY, headers={"Idempotency-Key": KEY})
        again = await client.post("/sessions", content=BODY, headers={"Idempotency-Key": KEY})
    assert first.status_code == again.status_code == 201
    assert again.content == first.content
    assert "idempotent-replayed" not in first.headers
    assert again.headers["idempotent-replayed"] == "true"
    assert await redis_client.hget(state_key(hub_settings), "stored") == b"1"


async def test_endpoint_that_failed_can_be_retried_at_once_with_the_same_key(
    store: IdempotencyStore, redis_client: Redis, hub_settings: HubSettings
) -> None:
    app = build_sessions_app(store, redis_client, hub_settings)
    transport = httpx.ASGITransport(app=app, raise_app_exceptions=False)
    async with httpx.AsyncClient(transport=transport, base_url="http://test") as client:
        failed = await client.post("/sessions", content=b"flaky", headers={"Idempotency-Key": KEY})
        retried = await client.post("/sessions", content=b"flaky", headers={"Idempotency-Key": KEY})
    assert failed.status_code == 500
    assert retried.status_code == 201  # not 409: the failed request released its claim
    assert await redis_client.hget(state_key(hub_settings), "stored") == b"1"
