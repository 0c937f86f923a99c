"""The plumbing every kanalhub service shares: settings, Kafka producer and consumer loop,
the Redis outbox and its relay, dedupe, dead-letter, readiness, Prometheus metrics, and the
HTTP pieces (problem+json, Idempotency-Key, auth)."""
