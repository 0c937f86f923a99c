"""Kafka connection security: the options every client is built with, and the checks that stop
a process at start when the settings cannot work (services/plumbing/kafka_security.py)."""

from __future__ import annotations

import datetime as dt
import ssl
from dataclasses import dataclass
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID
from pydantic import SecretStr, ValidationError

from services.plumbing.kafka_security import kafka_client_options, kafka_transport_warning
from services.plumbing.settings import HubSettings


@dataclass
class Pem:
    cert: Path
    key: Path


def _write_self_signed(directory: Path, name: str, key_password: bytes | None = None) -> Pem:
    """A self-signed certificate (a usable CA and a usable client certificate) and its key."""
    key = ec.generate_private_key(ec.SECP256R1())
    subject = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, name)])
    now = dt.datetime.now(dt.UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(subject)
        .issuer_name(subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(minutes=1))
        .not_valid_after(now + dt.timedelta(days=1))
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .sign(key, hashes.SHA256())
    )
    encryption: serialization.KeySerializationEncryption = (
        serialization.BestAvailableEncryption(key_password)
        if key_password
        else serialization.NoEncryption()
    )
    pem = Pem(directory / f"{name}.crt", directory / f"{name}.key")
    pem.cert.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    pem.key.write_bytes(
        key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, encryption)
    )
    return pem


@pytest.fixture
def ca(tmp_path: Path) -> Pem:
    return _write_self_signed(tmp_path, "ca")


@pytest.fixture
def client(tmp_path: Path) -> Pem:
    return _write_self_signed(tmp_path, "client")


def _refusal(**settings: object) -> str:
    with pytest.raises(ValidationError) as caught:
        HubSettings(**settings)  # type: ignore[arg-type]
    return str(caught.value)


# --- the options per protocol ------------------------------------------------------------------


def test_plaintext_gives_only_the_bootstrap_servers_and_the_protocol() -> None:
    options = kafka_client_options(HubSettings(kafka_bootstrap="kafka:9092"))
    assert options == {"bootstrap_servers": "kafka:9092", "security_protocol": "PLAINTEXT"}


def test_ssl_gives_a_context_that_checks_the_brokers_certificate_and_name(ca: Pem) -> None:
    options = kafka_client_options(
        HubSettings(kafka_security_protocol="SSL", kafka_ssl_cafile=ca.cert)
    )
    context = options["ssl_context"]
    assert options["security_protocol"] == "SSL"
    assert isinstance(context, ssl.SSLContext)
    assert context.verify_mode is ssl.CERT_REQUIRED
    assert context.check_hostname
    # The configured CA is the one trusted.
    assert [c["subject"] for c in context.get_ca_certs()] == [((("commonName", "ca"),),)]
    assert not {"sasl_mechanism", "sasl_plain_username", "sasl_plain_password"} & options.keys()


def test_ssl_with_a_client_certificate_loads_it(ca: Pem, client: Pem) -> None:
    options = kafka_client_options(
        HubSettings(
            kafka_security_protocol="SSL",
            kafka_ssl_cafile=ca.cert,
            kafka_ssl_certfile=client.cert,
            kafka_ssl_keyfile=client.key,
        )
    )
    assert isinstance(options["ssl_context"], ssl.SSLContext)


def test_sasl_plaintext_gives_the_mechanism_and_credentials_and_no_tls() -> None:
    options = kafka_client_options(
        HubSettings(
            kafka_security_protocol="SASL_PLAINTEXT",
            kafka_sasl_mechanism="SCRAM-SHA-512",
            kafka_sasl_username="kvik",
            kafka_sasl_password=SecretStr("s3cret"),
        )
    )
    assert options["security_protocol"] == "SASL_PLAINTEXT"
    assert options["sasl_mechanism"] == "SCRAM-SHA-512"
    assert options["sasl_plain_username"] == "kvik"
    assert options["sasl_plain_password"] == "s3cret"
    assert "ssl_context" not in options


def test_sasl_ssl_gives_both_the_tls_context_and_the_credentials(ca: Pem) -> None:
    options = kafka_client_options(
        HubSettings(
            kafka_security_protocol="SASL_SSL",
            kafka_sasl_mechanism="SCRAM-SHA-256",
            kafka_sasl_username="kvik",
            kafka_sasl_password=SecretStr("s3cret"),
            kafka_ssl_cafile=ca.cert,
        )
    )
    assert options["security_protocol"] == "SASL_SSL"
    assert isinstance(options["ssl_context"], ssl.SSLContext)
    assert options["sasl_mechanism"] == "SCRAM-SHA-256"
    assert options["sasl_plain_password"] == "s3cret"


def test_the_settings_are_read_from_kanalhub_kafka_variables(
    monkeypatch: pytest.MonkeyPatch, ca: Pem
) -> None:
    monkeypatch.setenv("KANALHUB_KAFKA_SECURITY_PROTOCOL", "SASL_SSL")
    monkeypatch.setenv("KANALHUB_KAFKA_SASL_MECHANISM", "SCRAM-SHA-512")
    monkeypatch.setenv("KANALHUB_KAFKA_SASL_USERNAME", "metrics")
    monkeypatch.setenv("KANALHUB_KAFKA_SASL_PASSWORD", "from-a-secret")
    monkeypatch.setenv("KANALHUB_KAFKA_SSL_CAFILE", str(ca.cert))
    options = kafka_client_options(HubSettings())
    assert options["security_protocol"] == "SASL_SSL"
    assert options["sasl_mechanism"] == "SCRAM-SHA-512"
    assert options["sasl_plain_username"] == "metrics"
    assert options["sasl_plain_password"] == "from-a-secret"


def test_the_sasl_password_is_not_shown_in_the_settings(ca: Pem) -> None:
    settings = HubSettings(
        kafka_security_protocol="SASL_SSL",
        kafka_sasl_username="kvik",
        kafka_sasl_password=SecretStr("s3cret"),
        kafka_ssl_cafile=ca.cert,
    )
    assert "s3cret" not in repr(settings)


# --- refused at start ---------------------------------------------------------------------------


def test_an_unknown_protocol_or_mechanism_is_refused() -> None:
    assert "kafka_security_protocol" in _refusal(kafka_security_protocol="TLS")
    assert "kafka_sasl_mechanism" in _refusal(kafka_sasl_mechanism="GSSAPI")


@pytest.mark.parametrize("protocol", ["SASL_PLAINTEXT", "SASL_SSL"])
def test_sasl_without_a_password_is_refused_naming_the_setting(protocol: str) -> None:
    message = _refusal(kafka_security_protocol=protocol, kafka_sasl_username="kvik")
    assert f"KANALHUB_KAFKA_SECURITY_PROTOCOL={protocol} needs KANALHUB_KAFKA_SASL_PASSWORD" in (
        message
    )
    assert "KANALHUB_KAFKA_SASL_USERNAME" not in message


def test_sasl_without_any_credentials_names_both_settings() -> None:
    message = _refusal(kafka_security_protocol="SASL_PLAINTEXT")
    assert "needs KANALHUB_KAFKA_SASL_USERNAME and KANALHUB_KAFKA_SASL_PASSWORD" in message


def test_credentials_for_a_protocol_that_sends_none_are_refused() -> None:
    # An operator who sets a password but forgets the protocol would otherwise believe the
    # hub logs in while it does not.
    message = _refusal(kafka_sasl_username="kvik", kafka_sasl_password=SecretStr("s3cret"))
    assert "KANALHUB_KAFKA_SASL_USERNAME/_PASSWORD are set" in message
    assert "PLAINTEXT" in message


def test_certificate_files_for_a_protocol_without_tls_are_refused(ca: Pem) -> None:
    message = _refusal(kafka_security_protocol="SASL_PLAINTEXT", kafka_ssl_cafile=ca.cert)
    assert "KANALHUB_KAFKA_SSL_CAFILE set, but" in message
    assert "does not use TLS" in message


def test_a_missing_ca_file_is_refused_naming_the_setting_and_the_path(tmp_path: Path) -> None:
    missing = tmp_path / "nowhere" / "ca.crt"
    message = _refusal(kafka_security_protocol="SSL", kafka_ssl_cafile=missing)
    assert f"KANALHUB_KAFKA_SSL_CAFILE={missing}: no such file" in message


def test_a_ca_file_that_is_not_a_certificate_is_refused(tmp_path: Path) -> None:
    garbage = tmp_path / "ca.crt"
    garbage.write_text("this is not a certificate\n")
    message = _refusal(kafka_security_protocol="SSL", kafka_ssl_cafile=garbage)
    assert f"KANALHUB_KAFKA_SSL_CAFILE={garbage}: not a PEM CA certificate" in message


def test_a_missing_client_key_file_is_refused_naming_the_setting(
    ca: Pem, client: Pem, tmp_path: Path
) -> None:
    message = _refusal(
        kafka_security_protocol="SSL",
        kafka_ssl_cafile=ca.cert,
        kafka_ssl_certfile=client.cert,
        kafka_ssl_keyfile=tmp_path / "gone.key",
    )
    assert "KANALHUB_KAFKA_SSL_KEYFILE=" in message
    assert "no such file" in message


def test_a_key_without_its_certificate_is_refused(client: Pem) -> None:
    message = _refusal(kafka_security_protocol="SSL", kafka_ssl_keyfile=client.key)
    assert "KANALHUB_KAFKA_SSL_KEYFILE is set without KANALHUB_KAFKA_SSL_CERTFILE" in message


def test_a_client_key_that_does_not_match_its_certificate_is_refused(ca: Pem, client: Pem) -> None:
    message = _refusal(
        kafka_security_protocol="SSL",
        kafka_ssl_certfile=client.cert,
        kafka_ssl_keyfile=ca.key,  # another certificate's key
    )
    assert f"KANALHUB_KAFKA_SSL_CERTFILE={client.cert}: the client certificate does not load" in (
        message
    )


def test_an_encrypted_client_key_loads_with_its_password_and_is_refused_without_it(
    tmp_path: Path,
) -> None:
    locked = _write_self_signed(tmp_path, "locked", key_password=b"open sesame")
    with_password = HubSettings(
        kafka_security_protocol="SSL",
        kafka_ssl_certfile=locked.cert,
        kafka_ssl_keyfile=locked.key,
        kafka_ssl_key_password=SecretStr("open sesame"),
    )
    assert isinstance(kafka_client_options(with_password)["ssl_context"], ssl.SSLContext)
    # Without it: a readable refusal, not OpenSSL asking on a terminal a container lacks.
    message = _refusal(
        kafka_security_protocol="SSL",
        kafka_ssl_certfile=locked.cert,
        kafka_ssl_keyfile=locked.key,
    )
    assert "the client certificate does not load" in message


# --- the production warning -----------------------------------------------------------------------

_PRODUCTION = {
    "environment": "production",
    "jwt_jwks_url": "https://login.example/jwks",
    "jwt_algorithms": ["RS256"],
    "subject_key": SecretStr("b7e3f0a91c4d2e8f6a5b3c1d9e7f0a2b4c6d8e1f"),
}


def test_production_with_plaintext_kafka_is_warned_about_not_refused() -> None:
    warning = kafka_transport_warning(HubSettings(**_PRODUCTION))  # type: ignore[arg-type]
    assert warning is not None
    assert "KANALHUB_KAFKA_SECURITY_PROTOCOL=PLAINTEXT" in warning


def test_production_with_sasl_over_plaintext_is_warned_that_traffic_is_not_encrypted() -> None:
    settings = HubSettings(
        **_PRODUCTION,  # type: ignore[arg-type]
        kafka_security_protocol="SASL_PLAINTEXT",
        kafka_sasl_username="kvik",
        kafka_sasl_password=SecretStr("s3cret"),
    )
    warning = kafka_transport_warning(settings)
    assert warning is not None
    assert "not encrypted" in warning


def test_production_with_tls_is_not_warned_about(ca: Pem) -> None:
    settings = HubSettings(
        **_PRODUCTION,  # type: ignore[arg-type]
        kafka_security_protocol="SASL_SSL",
        kafka_sasl_username="kvik",
        kafka_sasl_password=SecretStr("s3cret"),
        kafka_ssl_cafile=ca.cert,
    )
    assert kafka_transport_warning(settings) is None


def test_development_with_plaintext_is_not_warned_about() -> None:
    assert kafka_transport_warning(HubSettings()) is None
