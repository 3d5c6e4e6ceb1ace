"""`inspector export` end to end: exported curl scripts and pytest modules run for real."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from tests.conftest import needs_curl
from tests.replay_fixtures import (
    JsonServer,
    check_har,
    make_flow,
    read_session,
    record,
    run_inspector,
    write_session,
)

ROOT = Path(__file__).parents[1]


def _session(tmp_path: Path, server) -> tuple[Path, list]:
    h, p = server.host, server.port
    flows = [
        record(h, p, "GET", "/status/201", [(b"User-Agent", b"rec/1"), (b"X-Trace", b"7")]),
        record(
            h,
            p,
            "POST",
            "/echo?x=1",
            [(b"Content-Type", b"application/json"), (b"Authorization", b"Bearer tok-999")],
            b'{"name": "widget", "api_key": "k-123"}',
        ),
        record(
            h,
            p,
            "PUT",
            "/bytes/10",
            [(b"Content-Type", b"application/octet-stream")],
            bytes(range(256)) * 30,
        ),
        record(h, p, "DELETE", "/status/204"),
    ]
    session = tmp_path / "s.db"
    write_session(session, flows)
    return session, flows


@needs_curl
def test_exported_curl_script_reproduces_every_request(tmp_path, echo_server):
    session, flows = _session(tmp_path, echo_server)
    script = tmp_path / "replay.sh"
    result = run_inspector("export", session, "--format", "curl", "-o", script)
    assert result.returncode == 0, result.stderr
    assert "exported 4 exchanges" in result.stderr
    body_file = tmp_path / "replay.body-3.bin"
    assert body_file.read_bytes() == bytes(range(256)) * 30
    assert f"@{body_file}" in script.read_text()
    before = len(echo_server.received)
    run = subprocess.run(
        [shutil.which("dash") or "sh", str(script)], capture_output=True, timeout=60
    )
    assert run.returncode == 0, run.stderr
    sent = echo_server.received[before:]
    assert len(sent) == len(flows)
    for got, flow in zip(sent, flows, strict=True):
        req = flow.request
        assert (got.method, got.path, got.body) == (req.method, req.path, req.body.data)
        expected = [(n.decode(), v.decode()) for n, v in req.headers if n != b"Content-Length"]
        assert [kv for kv in got.headers if kv[0] != "Content-Length"] == expected
        assert dict(got.headers).get("Content-Length") == req.header("content-length")


def test_har_export_validates_and_imports_back(tmp_path, echo_server):
    session, flows = _session(tmp_path, echo_server)
    har = tmp_path / "s.har"
    assert run_inspector("export", session, "--format", "har", "-o", har).returncode == 0
    doc = json.loads(har.read_text())
    check_har(doc)
    assert len(doc["log"]["entries"]) == 4
    imported = tmp_path / "imported.db"
    result = run_inspector("import", har, "-o", imported)
    assert result.returncode == 0, result.stderr
    assert "imported 4 exchanges" in result.stderr
    back = read_session(imported)
    for a, b in zip(flows, back, strict=True):
        assert (a.request.method, a.request.url) == (b.request.method, b.request.url)
        assert a.request.headers == b.request.headers
        assert a.request.body.data == b.request.body.data
        assert a.response.status_code == b.response.status_code
        assert a.response.headers == b.response.headers
        assert a.response.body.data == b.response.body.data
    # The imported session replays like the original against the unchanged server.
    replay = run_inspector("replay", imported, "--filter", "!~u /echo")
    assert replay.returncode == 0, replay.stdout
    assert replay.stdout.splitlines()[-1] == "replayed 3 of 3: 3 match, 0 differ, 0 errors"


def _run_module(path: Path, env: dict | None = None) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", str(path)],
        capture_output=True,
        text=True,
        timeout=120,
        cwd=path.parent,
        env=dict(os.environ, PYTHONPATH=str(ROOT), **(env or {})),
    )


def test_generated_pytest_module_passes_then_catches_a_change(tmp_path, echo_server):
    session, _ = _session(tmp_path, echo_server)
    module = tmp_path / "test_captured.py"
    result = run_inspector("export", session, "--format", "pytest", "-o", module)
    assert result.returncode == 0, result.stderr
    passed = _run_module(module)
    assert passed.returncode == 0, passed.stdout + passed.stderr
    assert "4 passed" in passed.stdout
    changed = JsonServer(201, {"changed": True})
    try:
        failed = _run_module(module, {"INSPECTOR_BASE_URL": changed.url})
    finally:
        changed.close()
    assert failed.returncode == 1
    assert "4 failed" in failed.stdout


def test_raw_export_to_stdout_with_filter(tmp_path, echo_server):
    session, _ = _session(tmp_path, echo_server)
    result = run_inspector("export", session, "--format", "raw", "--filter", "~m POST")
    assert result.returncode == 0
    out = result.stdout
    assert out.count("### request ") == 1
    assert f"POST /echo?x=1 HTTP/1.1\nHost: 127.0.0.1:{echo_server.port}\n" in out  # text mode
    assert "### response 200 OK" in out


@pytest.mark.parametrize("fmt", ["har", "curl", "raw", "pytest"])
def test_cli_redact_masks_credentials(tmp_path, echo_server, fmt):
    session, _ = _session(tmp_path, echo_server)
    out = tmp_path / f"out.{fmt}"
    assert run_inspector("export", session, "--format", fmt, "--redact", "-o", out).returncode == 0
    text = out.read_bytes()
    assert b"tok-999" not in text and b"k-123" not in text
    assert b"REDACTED" in text
    assert b"widget" in text


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--filter", "~c"], "bad --filter '~c'"),
        (["-o", "/nonexistent/dir/out.har"], "directory /nonexistent/dir does not exist"),
        (["-o", "{tmp}"], "cannot write {tmp}: it is a directory; give a file name"),
        (["-o", "/proc/out.har"], "cannot write /proc/out.har: "),  # a directory nobody writes
    ],
)
def test_export_bad_input(tmp_path, echo_server, args, message):
    if "/proc/" in message and not Path("/proc/self").is_dir():
        pytest.skip("no /proc here")
    session, _ = _session(tmp_path, echo_server)
    args = [arg.replace("{tmp}", str(tmp_path)) for arg in args]
    result = run_inspector("export", session, "--format", "har", *args)
    assert result.returncode == 2
    assert message.replace("{tmp}", str(tmp_path)) in result.stderr
    assert "Traceback" not in result.stderr


def test_export_missing_session(tmp_path):
    result = run_inspector("export", tmp_path / "none.db", "--format", "curl")
    assert result.returncode == 2
    assert "does not exist" in result.stderr


def test_pytest_export_counts_the_tests_it_wrote_and_what_it_left_out(tmp_path):
    session = tmp_path / "s.db"
    write_session(session, [make_flow("127.0.0.1", 9), make_flow("127.0.0.1", 9, status=None)])
    module = tmp_path / "test_captured.py"
    result = run_inspector("export", session, "--format", "pytest", "-o", module)
    assert result.returncode == 0, result.stderr
    assert f"exported 1 exchange (1 left out, listed in the file) to {module}" in (result.stderr)
    assert "# left out: GET http://127.0.0.1:9/: the exchange failed" in module.read_text()
