"""Payloads on ``kanalhub.contacts.v1``: contact counts from channel systems outside kanalhub."""

from __future__ import annotations

import datetime as dt
from typing import ClassVar, Self

from pydantic import AwareDatetime, Field, NonNegativeInt, model_validator

from services.contracts.payloads.base import Code, Payload
from services.contracts.reference import Channel, ContactSource, District

SOURCE_CHANNEL: dict[ContactSource, Channel] = {
    ContactSource.DIGITAL_PLATFORM: Channel.DIGITAL,
    ContactSource.CONTACT_CENTRE: Channel.PHONE,
}
"""The one channel each source reports; it keeps the key (which has no channel) unambiguous."""


class CountReported(Payload):
    """An external system reported one day's contacts for a district and service.

    Published by the metrics service when the digital self-service platform or the telephony
    system delivers counts. The count replaces every earlier report with the same key
    (``source:day:district:service``): a corrected count is sent again in full, never as a
    difference, so re-delivery and corrections are both safe.
    """

    key_fields: ClassVar[tuple[str, ...]] = ("source", "day", "district", "service")

    source: ContactSource
    day: dt.date
    """The local Copenhagen day the contacts happened on."""
    district: District
    service: Code
    channel: Channel
    """Must be the source's own channel: digital for the platform, phone for the centre."""
    self_service: NonNegativeInt
    """Contacts the citizens finished on their own."""
    assisted: NonNegativeInt
    """Contacts that needed staff."""

    @model_validator(mode="after")
    def _channel_of_source(self) -> Self:
        if self.channel is not SOURCE_CHANNEL[self.source]:
            raise ValueError(
                f"{self.source} reports the {SOURCE_CHANNEL[self.source]} channel only"
            )
        return self


class DistrictShareChanged(Payload):
    """A district's digital share over the last ``window_days`` days changed.

    Published by the metrics service at most once a minute per district, and only when the
    share moved; the mobile planner uses it to send staff where the share is low. The window
    ends with ``last_day`` (a Copenhagen day) and includes it.
    """

    key_fields: ClassVar[tuple[str, ...]] = ("district",)

    district: District
    window_days: int = Field(ge=1, le=366)
    first_day: dt.date
    last_day: dt.date
    self_service: NonNegativeInt
    assisted: NonNegativeInt
    share: float | None = Field(ge=0.0, le=1.0)
    """``self_service / (self_service + assisted)``; null without contacts in the window."""
    computed_at: AwareDatetime
