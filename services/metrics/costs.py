"""Cost per contact by channel and what reaching 80 % would save (after the UK GDS
performance-platform KPIs). Pure functions; unit costs come from settings.

The saving answers "what if the target were met today": enough assisted contacts move to
digital self-service to make the share 80 %, each taken from the assisted channels in
proportion to their assisted contacts, so each moved contact saves the average assisted unit
cost minus the digital unit cost.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from services.contracts import Channel, ContactMode
from services.metrics.domain import Share
from services.metrics.forecast import TARGET


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
    share: Share, unit_costs: dict[Channel, float], target: float = TARGET
) -> CostReport:
    """Costs by channel for the contacts of ``share`` and the saving if ``target`` were met."""
    channels = []
    for channel in Channel:
        modes = share.channels[channel]
        contacts = modes[ContactMode.SELF_SERVICE] + modes[ContactMode.ASSISTED]
        unit = unit_costs[channel]
        channels.append(ChannelCost(channel, contacts, unit, contacts * unit))
    total_cost = sum(c.cost for c in channels)
    to_move = max(0, math.ceil(target * share.total) - share.self_service)
    to_move = min(to_move, share.assisted)
    assisted_cost = sum(share.channels[c][ContactMode.ASSISTED] * unit_costs[c] for c in Channel)
    average_assisted = assisted_cost / share.assisted if share.assisted else 0.0
    saving = to_move * max(0.0, average_assisted - unit_costs[Channel.DIGITAL])
    return CostReport(
        channels=channels,
        total_cost=total_cost,
        cost_per_contact=total_cost / share.total if share.total else None,
        contacts_to_move=to_move,
        saving_at_target=saving,
    )
