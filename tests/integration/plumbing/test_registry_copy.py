"""The registry-copy helper on a real Valkey: an older version of a record never overwrites a
newer one, whatever order the registry's events arrive in, also inside one transaction."""

from __future__ import annotations

import json
from uuid import uuid4

import pytest
from redis.asyncio import Redis

from services.plumbing.registry_copy import RegistryCopy

pytestmark = pytest.mark.integration


def _copy() -> RegistryCopy:
    return RegistryCopy(f"test{uuid4().hex[:10]}:copy")


def _state(version: int, **fields: object) -> str:
    return json.dumps({"id": "e-1", "version": version, **fields})


async def _apply(redis: Redis, *writes: tuple[str, RegistryCopy, int, str]) -> None:
    """Queue ``(op, copy, version, state)`` writes on one MULTI pipeline, as the consumer does."""
    async with redis.pipeline(transaction=True) as pipe:
        for op, copy, version, state in writes:
            if op == "upsert":
                copy.upsert(pipe, "e-1", version, state)
            else:
                copy.retire(pipe, "e-1", version, json.loads(state))
        await pipe.execute()


async def _stored(redis: Redis, copy: RegistryCopy) -> dict[str, object] | None:
    state = await copy.get(redis, "e-1")
    return None if state is None else dict(json.loads(state))


async def test_a_newer_upsert_replaces_the_copy(redis_client: Redis) -> None:
    copy = _copy()
    await _apply(redis_client, ("upsert", copy, 1, _state(1, name="old")))
    await _apply(redis_client, ("upsert", copy, 2, _state(2, name="new")))
    assert await _stored(redis_client, copy) == {"id": "e-1", "version": 2, "name": "new"}


async def test_an_older_or_repeated_upsert_leaves_the_newer_copy(redis_client: Redis) -> None:
    copy = _copy()
    await _apply(redis_client, ("upsert", copy, 3, _state(3, name="newest")))
    await _apply(
        redis_client,
        ("upsert", copy, 2, _state(2, name="older")),
        ("upsert", copy, 3, _state(3, name="same version, other contents")),
    )
    assert await _stored(redis_client, copy) == {"id": "e-1", "version": 3, "name": "newest"}


async def test_two_versions_in_one_transaction_keep_the_newer(redis_client: Redis) -> None:
    copy = _copy()
    await _apply(
        redis_client,
        ("upsert", copy, 5, _state(5, name="newer")),
        ("upsert", copy, 4, _state(4, name="older, later in the batch")),
    )
    assert await _stored(redis_client, copy) == {"id": "e-1", "version": 5, "name": "newer"}


async def test_retiring_keeps_the_record_and_sets_the_changes(redis_client: Redis) -> None:
    copy = _copy()
    await _apply(redis_client, ("upsert", copy, 1, _state(1, name="Borgerservice", status="open")))
    await _apply(redis_client, ("retire", copy, 2, json.dumps({"status": "closed"})))
    assert await _stored(redis_client, copy) == {
        "id": "e-1",
        "version": 2,
        "name": "Borgerservice",
        "status": "closed",
        "retired": True,
    }


async def test_an_older_upsert_does_not_undo_a_retirement(redis_client: Redis) -> None:
    copy = _copy()
    await _apply(
        redis_client,
        ("upsert", copy, 1, _state(1, name="x")),
        ("retire", copy, 2, "{}"),
        ("upsert", copy, 1, _state(1, name="x")),
    )
    stored = await _stored(redis_client, copy)
    assert stored is not None
    assert stored["retired"] is True
    assert stored["version"] == 2


async def test_an_older_retirement_does_not_touch_a_newer_record(redis_client: Redis) -> None:
    copy = _copy()
    await _apply(redis_client, ("upsert", copy, 4, _state(4, name="x")))
    await _apply(redis_client, ("retire", copy, 3, json.dumps({"status": "closed"})))
    assert await _stored(redis_client, copy) == {"id": "e-1", "version": 4, "name": "x"}


async def test_retiring_an_unknown_record_keeps_nothing(redis_client: Redis) -> None:
    copy = _copy()
    await _apply(redis_client, ("retire", copy, 1, "{}"))
    assert await copy.all(redis_client) == {}
