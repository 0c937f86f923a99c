"""The operator's side of the dead-letter topic (issue 19, item 1), against the real broker:
``kanalhub deadletters list|release|drop``."""

from __future__ import annotations

import asyncio

import pytest
from typer.testing import CliRunner, Result

from services.contracts import CloudEvent, Topic
from services.hub.cli import app as cli
from services.plumbing.consumer import Transaction, UnprocessableEvent
from services.plumbing.deadletters import (
    NoSuchDeadLetter,
    NotReleasable,
    drop,
    handled_key,
    list_deadletters,
    release,
)
from tests.integration.plumbing.support import Wiring, eventually, make_event

pytestmark = pytest.mark.integration


async def dead_letters_made(wiring: Wiring) -> tuple[CloudEvent, CloudEvent]:
    """Two dead letters of the probe's group: an undecodable record, and an event its handler
    refuses (``unknown_visit``); and one event handled. Returns (refused, handled)."""
    refused, handled = make_event("visit-dl", seq=1), make_event("visit-dl", seq=2)
    await wiring.producer.send(wiring.settings.topic(Topic.MOBILE), "visit-dl", b"{not json")
    await wiring.producer.publish(refused)
    await wiring.producer.publish(handled)
    counting = wiring.counting_handler()

    async def handle(event: CloudEvent, tx: Transaction) -> None:
        if event.id == refused.id:
            raise UnprocessableEvent("unknown_visit", "no visit with this id is known")
        await counting(event, tx)

    await wiring.consume_until(1, handler=handle)
    return refused, handled


async def listed(wiring: Wiring, **filters: str) -> list[tuple[str, str]]:
    letters = await list_deadletters(wiring.settings, wiring.redis, **filters)  # type: ignore[arg-type]
    return [(letter.reason, letter.ref) for letter in letters]


async def settled_list(wiring: Wiring, count: int) -> list[tuple[str, str]]:
    """The dead letters once ``count`` of them are on the topic (they are written async)."""
    letters: list[tuple[str, str]] = []

    async def all_there() -> bool:
        nonlocal letters
        letters = await listed(wiring)
        return len(letters) >= count

    await eventually(all_there)
    return letters


async def test_list_shows_each_dead_letter_with_its_reason_and_filters_by_reason_and_group(
    wiring: Wiring,
) -> None:
    await dead_letters_made(wiring)
    letters = await settled_list(wiring, 2)
    assert sorted(reason for reason, _ in letters) == ["invalid_json", "unknown_visit"]
    full = await list_deadletters(wiring.settings, wiring.redis)
    group = f"kanalhub.probe{wiring.settings.topic_suffix}"
    assert {letter.group for letter in full} == {group}
    assert all(letter.origin.startswith(wiring.settings.topic(Topic.MOBILE)) for letter in full)
    assert [r for r, _ in await listed(wiring, reason="unknown_visit")] == ["unknown_visit"]
    assert len(await listed(wiring, group=group)) == 2
    assert await listed(wiring, group="kanalhub.someone-else") == []


async def test_a_released_dead_letter_is_handled_again_and_leaves_the_list(wiring: Wiring) -> None:
    refused, handled = await dead_letters_made(wiring)
    letters = dict(await settled_list(wiring, 2))

    # The cause is fixed (the visit is known now): release it and the consumer handles it.
    await release(wiring.settings, wiring.redis, wiring.producer, letters["unknown_visit"])
    await wiring.consume_until(2)
    assert await wiring.effects() == {str(handled.id): 1, str(refused.id): 1}
    assert [r for r, _ in await listed(wiring)] == ["invalid_json"]
    # Releasing again is harmless: the consumer dedupes by event id.
    await release(wiring.settings, wiring.redis, wiring.producer, letters["unknown_visit"])
    await wiring.consume_until(2, linger=1.0)
    assert await wiring.effects() == {str(handled.id): 1, str(refused.id): 1}


async def test_an_undecodable_dead_letter_is_not_released_and_can_be_dropped(
    wiring: Wiring,
) -> None:
    await dead_letters_made(wiring)
    letters = dict(await settled_list(wiring, 2))
    with pytest.raises(NotReleasable, match="invalid_json"):
        await release(wiring.settings, wiring.redis, wiring.producer, letters["invalid_json"])

    await drop(wiring.settings, wiring.redis, letters["invalid_json"])
    assert [r for r, _ in await listed(wiring)] == ["unknown_visit"]
    marks = await wiring.redis.hgetall(handled_key(wiring.settings))
    topic = wiring.settings.topic(Topic.DEADLETTER)
    assert list(marks) == [f"{topic}:{letters['invalid_json']}".encode()]
    assert b'"dropped"' in marks[f"{topic}:{letters['invalid_json']}".encode()]
    # A mistyped reference is refused, not "dropped".
    with pytest.raises(NoSuchDeadLetter):
        await drop(wiring.settings, wiring.redis, "0:999999")
    with pytest.raises(NoSuchDeadLetter):
        await drop(wiring.settings, wiring.redis, "kanalhub.deadletter.v1")


async def test_the_deadletters_commands_list_release_and_drop(
    wiring: Wiring, monkeypatch: pytest.MonkeyPatch
) -> None:
    await dead_letters_made(wiring)
    letters = dict(await settled_list(wiring, 2))
    monkeypatch.setenv("KANALHUB_KAFKA_BOOTSTRAP", wiring.settings.kafka_bootstrap)
    monkeypatch.setenv("KANALHUB_REDIS_URL", wiring.settings.redis_url)
    monkeypatch.setenv("KANALHUB_KEY_PREFIX", wiring.settings.key_prefix)
    monkeypatch.setenv("KANALHUB_TOPIC_SUFFIX", wiring.settings.topic_suffix)
    runner = CliRunner()

    async def run(*args: str) -> Result:
        # The command runs its own event loop, as from a shell: in a thread of its own here.
        return await asyncio.to_thread(
            runner.invoke, cli, ["deadletters", *args], env={"COLUMNS": "250"}
        )

    shown = await run("list")
    assert shown.exit_code == 0, shown.output
    for reason, ref in letters.items():
        assert reason in shown.output
        assert ref in shown.output
    only = await run("list", "--reason", "invalid_json")
    assert "unknown_visit" not in only.output
    assert "invalid_json" in only.output

    refused = await run("release", letters["invalid_json"])
    assert refused.exit_code == 1
    assert "not released" in refused.output
    released = await run("release", letters["unknown_visit"])
    assert released.exit_code == 0, released.output
    assert wiring.settings.topic(Topic.MOBILE) in released.output
    dropped = await run("drop", letters["invalid_json"])
    assert dropped.exit_code == 0, dropped.output
    assert "no dead letters" in (await run("list")).output
    missing = await run("drop", "7:7")
    assert missing.exit_code == 1
    assert "no dead letter at 7:7" in missing.output


async def test_a_record_too_large_to_dead_letter_whole_does_not_stop_its_partition(
    wiring: Wiring,
) -> None:
    topic = wiring.settings.topic(Topic.MOBILE)
    after = make_event("visit-large", seq=2)
    # Just under what the producer sends; with the dlq_ headers added it is over.
    await wiring.producer.send(topic, "visit-large", b"{" + b"x" * 1_048_440)
    await wiring.producer.publish(after)

    await wiring.consume_until(1)  # the later event of the same partition is handled
    assert await wiring.effects() == {str(after.id): 1}
    (letter,) = await settled_list(wiring, 1)
    assert letter[0] == "invalid_json"
    with pytest.raises(NotReleasable, match="refused:MessageSizeTooLargeError"):
        await release(wiring.settings, wiring.redis, wiring.producer, letter[1])
