"""Bearer JWTs (shared secret, public key, JWKS), roles, device tokens and minting."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import socket
import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import httpx
import jwt
import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, ed25519, rsa
from fastapi import FastAPI
from pydantic import ValidationError

from services.plumbing.auth import (
    JwtVerifier,
    Principal,
    RegistryWriter,
    Role,
    development_tokens,
    device_token_matches,
    hash_device_token,
    mint_token,
    new_device_token,
)
from services.plumbing.problems import PROBLEM_MEDIA_TYPE, install_problem_handlers
from services.plumbing.settings import HubSettings

OTHER_SECRET = "another-secret-that-is-long-enough-for-hs256"


def build_app(settings: HubSettings, *, with_verifier: bool = True) -> FastAPI:
    app = FastAPI()
    install_problem_handlers(app)
    if with_verifier:
        app.state.jwt_verifier = JwtVerifier(settings)

    @app.get("/entries")
    async def edit_entries(editor: RegistryWriter) -> dict[str, Any]:
        return {"subject": editor.subject, "kind": editor.kind, "roles": sorted(editor.roles)}

    return app


async def call(app: FastAPI, headers: dict[str, str] | None = None) -> httpx.Response:
    transport = httpx.ASGITransport(app=app, raise_app_exceptions=False)
    async with httpx.AsyncClient(transport=transport, base_url="http://test") as client:
        return await client.get("/entries", headers=headers or {})


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


@pytest.fixture
def settings() -> HubSettings:
    return HubSettings()


@pytest.fixture
def app(settings: HubSettings) -> FastAPI:
    return build_app(settings)


def assert_unauthorized(response: httpx.Response, slug: str) -> None:
    assert response.status_code == 401
    assert response.headers["content-type"] == PROBLEM_MEDIA_TYPE
    assert response.headers["www-authenticate"].startswith("Bearer")
    assert response.json()["type"] == f"https://kanalhub.dk/problems/{slug}"


# --- the Authorization header --------------------------------------------------------------


async def test_missing_header_is_401_with_www_authenticate_bearer(app: FastAPI) -> None:
    response = await call(app)
    assert_unauthorized(response, "token-missing")
    assert response.headers["www-authenticate"] == "Bearer"


@pytest.mark.parametrize("value", ["Basic x", "Bearer", "Bearer   ", "token-without-scheme"])
async def test_malformed_header_is_401_with_www_authenticate_bearer(
    app: FastAPI, value: str
) -> None:
    response = await call(app, {"Authorization": value})
    assert_unauthorized(response, "token-malformed")
    assert response.headers["www-authenticate"] == "Bearer"


async def test_garbage_token_is_401_invalid_token(app: FastAPI) -> None:
    response = await call(app, bearer("not.a.jwt"))
    assert_unauthorized(response, "token-invalid")
    assert 'error="invalid_token"' in response.headers["www-authenticate"]


async def test_wrong_signature_is_401(app: FastAPI) -> None:
    token = mint_token(HubSettings(jwt_secret=OTHER_SECRET), "p-1", [Role.REGISTRY_WRITE])
    response = await call(app, bearer(token))
    assert_unauthorized(response, "token-invalid")
    assert "signature" in response.headers["www-authenticate"]


async def test_expired_token_is_401_token_expired(app: FastAPI, settings: HubSettings) -> None:
    token = mint_token(settings, "p-1", [Role.REGISTRY_WRITE], ttl_seconds=-3600)
    response = await call(app, bearer(token))
    assert_unauthorized(response, "token-expired")
    assert 'error="invalid_token"' in response.headers["www-authenticate"]
    assert "expired" in response.headers["www-authenticate"]


async def test_token_for_another_audience_is_401(app: FastAPI) -> None:
    token = mint_token(HubSettings(jwt_audience="someone-else"), "p-1", [Role.REGISTRY_WRITE])
    response = await call(app, bearer(token))
    assert_unauthorized(response, "token-invalid")
    assert "audience" in response.json()["detail"]


async def test_token_from_another_issuer_is_401(app: FastAPI) -> None:
    token = mint_token(HubSettings(jwt_issuer="evil"), "p-1", [Role.REGISTRY_WRITE])
    response = await call(app, bearer(token))
    assert_unauthorized(response, "token-invalid")
    assert "issuer" in response.json()["detail"]


async def test_token_without_exp_is_401(app: FastAPI, settings: HubSettings) -> None:
    claims = {"iss": "kanalhub", "aud": "kanalhub", "sub": "p-1", "roles": ["registry:write"]}
    token = jwt.encode(claims, settings.jwt_secret.get_secret_value(), algorithm="HS256")
    response = await call(app, bearer(token))
    assert_unauthorized(response, "token-invalid")
    assert "exp" in response.json()["detail"]


# --- roles ---------------------------------------------------------------------------------


async def test_valid_token_without_the_role_is_403_naming_the_role(
    app: FastAPI, settings: HubSettings
) -> None:
    token = mint_token(settings, "p-1", [Role.METRICS_READ])
    response = await call(app, bearer(token))
    assert response.status_code == 403
    assert response.headers["content-type"] == PROBLEM_MEDIA_TYPE
    problem = response.json()
    assert problem["type"] == "https://kanalhub.dk/problems/role-missing"
    assert "registry:write" in problem["detail"]


async def test_valid_token_with_the_role_gives_the_principal(
    app: FastAPI, settings: HubSettings
) -> None:
    token = mint_token(settings, "p-1", [Role.REGISTRY_WRITE, Role.METRICS_READ])
    response = await call(app, bearer(token))
    assert response.status_code == 200
    assert response.json() == {
        "subject": "p-1",
        "kind": "person",
        "roles": ["metrics:read", "registry:write"],
    }


async def test_roles_may_come_from_a_space_separated_scope_claim(
    app: FastAPI, settings: HubSettings
) -> None:
    now = int(time.time())
    claims = {
        "iss": "kanalhub",
        "aud": "kanalhub",
        "sub": "p-2",
        "exp": now + 60,
        "scope": "openid registry:write",
    }
    token = jwt.encode(claims, settings.jwt_secret.get_secret_value(), algorithm="HS256")
    response = await call(app, bearer(token))
    assert response.status_code == 200
    assert response.json()["subject"] == "p-2"


async def test_app_without_a_verifier_fails_with_a_clear_error(settings: HubSettings) -> None:
    app = build_app(settings, with_verifier=False)
    headers = bearer(mint_token(settings, "p", []))
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://test") as client:
        with pytest.raises(RuntimeError, match="jwt_verifier"):
            await client.get("/entries", headers=headers)


def test_principal_is_immutable() -> None:
    principal = Principal(
        subject="p", actor="p-0000000000000000", roles=frozenset({"a"}), kind="person"
    )
    with pytest.raises(ValidationError):
        principal.subject = "q"  # type: ignore[misc]


# --- public keys ---------------------------------------------------------------------------


@pytest.fixture(scope="module")
def rsa_key() -> rsa.RSAPrivateKey:
    return rsa.generate_private_key(public_exponent=65537, key_size=2048)


def public_pem(key: rsa.RSAPrivateKey) -> str:
    return (
        key.public_key()
        .public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)
        .decode()
    )


def rs256_token(
    key: rsa.RSAPrivateKey, subject: str, roles: list[str], kid: str | None = None
) -> str:
    now = int(time.time())
    claims = {"iss": "kanalhub", "aud": "kanalhub", "sub": subject, "exp": now + 60, "iat": now}
    return jwt.encode(
        {**claims, "roles": roles},
        key,
        algorithm="RS256",
        headers={"kid": kid} if kid else None,
    )


async def test_rs256_token_verifies_with_the_configured_public_key(
    rsa_key: rsa.RSAPrivateKey,
) -> None:
    # Only the public key is set; the algorithm follows from the key (RSA -> RS256).
    app = build_app(HubSettings(jwt_public_key=public_pem(rsa_key)))
    response = await call(app, bearer(rs256_token(rsa_key, "p-rsa", ["registry:write"])))
    assert response.status_code == 200
    assert response.json()["subject"] == "p-rsa"


@pytest.mark.parametrize(
    ("private_key", "algorithm"),
    [
        (ec.generate_private_key(ec.SECP256R1()), "ES256"),
        (ed25519.Ed25519PrivateKey.generate(), "EdDSA"),
    ],
    ids=["ES256", "EdDSA"],
)
async def test_ec_and_eddsa_tokens_verify_with_the_configured_public_key(
    private_key: ec.EllipticCurvePrivateKey | ed25519.Ed25519PrivateKey, algorithm: str
) -> None:
    pem = private_key.public_key().public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    now = int(time.time())
    claims = {"iss": "kanalhub", "aud": "kanalhub", "sub": "p-ec", "exp": now + 60}
    token = jwt.encode({**claims, "roles": ["registry:write"]}, private_key, algorithm=algorithm)
    app = build_app(HubSettings(jwt_public_key=pem.decode()))
    response = await call(app, bearer(token))
    assert response.status_code == 200
    assert response.json()["subject"] == "p-ec"


async def test_rs256_token_from_another_key_is_401(rsa_key: rsa.RSAPrivateKey) -> None:
    other = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    app = build_app(HubSettings(jwt_public_key=public_pem(rsa_key)))
    response = await call(app, bearer(rs256_token(other, "p-rsa", ["registry:write"])))
    assert_unauthorized(response, "token-invalid")


async def test_hs256_token_signed_with_the_public_key_is_refused(
    rsa_key: rsa.RSAPrivateKey,
) -> None:
    # The classic algorithm-confusion attack: "HS256" with the public PEM as the secret.
    pem = public_pem(rsa_key)

    def b64(data: bytes) -> bytes:
        return base64.urlsafe_b64encode(data).rstrip(b"=")

    now = int(time.time())
    header = b64(json.dumps({"alg": "HS256", "typ": "JWT"}).encode())
    claims = {"iss": "kanalhub", "aud": "kanalhub", "sub": "x", "exp": now + 60}
    payload = b64(json.dumps({**claims, "roles": ["registry:write"]}).encode())
    signature = b64(hmac.new(pem.encode(), header + b"." + payload, hashlib.sha256).digest())
    token = (header + b"." + payload + b"." + signature).decode()
    app = build_app(HubSettings(jwt_public_key=pem))
    response = await call(app, bearer(token))
    assert_unauthorized(response, "token-invalid")


def test_public_key_that_is_not_pem_refuses_to_build_a_verifier() -> None:
    with pytest.raises(ValueError, match="PEM"):
        JwtVerifier(HubSettings(jwt_public_key="not a key"))


def test_asymmetric_algorithms_without_a_key_refuse_to_build_a_verifier() -> None:
    with pytest.raises(ValueError, match="JWKS"):
        JwtVerifier(HubSettings(jwt_algorithms=["RS256"]))


# --- JWKS ----------------------------------------------------------------------------------


class JwksServer:
    """A real HTTP server on 127.0.0.1 serving a JWK set, counting the fetches."""

    def __init__(self, jwks: dict[str, Any]) -> None:
        body = json.dumps(jwks).encode()
        server = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                server.fetches += 1
                self.send_response(200)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, format: str, *args: Any) -> None:
                pass

        self.fetches = 0
        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.httpd.server_address[1]}/.well-known/jwks.json"
        self.thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)
        self.thread.start()

    def stop(self) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()
        self.thread.join(timeout=5)


@pytest.fixture
def jwks_server(rsa_key: rsa.RSAPrivateKey) -> Iterator[JwksServer]:
    jwk = json.loads(jwt.algorithms.RSAAlgorithm.to_jwk(rsa_key.public_key()))
    server = JwksServer({"keys": [{**jwk, "kid": "key-1", "use": "sig", "alg": "RS256"}]})
    yield server
    server.stop()


@pytest.fixture
def jwks_app(jwks_server: JwksServer) -> FastAPI:
    return build_app(HubSettings(jwt_jwks_url=jwks_server.url, jwt_algorithms=["RS256"]))


async def test_token_verifies_with_a_key_fetched_from_the_jwks_url(
    jwks_app: FastAPI, jwks_server: JwksServer, rsa_key: rsa.RSAPrivateKey
) -> None:
    token = rs256_token(rsa_key, "p-oidc", ["registry:write"], kid="key-1")
    response = await call(jwks_app, bearer(token))
    assert response.status_code == 200
    assert response.json()["subject"] == "p-oidc"
    assert jwks_server.fetches == 1


async def test_jwks_key_set_is_cached_between_requests(
    jwks_app: FastAPI, jwks_server: JwksServer, rsa_key: rsa.RSAPrivateKey
) -> None:
    token = rs256_token(rsa_key, "p-oidc", ["registry:write"], kid="key-1")
    assert (await call(jwks_app, bearer(token))).status_code == 200
    jwks_server.stop()
    assert (await call(jwks_app, bearer(token))).status_code == 200
    assert jwks_server.fetches == 1


async def test_token_with_a_kid_not_in_the_jwks_is_401(
    jwks_app: FastAPI, rsa_key: rsa.RSAPrivateKey
) -> None:
    token = rs256_token(rsa_key, "p-oidc", ["registry:write"], kid="key-unknown")
    response = await call(jwks_app, bearer(token))
    assert_unauthorized(response, "token-invalid")


async def test_unreachable_jwks_is_a_503_problem(rsa_key: rsa.RSAPrivateKey) -> None:
    with socket.socket() as probe:  # a port on which nothing listens
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    url = f"http://127.0.0.1:{port}/jwks"
    app = build_app(HubSettings(jwt_jwks_url=url, jwt_algorithms=["RS256"]))
    token = rs256_token(rsa_key, "p-oidc", ["registry:write"], kid="key-1")
    response = await call(app, bearer(token))
    assert response.status_code == 503
    assert response.headers["content-type"] == PROBLEM_MEDIA_TYPE
    assert response.json()["type"] == "https://kanalhub.dk/problems/jwks-unavailable"
    assert "retry-after" in response.headers


# --- device tokens -------------------------------------------------------------------------


def test_device_token_is_prefixed_and_random() -> None:
    first, second = new_device_token(), new_device_token()
    assert first.startswith("kvk_")
    assert len(first) >= 4 + 43  # 32 random bytes in URL-safe base64
    assert first != second


def test_device_token_matches_its_stored_hash() -> None:
    token = new_device_token()
    stored = hash_device_token(token)
    assert stored == hashlib.sha256(token.encode()).hexdigest()
    assert token not in stored
    assert device_token_matches(token, stored)


def test_other_device_token_does_not_match() -> None:
    stored = hash_device_token(new_device_token())
    assert not device_token_matches(new_device_token(), stored)
    assert not device_token_matches("", stored)


# --- minting -------------------------------------------------------------------------------


def test_mint_token_refuses_in_production() -> None:
    # A random secret: the production check refuses weak ones before minting is reached.
    secret = "9f3ac27e41d0b86c5e1f7a2d04b6e9c1f5a38d72"
    production = HubSettings(environment="production", jwt_secret=secret, subject_key=secret[::-1])
    with pytest.raises(ValueError, match="production"):
        mint_token(production, "p-1", [Role.REGISTRY_WRITE])


def test_production_settings_without_a_real_key_or_secret_refuse_to_build() -> None:
    with pytest.raises(ValidationError, match="production"):
        HubSettings(environment="production")


def test_development_tokens_give_one_verifying_token_per_role_and_one_with_all(
    settings: HubSettings,
) -> None:
    tokens = development_tokens(settings)
    assert set(tokens) == {*(role.value for role in Role), "all-roles"}
    verifier = JwtVerifier(settings)
    for role in Role:
        assert verifier.verify(tokens[role.value]).roles == {role.value}
    assert verifier.verify(tokens["all-roles"]).roles == {role.value for role in Role}
