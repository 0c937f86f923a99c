"""The production secret check: weak shared JWT secrets are refused, random ones pass."""

from __future__ import annotations

import random
import secrets

import pytest
from pydantic import SecretStr, ValidationError

from services.plumbing.secret_strength import shannon_bits, weak_secret_reasons
from services.plumbing.settings import DEVELOPMENT_JWT_SECRET, HubSettings

WEAK = {
    "32 spaces": " " * 32,
    "the development secret plus a space": DEVELOPMENT_JWT_SECRET + " ",
    "the development secret upper-cased": DEVELOPMENT_JWT_SECRET.upper(),
    "the development secret without hyphens": DEVELOPMENT_JWT_SECRET.replace("-", ""),
    "the development secret with underscores": DEVELOPMENT_JWT_SECRET.replace("-", "_"),
    "the development secret twice": DEVELOPMENT_JWT_SECRET * 2,
    "part of the development secret with random padding": (
        "kanalhub-development-secret" + secrets.token_hex(16)
    ),
    "one character repeated": "a" * 64,
    "a word repeated": "password" * 5,
    "a few characters repeated": "abc123" * 8,
    "a random secret with a space inside": secrets.token_hex(16) + " " + secrets.token_hex(16),
    "a random secret with a trailing newline": secrets.token_hex(32) + "\n",
    "a short random secret": secrets.token_hex(8),
}


@pytest.mark.parametrize("secret", list(WEAK.values()), ids=list(WEAK))
def test_production_refuses_a_weak_shared_secret(secret: str) -> None:
    with pytest.raises(ValidationError, match="refuses this KANALHUB_JWT_SECRET"):
        HubSettings(environment="production", jwt_secret=SecretStr(secret))


@pytest.mark.parametrize(
    "secret",
    [
        secrets.token_hex(32),
        secrets.token_hex(16),
        secrets.token_urlsafe(32),
        secrets.token_urlsafe(48),
    ],
    ids=["openssl rand -hex 32", "hex 16 bytes", "urlsafe 32 bytes", "urlsafe 48 bytes"],
)
def test_production_accepts_a_random_shared_secret(secret: str) -> None:
    settings = HubSettings(
        environment="production",
        jwt_secret=SecretStr(secret),
        subject_key=SecretStr(secrets.token_hex(32)),
    )
    assert settings.jwt_secret.get_secret_value() == secret


def test_random_hex_secrets_of_32_characters_pass_every_time() -> None:
    # The distinct-character and entropy bounds must not refuse a properly generated secret.
    # Seeded, so the test is the same every run: 20,000 draws of 128 random bits as hex.
    draws = random.Random(2026)
    failures = [
        s
        for s in (f"{draws.getrandbits(128):032x}" for _ in range(20_000))
        if weak_secret_reasons(s, DEVELOPMENT_JWT_SECRET)
    ]
    assert failures == []


def test_a_word_repeated_to_the_length_is_refused() -> None:
    reasons = weak_secret_reasons("Copenhagen2026!" * 3, DEVELOPMENT_JWT_SECRET)
    assert "it repeats a pattern" in reasons


def test_the_refusal_names_the_reasons_but_never_the_secret() -> None:
    secret = "x" * 40
    with pytest.raises(ValidationError) as raised:
        HubSettings(environment="production", jwt_secret=SecretStr(secret))
    message = str(raised.value)
    assert "distinct characters" in message
    assert "JWKS" in message
    assert secret not in message


def test_development_accepts_the_development_secret() -> None:
    assert HubSettings().jwt_secret.get_secret_value() == DEVELOPMENT_JWT_SECRET


def test_production_with_a_jwks_url_ignores_the_unused_shared_secret() -> None:
    settings = HubSettings(
        environment="production",
        jwt_jwks_url="https://idp.example/jwks.json",
        jwt_algorithms=["RS256"],
        subject_key=SecretStr(secrets.token_hex(32)),
    )
    assert settings.jwt_jwks_url == "https://idp.example/jwks.json"


def test_entropy_of_one_repeated_character_is_zero() -> None:
    assert shannon_bits("a" * 100) == 0.0
    assert shannon_bits("ab" * 16) == pytest.approx(32.0)
