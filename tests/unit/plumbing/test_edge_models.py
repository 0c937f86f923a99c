"""The edge model's built-in CPR guard: every string of a parsed body, at any depth, refused
with the value's own location and never the value itself."""

from __future__ import annotations

import pytest
from pydantic import AwareDatetime, BaseModel, Field, ValidationError

from services.plumbing.edge_models import PERSONAL_DATA, EdgeModel, cpr_locations

CPR = "0102031234"


class Step(EdgeModel):
    code: str


class Body(EdgeModel):
    name: str
    tags: list[str] = Field(default_factory=list)
    steps: list[Step] = Field(default_factory=list)
    extra: dict[str, str] = Field(default_factory=dict)


def _errors(data: dict[str, object]) -> list[dict[str, object]]:
    with pytest.raises(ValidationError) as caught:
        Body.model_validate(data)
    return [dict(error) for error in caught.value.errors()]


@pytest.mark.parametrize(
    ("data", "loc"),
    [
        ({"name": f"v-{CPR}"}, ("name",)),
        ({"name": "ok", "tags": ["a", f"x_{CPR}"]}, ("tags", 1)),
        ({"name": "ok", "steps": [{"code": "a"}, {"code": f"s_{CPR}"}]}, ("steps", 1, "code")),
        ({"name": "ok", "extra": {"k": "010203-1234"}}, ("extra", "k")),
        ({"name": "ok", "extra": {CPR: "v"}}, ("extra",)),
    ],
)
def test_a_cpr_shaped_string_anywhere_is_refused_at_its_own_location(
    data: dict[str, object], loc: tuple[object, ...]
) -> None:
    errors = _errors(data)
    assert [(e["type"], e["loc"]) for e in errors] == [(PERSONAL_DATA, loc)]


def test_the_refusal_never_carries_the_value() -> None:
    with pytest.raises(ValidationError) as caught:
        Body.model_validate({"name": f"v-{CPR}"})
    assert CPR not in str(caught.value)
    assert CPR not in repr(caught.value.errors())


def test_every_offending_field_is_named_at_once() -> None:
    errors = _errors({"name": CPR, "tags": [CPR]})
    assert [e["loc"] for e in errors] == [("name",), ("tags", 0)]


def test_values_that_only_resemble_a_cpr_number_pass() -> None:
    body = Body.model_validate(
        {"name": "2.4.1", "tags": ["2024-01-15", "12345678901", "abc0102031234"]}
    )
    assert body.name == "2.4.1"


def test_a_plain_model_inside_is_walked_too() -> None:
    class Plain(BaseModel):
        note: str

    assert list(cpr_locations({"a": [Plain(note=CPR)]}, ("body",))) == [("body", "a", 0, "note")]


def test_unknown_fields_are_still_refused() -> None:
    errors = _errors({"name": "ok", "surname": "x"})
    assert [e["type"] for e in errors] == ["extra_forbidden"]


class Timed(EdgeModel):
    at: AwareDatetime
    count: int = 0


@pytest.mark.parametrize(
    ("data", "loc"),
    [
        # pydantic reads a numeric string as a Unix timestamp: the number would be stored.
        ({"at": CPR}, ("at",)),
        ({"at": "2026-12-07T10:00:00Z", "count": "0102031234"}, ("count",)),
        ({"at": "not a time", "count": CPR}, ("count",)),
    ],
)
def test_a_cpr_shaped_string_is_refused_as_sent_before_a_field_converts_it(
    data: dict[str, object], loc: tuple[object, ...]
) -> None:
    with pytest.raises(ValidationError) as caught:
        Timed.model_validate(data)
    assert [(e["type"], e["loc"]) for e in caught.value.errors()] == [(PERSONAL_DATA, loc)]
