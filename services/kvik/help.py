"""The kvik service's staff-help use cases: a kiosk asks for help, the request waits in its
district team's queue, staff take it (its wait is in the answer and in the answered event, from
which the metrics service derives the time-to-help figure), and a request no team took in time
moves to the contact centre's queue."""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable

from services.contracts import HelpRequested
from services.contracts.guard import find_cpr
from services.kvik import domain, metrics, quarantine
from services.kvik.kiosks import ATTEMPTS, Kiosk, check_own, inactive
from services.kvik.schemas import HelpIn, HelpOut
from services.kvik.settings import KvikSettings
from services.kvik.store import KvikStore, to_ms
from services.plumbing.auth import Principal
from services.plumbing.problems import FieldProblem, Problem, validation_problem

HELP_TTL_SECONDS = 7 * 24 * 3600
"""How long a help request is kept after it was made."""


def _not_found(help_id: str) -> Problem:
    return Problem(404, None, "Not Found", detail=f"No help request {help_id}.")


def _already_taken() -> Problem:
    return Problem(409, "already-taken", "Already taken", detail="Someone took it first.")


class Help:
    """Help requests and their queues, on one store."""

    def __init__(
        self, store: KvikStore, settings: KvikSettings, clock: Callable[[], dt.datetime]
    ) -> None:
        self.store = store
        self.settings = settings
        self.clock = clock
        self.source = settings.source

    async def request(self, kiosk: Kiosk, body: HelpIn) -> tuple[int, HelpOut]:
        """Queue a help request with the entry's team: 201, or 200 for the same request again."""
        check_own(kiosk, body.kiosk_id)
        help_id = str(body.help_request_id)
        # The server's clock, not the kiosk's: the wait is measured from here to the answer.
        now = self.clock()
        event = domain.help_requested_event(
            help_id,
            kiosk.kiosk_id,
            kiosk.entry_id,
            body.session_id,
            body.channel,
            now,
            self.source,
        )
        fingerprint = domain.digest(
            [help_id, kiosk.kiosk_id, str(body.session_id), body.channel.value]
        )
        outcome = await self.store.request_help(
            help_id=help_id,
            kiosk_id=kiosk.kiosk_id,
            queue=domain.team_queue(kiosk.district),
            fingerprint=fingerprint,
            requested=event.data.model_dump_json(),
            requested_at=now,
            event=event,
            ttl=HELP_TTL_SECONDS,
        )
        if outcome == "conflict":
            raise Problem(
                409,
                "help-conflict",
                "Help request conflict",
                detail="A different help request with this id exists.",
            )
        if outcome == "inactive":
            raise inactive()
        return (201 if outcome == "created" else 200), await self.get(help_id)

    async def get(self, help_id: str) -> HelpOut:
        """One help request."""
        raw = await self.store.help_request(help_id)
        if not raw:
            raise _not_found(help_id)
        return _help_out(help_id, raw)

    async def queue(self, queue: str) -> list[HelpOut]:
        """The waiting requests of a queue, longest waiting first."""
        if queue not in domain.queue_names():
            raise Problem(404, None, "Not Found", detail=f"No queue {queue}.")
        return [_help_out(row["id"], row) for row in await self.store.queue(queue)]

    async def take(self, help_id: str, staff: Principal) -> HelpOut:
        """Staff take a waiting request; the answer and the answered event carry the wait.

        The request records ``staff.actor`` (the pseudonymous id), never the token's subject.
        """
        if find_cpr(staff.subject) is not None:
            # The subject itself is never stored, but a CPR-shaped one means the identity
            # provider hands out personal data as ids: the CPR guard holds for identity claims
            # as for bodies.
            raise validation_problem(
                [
                    FieldProblem(
                        field="token.sub",
                        message="looks like a CPR number; staff tokens must carry a "
                        "pseudonymous subject",
                    )
                ]
            )
        for _ in range(ATTEMPTS):
            raw = await self.store.help_request(help_id)
            if not raw:
                raise _not_found(help_id)
            if raw["state"] != "waiting":
                raise _already_taken()
            requested = HelpRequested.model_validate_json(raw["requested"])
            answered_at = max(self.clock(), requested.requested_at)
            event = domain.help_answered_event(requested, answered_at, self.source)
            outcome = await self.store.take_help(
                help_id, raw["queue"], staff.actor, answered_at, event
            )
            if outcome == "retry":
                continue  # escalated meanwhile: take it from its new queue
            if outcome == "taken":
                raise _already_taken()
            return await self.get(help_id)
        raise Problem(409, "changed-meanwhile", "Changed meanwhile", detail="Try again.")

    async def escalate_once(self, now: dt.datetime | None = None) -> int:
        """Move requests no team took within the limit to the contact centre's queue."""
        now = now or self.clock()
        cutoff = now - dt.timedelta(seconds=self.settings.help_escalate_after_seconds)
        moved = 0
        for queue in domain.queue_names():
            if queue == domain.CONTACT_CENTRE_QUEUE:
                continue

            async def escalate(item: quarantine.Item, queue: str = queue) -> bool:
                if not await self.store.escalate(
                    item.member, queue, domain.CONTACT_CENTRE_QUEUE, to_ms(cutoff)
                ):
                    return False
                metrics.HELP_ESCALATED.inc()
                return True

            # Each request on its own: one whose record breaks the move is quarantined.
            items = [
                quarantine.Item(help_id, self.store.queue_key(queue))
                for help_id in await self.store.overdue_help(queue, cutoff)
            ]
            moved += await quarantine.each(
                self.store, quarantine.Loop.ESCALATION, items, escalate, self.clock
            )
        return moved


def _help_out(help_id: str, raw: dict[str, str]) -> HelpOut:
    requested = HelpRequested.model_validate_json(raw["requested"])
    answered_ms = raw.get("answered_ms")
    answered_at = (
        dt.datetime.fromtimestamp(int(answered_ms) / 1000, dt.UTC) if answered_ms else None
    )
    wait = max(0.0, (int(answered_ms) - int(raw["requested_ms"])) / 1000) if answered_ms else None
    return HelpOut(
        help_request_id=help_id,
        kiosk_id=requested.kiosk_id,
        entry_id=requested.entry_id,
        session_id=requested.session_id,
        channel=requested.channel,
        queue=raw["queue"],
        state=raw["state"],
        requested_at=requested.requested_at.isoformat(),
        escalated=raw.get("escalated") == "1",
        answered_at=answered_at.isoformat() if answered_at else None,
        staff=raw.get("staff"),
        wait_seconds=wait,
    )
