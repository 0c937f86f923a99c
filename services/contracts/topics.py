"""The Kafka topics of the contract, one per publishing service plus the dead-letter topic."""

from __future__ import annotations

from enum import StrEnum


class Topic(StrEnum):
    """A topic name as it is on the broker (tests may add a suffix, see the plumbing settings).

    The ``.v1`` suffix versions the topic, not the events: a breaking change to an event gets a
    new event type (``...v2``) on the same topic, and only a change to keys or partitioning
    would need a new topic.
    """

    REGISTRY = "kanalhub.registry.v1"
    KVIK = "kanalhub.kvik.v1"
    MOBILE = "kanalhub.mobile.v1"
    CONTACTS = "kanalhub.contacts.v1"
    DEADLETTER = "kanalhub.deadletter.v1"
