"""No record can block a shared loop: the kvik service's periodic loops (the idle sweeper, the
kiosk liveness check, the help escalation) process their items one by one, and an item that
fails is quarantined - moved out of the loop's sorted set into the store's quarantine hash with
the reason, counted (``kanalhub_kvik_quarantined_total``) and logged once - while the loop goes
on with the others in the same round.

Before this, one session holding a value its event refuses (a CPR-shaped step) made every
sweep raise at that session, so no idle session of any kiosk was ever ended again.

What is the item's fault and what is not: when Redis itself does not answer (connection lost,
timeout, a replica that turned read-only, a server still loading) every item would fail alike,
so the round stops and is retried whole, and nothing is quarantined. Anything else an item
raises - a record that does not parse, an event that cannot be built, a script that fails on
the record's data - is that item's.

The reason names the kind of failure and where (``ValidationError: steps personal_data``),
never the offending value: a reason goes into a log line and stays in Redis for operators.
"""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Awaitable, Callable, Iterable
from dataclasses import dataclass
from enum import StrEnum

from pydantic import ValidationError
from redis.exceptions import (
    BusyLoadingError,
    ReadOnlyError,
    ResponseError,
)
from redis.exceptions import (
    ConnectionError as RedisConnectionError,
)
from redis.exceptions import (
    TimeoutError as RedisTimeoutError,
)

from services.contracts.guard import find_cpr
from services.kvik import metrics
from services.kvik.store import KvikStore
from services.plumbing.logging import get_logger

log = get_logger(__name__)


class Loop(StrEnum):
    """The periodic loops whose items can be quarantined (wire names: stored and labelled)."""

    SWEEPER = "sweeper"
    LIVENESS = "liveness"
    ESCALATION = "escalation"


@dataclass(frozen=True)
class Item:
    """One item of a loop's round: the member of the loop's sorted set, and the record a drop
    deletes ("" when a drop must leave the record alone)."""

    member: str
    set_key: str
    record_key: str = ""


_INFRASTRUCTURE = (RedisConnectionError, RedisTimeoutError, ReadOnlyError, BusyLoadingError)
_SAFE_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]{0,63}$")
_SCRIPT_ERROR = re.compile(r"user_script:\d+: (?P<why>[^\n]{1,160}?)(?: script:|$)")


def is_infrastructure(error: BaseException) -> bool:
    """Whether ``error`` says Redis is unwell rather than that the item is bad."""
    if isinstance(error, _INFRASTRUCTURE):
        return True
    # A script's own runtime error is about the data it read; any other error reply (OOM,
    # MASTERDOWN, NOREPLICAS, ...) is about the server.
    return isinstance(error, ResponseError) and _SCRIPT_ERROR.search(str(error)) is None


def reason(error: BaseException) -> str:
    """Why an item failed, in words an operator can act on, without the offending value."""
    kind = type(error).__name__
    if isinstance(error, ValidationError):
        parts = []
        for detail in error.errors(include_input=False, include_url=False):
            where = ".".join(str(part) for part in detail["loc"])
            if not where and "field" in detail.get("ctx", {}):
                where = str(detail["ctx"]["field"])  # the contract's model-level guard
            parts.append(f"{where or error.title} {detail['type']}")
        text = f"{kind}: {'; '.join(parts[:5])}"
    elif isinstance(error, KeyError) and error.args and _SAFE_NAME.match(str(error.args[0])):
        text = f"{kind}: missing field {error.args[0]}"  # our own field names only
    elif isinstance(error, ResponseError) and (match := _SCRIPT_ERROR.search(str(error))):
        text = f"{kind}: script failed: {match.group('why')}"
    else:
        # The message of most errors quotes the value (fromisoformat, int): left out.
        text = kind
    return kind if find_cpr(text) is not None else text


async def each(
    store: KvikStore,
    loop: Loop,
    items: Iterable[Item],
    work: Callable[[Item], Awaitable[bool]],
    now: Callable[[], dt.datetime],
) -> int:
    """Run ``work`` on every item, each on its own; returns how many it acted on.

    A failing item is quarantined and the round goes on; a failure of Redis itself stops the
    round (it is retried whole next time, nothing quarantined).
    """
    acted = 0
    for item in items:
        try:
            if await work(item):
                acted += 1
        except Exception as error:
            if is_infrastructure(error):
                raise
            await quarantine(store, loop, item, reason(error), now())
    return acted


async def quarantine(store: KvikStore, loop: Loop, item: Item, why: str, at: dt.datetime) -> None:
    """Set one item aside; counted and logged by the one caller that moved it."""
    moved = await store.quarantine(
        loop=loop.value,
        item=item.member,
        set_key=item.set_key,
        record_key=item.record_key,
        reason=why,
        at=at,
    )
    if moved:
        metrics.QUARANTINED.labels(loop.value).inc()
        # Ids are uuids and slugs; one that looks like a CPR number is not logged either.
        shown = item.member if find_cpr(item.member) is None else "(withheld)"
        log.warning("item quarantined", loop=loop.value, item=shown, reason=why)
