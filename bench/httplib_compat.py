"""CPython's own ``test_httplib`` run against ``protocol``: how faithful an http.client it is.

Run:  PYTHONPATH=. python bench/httplib_compat.py [--python PYTHON]

The standard library ships its test suite as the ``test`` package on most installs
(Debian splits it into ``libpython3.11-testsuite``). This script copies
``test/test_httplib.py`` into a temporary directory twice: once as it is (the
baseline, against ``http.client``) and once with ``from http import client`` turned
into ``import protocol as client``. Both run under pytest in one subprocess.

A test is *applicable* when it passes against ``http.client`` here (the HTTPS tests
need certificate files some installs leave out). Every applicable test that fails
against ``protocol`` must be a known difference below, each with its reason and the
row of the README table "Differences from http.client" that justifies it. Exit
status 0 when at least ``MIN_PASSED`` applicable tests pass, every failure is a known
difference and every known difference still fails; 1 otherwise; 2 when the ``test``
package is not installed. Nothing of the test suite is ever copied into this repository.
"""

from __future__ import annotations

import argparse
import dataclasses
import importlib.util
import os
import subprocess
import sys
import tempfile
import xml.etree.ElementTree as ET
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
MIN_PASSED = 91
"""Applicable tests that must pass against ``protocol`` (issue #13)."""

IMPORT_LINE = "from http import client, HTTPStatus\n"
REWRITTEN = "import protocol as client\nfrom http import HTTPStatus\n"

# The README rows (column "input" of "Differences from http.client") a known
# difference points at; tests/test_client_httplib_compat.py checks each is there.
EMPTY_NAME = "A response header line with an empty name (`: value`)"
NO_BLANK_LINE = "A response head that ends without its blank line"
NEGATIVE_LENGTH = "`Content-Length: -1` (or any non-digit length) in a response"
TRUNCATED_AMT = "`read(amt)` on a body cut short of its Content-Length"
CALLER_LENGTH = "A request body shorter or longer than the caller's own Content-Length"
PROTOCOL_ERROR_CLOSE = "A protocol error while reading a response head"
HEADER_NAME = "`putheader` with a name that is not a token (`Key Space`, `\\xa0Name`)"
MULTI_VALUE = "`putheader(name, v1, v2)`"
MODULE_ALL = "`__all__` and the classes' `__module__`"

README_ROWS = (
    EMPTY_NAME,
    NO_BLANK_LINE,
    NEGATIVE_LENGTH,
    TRUNCATED_AMT,
    CALLER_LENGTH,
    PROTOCOL_ERROR_CLOSE,
    HEADER_NAME,
    MULTI_VALUE,
    MODULE_ALL,
)

KNOWN_DIFFERENCES: dict[str, tuple[str, str]] = {
    "HeaderTests.test_malformed_headers_coped_with": (
        EMPTY_NAME,
        "a field without a name is malformed (RFC 9110 5.1); protocol refuses the response",
    ),
    "HeaderTests.test_headers_debuglevel": (
        NO_BLANK_LINE,
        "the head in the test never ends; protocol refuses it as truncated (RFC 9112 2.1)",
    ),
    "BasicTest.test_early_eof": (
        NO_BLANK_LINE,
        "a bare status line then EOF is an incomplete head: RemoteDisconnected",
    ),
    "BasicTest.test_epipe": (
        NO_BLANK_LINE,
        "the 401 in the test has no blank line; protocol refuses the truncated head",
    ),
    "BasicTest.test_negative_content_length": (
        NEGATIVE_LENGTH,
        "Content-Length is 1*DIGIT (RFC 9110 8.6); a bad length is a smuggling vector",
    ),
    "BasicTest.test_partial_reads_incomplete_body": (
        TRUNCATED_AMT,
        "read(amt) raises IncompleteRead at the early EOF instead of returning b''",
    ),
    "BasicTest.test_partial_readintos_incomplete_body": (
        TRUNCATED_AMT,
        "readinto() raises IncompleteRead at the early EOF instead of returning 0",
    ),
    "RequestBodyTest.test_manual_content_length": (
        CALLER_LENGTH,
        "a 4-byte body under Content-Length: 42 would desynchronise the connection",
    ),
    "BasicTest.test_error_leak": (
        PROTOCOL_ERROR_CLOSE,
        "protocol closes the connection (conn.sock is None) after BadStatusLine",
    ),
    "HeaderTests.test_putheader": (
        HEADER_NAME,
        "refuses 'Key Space' and '\\xa0NonbreakSpace' as names; joins several values "
        "with ', ' instead of obs-fold",
    ),
    "OfflineTest.test_all": (
        MODULE_ALL,
        "protocol's classes live in submodules and its __all__ lists the status constants "
        "and its own AsyncHTTPConnection and Local/RemoteProtocolError",
    ),
}


@dataclasses.dataclass
class CompatResult:
    passed: list[str]
    failed: list[str]  # applicable tests that fail against protocol
    not_applicable: list[str]  # tests that do not pass against http.client here

    @property
    def unexpected(self) -> list[str]:
        return [name for name in self.failed if name not in KNOWN_DIFFERENCES]

    @property
    def stale(self) -> list[str]:
        """Known differences that no longer fail (the list must shrink with them)."""
        failed = set(self.failed)
        return [name for name in KNOWN_DIFFERENCES if name not in failed]

    @property
    def ok(self) -> bool:
        return len(self.passed) >= MIN_PASSED and not self.unexpected and not self.stale


def test_suite_source() -> str | None:
    """The text of the standard library's ``test/test_httplib.py``, or None if absent."""
    try:
        spec = importlib.util.find_spec("test.test_httplib")
    except ImportError:
        return None
    if spec is None or spec.origin is None:
        return None
    return Path(spec.origin).read_text(encoding="utf-8")


def rewrite(source: str) -> str:
    """``source`` with its ``http.client`` import turned into ``protocol``."""
    if source.count(IMPORT_LINE) != 1:
        raise ValueError(f"test_httplib no longer has exactly one {IMPORT_LINE.strip()!r}")
    return source.replace(IMPORT_LINE, REWRITTEN)


def _outcomes(junit: Path) -> dict[tuple[str, str], bool]:
    """(module, Class.test) -> passed, from pytest's JUnit XML (skipped tests left out)."""
    out: dict[tuple[str, str], bool] = {}
    for case in ET.parse(junit).getroot().iter("testcase"):
        if case.find("skipped") is not None:
            continue
        module, _, cls = case.get("classname", "").partition(".")
        failed = case.find("failure") is not None or case.find("error") is not None
        out[(module, f"{cls}.{case.get('name')}")] = not failed
    return out


def run(python: str = sys.executable, timeout: float = 900) -> CompatResult:
    """Run the baseline and the rewritten copy; raise ``RuntimeError`` if ``test`` is absent."""
    source = test_suite_source()
    if source is None:
        raise RuntimeError("the standard library's test package (test.test_httplib) is absent")
    with tempfile.TemporaryDirectory(prefix="httplib-compat-") as tmp:
        work = Path(tmp)
        (work / "pytest.ini").write_text("[pytest]\n", encoding="utf-8")
        (work / "test_httplib_stdlib.py").write_text(source, encoding="utf-8")
        (work / "test_httplib_protocol.py").write_text(rewrite(source), encoding="utf-8")
        env = dict(os.environ)
        env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(REPO), env.get("PYTHONPATH")]))
        cmd = [python, "-m", "pytest", "-q", "-p", "no:cacheprovider", "--junitxml=out.xml"]
        cmd += ["test_httplib_stdlib.py", "test_httplib_protocol.py"]
        subprocess.run(cmd, cwd=work, env=env, timeout=timeout, capture_output=True, check=False)
        if not (work / "out.xml").exists():
            raise RuntimeError(f"pytest produced no report: {' '.join(cmd)}")
        outcomes = _outcomes(work / "out.xml")
    result = CompatResult([], [], [])
    for (module, name), passed in sorted(outcomes.items()):
        if module != "test_httplib_protocol":
            continue
        if not outcomes.get(("test_httplib_stdlib", name), False):
            result.not_applicable.append(name)
        else:
            (result.passed if passed else result.failed).append(name)
    return result


def report(result: CompatResult) -> str:
    applicable = len(result.passed) + len(result.failed)
    passed, failed = len(result.passed), len(result.failed)
    lines = [f"{passed} passed, {failed} failed (of {applicable} applicable)"]
    for name in result.failed:
        row = KNOWN_DIFFERENCES.get(name)
        why = f"known difference: {row[1]}" if row else "UNEXPECTED"
        lines.append(f"  FAILED {name}: {why}")
    for name in result.stale:
        lines.append(f"  STALE known difference now passes: {name}")
    if result.not_applicable:
        count = len(result.not_applicable)
        lines.append(f"not applicable here (fail against http.client too): {count}")
        lines += [f"  {name}" for name in result.not_applicable]
    if len(result.passed) < MIN_PASSED:
        lines.append(f"fewer than {MIN_PASSED} applicable tests pass")
    return "\n".join(lines)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--python", default=sys.executable, help="interpreter to run the tests")
    args = parser.parse_args()
    try:
        result = run(args.python)
    except RuntimeError as err:
        print(f"httplib_compat: {err}; install the Python test suite to run it", file=sys.stderr)
        return 2
    if sys.version_info[:2] != (3, 11):
        print(
            "httplib_compat: protocol follows Python 3.11's http.client; this suite is "
            f"{sys.version_info[0]}.{sys.version_info[1]}'s, so some failures may be its own"
        )
    print(report(result))
    return 0 if result.ok else 1


if __name__ == "__main__":
    sys.exit(main())
