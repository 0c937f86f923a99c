"""Settings shared by every service, read from the environment (prefix ``KANALHUB_``).

Each service has its own ``BaseSettings`` (prefix ``KANALHUB_<SERVICE>_``) that embeds these as
``hub``. Nothing is read at import time: settings objects are built in ``create_app`` or by a test.
"""

from __future__ import annotations

from enum import StrEnum
from pathlib import Path
from typing import ClassVar, Literal, Self

from pydantic import Field, SecretStr, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from services.plumbing.kafka_security import (
    KafkaSaslMechanism,
    KafkaSecurityProtocol,
    kafka_settings_problems,
)
from services.plumbing.scrape_auth import PrometheusAuth
from services.plumbing.secret_strength import weak_secret_reasons

DEVELOPMENT_JWT_SECRET = "kanalhub-development-secret-do-not-use-in-production"
DEVELOPMENT_SUBJECT_KEY = "kanalhub-development-subject-key-do-not-use-in-production"


class Environment(StrEnum):
    """Where the process runs; production refuses development defaults."""

    DEVELOPMENT = "development"
    TEST = "test"
    PRODUCTION = "production"


class HubSettings(BaseSettings):
    """Connection and contract settings that every service and the launcher share."""

    model_config = SettingsConfigDict(env_prefix="KANALHUB_", extra="ignore")

    environment: Environment = Environment.DEVELOPMENT
    kafka_bootstrap: str = "127.0.0.1:9092"
    redis_url: str = "redis://127.0.0.1:6379/0"
    # Explicit topic creation: partitions bound how far a consumer group can scale out.
    topic_partitions: int = Field(default=6, ge=1, le=256)
    topic_replication: int = Field(default=1, ge=1, le=5)
    # Appended to every topic name; tests use it so they never see each other's events.
    topic_suffix: str = ""
    # First segment of every Redis key; tests use a unique one per test.
    key_prefix: str = "kanalhub"
    kafka_timeout_seconds: float = Field(default=10.0, gt=0)
    # How every Kafka client connects (services/plumbing/kafka_security.py): TLS (SSL), SASL
    # login, or both (SASL_SSL). PLAINTEXT, the default, is for a private network only;
    # production logs a warning at start with it. Checked when the settings are built: SASL
    # needs both credentials, certificate files must exist and load.
    kafka_security_protocol: KafkaSecurityProtocol = KafkaSecurityProtocol.PLAINTEXT
    kafka_sasl_mechanism: KafkaSaslMechanism = KafkaSaslMechanism.PLAIN
    kafka_sasl_username: str | None = None
    kafka_sasl_password: SecretStr | None = None
    # The CA that signed the brokers' certificates (unset: the system's CAs), and a client
    # certificate and key for brokers that authenticate clients by TLS.
    kafka_ssl_cafile: Path | None = None
    kafka_ssl_certfile: Path | None = None
    kafka_ssl_keyfile: Path | None = None
    kafka_ssl_key_password: SecretStr | None = None
    redis_timeout_seconds: float = Field(default=2.0, gt=0)
    # Workarounds for brokers weaker than Apache Kafka, off by default; the embedded launcher
    # and the test fixtures turn them on for the broker that needs them
    # (services/hub/embedded.py, ``KafkaBroker.client_settings``).
    # The outbox relay keeps what the broker acknowledged this long and sends it again after a
    # publish failure or a relay restart: a broker that loses acknowledged records when it
    # crashes (noida, memory-only Tansu) then loses nothing of ours. Kafka keeps what it
    # acknowledged (acks=all; replicated in production), so it needs no window.
    outbox_resend_window_seconds: float = Field(default=0.0, ge=0, le=3600)
    # A consumer's fetch that came back empty sooner than this is followed by the rest of it:
    # noida answers an empty fetch at once, and an idle consumer would spin on it (Kafka holds
    # an empty fetch for fetch_max_wait_ms itself). Patches a private part of aiokafka, and
    # refuses to start rather than run unpaced if that part is gone (fetch_pacing.py).
    empty_fetch_pause_seconds: float = Field(default=0.0, ge=0, le=1)
    # How long a consumer remembers an event id; longer than any redelivery we expect.
    dedupe_ttl_seconds: int = Field(default=7 * 24 * 3600, ge=60)
    # This replica's stable name (a pod name, "embedded"). When set, consumers use static group
    # membership: a restarted replica takes its partitions back at once instead of waiting for
    # its dead predecessor's session to expire - and on the noida broker, which never expires
    # one, at all (docs/decisions/0001-embedded-broker.md). Unique per replica of a service.
    instance_id: str | None = Field(default=None, pattern=r"^[A-Za-z0-9._-]{1,100}$")
    log_format: Literal["console", "json"] = "console"
    log_level: str = "INFO"

    # Bearer JWTs for people. HS256 with a shared secret in development; in production a
    # public key (PEM) or an OIDC JWKS URL, with an asymmetric algorithm.
    jwt_secret: SecretStr = SecretStr(DEVELOPMENT_JWT_SECRET)
    jwt_public_key: str | None = None
    jwt_jwks_url: str | None = None
    jwt_algorithms: list[str] = Field(default_factory=lambda: ["HS256"])
    jwt_issuer: str = "kanalhub"
    jwt_audience: str = "kanalhub"
    # Who may read /metrics (services/plumbing/scrape_auth.py, docs/security.md): "none" or
    # "bearer" with prometheus_token. Unset: none in development and test, bearer in production.
    prometheus_auth: PrometheusAuth | None = None
    prometheus_token: SecretStr | None = None
    # Strict-Transport-Security max-age sent by every service (services/plumbing/
    # security_headers.py). Set it (e.g. 31536000) only where the hub is served over HTTPS; 0,
    # the default, sends no HSTS: over plain http it means nothing, and a browser that kept it
    # for localhost would refuse a developer's plain-http services.
    hsts_seconds: int = Field(default=0, ge=0, le=63_072_000)
    # The key of the pseudonymous ids stored instead of a token's sub
    # (services/plumbing/pseudonyms.py). Changing it gives every person a new id: keep it as
    # long as the audit trails it signs.
    subject_key: SecretStr = SecretStr(DEVELOPMENT_SUBJECT_KEY)

    @model_validator(mode="after")
    def _refuse_unusable_kafka_security(self) -> Self:
        problems = kafka_settings_problems(self)
        if problems:
            raise ValueError("; ".join(problems))
        return self

    @model_validator(mode="after")
    def _refuse_development_secrets_in_production(self) -> Self:
        if self.environment is Environment.PRODUCTION:
            uses_shared_secret = self.jwt_public_key is None and self.jwt_jwks_url is None
            weak = uses_shared_secret and weak_secret_reasons(
                self.jwt_secret.get_secret_value(), DEVELOPMENT_JWT_SECRET
            )
            if weak:
                raise ValueError(
                    "KANALHUB_ENVIRONMENT=production refuses this KANALHUB_JWT_SECRET: "
                    + "; ".join(weak)
                    + ". Prefer an asymmetric key (KANALHUB_JWT_JWKS_URL or "
                    "KANALHUB_JWT_PUBLIC_KEY); a shared secret must be random, e.g. "
                    "`openssl rand -hex 32`"
                )
            weak_key = weak_secret_reasons(
                self.subject_key.get_secret_value(), DEVELOPMENT_SUBJECT_KEY
            )
            if weak_key:
                raise ValueError(
                    "KANALHUB_ENVIRONMENT=production refuses this KANALHUB_SUBJECT_KEY: "
                    + "; ".join(weak_key)
                    + ". Set a random key, e.g. `openssl rand -hex 32`, and keep it: it makes "
                    "the pseudonymous ids of people in audit trails"
                )
        return self

    @property
    def scrape_auth(self) -> PrometheusAuth:
        """How /metrics is protected: as configured, else bearer in production only."""
        if self.prometheus_auth is not None:
            return self.prometheus_auth
        if self.environment is Environment.PRODUCTION:
            return PrometheusAuth.BEARER
        return PrometheusAuth.NONE

    def topic(self, base: str) -> str:
        """The real topic name for a contract topic (adds the test suffix, if any)."""
        return f"{base}{self.topic_suffix}"

    def key(self, *parts: str) -> str:
        """A Redis key under this hub's prefix.

        ``key("kvik", "outbox")`` is ``kanalhub:kvik:outbox``; key names live in each
        service's store module, this only adds the prefix.
        """
        return ":".join((self.key_prefix, *parts))


class ServiceSettings(BaseSettings):
    """Base of each service's settings: where it listens, plus the shared ``hub`` settings."""

    model_config = SettingsConfigDict(extra="ignore")

    # The wire name of the service: Redis key segment, consumer group, CloudEvents source.
    service: ClassVar[str]

    host: str = "127.0.0.1"
    port: int = Field(default=8000, ge=1, le=65535)
    # Request bodies above this are refused with 413 before they are parsed.
    max_body_bytes: int = Field(default=1_048_576, ge=1024)
    # A request body must arrive within this many seconds of the app starting to read it;
    # a client that stalls or trickles is answered 408 and cut off, instead of holding a
    # request open for ever (1 MiB in 60 s is 17 KiB/s: any real kiosk link does better).
    body_timeout_seconds: float = Field(default=60.0, gt=0, le=3600)
    # Requests with more header fields, or more bytes of them, are refused with 431 before
    # auth (services/plumbing/header_limits.py). A kiosk or browser sends ~10 fields and well
    # under 4 KiB (a JWT is ~1 KiB); nginx's default head buffer is 8 KiB, Node's limit 16 KiB.
    max_header_bytes: int = Field(default=16_384, ge=1024, le=1_048_576)
    max_header_count: int = Field(default=100, ge=10, le=10_000)
    # A request head (request line and header fields) must be complete within this many
    # seconds of its first byte (of the connection opening, for a connection's first request);
    # a client trickling it (slowloris) is answered 408 and cut off by the server
    # (services/plumbing/header_limits.py). A kiosk's head is one packet; nginx allows 60 s.
    header_timeout_seconds: float = Field(default=10.0, gt=0, le=300)
    hub: HubSettings = Field(default_factory=HubSettings)

    @property
    def source(self) -> str:
        """The CloudEvents ``source`` of the events this service publishes."""
        return f"/kanalhub/{self.service}"

    @property
    def consumer_group(self) -> str:
        """The Kafka consumer group of this service (one per service, shared by replicas)."""
        return f"kanalhub.{self.service}{self.hub.topic_suffix}"
