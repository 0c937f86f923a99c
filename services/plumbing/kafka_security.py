"""How every Kafka client of the hub connects: plaintext, TLS, SASL, or SASL over TLS.

One place for it: :func:`kafka_client_options` gives the connection keyword arguments that
every aiokafka producer, consumer and admin client is built with, so a client cannot be added
that talks plaintext to a broker the others reach over TLS. :func:`kafka_settings_problems`
is the check ``HubSettings`` runs when it is built, so a wrong combination or a missing
certificate file stops the process at start with a line naming the setting, instead of as a
connection error deep in a consumer's retry loop.

Settings (``KANALHUB_KAFKA_...``): ``SECURITY_PROTOCOL`` (``PLAINTEXT``, ``SSL``,
``SASL_PLAINTEXT``, ``SASL_SSL``), ``SASL_MECHANISM`` (``PLAIN``, ``SCRAM-SHA-256``,
``SCRAM-SHA-512``), ``SASL_USERNAME``, ``SASL_PASSWORD``, ``SSL_CAFILE`` (unset: the system's
CAs), ``SSL_CERTFILE`` / ``SSL_KEYFILE`` / ``SSL_KEY_PASSWORD`` (a client certificate, for
brokers that authenticate clients by TLS). The broker's host name is always checked.
"""

from __future__ import annotations

import os
import ssl
from enum import StrEnum
from pathlib import Path
from typing import TYPE_CHECKING, Any

from aiokafka.helpers import create_ssl_context

if TYPE_CHECKING:
    from services.plumbing.settings import HubSettings


class KafkaSecurityProtocol(StrEnum):
    """Kafka's ``security.protocol``: whether the connection is encrypted and authenticated."""

    PLAINTEXT = "PLAINTEXT"
    SSL = "SSL"
    SASL_PLAINTEXT = "SASL_PLAINTEXT"
    SASL_SSL = "SASL_SSL"

    @property
    def uses_tls(self) -> bool:
        """True when the connection is encrypted (and the broker's certificate checked)."""
        return self in (KafkaSecurityProtocol.SSL, KafkaSecurityProtocol.SASL_SSL)

    @property
    def uses_sasl(self) -> bool:
        """True when the client logs in with a user name and password."""
        return self in (KafkaSecurityProtocol.SASL_PLAINTEXT, KafkaSecurityProtocol.SASL_SSL)


class KafkaSaslMechanism(StrEnum):
    """The SASL mechanisms the hub supports (those that take a user name and password)."""

    PLAIN = "PLAIN"
    SCRAM_SHA_256 = "SCRAM-SHA-256"
    SCRAM_SHA_512 = "SCRAM-SHA-512"


_FILES = (
    ("kafka_ssl_cafile", "KANALHUB_KAFKA_SSL_CAFILE"),
    ("kafka_ssl_certfile", "KANALHUB_KAFKA_SSL_CERTFILE"),
    ("kafka_ssl_keyfile", "KANALHUB_KAFKA_SSL_KEYFILE"),
)


def _tls_context(settings: HubSettings) -> ssl.SSLContext:
    key_password = settings.kafka_ssl_key_password
    context: ssl.SSLContext = create_ssl_context(
        cafile=settings.kafka_ssl_cafile,
        certfile=settings.kafka_ssl_certfile,
        keyfile=settings.kafka_ssl_keyfile,
        # Never None: with None, OpenSSL would prompt on the terminal for the password of an
        # encrypted key, and a service in a container would hang at start instead of failing.
        password=key_password.get_secret_value() if key_password is not None else "",
    )
    return context


def kafka_client_options(settings: HubSettings) -> dict[str, Any]:
    """The connection keyword arguments for any aiokafka client (producer, consumer, admin).

    ``bootstrap_servers`` and ``security_protocol`` always; an ``ssl_context`` (aiokafka's
    ``create_ssl_context``: TLS with the broker's host name checked) for ``SSL``/``SASL_SSL``;
    the SASL mechanism and credentials for ``SASL_PLAINTEXT``/``SASL_SSL``.
    """
    protocol = settings.kafka_security_protocol
    options: dict[str, Any] = {
        "bootstrap_servers": settings.kafka_bootstrap,
        "security_protocol": protocol.value,
    }
    if protocol.uses_tls:
        options["ssl_context"] = _tls_context(settings)
    if protocol.uses_sasl:
        password = settings.kafka_sasl_password
        options["sasl_mechanism"] = settings.kafka_sasl_mechanism.value
        options["sasl_plain_username"] = settings.kafka_sasl_username
        options["sasl_plain_password"] = password.get_secret_value() if password else None
    return options


def _file_problem(path: Path, env: str) -> str | None:
    if not path.is_file():
        return f"{env}={path}: no such file"
    if not os.access(path, os.R_OK):
        return f"{env}={path}: not readable by this process"
    return None


def kafka_settings_problems(settings: HubSettings) -> list[str]:
    """What is wrong with the Kafka security settings, one readable line each (empty: fine).

    Checked: SASL has a user name and a password; credentials or certificate files are not
    set for a protocol that would silently ignore them; each certificate file exists, is
    readable and loads (a CA that is not PEM, a key that does not match its certificate).
    """
    protocol = settings.kafka_security_protocol
    named = f"KANALHUB_KAFKA_SECURITY_PROTOCOL={protocol.value}"
    problems: list[str] = []
    username = settings.kafka_sasl_username
    password = settings.kafka_sasl_password
    if protocol.uses_sasl:
        missing = [
            env
            for env, value in (
                ("KANALHUB_KAFKA_SASL_USERNAME", username),
                ("KANALHUB_KAFKA_SASL_PASSWORD", password.get_secret_value() if password else ""),
            )
            if not value
        ]
        if missing:
            problems.append(f"{named} needs {' and '.join(missing)}")
    elif username or password is not None:
        problems.append(
            f"KANALHUB_KAFKA_SASL_USERNAME/_PASSWORD are set, but {named} sends no "
            "credentials (SASL_SSL or SASL_PLAINTEXT would)"
        )
    files = [(Path(value), env) for name, env in _FILES if (value := getattr(settings, name))]
    if not protocol.uses_tls:
        if files:
            problems.append(
                f"{', '.join(env for _, env in files)} set, but {named} does not use TLS "
                "(SSL or SASL_SSL would)"
            )
        return problems
    if settings.kafka_ssl_keyfile and not settings.kafka_ssl_certfile:
        problems.append("KANALHUB_KAFKA_SSL_KEYFILE is set without KANALHUB_KAFKA_SSL_CERTFILE")
        return problems
    file_problems = [p for path, env in files if (p := _file_problem(path, env)) is not None]
    if file_problems:
        return problems + file_problems
    if settings.kafka_ssl_cafile:
        try:
            ssl.create_default_context(cafile=settings.kafka_ssl_cafile)
        except (ssl.SSLError, OSError) as error:
            problems.append(
                f"KANALHUB_KAFKA_SSL_CAFILE={settings.kafka_ssl_cafile}: not a PEM CA "
                f"certificate ({error})"
            )
            return problems
    if settings.kafka_ssl_certfile:
        try:
            _tls_context(settings)
        except (ssl.SSLError, OSError) as error:
            problems.append(
                f"KANALHUB_KAFKA_SSL_CERTFILE={settings.kafka_ssl_certfile}: the client "
                "certificate does not load with KANALHUB_KAFKA_SSL_KEYFILE and "
                f"KANALHUB_KAFKA_SSL_KEY_PASSWORD ({error})"
            )
    return problems


def kafka_transport_warning(settings: HubSettings) -> str | None:
    """A warning to log at start in production when Kafka traffic is not encrypted.

    Not a refusal: the compose file and the Kubernetes manifests run Kafka in plaintext on a
    private network today (docs/security.md, ASVS 9.2.2 / 1.2.2).
    """
    from services.plumbing.settings import Environment  # settings imports this module

    protocol = settings.kafka_security_protocol
    if settings.environment is not Environment.PRODUCTION or protocol.uses_tls:
        return None
    if protocol.uses_sasl:
        return (
            "Kafka traffic is not encrypted (KANALHUB_KAFKA_SECURITY_PROTOCOL=SASL_PLAINTEXT): "
            "events cross the network in clear; use SASL_SSL unless that network is private"
        )
    return (
        "Kafka traffic is neither encrypted nor authenticated "
        "(KANALHUB_KAFKA_SECURITY_PROTOCOL=PLAINTEXT): anyone on that network can read and "
        "write events; use SASL_SSL unless the network is private"
    )
