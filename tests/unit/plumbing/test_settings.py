"""Settings: names of topics and keys, and the production guard."""

from __future__ import annotations

import pytest
from pydantic import SecretStr, ValidationError

from services.kvik.settings import KvikSettings
from services.plumbing.settings import HubSettings


def test_topic_gets_the_configured_suffix() -> None:
    assert HubSettings(topic_suffix=".t1").topic("kanalhub.kvik.v1") == "kanalhub.kvik.v1.t1"


def test_keys_live_under_the_prefix() -> None:
    assert HubSettings(key_prefix="kh").key("kvik", "outbox") == "kh:kvik:outbox"


def test_service_settings_read_their_own_prefix_and_the_shared_one(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("KANALHUB_KVIK_PORT", "9102")
    monkeypatch.setenv("KANALHUB_KAFKA_BOOTSTRAP", "kafka:9092")
    settings = KvikSettings()
    assert settings.port == 9102
    assert settings.hub.kafka_bootstrap == "kafka:9092"
    assert settings.consumer_group == "kanalhub.kvik"
    assert settings.source == "/kanalhub/kvik"


def test_production_refuses_the_development_secret() -> None:
    with pytest.raises(ValidationError, match="production"):
        HubSettings(environment="production")  # type: ignore[arg-type]


def test_production_accepts_a_jwks_url() -> None:
    settings = HubSettings(
        environment="production",  # type: ignore[arg-type]
        jwt_jwks_url="https://login.example/jwks",
        jwt_algorithms=["RS256"],
        subject_key=SecretStr("b7e3f0a91c4d2e8f6a5b3c1d9e7f0a2b4c6d8e1f"),
    )
    assert settings.jwt_jwks_url == "https://login.example/jwks"
