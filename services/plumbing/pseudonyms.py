"""Pseudonymous ids for people: what is stored and shown instead of a token's ``sub``.

A JWT ``sub`` is whatever the identity provider chose - often an e-mail address, an employee
number or, in the worst case, something CPR-shaped. It must never be stored or published as it
comes (issue 19, item 2). Every service stores ``Principal.actor`` instead, which the
``JwtVerifier`` (services/plumbing/auth.py) fills with :func:`pseudonymous_id` of the subject.

The id is a keyed hash (HMAC-SHA256 with ``KANALHUB_SUBJECT_KEY``), so:

- the same person always gets the same id (audit trails stay readable, per-person derived ids
  stay stable), as long as the key stays the same;
- without the key nobody can test a guessed subject against a stored id (a plain hash of an
  e-mail address or employee number is reversed by trying them all);
- ``p-`` + 16 hex digits (64 bits: no collision expected below billions of people) can never look
  like a CPR number: the guard only matches a run of exactly ten digits standing on its own.
"""

from __future__ import annotations

import hashlib
import hmac
import re
from typing import Final

from pydantic import SecretStr

PSEUDONYM_PREFIX: Final = "p-"
PSEUDONYM_PATTERN: Final = re.compile(r"^p-[0-9a-f]{16}$")
"""What every pseudonymous id looks like."""

_HEX_DIGITS: Final = 16


def pseudonymous_id(key: SecretStr, subject: str) -> str:
    """The stable pseudonymous id of ``subject`` under ``key``: ``p-`` + 16 hex digits."""
    digest = hmac.new(key.get_secret_value().encode(), subject.encode(), hashlib.sha256).hexdigest()
    return PSEUDONYM_PREFIX + digest[:_HEX_DIGITS]
