"""A service's copy of registry records (entries, sites, catalogue services), kept from the
registry's events with a version guard: an older version never overwrites a newer one.

The registry's events can be delivered again (a consumer restart, a redrive), and out of
order across a re-published backlog, so a copy that simply wrote the latest event it heard
would go back in time. Here one Redis hash holds the copy: field = the record's id, value = the
record's state as JSON with its ``version``. Both writes run as scripts queued on the caller's
MULTI pipeline (the consumer's transaction), so they compare with the stored version on the
server, in order with the transaction's other commands: two events for one record in one batch
see each other.

Retiring keeps what the record was (kind, district, site, hours: the history still names it)
and marks it ``"retired": true``; retiring a record the copy never had does nothing.

The owning service names the hash (its store defines its keys); this module has no key of its
own.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from importlib import resources

from redis.asyncio import Redis
from redis.asyncio.client import Pipeline

from services.plumbing.redis_replies import reply_text


def _script(name: str) -> str:
    return (resources.files("services.plumbing") / "lua" / name).read_text(encoding="utf-8")


_UPSERT = _script("copy_upsert.lua")
_RETIRE = _script("copy_retire.lua")


class RegistryCopy:
    """The version-guarded copy of one kind of registry record in the hash ``key``."""

    def __init__(self, key: str) -> None:
        self.key = key
        """The Redis hash of the copy (defined by the owning service's store)."""

    def upsert(self, pipe: Pipeline, record_id: str, version: int, state_json: str) -> None:
        """Queue: keep ``state_json`` (the record as JSON, its ``version`` field equal to
        ``version``) as the record's state, unless the copy holds that version or a newer one."""
        pipe.eval(_UPSERT, 1, self.key, record_id, str(version), state_json)

    def retire(
        self,
        pipe: Pipeline,
        record_id: str,
        version: int,
        changes: Mapping[str, str | int | float | bool | None] | None = None,
    ) -> None:
        """Queue: mark the record retired at ``version`` and set ``changes`` (field -> new
        value) on its state, keeping the rest of it; nothing when the copy does not have the
        record or holds a newer version."""
        pairs = [
            part for field, value in (changes or {}).items() for part in (field, json.dumps(value))
        ]
        pipe.eval(_RETIRE, 1, self.key, record_id, str(version), *pairs)

    async def get(self, redis: Redis, record_id: str) -> str | None:
        """One record's state as JSON, or None when the copy does not have it."""
        raw = await redis.hget(self.key, record_id)
        return None if raw is None else reply_text(raw)

    async def all(self, redis: Redis) -> dict[str, str]:
        """Every record's state as JSON, by id (retired ones too)."""
        raw: dict[bytes | str, bytes | str] = await redis.hgetall(self.key)
        return {reply_text(record_id): reply_text(state) for record_id, state in raw.items()}
