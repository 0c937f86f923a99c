"""Event types: names follow dk.kanalhub.<service>.<noun>.<verb>.v<N>; each has one topic."""

from __future__ import annotations

import re

from services.contracts import EVENT_TOPIC, EventType, Topic, topic_for

TYPE_NAME = re.compile(r"^dk\.kanalhub\.(?P<service>[a-z]+)\.[a-z_]+\.[a-z_]+\.v[1-9][0-9]*$")

# The service named in a type is the one that publishes on the topic.
SERVICE_TOPIC = {
    "registry": Topic.REGISTRY,
    "kvik": Topic.KVIK,
    "mobile": Topic.MOBILE,
    "metrics": Topic.CONTACTS,
}


def test_every_type_name_follows_the_naming_rule() -> None:
    for event_type in EventType:
        assert TYPE_NAME.match(event_type), event_type


def test_every_type_is_published_on_its_services_topic() -> None:
    for event_type in EventType:
        match = TYPE_NAME.match(event_type)
        assert match is not None
        assert topic_for(event_type) is SERVICE_TOPIC[match["service"]], event_type


def test_every_type_has_exactly_one_topic_and_none_goes_to_the_dead_letter_topic() -> None:
    assert set(EVENT_TOPIC) == set(EventType)
    assert Topic.DEADLETTER not in EVENT_TOPIC.values()


def test_topic_names_are_the_contracts() -> None:
    assert [str(topic) for topic in Topic] == [
        "kanalhub.registry.v1",
        "kanalhub.kvik.v1",
        "kanalhub.mobile.v1",
        "kanalhub.contacts.v1",
        "kanalhub.deadletter.v1",
    ]
