"""Who is calling: bearer JWTs for people, hashed per-device tokens for kiosks.

People send ``Authorization: Bearer <JWT>``. :class:`JwtVerifier` checks it against the key the
hub is configured with (``HubSettings``): a shared secret (HS256, development), a public key in
PEM, or an OIDC JWKS URL. Endpoints declare what they need with a dependency::

    @router.put("/entries/{entry_id}")
    async def put_entry(entry_id: str, editor: RegistryWriter) -> ...: ...

    # or, for a role without an alias:
    async def endpoint(p: Annotated[Principal, Depends(require_role(Role.KVIK_ADMIN))]) -> ...

The verifier is built in ``create_app`` and put on ``app.state.jwt_verifier``; nothing here
reads settings or opens connections at import time.

Kiosks use opaque per-device tokens (:func:`new_device_token`); the kvik service stores only
their hashes (:func:`hash_device_token`) and checks them with :func:`device_token_matches`.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
import time
from collections.abc import Awaitable, Callable, Iterable
from enum import StrEnum
from typing import Annotated, Any, Literal, TypeAlias

import jwt
from cryptography import x509
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, ed448, ed25519, rsa
from cryptography.hazmat.primitives.asymmetric.types import PublicKeyTypes
from fastapi import Depends, Request, Security
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from pydantic import BaseModel, ConfigDict
from starlette.concurrency import run_in_threadpool

from services.plumbing.problems import Problem
from services.plumbing.pseudonyms import pseudonymous_id
from services.plumbing.security_log import remember_actor
from services.plumbing.settings import Environment, HubSettings


class Role(StrEnum):
    """The roles a person's token can carry; the values are the wire names in the token."""

    REGISTRY_WRITE = "registry:write"
    KVIK_ADMIN = "kvik:admin"
    KVIK_STAFF = "kvik:staff"
    MOBILE_PLAN = "mobile:plan"
    METRICS_INGEST = "metrics:ingest"
    METRICS_READ = "metrics:read"
    METRICS_DESK = "metrics:desk"
    """A citizen-service centre's queue-management system reporting desk tickets."""


class Principal(BaseModel):
    """The authenticated caller: a person (JWT) or a kiosk device (device token)."""

    model_config = ConfigDict(frozen=True)

    subject: str
    """The token's ``sub`` as the identity provider wrote it: for deciding, never for storing."""
    actor: str
    """The pseudonymous id of ``subject`` (services/plumbing/pseudonyms.py): what a service
    stores and shows as "who did it" - audit trails, histories, who took a help request."""
    roles: frozenset[str]
    kind: Literal["person", "device"]

    def has_role(self, role: str) -> bool:
        """Whether the caller carries ``role``."""
        return role in self.roles


# Asymmetric algorithms a key can verify; HS* is never allowed next to a public key, since a
# token "signed" with HMAC using the public key as secret would otherwise verify.
_RSA_ALGORITHMS = ("RS256", "RS384", "RS512", "PS256", "PS384", "PS512")
_EC_ALGORITHMS = {"secp256r1": "ES256", "secp384r1": "ES384", "secp521r1": "ES512"}
_ASYMMETRIC_ALGORITHMS = (*_RSA_ALGORITHMS, *_EC_ALGORITHMS.values(), "EdDSA")
_REQUIRED_CLAIMS = ["exp", "iss", "aud", "sub"]

_PublicKey: TypeAlias = (
    rsa.RSAPublicKey | ec.EllipticCurvePublicKey | ed25519.Ed25519PublicKey | ed448.Ed448PublicKey
)


class JwtVerifier:
    """Verifies bearer JWTs against the key ``HubSettings`` configures.

    - ``jwt_jwks_url``: keys fetched from the identity provider's JWKS (cached for
      ``jwks_lifespan_seconds``, each fetch bounded by ``jwks_timeout_seconds``).
    - ``jwt_public_key``: one PEM public key (or certificate), RSA, EC or Ed25519.
    - neither: HS256 with ``jwt_secret``.

    A configuration that cannot work (both a key and a URL, a PEM that does not parse, no
    algorithm that fits the key) raises ``ValueError`` here, when the app is built, not on
    the first request.
    """

    def __init__(
        self,
        settings: HubSettings,
        *,
        leeway_seconds: float = 30.0,
        jwks_timeout_seconds: float = 5.0,
        jwks_lifespan_seconds: float = 300.0,
    ) -> None:
        self.issuer = settings.jwt_issuer
        self._subject_key = settings.subject_key
        self.audience = settings.jwt_audience
        # Clocks of the identity provider and of our hosts drift a little.
        self.leeway_seconds = leeway_seconds
        self._jwks: jwt.PyJWKClient | None = None
        self._key: _PublicKey | str
        configured = list(settings.jwt_algorithms)
        asymmetric = [a for a in configured if not a.startswith("HS")]
        if settings.jwt_public_key is not None and settings.jwt_jwks_url is not None:
            raise ValueError("set KANALHUB_JWT_PUBLIC_KEY or KANALHUB_JWT_JWKS_URL, not both")
        if settings.jwt_jwks_url is not None:
            # The key set is cached for its lifespan; cache_keys (a per-kid LRU without expiry)
            # stays off on purpose, so a key the provider withdraws stops being trusted once
            # the cached set expires. A kid we do not know triggers at most one refetch per
            # cooldown period (PyJWKClient's default), so forged kids cannot flood the provider.
            self._jwks = jwt.PyJWKClient(
                settings.jwt_jwks_url,
                cache_jwk_set=True,
                lifespan=jwks_lifespan_seconds,
                timeout=jwks_timeout_seconds,
            )
            self._key = ""
            self.algorithms = asymmetric or list(_ASYMMETRIC_ALGORITHMS)
        elif settings.jwt_public_key is not None:
            key = _load_public_key(settings.jwt_public_key)
            fitting = _algorithms_for(key)
            if asymmetric:
                self.algorithms = [a for a in asymmetric if a in fitting]
                if not self.algorithms:
                    raise ValueError(
                        f"KANALHUB_JWT_ALGORITHMS {asymmetric} cannot be verified with a "
                        f"{type(key).__name__}; it fits {fitting}"
                    )
            else:
                # Only the HS256 default is configured: use what the key itself implies.
                self.algorithms = fitting[:1]
            self._key = key
        else:
            self.algorithms = [a for a in configured if a.startswith("HS")]
            if not self.algorithms:
                raise ValueError(
                    f"KANALHUB_JWT_ALGORITHMS {configured} needs KANALHUB_JWT_PUBLIC_KEY or "
                    "KANALHUB_JWT_JWKS_URL; without them only HS256/HS384/HS512 work"
                )
            self._key = settings.jwt_secret.get_secret_value()

    @property
    def may_block(self) -> bool:
        """Whether :meth:`verify` may do network I/O (a JWKS fetch) and belongs in a thread."""
        return self._jwks is not None

    def verify(self, token: str) -> Principal:
        """The person the token names, or ``Problem`` 401 (503 if the JWKS cannot be fetched).

        Checks the signature, ``exp`` (required), ``iss``, ``aud`` and ``sub``. Roles come from
        the ``roles`` claim (a list of strings) and the space-separated ``scope`` claim.
        """
        key = self._signing_key(token)
        try:
            claims: dict[str, Any] = jwt.decode(
                token,
                key,
                algorithms=self.algorithms,
                audience=self.audience,
                issuer=self.issuer,
                leeway=self.leeway_seconds,
                options={"require": _REQUIRED_CLAIMS},
            )
        except (jwt.InvalidTokenError, jwt.InvalidKeyError) as error:
            raise _token_problem(error) from None
        subject = claims["sub"]
        return Principal(
            subject=subject,
            actor=pseudonymous_id(self._subject_key, subject),
            roles=_roles(claims),
            kind="person",
        )

    def _signing_key(self, token: str) -> _PublicKey | jwt.PyJWK | str:
        if self._jwks is None:
            return self._key
        try:
            kid = jwt.get_unverified_header(token).get("kid")
        except jwt.InvalidTokenError as error:
            raise _token_problem(error) from None
        if not isinstance(kid, str):
            raise _invalid_token("token-invalid", "The token names no key (kid)", "no key id")
        try:
            # Failing to get a usable key set is the provider's (or the network's) fault, not
            # the caller's: 503, so clients retry instead of throwing their token away.
            self._jwks.get_signing_keys()
        except (jwt.PyJWKClientError, jwt.PyJWKSetError):
            raise _jwks_unavailable() from None
        try:
            # Served from the cached set; an unknown kid may refetch it once per cooldown.
            return self._jwks.get_signing_key(kid)
        except jwt.PyJWKClientConnectionError:
            raise _jwks_unavailable() from None
        except jwt.PyJWKClientError:
            raise _invalid_token(
                "token-invalid", "The token is signed with an unknown key", "unknown key"
            ) from None


# Most specific first: an invalid signature is also a DecodeError, and all are InvalidTokenError.
# The last column is the reason the security log gives (services/plumbing/security_log.py).
_TOKEN_ERRORS: tuple[tuple[type[Exception], str, str, str], ...] = (
    (jwt.ExpiredSignatureError, "token-expired", "The token has expired", "expired"),
    (
        jwt.InvalidAudienceError,
        "token-invalid",
        "The token is for another audience",
        "wrong audience",
    ),
    (jwt.InvalidIssuerError, "token-invalid", "The token has an unknown issuer", "wrong issuer"),
    (
        jwt.InvalidSignatureError,
        "token-invalid",
        "The token signature does not verify",
        "bad signature",
    ),
    (
        jwt.InvalidAlgorithmError,
        "token-invalid",
        "The token algorithm is not accepted",
        "algorithm not accepted",
    ),
    (jwt.ImmatureSignatureError, "token-invalid", "The token is not valid yet", "not valid yet"),
)


def _token_problem(error: Exception) -> Problem:
    if isinstance(error, jwt.MissingRequiredClaimError):
        # The claim's name comes from _REQUIRED_CLAIMS, not from the token.
        return _invalid_token(
            "token-invalid",
            f"The token lacks the {error.claim} claim",
            f"claim missing: {error.claim}",
        )
    for kind, slug, description, reason in _TOKEN_ERRORS:
        if isinstance(error, kind):
            return _invalid_token(slug, description, reason)
    return _invalid_token("token-invalid", "The token is not a valid JWT", "not a JWT")


def _jwks_unavailable() -> Problem:
    return Problem(
        503,
        "jwks-unavailable",
        "Token keys unavailable",
        detail="The keys to verify tokens cannot be fetched right now; try again shortly.",
        headers={"Retry-After": "5"},
    )


def _load_public_key(pem: str) -> _PublicKey:
    data = pem.strip().encode()
    loaded: PublicKeyTypes
    try:
        if b"BEGIN CERTIFICATE" in data:
            loaded = x509.load_pem_x509_certificate(data).public_key()
        else:
            loaded = serialization.load_pem_public_key(data)
    except ValueError as error:
        raise ValueError(f"KANALHUB_JWT_PUBLIC_KEY is not a PEM public key: {error}") from None
    if not isinstance(loaded, _PublicKey):
        raise ValueError(
            f"KANALHUB_JWT_PUBLIC_KEY holds a {type(loaded).__name__}, not a signing key"
        )
    return loaded


def _algorithms_for(key: _PublicKey) -> list[str]:
    if isinstance(key, rsa.RSAPublicKey):
        return list(_RSA_ALGORITHMS)
    if isinstance(key, ec.EllipticCurvePublicKey):
        algorithm = _EC_ALGORITHMS.get(key.curve.name)
        if algorithm is None:
            raise ValueError(f"KANALHUB_JWT_PUBLIC_KEY uses curve {key.curve.name}, not a JWS one")
        return [algorithm]
    return ["EdDSA"]


def _roles(claims: dict[str, Any]) -> frozenset[str]:
    roles: set[str] = set()
    listed = claims.get("roles")
    if listed is not None:
        if not isinstance(listed, list) or not all(isinstance(r, str) for r in listed):
            raise _invalid_token(
                "token-invalid", "The roles claim must be a list of strings", "bad roles claim"
            )
        roles.update(listed)
    # OAuth 2 providers put permissions in a space-separated scope string instead.
    scope = claims.get("scope")
    if scope is not None:
        if not isinstance(scope, str):
            raise _invalid_token(
                "token-invalid", "The scope claim must be a string", "bad scope claim"
            )
        roles.update(scope.split())
    return frozenset(roles)


def _invalid_token(slug: str, description: str, reason: str) -> Problem:
    # RFC 6750 section 3: the description goes into a quoted-string, so it must not contain
    # quotes or backslashes; every description here is a fixed ASCII sentence.
    return Problem(
        401,
        slug,
        "Token expired" if slug == "token-expired" else "Token invalid",
        detail=f"{description}.",
        headers={
            "WWW-Authenticate": f'Bearer error="invalid_token", error_description="{description}"'
        },
        refusal=reason,
    )


# Declared once so OpenAPI shows one "bearer" scheme and /docs offers an Authorize button.
# auto_error=False: a missing or malformed header is answered by us, as problem+json.
_bearer_scheme = HTTPBearer(
    auto_error=False,
    scheme_name="bearer",
    bearerFormat="JWT",
    description="A JWT from the identity provider (development: `kanalhub tokens`).",
)


def _verifier(request: Request) -> JwtVerifier:
    verifier = getattr(request.app.state, "jwt_verifier", None)
    if not isinstance(verifier, JwtVerifier):
        raise RuntimeError(
            "app.state.jwt_verifier is not set: create_app must set "
            "app.state.jwt_verifier = JwtVerifier(settings.hub) before serving requests"
        )
    return verifier


async def current_principal(
    request: Request,
    credentials: Annotated[HTTPAuthorizationCredentials | None, Security(_bearer_scheme)],
) -> Principal:
    """FastAPI dependency: the person behind the request's bearer token (any role).

    401 ``token-missing``/``token-malformed`` without a usable ``Authorization: Bearer``
    header, 401 ``token-invalid``/``token-expired`` for a token that does not verify.
    """
    verifier = _verifier(request)
    if credentials is None:
        if request.headers.get("authorization") is None:
            raise Problem(
                401,
                "token-missing",
                "Authentication required",
                detail="Send an Authorization: Bearer <token> header.",
                headers={"WWW-Authenticate": "Bearer"},
                refusal="no token",
            )
        raise Problem(
            401,
            "token-malformed",
            "Authentication required",
            detail="The Authorization header must be: Bearer <token>.",
            headers={"WWW-Authenticate": "Bearer"},
            refusal="malformed authorization header",
        )
    token = credentials.credentials
    if verifier.may_block:
        # A JWKS fetch is blocking urllib I/O: keep it off the event loop.
        principal = await run_in_threadpool(verifier.verify, token)
    else:
        principal = verifier.verify(token)
    # A refusal after this point (a missing role) is logged with who asked.
    remember_actor(request, principal.actor)
    return principal


CurrentPrincipal = Annotated[Principal, Depends(current_principal)]


def require_role(role: Role) -> Callable[[Principal], Awaitable[Principal]]:
    """A FastAPI dependency giving the caller, who must carry ``role`` (else 403)."""

    async def principal_with_role(principal: CurrentPrincipal) -> Principal:
        if not principal.has_role(role):
            raise Problem(
                403,
                "role-missing",
                "Role missing",
                detail=f"This needs the role {role.value}, which the token does not carry.",
                headers={
                    "WWW-Authenticate": f'Bearer error="insufficient_scope", scope="{role.value}"'
                },
                refusal=f"role missing: {role.value}",
            )
        return principal

    principal_with_role.__name__ = f"require_{role.name.lower()}"
    return principal_with_role


RegistryWriter = Annotated[Principal, Depends(require_role(Role.REGISTRY_WRITE))]
KvikAdmin = Annotated[Principal, Depends(require_role(Role.KVIK_ADMIN))]
MobilePlanner = Annotated[Principal, Depends(require_role(Role.MOBILE_PLAN))]
MetricsIngester = Annotated[Principal, Depends(require_role(Role.METRICS_INGEST))]
MetricsReader = Annotated[Principal, Depends(require_role(Role.METRICS_READ))]
DeskReporter = Annotated[Principal, Depends(require_role(Role.METRICS_DESK))]


# --- kiosk device tokens -------------------------------------------------------------------

DEVICE_TOKEN_PREFIX = "kvk_"


def new_device_token() -> str:
    """A fresh kiosk token (``kvk_`` + 256 random bits); show it once, store only its hash."""
    # The prefix makes a leaked token recognisable to secret scanners and to people.
    return DEVICE_TOKEN_PREFIX + secrets.token_urlsafe(32)


def hash_device_token(token: str) -> str:
    """The SHA-256 hex digest to store for a device token.

    A fast hash is right here, unlike for passwords: slow hashes (bcrypt, argon2) exist to make
    guessing low-entropy secrets expensive, but these tokens carry 256 random bits, so a stolen
    hash cannot be brute-forced at any speed. A fast hash also keeps every kiosk request cheap
    and lets the store look a device up by the hash itself. No salt is needed for the same reason.
    """
    return hashlib.sha256(token.encode()).hexdigest()


def device_token_matches(token: str, stored_hash: str) -> bool:
    """Whether ``token`` hashes to ``stored_hash``, compared in constant time."""
    return hmac.compare_digest(hash_device_token(token).encode(), stored_hash.encode())


# --- minting (development and tests) -------------------------------------------------------


def mint_token(
    settings: HubSettings,
    subject: str,
    roles: Iterable[str],
    ttl_seconds: int = 12 * 3600,
) -> str:
    """An HS256 JWT signed with ``jwt_secret`` for development and tests.

    Refused (``ValueError``) in production: there, tokens come from the identity provider.
    The token verifies only with a verifier in shared-secret mode (no public key or JWKS URL).
    """
    if settings.environment is Environment.PRODUCTION:
        raise ValueError(
            "mint_token refuses to mint tokens in production (KANALHUB_ENVIRONMENT=production); "
            "tokens there are issued by the identity provider"
        )
    now = int(time.time())
    claims = {
        "iss": settings.jwt_issuer,
        "aud": settings.jwt_audience,
        "sub": subject,
        "iat": now,
        "exp": now + ttl_seconds,
        "roles": sorted({str(role) for role in roles}),
    }
    return jwt.encode(claims, settings.jwt_secret.get_secret_value(), algorithm="HS256")


def development_tokens(settings: HubSettings, ttl_seconds: int = 12 * 3600) -> dict[str, str]:
    """One token per role, keyed by the role's wire name, plus ``"all-roles"``."""
    tokens = {
        role.value: mint_token(settings, f"dev-{role.value.replace(':', '-')}", [role], ttl_seconds)
        for role in Role
    }
    tokens["all-roles"] = mint_token(settings, "dev-all-roles", list(Role), ttl_seconds)
    return tokens
