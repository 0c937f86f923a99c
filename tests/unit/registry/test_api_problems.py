"""Every refusal a registry use case can raise has its problem+json answer in ``api.py``."""

from __future__ import annotations

from services.plumbing.problems import FieldProblem
from services.registry import domain
from services.registry.api import _problem

REFUSALS: list[tuple[domain.RegistryError, int]] = [
    (domain.InvalidInput([FieldProblem(field="body.name", message="x")]), 422),
    (domain.RecordNotFound("site", "site-x"), 404),
    (domain.IdTaken("entry"), 409),
    (domain.VersionStale(3), 412),
    (domain.AlreadyRetired(), 409),
    (domain.SiteInUse(["entry-a"]), 409),
    (domain.ChangedMeanwhile(), 409),
]


def test_every_registry_error_is_mapped_to_its_status() -> None:
    assert {type(error) for error, _ in REFUSALS} == set(domain.RegistryError.__subclasses__())
    assert [_problem(error).status for error, _ in REFUSALS] == [s for _, s in REFUSALS]


def test_a_stale_version_answers_the_current_etag() -> None:
    assert _problem(domain.VersionStale(3)).headers == {"ETag": '"3"'}
