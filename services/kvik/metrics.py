"""The kvik service's Prometheus metrics, declared once. Labels are bounded sets.

Time to help is not here: the metrics service derives it from the help events
(``kanalhub_help_wait_seconds``, by channel), the one figure the dashboards show."""

from __future__ import annotations

from prometheus_client import Counter, Histogram

# Not kanalhub_kvik_sessions_total: the metrics service exposes that business figure (by
# district, outcome, help) from the events; this one counts what the kvik API answered.
SESSIONS = Counter(
    "kanalhub_kvik_session_posts_total",
    "Sessions the kvik service answered, by how (single, batch, stream, sweeper) and result "
    "(created, replayed, refused).",
    ["via", "result"],
)
BATCH_SIZE = Histogram(
    "kanalhub_kvik_batch_items",
    "Items per batch upload.",
    buckets=(1, 10, 50, 100, 250, 500, 1000),
)
RATE_LIMITED = Counter(
    "kanalhub_kvik_rate_limited_total", "Kiosk requests refused by the per-kiosk rate limit."
)
KIOSK_TRANSITIONS = Counter(
    "kanalhub_kvik_kiosk_transitions_total",
    "Kiosks that went online or offline.",
    ["to"],
)
HELP_ESCALATED = Counter(
    "kanalhub_kvik_help_escalated_total",
    "Help requests moved to the contact centre because no one took them in time.",
)
QUARANTINED = Counter(
    "kanalhub_kvik_quarantined_total",
    "Items a periodic loop (sweeper, liveness, escalation) could not process and set aside "
    "for an operator (kanalhub kvik quarantine list), by loop.",
    ["loop"],
)
TOKEN_FAILURES = Counter(
    "kanalhub_kvik_device_token_failures_total",
    "Requests with an unknown device token, by answer: 401, or 429 once the client address "
    "is past its limit of failed attempts per minute.",
    ["answer"],
)
