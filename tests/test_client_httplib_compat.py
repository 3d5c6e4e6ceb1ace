"""CPython's own test_httplib against protocol, in CI (bench/httplib_compat.py does the work).

Skipped where the standard library's ``test`` package is not installed. Nothing of
the CPython suite is kept in this repository: the runner copies it to a temporary
directory at test time.
"""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path
from types import ModuleType

import pytest

ROOT = Path(__file__).resolve().parents[1]


def _load_runner() -> ModuleType:
    spec = importlib.util.spec_from_file_location(
        "httplib_compat", ROOT / "bench/httplib_compat.py"
    )
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # dataclasses look their module up there
    spec.loader.exec_module(module)
    return module


compat = _load_runner()
needs_test_package = pytest.mark.skipif(
    compat.test_suite_source() is None or sys.version_info[:2] != (3, 11),
    reason="needs Python 3.11's test package (test.test_httplib): protocol follows 3.11's "
    "http.client, and other versions' suites test their own changes",
)


@pytest.fixture(scope="module")
def result():
    outcome = compat.run(timeout=900)
    print(compat.report(outcome))  # shown with -s, and in the failure output
    return outcome


@needs_test_package
@pytest.mark.timeout(900)
def test_cpython_test_httplib_passes_against_protocol(result):
    assert len(result.passed) >= compat.MIN_PASSED, compat.report(result)
    assert result.unexpected == [], compat.report(result)


@needs_test_package
@pytest.mark.timeout(900)
def test_every_known_difference_still_fails(result):
    """A known difference that passes now must leave the list (and the README table)."""
    assert result.stale == [], compat.report(result)


def test_every_known_difference_is_a_row_of_the_readme_table():
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    table = readme.split("### Differences from http.client", 1)[1]
    assert [row for row in compat.README_ROWS if f"| {row} |" not in table] == []
    for name, (row, reason) in compat.KNOWN_DIFFERENCES.items():
        assert row in compat.README_ROWS, name
        assert reason.strip(), name


def test_the_rewrite_changes_only_the_import():
    source = "import io\nfrom http import client, HTTPStatus\nx = client.OK\n"
    assert compat.rewrite(source) == (
        "import io\nimport protocol as client\nfrom http import HTTPStatus\nx = client.OK\n"
    )
    with pytest.raises(ValueError, match="exactly one"):
        compat.rewrite("import http.client as client\n")
