"""The import boundaries of ``services/`` (docs/architecture.md, "Services"; STYLE.md).

The four services share nothing but the event contract and the plumbing: a service that
imports another service couples their releases and is how rules end up with two variants.

- a service (registry, kvik, mobile, metrics) imports no other service;
- the contract imports no service and no plumbing (every service may import it);
- the plumbing imports no service;
- the hub (the composition root: CLI, launcher, simulator, dashboards) may import anything.

Every import counts, function-level ones included; a relative import is resolved first.
"""

from __future__ import annotations

import ast
from collections.abc import Iterator
from pathlib import Path

import pytest

SERVICES_DIR = Path(__file__).resolve().parents[2] / "services"

SERVICES = frozenset({"registry", "kvik", "mobile", "metrics"})
"""The four services: none may import another."""

FORBIDDEN: dict[str, frozenset[str]] = {
    **{service: SERVICES - {service} for service in SERVICES},
    "contracts": SERVICES | {"plumbing", "hub"},
    "plumbing": SERVICES | {"hub"},
}
"""For each top-level package of ``services``, the packages it must not import. The hub is
absent: it may import anything."""


def _module_name(path: Path, root: Path) -> str:
    """``services.kvik.domain`` for ``<root>/kvik/domain.py``."""
    parts = list(path.relative_to(root.parent).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def imported_modules(path: Path, root: Path) -> Iterator[tuple[int, str]]:
    """``(line, absolute module name)`` of every import in the file at ``path``.

    ``from a import b`` yields ``a.b`` as well as ``a``: ``b`` may be a module
    (``from services import registry``).
    """
    tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
    module = _module_name(path, root)
    package = module if path.name == "__init__.py" else module.rpartition(".")[0]
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            for alias in node.names:
                yield node.lineno, alias.name
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                anchor = package.split(".")
                anchor = anchor[: len(anchor) - (node.level - 1)]
                base = ".".join([*anchor, *([node.module] if node.module else [])])
            else:
                base = node.module or ""
            yield node.lineno, base
            for alias in node.names:
                yield node.lineno, f"{base}.{alias.name}"


def _owner(module: str) -> str | None:
    """The top-level package of ``services`` that ``module`` belongs to, if any."""
    parts = module.split(".")
    return parts[1] if len(parts) > 1 and parts[0] == "services" else None


def boundary_violations(root: Path = SERVICES_DIR) -> list[str]:
    """Every import in ``root`` that crosses a boundary, as ``file:line: a imports b``."""
    violations = []
    for path in sorted(root.rglob("*.py")):
        owner = _owner(_module_name(path, root))
        forbidden = FORBIDDEN.get(owner or "", frozenset())
        seen: set[tuple[int, str]] = set()
        for line, target in imported_modules(path, root):
            other = _owner(target)
            if other in forbidden and (line, other) not in seen:
                seen.add((line, other))
                where = path.relative_to(root.parent).as_posix()
                violations.append(f"{where}:{line}: {owner} imports {other} ({target})")
    return violations


def test_no_package_imports_across_its_boundary() -> None:
    violations = boundary_violations()
    assert violations == [], "imports across a boundary:\n" + "\n".join(violations)


def test_the_walk_sees_the_packages_it_guards() -> None:
    # A walk that found no files (a moved folder, a wrong root) would pass the test above.
    owners = {_owner(_module_name(path, SERVICES_DIR)) for path in SERVICES_DIR.rglob("*.py")}
    assert set(FORBIDDEN) <= owners


@pytest.mark.parametrize(
    ("source", "expected"),
    [
        ("import services.registry.domain\n", "services/kvik/x.py:1: kvik imports registry"),
        (
            "from services.registry.domain import is_open_at\n",
            "services/kvik/x.py:1: kvik imports registry",
        ),
        ("from services import mobile\n", "services/kvik/x.py:1: kvik imports mobile"),
        (
            "def late():\n    from services.metrics import store\n",
            "services/kvik/x.py:2: kvik imports metrics",
        ),
        ("from ..registry import domain\n", "services/kvik/x.py:1: kvik imports registry"),
    ],
)
def test_a_service_importing_another_service_is_named_with_file_and_line(
    tmp_path: Path, source: str, expected: str
) -> None:
    root = tmp_path / "services"
    (root / "kvik").mkdir(parents=True)
    (root / "kvik" / "x.py").write_text(source, encoding="utf-8")
    violations = boundary_violations(root)
    assert len(violations) == 1
    assert violations[0].startswith(expected)


@pytest.mark.parametrize(
    ("package", "source"),
    [
        ("kvik", "from services.contracts import OpeningHours\n"),
        ("kvik", "from services.plumbing.problems import Problem\n"),
        ("kvik", "from .domain import is_open_at\n"),
        ("hub", "from services.registry import domain\n"),
        ("plumbing", "from services.contracts import EventType\n"),
    ],
)
def test_allowed_imports_pass(tmp_path: Path, package: str, source: str) -> None:
    root = tmp_path / "services"
    (root / package).mkdir(parents=True)
    (root / package / "x.py").write_text(source, encoding="utf-8")
    assert boundary_violations(root) == []


@pytest.mark.parametrize(
    ("package", "source"),
    [
        ("contracts", "from services.plumbing.problems import FieldProblem\n"),
        ("contracts", "import services.kvik\n"),
        ("plumbing", "from services.metrics.domain import COPENHAGEN\n"),
    ],
)
def test_the_contract_and_the_plumbing_import_no_service(
    tmp_path: Path, package: str, source: str
) -> None:
    root = tmp_path / "services"
    (root / package).mkdir(parents=True)
    (root / package / "x.py").write_text(source, encoding="utf-8")
    assert len(boundary_violations(root)) == 1
