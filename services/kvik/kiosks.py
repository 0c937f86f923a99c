"""The kvik service's kiosk use cases: who a device token belongs to (and its rate), registering
kiosks and issuing, rotating, revoking and reinstating their tokens, heartbeats, and the
liveness check that flips silent kiosks offline.

The refusals about the caller (unknown or revoked token, rate limit, posting for another kiosk)
are built here; the session and help use cases raise the same ones.
"""

from __future__ import annotations

import datetime as dt
import math
import uuid
from collections.abc import Callable
from dataclasses import dataclass

from services.contracts import EventType
from services.contracts.reference import EntryKind, EntryStatus
from services.kvik import domain, metrics, quarantine
from services.kvik.schemas import (
    HeartbeatOut,
    KioskAuditRecord,
    KioskCredentials,
    KioskOut,
    KioskState,
)
from services.kvik.settings import KvikSettings
from services.kvik.store import KvikStore
from services.plumbing.auth import hash_device_token, new_device_token
from services.plumbing.problems import FieldProblem, Problem, validation_problem

ATTEMPTS = 5
"""How often a use case re-reads and retries a write another request changed meanwhile."""


@dataclass(frozen=True)
class Kiosk:
    """The kiosk a request comes from (its device token verified)."""

    kiosk_id: str
    entry_id: str
    district: str


def unknown_token() -> Problem:
    """401: no kiosk has this device token."""
    return Problem(
        401,
        "token-invalid",
        "Token invalid",
        detail="The device token is unknown.",
        headers={"WWW-Authenticate": 'Bearer error="invalid_token"'},
        refusal="unknown device token",
    )


def rate_limited(retry_after_ms: int) -> Problem:
    """429: the kiosk sends faster than its bucket refills (counted)."""
    metrics.RATE_LIMITED.inc()
    return Problem(
        429,
        "rate-limited",
        "Too many requests",
        detail="This kiosk sends faster than its rate limit; retry after the pause.",
        headers={"Retry-After": str(max(1, math.ceil(retry_after_ms / 1000)))},
    )


def not_own(kiosk_id: str) -> Problem:
    """403: a kiosk posts for another kiosk."""
    return Problem(
        403,
        "other-kiosk",
        "Not your kiosk",
        detail="A kiosk may only post for itself; kiosk_id must be the token's kiosk.",
        refusal="other kiosk",
    )


def inactive() -> Problem:
    """401: the kiosk's token was revoked."""
    return Problem(
        401,
        "kiosk-inactive",
        "Kiosk inactive",
        detail="The kiosk's token was revoked; an administrator must issue a new one.",
        headers={"WWW-Authenticate": 'Bearer error="invalid_token"'},
        refusal="revoked device token",
    )


def check_own(kiosk: Kiosk, kiosk_id: str) -> None:
    """Raise 403 unless ``kiosk_id`` (from the body) is the token's kiosk."""
    if kiosk_id != kiosk.kiosk_id:
        raise not_own(kiosk_id)


def _not_found(kiosk_id: str) -> Problem:
    return Problem(404, None, "Not Found", detail=f"No kiosk {kiosk_id}.")


def _audit(action: str, actor: str, now: dt.datetime) -> str:
    """One audit record of an administrator's token change, as stored (JSON)."""
    return KioskAuditRecord.model_validate(
        {"action": action, "actor": actor, "at": now.isoformat()}
    ).model_dump_json()


class Kiosks:
    """Kiosks and their device tokens, on one store."""

    def __init__(
        self, store: KvikStore, settings: KvikSettings, clock: Callable[[], dt.datetime]
    ) -> None:
        self.store = store
        self.settings = settings
        self.clock = clock
        self.source = settings.source
        # kiosk -> (entry, district) as the last token check found them. Only a guess to build
        # a session's event before the one-round-trip post, which re-checks token and entry;
        # never used to decide who a caller is.
        self._hints: dict[str, tuple[str, str]] = {}

    def hint(self, kiosk_id: str) -> Kiosk | None:
        """The kiosk as the last token check found it, or None: a guess, never an identity."""
        hint = self._hints.get(kiosk_id)
        return None if hint is None else Kiosk(kiosk_id, *hint)

    def forget(self, kiosk_id: str) -> None:
        """Drop the guess of :meth:`hint` (it turned out stale)."""
        self._hints.pop(kiosk_id, None)

    async def authenticate(self, token: str) -> Kiosk:
        """The kiosk of a device token, one token taken from its bucket; else 401 or 429."""
        auth = await self.store.authenticate(
            hash_device_token(token), self.settings.rate_per_second, self.settings.rate_burst
        )
        if auth.outcome == "unknown":
            raise unknown_token()
        if auth.outcome == "revoked":
            raise inactive()
        if auth.outcome == "limited":
            raise rate_limited(auth.retry_after_ms)
        if len(self._hints) > 10_000:
            self._hints.clear()  # kiosks are hundreds; this only bounds a misuse
        self._hints[auth.kiosk_id] = (auth.entry_id, auth.district)
        return Kiosk(auth.kiosk_id, auth.entry_id, auth.district)

    async def register(self, entry_id: str, kiosk_id: str | None) -> KioskCredentials:
        """Register a kiosk at an open KVIK point; the token is in the answer and nowhere else."""
        kiosk_id = kiosk_id or f"kiosk-{uuid.uuid4().hex[:12]}"
        for _ in range(ATTEMPTS):
            entry = await self.store.entry(entry_id)
            problems = []
            if entry is None or entry.kind != EntryKind.KVIK_POINT.value:
                problems.append(
                    FieldProblem(field="body.entry_id", message="is not a known KVIK point")
                )
            elif entry.status != EntryStatus.OPEN.value:
                problems.append(FieldProblem(field="body.entry_id", message="is not open"))
            elif not entry.district:
                problems.append(FieldProblem(field="body.entry_id", message="names no district"))
            if problems or entry is None:
                raise validation_problem(problems)
            token = new_device_token()
            now = self.clock()
            event = domain.kiosk_event(
                EventType.KVIK_KIOSK_REGISTERED,
                kiosk_id,
                entry.entry_id,
                entry.district,
                now,
                self.source,
            )
            outcome = await self.store.register_kiosk(
                kiosk_id, entry, hash_device_token(token), now, event
            )
            if outcome == "exists":
                raise Problem(
                    409, "already-exists", "Already exists", detail="The kiosk id is taken."
                )
            if outcome == "ok":
                return KioskCredentials(
                    kiosk_id=kiosk_id, entry_id=entry.entry_id, district=entry.district, token=token
                )
        raise Problem(409, "changed-meanwhile", "Changed meanwhile", detail="Try again.")

    async def rotate(self, kiosk_id: str, actor: str) -> KioskCredentials:
        """A new token for an active kiosk; the old one stops working at once. A revoked kiosk
        is refused (409): it comes back only through :meth:`reinstate`."""
        token = new_device_token()
        now = self.clock()
        outcome = await self.store.rotate_token(
            kiosk_id, hash_device_token(token), now, _audit("rotate", actor, now)
        )
        if outcome == "revoked":
            raise Problem(
                409,
                "kiosk-revoked",
                "Kiosk revoked",
                detail=f"Kiosk {kiosk_id} is revoked; reinstate it "
                f"(POST /kiosks/{kiosk_id}/reinstate) to issue a new token.",
            )
        if outcome != "ok":
            raise _not_found(kiosk_id)
        view = await self.kiosk(kiosk_id)
        return KioskCredentials(
            kiosk_id=kiosk_id, entry_id=view.entry_id, district=view.district, token=token
        )

    async def reinstate(self, kiosk_id: str, actor: str) -> KioskCredentials:
        """Bring a revoked kiosk back with a new token, recorded in its audit list; a kiosk
        that is not revoked is a 409."""
        token = new_device_token()
        now = self.clock()
        outcome = await self.store.reinstate(
            kiosk_id, hash_device_token(token), now, _audit("reinstate", actor, now)
        )
        if outcome == "active":
            raise Problem(
                409,
                "kiosk-active",
                "Kiosk not revoked",
                detail=f"Kiosk {kiosk_id} is active; only a revoked kiosk is reinstated.",
            )
        if outcome != "ok":
            raise _not_found(kiosk_id)
        view = await self.kiosk(kiosk_id)
        return KioskCredentials(
            kiosk_id=kiosk_id, entry_id=view.entry_id, district=view.district, token=token
        )

    async def revoke(self, kiosk_id: str, actor: str) -> KioskOut:
        """Revoke a kiosk's token: refused from the next request on."""
        now = self.clock()
        if await self.store.revoke(kiosk_id, _audit("revoke", actor, now)) != "ok":
            raise _not_found(kiosk_id)
        return await self.kiosk(kiosk_id)

    async def audit(self, kiosk_id: str) -> list[KioskAuditRecord]:
        """The administrators' token changes of a kiosk, oldest first (404 for no kiosk)."""
        await self.kiosk(kiosk_id)
        return [
            KioskAuditRecord.model_validate_json(item)
            for item in await self.store.kiosk_audit(kiosk_id)
        ]

    async def kiosk(self, kiosk_id: str) -> KioskOut:
        """One kiosk as administrators see it."""
        raw = await self.store.kiosk(kiosk_id)
        if raw is None:
            raise _not_found(kiosk_id)
        online = raw.get("online")
        return KioskOut(
            kiosk_id=kiosk_id,
            entry_id=raw["entry_id"],
            district=raw["district"],
            status=raw["status"],
            registered_at=raw["registered_at"],
            online=None if online is None else online == "1",
            software_version=raw.get("software_version"),
            state=raw.get("state"),
            last_seen=raw.get("last_seen"),
            token_issued_at=raw.get("token_issued_at", raw["registered_at"]),
        )

    async def heartbeat(self, kiosk: Kiosk, kiosk_id: str, body: KioskState) -> HeartbeatOut:
        """Record a heartbeat; the first one after silence (or ever) brings the kiosk online."""
        check_own(kiosk, kiosk_id)
        now = self.clock()
        event = domain.kiosk_event(
            EventType.KVIK_KIOSK_ONLINE,
            kiosk.kiosk_id,
            kiosk.entry_id,
            kiosk.district,
            now,
            self.source,
        )
        outcome = await self.store.heartbeat(
            kiosk.kiosk_id, body.software_version, body.state, now, event
        )
        if outcome == "inactive":
            raise inactive()
        if outcome == "online":
            metrics.KIOSK_TRANSITIONS.labels("online").inc()
        return HeartbeatOut(
            kiosk_id=kiosk.kiosk_id,
            online=True,
            came_online=outcome == "online",
            next_within_seconds=self.settings.heartbeat_interval_seconds,
        )

    async def check_liveness_once(self, now: dt.datetime | None = None) -> int:
        """Flip kiosks silent for the missed heartbeats, while their entry is open, offline.

        Safe with any number of replicas running it: the store's script flips a kiosk only if
        it is still online and still silent, so exactly one offline event is staged.
        """
        now = now or self.clock()
        silence = dt.timedelta(
            seconds=self.settings.heartbeat_interval_seconds * self.settings.missed_heartbeats
        )
        cutoff = now - silence
        silent = dict(await self.store.silent_kiosks(cutoff))

        async def check(item: quarantine.Item) -> bool:
            return await self._check_liveness(item.member, silent[item.member], now, cutoff)

        # Each kiosk on its own: one whose record cannot be read is quarantined, not the round.
        items = [quarantine.Item(kiosk_id, self.store.seen_key) for kiosk_id in silent]
        return await quarantine.each(self.store, quarantine.Loop.LIVENESS, items, check, self.clock)

    async def _check_liveness(
        self, kiosk_id: str, seen_ms: int, now: dt.datetime, cutoff: dt.datetime
    ) -> bool:
        """Flip one silent kiosk offline if it is due; True if this call flipped it."""
        silence = now - cutoff
        raw = await self.store.kiosk(kiosk_id)
        if raw is None or raw.get("online") != "1":
            return False
        entry = await self.store.entry(raw["entry_id"])
        if entry is None or entry.hours is None:
            return False  # without opening hours no one can say the kiosk should be up
        last_seen = dt.datetime.fromtimestamp(seen_ms / 1000, dt.UTC)
        if not domain.offline_due(last_seen, now, silence, entry.hours):
            return False
        event = domain.kiosk_event(
            EventType.KVIK_KIOSK_OFFLINE,
            kiosk_id,
            raw["entry_id"],
            entry.district or raw["district"],
            now,
            self.source,
        )
        if not await self.store.mark_offline(kiosk_id, cutoff, event):
            return False
        metrics.KIOSK_TRANSITIONS.labels("offline").inc()
        return True
