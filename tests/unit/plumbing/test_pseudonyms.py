"""Pseudonymous ids: a keyed hash of a token's subject, stable per person and key."""

from __future__ import annotations

import secrets

import pytest
from pydantic import SecretStr, ValidationError

from services.contracts.guard import find_cpr
from services.plumbing.auth import JwtVerifier, Role, mint_token
from services.plumbing.pseudonyms import PSEUDONYM_PATTERN, pseudonymous_id
from services.plumbing.settings import DEVELOPMENT_SUBJECT_KEY, HubSettings

KEY = SecretStr("0f4c1b9e7a2d58c36e1f09b4a7d2c85e")
STRONG = secrets.token_hex(32)


def test_the_same_subject_gets_the_same_id() -> None:
    assert pseudonymous_id(KEY, "jens@kk.dk") == pseudonymous_id(KEY, "jens@kk.dk")


def test_different_subjects_get_different_ids() -> None:
    assert pseudonymous_id(KEY, "jens@kk.dk") != pseudonymous_id(KEY, "jensine@kk.dk")


def test_the_id_depends_on_the_key() -> None:
    other = SecretStr("7d2c85e0f4c1b9e7a2d58c36e1f09b4a")
    assert pseudonymous_id(KEY, "jens@kk.dk") != pseudonymous_id(other, "jens@kk.dk")


@pytest.mark.parametrize("subject", ["jens@kk.dk", "0102031234", "010203-1234", "", "æøå"])
def test_the_id_is_short_hides_the_subject_and_never_looks_like_a_cpr_number(
    subject: str,
) -> None:
    pseudonym = pseudonymous_id(KEY, subject)
    assert PSEUDONYM_PATTERN.fullmatch(pseudonym)
    assert find_cpr(pseudonym) is None
    if subject:
        assert subject not in pseudonym


def test_a_verified_token_carries_the_pseudonymous_id_of_its_subject() -> None:
    settings = HubSettings()
    token = mint_token(settings, "jens@kk.dk", [Role.REGISTRY_WRITE])
    principal = JwtVerifier(settings).verify(token)
    assert principal.subject == "jens@kk.dk"
    assert principal.actor == pseudonymous_id(settings.subject_key, "jens@kk.dk")


def test_production_refuses_to_start_without_a_subject_key() -> None:
    with pytest.raises(ValidationError, match="KANALHUB_SUBJECT_KEY"):
        HubSettings(environment="production", jwt_secret=SecretStr(STRONG))


@pytest.mark.parametrize(
    "key", [DEVELOPMENT_SUBJECT_KEY, DEVELOPMENT_SUBJECT_KEY + " ", "x" * 40, "kq7"]
)
def test_production_refuses_a_weak_subject_key(key: str) -> None:
    with pytest.raises(ValidationError, match="KANALHUB_SUBJECT_KEY") as raised:
        HubSettings(
            environment="production",
            jwt_secret=SecretStr(STRONG),
            subject_key=SecretStr(key),
        )
    assert key not in str(raised.value)


def test_production_accepts_a_random_subject_key() -> None:
    key = secrets.token_hex(32)
    settings = HubSettings(
        environment="production",
        jwt_secret=SecretStr(STRONG),
        subject_key=SecretStr(key),
    )
    assert settings.subject_key.get_secret_value() == key
