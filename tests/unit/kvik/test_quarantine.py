"""The per-item runner of the kvik loops: a failing item is quarantined and the round goes on;
Redis being unwell stops the round and quarantines nothing; reasons never hold the value."""

from __future__ import annotations

import datetime as dt
from typing import Any

import pytest
from pydantic import ValidationError
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import ReadOnlyError, ResponseError
from redis.exceptions import TimeoutError as RedisTimeoutError

from services.contracts import HelpChannel, SessionOutcome
from services.kvik import domain, quarantine
from services.kvik.quarantine import Item, Loop

CPR = "0102031234"
NOW = dt.datetime(2026, 3, 2, 10, 0, tzinfo=dt.UTC)


class FakeStore:
    """A named fake: records what would be quarantined (the real store is covered by
    tests/integration/kvik/test_quarantine.py)."""

    def __init__(self) -> None:
        self.quarantined: list[dict[str, Any]] = []

    async def quarantine(self, **fields: Any) -> bool:
        self.quarantined.append(fields)
        return True


def _items(*members: str) -> list[Item]:
    return [Item(member, "set") for member in members]


async def test_a_failing_item_is_quarantined_and_the_others_still_run() -> None:
    store = FakeStore()
    seen: list[str] = []

    async def work(item: Item) -> bool:
        seen.append(item.member)
        if item.member == "bad":
            raise ValueError(f"Invalid isoformat string: '{CPR}'")
        return True

    acted = await quarantine.each(
        store,  # type: ignore[arg-type]
        Loop.SWEEPER,
        _items("a", "bad", "b"),
        work,
        lambda: NOW,
    )
    assert (acted, seen) == (2, ["a", "bad", "b"])
    assert [(q["item"], q["loop"], q["reason"]) for q in store.quarantined] == [
        ("bad", "sweeper", "ValueError")
    ]


@pytest.mark.parametrize(
    "error",
    [
        RedisConnectionError("gone"),
        RedisTimeoutError("slow"),
        ReadOnlyError("READONLY You can't write against a read only replica."),
        ResponseError("OOM command not allowed when used memory > 'maxmemory'."),
    ],
)
async def test_redis_being_unwell_stops_the_round_and_quarantines_nothing(
    error: Exception,
) -> None:
    store = FakeStore()

    async def work(item: Item) -> bool:
        raise error

    with pytest.raises(type(error)):
        await quarantine.each(store, Loop.LIVENESS, _items("a", "b"), work, lambda: NOW)  # type: ignore[arg-type]
    assert store.quarantined == []


def test_a_script_error_is_the_items_fault_and_its_reason_names_the_failure() -> None:
    error = ResponseError(
        "user_script:6: attempt to compare nil with number script: 4f0e, on @user_script:6."
    )
    assert not quarantine.is_infrastructure(error)
    assert quarantine.reason(error) == (
        "ResponseError: script failed: attempt to compare nil with number"
    )


def test_an_event_the_guard_refuses_is_reasoned_by_field_and_kind_not_value() -> None:
    session = domain.Session(
        session_id="3f1e2d4c-0000-4000-8000-000000000001",
        kiosk_id="kiosk-1",
        service="passport",
        started_at=NOW,
        ended_at=NOW,
        steps=("identify", f"s_{CPR}"),
        outcome=SessionOutcome.ABANDONED,
        help=HelpChannel.NONE,
    )
    with pytest.raises(ValidationError) as caught:
        domain.session_event(session, "kvik-1", "valby", "/kanalhub/kvik")
    why = quarantine.reason(caught.value)
    assert why == "ValidationError: steps personal_data"


def test_a_missing_field_is_named_but_a_key_that_is_a_value_is_not() -> None:
    assert quarantine.reason(KeyError("entry_id")) == "KeyError: missing field entry_id"
    assert quarantine.reason(KeyError(f"s_{CPR}")) == "KeyError"
    assert quarantine.reason(KeyError("a key with spaces")) == "KeyError"
