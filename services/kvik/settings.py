"""Settings of the kvik service (environment prefix ``KANALHUB_KVIK_``)."""

from __future__ import annotations

from typing import ClassVar

from pydantic import Field
from pydantic_settings import SettingsConfigDict

from services.plumbing.settings import ServiceSettings


class KvikSettings(ServiceSettings):
    """Where the kvik service listens and how its clocks tick; the hub settings come in ``hub``.

    Every interval is a setting so tests can run the sweeper, the liveness monitor and the help
    escalation in fractions of a second.
    """

    model_config = SettingsConfigDict(env_prefix="KANALHUB_KVIK_", extra="ignore")

    service: ClassVar[str] = "kvik"
    port: int = Field(default=8002, ge=1, le=65535)
    # A batch of 1,000 sessions is ~400 KB of JSON; 1 MiB leaves room and still bounds memory.
    max_body_bytes: int = Field(default=1_048_576, ge=1024)

    # Sessions.
    clock_skew_seconds: float = Field(default=300.0, ge=0)
    """How far in the future a kiosk's clock may be before its times are refused."""
    max_session_seconds: float = Field(default=4 * 3600, gt=0)
    max_batch_items: int = Field(default=1000, ge=1, le=10_000)
    idle_timeout_seconds: float = Field(default=30 * 60, gt=0)
    """A started session not heard of for this long is abandoned by the sweeper."""
    sweep_interval_seconds: float = Field(default=30.0, gt=0)
    session_ttl_seconds: int = Field(default=14 * 24 * 3600, ge=60)
    """How long an ended session is kept to answer retries (longer than any offline backlog)."""

    # Kiosks.
    heartbeat_interval_seconds: float = Field(default=60.0, gt=0)
    """How often kiosks report; silent for 3 intervals while open means offline."""
    missed_heartbeats: int = Field(default=3, ge=1)
    liveness_check_seconds: float = Field(default=15.0, gt=0)
    rate_per_second: float = Field(default=20.0, gt=0)
    """Requests per second a kiosk may make on average (token bucket refill rate)."""
    rate_burst: int = Field(default=100, ge=1)
    """Requests a kiosk may make at once (token bucket size); a backlog upload is one request."""
    failed_token_attempts_per_minute: int = Field(default=20, ge=1, le=10_000)
    """Unknown device tokens one client address may send per minute before it is answered 429
    (shared by the replicas through Redis); a valid token is never held back."""

    # Staff help.
    help_escalate_after_seconds: float = Field(default=120.0, gt=0)
    """A help request not taken within this time moves to the contact centre's queue."""
    help_check_seconds: float = Field(default=5.0, gt=0)
    help_stream_poll_seconds: float = Field(default=0.5, gt=0)
    help_stream_ping_seconds: float = Field(default=15.0, gt=0)

    background_tasks: bool = True
    """Run the sweeper, liveness monitor and escalation in this process (tests may drive them)."""
