"""Redis replies as text (services/plumbing/redis_replies.py)."""

from __future__ import annotations

from services.plumbing.redis_replies import reply_text, reply_texts


def test_bytes_are_decoded_as_utf8_and_other_replies_turned_to_text() -> None:
    assert reply_text("Østerbro".encode()) == "Østerbro"
    assert reply_text("already text") == "already text"
    assert reply_text(3) == "3"  # a Lua script's integer reply


def test_a_hash_reply_has_text_fields_and_values() -> None:
    assert reply_texts({b"status": b"open", b"count": 2}) == {"status": "open", "count": "2"}
