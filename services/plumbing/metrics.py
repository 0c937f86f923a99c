"""Every Prometheus metric of the plumbing, declared once.

Services declare their own business metrics in their own ``metrics.py``. Labels are kept to
bounded sets (service, topic, event type, outcome) so cardinality cannot grow with traffic.
"""

from __future__ import annotations

from prometheus_client import Counter, Gauge, Histogram

EVENTS_PUBLISHED = Counter(
    "kanalhub_events_published_total",
    "Events the outbox relay published and the broker acknowledged.",
    ["service", "topic", "type"],
)
EVENTS_CONSUMED = Counter(
    "kanalhub_events_consumed_total",
    "Events a consumer finished with, by outcome (handled, duplicate, deadlettered).",
    ["service", "topic", "type", "outcome"],
)
EVENTS_DEADLETTERED = Counter(
    "kanalhub_events_deadlettered_total",
    "Events sent to the dead-letter topic, by reason.",
    ["service", "topic", "reason"],
)
HANDLER_RETRIES = Counter(
    "kanalhub_handler_retries_total",
    "Handler attempts that failed and were retried, by error kind (transient or failure).",
    ["service", "kind"],
)
HANDLER_DURATION = Histogram(
    "kanalhub_handler_duration_seconds",
    "Time a consumer spent handling one event, dedupe and storage included.",
    ["service", "type"],
    buckets=(0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5),
)
OUTBOX_DEPTH = Gauge(
    "kanalhub_outbox_depth",
    "Events written to the Redis outbox and not yet acknowledged by the broker.",
    ["service"],
)
OUTBOX_OLDEST_AGE = Gauge(
    "kanalhub_outbox_oldest_age_seconds",
    "Age of the oldest event still waiting in the outbox (0 when empty).",
    ["service"],
)
OUTBOX_QUARANTINED = Counter(
    "kanalhub_outbox_quarantined_total",
    "Outbox entries the relay set aside instead of sending (malformed, or refused for good), "
    "by reason code.",
    ["service", "reason"],
)
RELAY_FAILURES = Counter(
    "kanalhub_outbox_relay_failures_total",
    "Publish attempts by the outbox relay that the broker did not acknowledge.",
    ["service"],
)
CONSUMER_LAG = Gauge(
    "kanalhub_consumer_lag",
    "Records between a consumer's position and the partition's high watermark.",
    ["service", "topic", "partition"],
)
DEPENDENCY_UP = Gauge(
    "kanalhub_dependency_up",
    "1 when the last readiness probe of a dependency (redis, kafka) succeeded.",
    ["service", "dependency"],
)
HTTP_REQUESTS = Counter(
    "kanalhub_http_requests_total",
    "HTTP requests answered, by route template and status code.",
    ["service", "method", "route", "status"],
)
HTTP_DURATION = Histogram(
    "kanalhub_http_request_duration_seconds",
    "HTTP request latency by route template.",
    ["service", "method", "route"],
    buckets=(0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0),
)
