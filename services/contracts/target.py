"""The digital target every service works towards (docs/architecture.md, "Counting contacts").

The metrics service makes both configurable (``KANALHUB_METRICS_TARGET_SHARE`` and
``KANALHUB_METRICS_TARGET_DEADLINE``); these are the defaults, and what the mobile planner's
suggestions and the dashboards' colour thresholds measure a district against.
"""

from __future__ import annotations

import datetime as dt

DIGITAL_TARGET_SHARE = 0.80
"""The cross-government goal: at least 80 % of (general-needs) contacts by digital self-service
(seed 001, §2.1-2.2)."""

DIGITAL_TARGET_DEADLINE = dt.date(2029, 12, 31)
"""The last day of the city council's 2026-2029 term: targets with a date are set per council
term, and it lies within the forecast's default horizon (docs/metrics.md, "Target and
deadline")."""
