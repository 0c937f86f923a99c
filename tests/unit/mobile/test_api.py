"""How the routes answer the use cases' refusals (services/mobile/api.py ``problem_of``): the
problem+json each kind of refusal becomes, as the routes answered it before the use cases
moved out of them."""

from __future__ import annotations

import datetime as dt

from services.mobile.api import problem_of
from services.mobile.domain import (
    Conflict,
    ConflictKind,
    Invalid,
    NotFound,
    OutsideOpeningHours,
    StateConflict,
)
from services.mobile.store import Contended, VisitConflict
from services.plumbing.problems import FieldProblem, problem_type


def test_not_found_is_a_plain_404_saying_what() -> None:
    problem = problem_of(NotFound("visit v-1"))
    assert (problem.status, problem.type, problem.title, problem.detail) == (
        404,
        "about:blank",
        "Not Found",
        "No visit v-1.",
    )


def test_invalid_is_a_422_with_one_entry_per_field() -> None:
    problem = problem_of(Invalid([FieldProblem(field="body.at", message="is in the future")]))
    assert problem.status == 422
    assert problem.errors == [FieldProblem(field="body.at", message="is in the future")]


def test_a_state_conflict_is_a_409_of_its_code() -> None:
    problem = problem_of(StateConflict("slot-taken", "Slot taken", "Choose another slot."))
    assert (problem.status, problem.type, problem.title, problem.detail) == (
        409,
        problem_type("slot-taken"),
        "Slot taken",
        "Choose another slot.",
    )


def test_outside_opening_hours_names_the_place_and_the_local_starts() -> None:
    starts = [dt.datetime(2026, 12, 1, 17, 0, tzinfo=dt.UTC)]
    problem = problem_of(OutsideOpeningHours("Vanløse Bibliotek", starts))
    assert (problem.status, problem.type) == (422, problem_type("outside-opening-hours"))
    assert problem.detail == (
        "Vanløse Bibliotek is not open for the whole visit (2026-12-01T18:00). Send "
        "override_opening_hours: true to plan it anyway; the override is recorded."
    )


def test_a_visit_conflict_names_the_visit_it_collides_with() -> None:
    conflict = Conflict("v-2", "staff-aaaaaa", ConflictKind.OVERLAP, planned_visit_id="v-1")
    problem = problem_of(VisitConflict(conflict))
    assert (problem.status, problem.type) == (409, problem_type("visit-conflict"))
    assert problem.errors is not None
    assert {e.field: e.message for e in problem.errors} == {
        "conflict.visit_id": "v-2",
        "conflict.kind": "overlap",
        "conflict.resource": "staff-aaaaaa",
        "conflict.planned_visit_id": "v-1",
    }


def test_contention_is_a_503_to_retry_after_a_second() -> None:
    problem = problem_of(Contended())
    assert (problem.status, problem.type) == (503, problem_type("contended"))
    assert problem.headers == {"Retry-After": "1"}
