"""Whether a shared JWT secret (HS256) is fit for production.

Length alone let 32 spaces, or the development secret plus a space, through. A secret made for
the job (``openssl rand -hex 32``, ``openssl rand -base64 48``) has no whitespace, many distinct
characters and high entropy per character; anything typed or derived by a person tends to fail
one of the checks below. The checks read only the secret's shape: they cannot prove a secret
random, so production should prefer an asymmetric key (``KANALHUB_JWT_JWKS_URL`` or
``KANALHUB_JWT_PUBLIC_KEY``), where the hub holds no signing secret at all.
"""

from __future__ import annotations

import math
from collections import Counter

MIN_LENGTH = 32
MIN_DISTINCT = 7
"""``openssl rand -hex 16`` (32 characters of 16 possible) has 14 distinct on average; the
fewest in a million draws was 8 (9 already once in 300,000), so the bound sits below that."""
MIN_ENTROPY_BITS = 80.0
"""Length x Shannon entropy per character, measured on the secret itself. 32 random hex
characters measure about 116 bits, the lowest of 300,000 draws 92; ``aaaa...`` measures 0."""
REPEATED_RUN = 5
"""A run of this many characters that occurs three times or more (without overlaps): a word or
pattern repeated to reach the length."""
SHARED_RUN = 12
"""A run this long shared with the development secret (after folding) means it was derived
from it."""


def _folded(text: str) -> str:
    """Lower case, letters and digits only: the development secret's spelling variants fold
    to the same string."""
    return "".join(c for c in text.casefold() if c.isalnum())


def _repeats(secret: str) -> bool:
    """Whether a run of :data:`REPEATED_RUN` characters occurs three times or more."""
    runs = {secret[i : i + REPEATED_RUN] for i in range(len(secret) - REPEATED_RUN + 1)}
    # counted without overlaps: "222222" is one run of a repeated character, not three
    return any(secret.count(run) >= 3 for run in runs)


def shannon_bits(secret: str) -> float:
    """The secret's length times the Shannon entropy of its character frequencies."""
    if not secret:
        return 0.0
    counts = Counter(secret)
    total = len(secret)
    per_char = -sum(n / total * math.log2(n / total) for n in counts.values())
    return per_char * total


def weak_secret_reasons(secret: str, development_secret: str) -> list[str]:
    """Why ``secret`` is too weak for production; empty if it passes every check.

    The reasons never quote the secret (they end up in logs and on a terminal).
    """
    reasons = []
    if len(secret) < MIN_LENGTH:
        reasons.append(f"it is shorter than {MIN_LENGTH} characters")
    if any(c.isspace() for c in secret):
        reasons.append("it contains whitespace")
    if len(set(secret)) < MIN_DISTINCT:
        reasons.append(f"it has fewer than {MIN_DISTINCT} distinct characters")
    if shannon_bits(secret) < MIN_ENTROPY_BITS:
        reasons.append(f"its measured entropy is below {MIN_ENTROPY_BITS:g} bits")
    if _repeats(secret):
        reasons.append("it repeats a pattern")
    folded, placeholder = _folded(secret), _folded(development_secret)
    runs = (placeholder[i : i + SHARED_RUN] for i in range(len(placeholder) - SHARED_RUN + 1))
    if any(run in folded for run in runs):
        reasons.append("it is (or contains) the development secret")
    return reasons
