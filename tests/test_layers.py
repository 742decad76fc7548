"""The packages point one way (docs/design.md, "Layout"): the domain packages (series, workflows,
traces) sit on top of llm, metrics and report, which import nothing from them or from each other's
domains."""

from __future__ import annotations

import ast

import pytest

from tests.conftest import ROOT

DOMAINS = ("lmad.series", "lmad.workflows", "lmad.traces")
FLOORS = ("llm", "metrics", "report")


def imported_modules(path) -> set[str]:
    """Every module a file imports, at module level or inside functions."""
    names = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names.add(node.module)
    return names


@pytest.mark.parametrize("floor", FLOORS)
def test_lower_floors_import_no_domain_package(floor):
    offending = {
        f"{path.relative_to(ROOT)}: {name}"
        for path in sorted((ROOT / "lmad" / floor).rglob("*.py"))
        for name in imported_modules(path)
        if name.startswith(DOMAINS)
    }
    assert not offending, sorted(offending)


def test_the_check_sees_an_import_inside_a_function(tmp_path):
    sample = tmp_path / "sample.py"
    sample.write_text("def f():\n    from lmad.series.base import X\n")
    assert "lmad.series.base" in imported_modules(sample)
