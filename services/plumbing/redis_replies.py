"""Redis replies as text. The services' clients do not decode responses (``connect_redis``), so
keys, fields and values come back as bytes, and a Lua script's number as an int; a store reads
them through these two functions, the same way everywhere."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any


def reply_text(value: object) -> str:
    """One reply as ``str``: bytes decoded as UTF-8, anything else (a str, a Lua integer) by
    ``str()``."""
    return value.decode() if isinstance(value, bytes) else str(value)


def reply_texts(mapping: Mapping[Any, Any]) -> dict[str, str]:
    """A hash reply (``HGETALL``) with its fields and values as text."""
    return {reply_text(field): reply_text(value) for field, value in mapping.items()}
