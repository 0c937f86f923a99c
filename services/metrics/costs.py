"""Cost per contact by channel and what reaching the target would save (after the UK GDS
performance-platform KPIs). Pure functions; unit costs and the target come from settings.

The saving answers "what if the target were met today": enough assisted contacts of the
selection the target is about (the general-needs contacts) move to digital self-service to make
their share the target, each taken from their assisted channels in proportion to their assisted
contacts, so each moved contact saves their average assisted unit cost minus the digital unit
cost. Special-needs contacts are not moved: those citizens are meant to get personal contact.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from services.contracts import Channel, ContactMode
from services.metrics.domain import Share


@dataclass(frozen=True)
class ChannelCost:
    """One channel's contacts and what they cost."""

    channel: Channel
    contacts: int
    unit_cost: float
    cost: float


@dataclass(frozen=True)
class CostReport:
    """Costs of a selection's contacts and the saving at the target share."""

    channels: list[ChannelCost]
    total_cost: float
    cost_per_contact: float | None
    contacts_to_move: int
    saving_at_target: float


def cost_report(
    share: Share, unit_costs: dict[Channel, float], target: float, headline: Share | None = None
) -> CostReport:
    """Costs by channel for the contacts of ``share``, and the saving if ``headline`` (the
    contacts the target is about, a part of ``share``; all of them when None) met ``target``."""
    channels = []
    for channel in Channel:
        modes = share.channels[channel]
        contacts = modes[ContactMode.SELF_SERVICE] + modes[ContactMode.ASSISTED]
        unit = unit_costs[channel]
        channels.append(ChannelCost(channel, contacts, unit, contacts * unit))
    total_cost = sum(c.cost for c in channels)
    moved = share if headline is None else headline
    # (rounded to 9 places first: 0.8 x 100 is 80.00000000000001 in floating point)
    to_move = max(0, math.ceil(round(target * moved.total, 9)) - moved.self_service)
    to_move = min(to_move, moved.assisted)
    assisted_cost = sum(moved.channels[c][ContactMode.ASSISTED] * unit_costs[c] for c in Channel)
    average_assisted = assisted_cost / moved.assisted if moved.assisted else 0.0
    saving = to_move * max(0.0, average_assisted - unit_costs[Channel.DIGITAL])
    return CostReport(
        channels=channels,
        total_cost=total_cost,
        cost_per_contact=total_cost / share.total if share.total else None,
        contacts_to_move=to_move,
        saving_at_target=saving,
    )
