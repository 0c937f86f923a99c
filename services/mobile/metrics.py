"""The mobile service's own Prometheus metrics, declared once.

Visits and contacts per district are counted by the metrics service from the events (its
``kanalhub_mobile_*`` figures); this module measures the planning itself. Labels are bounded
sets (conflict kinds, refusal kinds).
"""

from __future__ import annotations

from prometheus_client import Counter

PLANS_REFUSED = Counter(
    "kanalhub_mobile_planning_refusals_total",
    "Plans and edits refused by a planning rule: overlap, travel_time, outside_opening_hours.",
    ["reason"],
)
OPENING_HOUR_OVERRIDES = Counter(
    "kanalhub_mobile_opening_hour_overrides_total",
    "Visits planned outside their place's opening hours because a planner overrode it.",
)
