"""Payloads the kvik service publishes on ``kanalhub.kvik.v1``.

Session events are keyed by ``session_id``, help events by the ``session_id`` they belong to
(so a request and its answer stay in order), kiosk events by ``kiosk_id``. Times are the
kiosk's own: a kiosk that uploads yesterday's sessions today reports yesterday's times.
"""

from __future__ import annotations

from typing import ClassVar, Literal, Self

from pydantic import AwareDatetime, model_validator

from services.contracts.payloads.base import Code, Id, Payload
from services.contracts.reference import Channel, District, HelpChannel


class SessionFields(Payload):
    """What every session event says about a self-service session at a KVIK kiosk."""

    key_fields: ClassVar[tuple[str, ...]] = ("session_id",)

    session_id: Id
    kiosk_id: Id
    entry_id: Id
    """The KVIK point (registry entry) the kiosk stands at."""
    district: District
    service: Code
    """The catalogue service the citizen came for."""
    started_at: AwareDatetime
    ended_at: AwareDatetime
    """Not before ``started_at``."""
    steps: tuple[Code, ...]
    """The codes of the screens the citizen went through, in order; no entered values."""
    help: HelpChannel
    """The staff help the citizen got; ``none`` makes a completed session self-service."""

    @model_validator(mode="after")
    def _ends_after_start(self) -> Self:
        if self.ended_at < self.started_at:
            raise ValueError("ended_at must not be before started_at")
        return self


class SessionCompleted(SessionFields):
    """A citizen finished a matter at a KVIK kiosk: one contact on the kvik channel.

    Published by the kvik service when a kiosk reports the session. It counts as self-service
    when ``help`` is ``none``, otherwise as assisted.
    """


class SessionAbandoned(SessionFields):
    """A citizen left a KVIK session without finishing; not a contact, counted for abandonment.

    Published by the kvik service when a kiosk reports the session.
    """


class SessionReferred(SessionFields):
    """A KVIK session ended with the citizen sent to another channel to finish the matter.

    Published by the kvik service when a kiosk reports the session. It is not a contact on the
    kvik channel; the contact is counted where the citizen finishes.
    """

    referred_to: Channel
    """The channel the citizen was sent to; never ``kvik`` itself."""

    @model_validator(mode="after")
    def _refers_elsewhere(self) -> Self:
        if self.referred_to is Channel.KVIK:
            raise ValueError("a referral sends the citizen to another channel than kvik")
        return self


class KioskFields(Payload):
    """What every kiosk event says about a KVIK kiosk."""

    key_fields: ClassVar[tuple[str, ...]] = ("kiosk_id",)

    kiosk_id: Id
    entry_id: Id
    """The KVIK point (registry entry) the kiosk stands at."""
    district: District
    at: AwareDatetime


class KioskRegistered(KioskFields):
    """A kiosk was registered at a KVIK point and given its device token.

    Published by the kvik service. A kiosk moved to another entry is registered again.
    """


class KioskOnline(KioskFields):
    """A kiosk came online: it reached the kvik service after being offline or new.

    Published by the kvik service.
    """


class KioskOffline(KioskFields):
    """A kiosk went offline: the kvik service has not heard from it within the heartbeat limit.

    Published by the kvik service.
    """


class HelpFields(Payload):
    """What every help event says about one request for staff help from a KVIK kiosk."""

    key_fields: ClassVar[tuple[str, ...]] = ("session_id",)

    help_request_id: Id
    kiosk_id: Id
    entry_id: Id
    session_id: Id
    """The session the citizen was in; help events share its key and partition."""
    channel: Literal[HelpChannel.VIDEO, HelpChannel.PHONE]
    requested_at: AwareDatetime


class HelpRequested(HelpFields):
    """A citizen at a KVIK kiosk asked for staff help by video or phone.

    Published by the kvik service; staff in a citizen service centre or the contact centre pick
    it up.
    """


class HelpAnswered(HelpFields):
    """Staff answered a help request from a KVIK kiosk.

    Published by the kvik service; ``answered_at - requested_at`` is the waiting time.
    """

    answered_at: AwareDatetime
    """Not before ``requested_at``."""

    @model_validator(mode="after")
    def _answered_after_request(self) -> Self:
        if self.answered_at < self.requested_at:
            raise ValueError("answered_at must not be before requested_at")
        return self
