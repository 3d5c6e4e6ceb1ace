"""`inspector import FILE.har -o SESSION`: browser HARs in, clear errors and no leftovers out."""

from __future__ import annotations

import base64
import gzip
import json
from pathlib import Path

import pytest

from inspector.cli import main as cli_main
from tests.replay_fixtures import read_session, run_inspector


def _chromium_har(base_url: str) -> dict:
    """The shape Chromium's devtools saves: pseudo-headers, decoded content, _fields, gaps."""
    png = b"\x89PNG\r\n\x1a\n" + bytes(range(40))
    return {
        "log": {
            "version": "1.2",
            "creator": {"name": "WebInspector", "version": "537.36"},
            "pages": [
                {"id": "page_1", "title": "x", "startedDateTime": "2026-01-02T03:04:05.678Z"}
            ],
            "entries": [
                {
                    "_initiator": {"type": "other"},
                    "_resourceType": "document",
                    "pageref": "page_1",
                    "startedDateTime": "2026-01-02T03:04:05.678Z",
                    "time": 12.5,
                    "request": {
                        "method": "GET",
                        "url": f"{base_url}/echo?lang=en&q=a+b",
                        "httpVersion": "http/2.0",
                        "headers": [
                            {"name": ":authority", "value": "example"},
                            {"name": "accept", "value": "text/html"},
                            {"name": "user-agent", "value": "Mozilla/5.0"},
                        ],
                        "queryString": [{"name": "lang", "value": "en"}],
                        "cookies": [],
                        "headersSize": -1,
                        "bodySize": 0,
                    },
                    "response": {
                        "status": 200,
                        "statusText": "",
                        "httpVersion": "http/2.0",
                        "headers": [
                            {"name": "content-type", "value": "text/html; charset=utf-8"},
                            {"name": "content-encoding", "value": "gzip"},
                        ],
                        "cookies": [],
                        "content": {"size": 11, "mimeType": "text/html", "text": "<p>hi</p>\n"},
                        "redirectURL": "",
                        "headersSize": -1,
                        "bodySize": -1,
                        "_transferSize": 120,
                    },
                    "cache": {},
                    "timings": {
                        "blocked": 1.2,
                        "dns": -1,
                        "ssl": -1,
                        "connect": -1,
                        "send": 0.1,
                        "wait": 10.0,
                        "receive": 1.2,
                        "_blocked_queueing": 0.5,
                    },
                    "serverIPAddress": "127.0.0.1",
                },
                {
                    "startedDateTime": "2026-01-02T03:04:06.000+01:00",
                    "time": 3,
                    "request": {
                        "method": "POST",
                        "url": f"{base_url}/echo",
                        "httpVersion": "HTTP/1.1",
                        "headers": [{"name": "Content-Type", "value": "application/json"}],
                        "postData": {"mimeType": "application/json", "text": '{"n": 1}'},
                    },
                    "response": {
                        "status": 201,
                        "statusText": "Created",
                        "headers": [{"name": "Content-Type", "value": "image/png"}],
                        "content": {
                            "size": len(png),
                            "mimeType": "image/png",
                            "text": base64.b64encode(png).decode(),
                            "encoding": "base64",
                        },
                    },
                },
                {
                    "startedDateTime": "2026-01-02T03:04:06.500Z",
                    "request": {"method": "GET", "url": f"{base_url}/bytes/5000", "headers": []},
                    "response": {
                        "status": 200,
                        "headers": [{"name": "Content-Encoding", "value": "br"}],
                        "content": {"size": 5000, "mimeType": "application/octet-stream"},
                    },
                },
                {
                    "startedDateTime": "2026-01-02T03:04:07Z",
                    "request": {
                        "method": "POST",
                        "url": f"{base_url}/form",
                        "headers": [],
                        "postData": {
                            "mimeType": "application/x-www-form-urlencoded",
                            "params": [{"name": "a", "value": "1 2"}, {"name": "b", "value": "x"}],
                        },
                    },
                    "response": {"status": 0, "statusText": "", "headers": [], "content": {}},
                    "_error": "net::ERR_CONNECTION_REFUSED",
                },
            ],
        }
    }


def test_import_a_browser_har(tmp_path, echo_server):
    har = tmp_path / "chrome.har"
    har.write_text(json.dumps(_chromium_har(echo_server.url)))
    session = tmp_path / "s.db"
    result = run_inspector("import", har, "-o", session)
    assert result.returncode == 0, result.stderr
    flows = read_session(session)
    assert len(flows) == 4
    page, post, left_out, failed = flows
    assert page.request.url == f"{echo_server.url}/echo?lang=en&q=a+b"
    assert page.request.headers == [
        (b"Host", f"127.0.0.1:{echo_server.port}".encode()),
        (b"accept", b"text/html"),
        (b"user-agent", b"Mozilla/5.0"),
    ]
    assert page.request.http_version == "HTTP/2"  # "http/2.0": replay speaks it again
    # Browsers save decoded content: the Content-Encoding that no longer applies is dropped.
    assert page.response.headers == [(b"content-type", b"text/html; charset=utf-8")]
    assert page.response.body.data == b"<p>hi</p>\n"
    assert not page.response.body.truncated
    assert page.timings.duration == pytest.approx(0.0125, abs=1e-5)
    assert post.request.body.data == b'{"n": 1}'
    assert post.response.body.data.startswith(b"\x89PNG")
    assert post.response.reason == "Created"
    assert post.request.timestamp == pytest.approx(page.request.timestamp + 0.322 - 3600, abs=1e-5)
    # A body the browser left out is known by its size only: a cut body, headers kept.
    assert left_out.response.body.truncated and left_out.response.body.size == 5000
    assert left_out.response.headers == [(b"Content-Encoding", b"br")]
    assert failed.response is None and failed.error is not None
    assert failed.request.body.data == b"a=1+2&b=x"
    assert {f.mode for f in flows} == {"import"}
    # show/replay/export accept it: replay it to the live server.
    replay = run_inspector("replay", session, "--filter", "~m POST & ~u /echo")
    assert replay.stdout.splitlines()[0].startswith(f"[replay] POST {echo_server.url}/echo -> 200")
    assert echo_server.received[-1].body == b'{"n": 1}'
    export = run_inspector("export", session, "--format", "curl")
    assert export.returncode == 0 and export.stdout.count("curl --http1.1") == 4  # and the replay
    assert export.stdout.count("curl --http2-prior-knowledge ") == 1  # the page, over HTTP/2


def _entry(**changes) -> dict:
    entry = {
        "startedDateTime": "2026-01-02T03:04:05Z",
        "time": 1,
        "request": {"method": "GET", "url": "http://127.0.0.1:9/x", "headers": []},
        "response": {"status": 200, "headers": [], "content": {"size": 0, "mimeType": ""}},
    }
    for path, value in changes.items():
        target = entry
        keys = path.split("__")
        for key in keys[:-1]:
            target = target[key]
        if value is _DELETE:
            del target[keys[-1]]
        else:
            target[keys[-1]] = value
    return entry


_DELETE = object()
_GOOD = _entry()

MALFORMED = [
    ("not json {", "is not a HAR file: invalid JSON at line 1 column 1"),
    ('{"entries": []}', 'the top level must be an object with a "log" object'),
    ({"log": {"entries": {}}}, '"log.entries" is missing or not a list'),
    (
        {"log": {"entries": [_GOOD, _GOOD, _GOOD, _entry(request__url=_DELETE)]}},
        "entry 3: request.url is missing",
    ),
    (
        {"log": {"entries": [_entry(request__url="/relative")]}},
        "entry 0: request.url is not an absolute http(s) URL: '/relative'",
    ),
    (
        {"log": {"entries": [_GOOD, _entry(request__method=_DELETE)]}},
        "entry 1: request.method is missing",
    ),
    (
        {"log": {"entries": [_entry(request__method="GE T")]}},
        "entry 0: request.method is not an HTTP method",
    ),
    (
        {"log": {"entries": [_entry(response__status="200")]}},
        "entry 0: response.status must be an integer, not str",
    ),
    ({"log": {"entries": [_entry(response=_DELETE)]}}, "entry 0: response.status is missing"),
    (
        {"log": {"entries": [_entry(request__headers=[{"value": "x"}])]}},
        "entry 0: request.headers[0].name is missing",
    ),
    (
        {"log": {"entries": [_entry(response__content={"text": "%%%", "encoding": "base64"})]}},
        "entry 0: response.content.text is not valid base64",
    ),
    (
        {"log": {"entries": [_entry(startedDateTime="last tuesday")]}},
        "entry 0: startedDateTime is not an ISO 8601 date: 'last tuesday'",
    ),
    (
        {"log": {"entries": [_entry(request__url="http://host:99999/")]}},
        "entry 0: request.url has a bad port",
    ),
    (
        {"log": {"entries": [_entry(request__headers=[{"name": "X-A", "value": "a\r\nX-B: b"}])]}},
        "entry 0: request.headers[0].value contains a line break or NUL",
    ),
    (
        {"log": {"entries": [_entry(response__headers=[{"name": "Bad Name", "value": "v"}])]}},
        "entry 0: response.headers[0].name is not a valid header name: 'Bad Name'",
    ),
]


@pytest.mark.parametrize(("content", "message"), MALFORMED)
def test_malformed_har_is_a_clear_error_and_leaves_nothing(tmp_path, capsys, content, message):
    har = tmp_path / "bad.har"
    har.write_text(content if isinstance(content, str) else json.dumps(content))
    out_dir = tmp_path / "out"
    out_dir.mkdir()
    # In-process through the real command-line entry point (a subprocess each is slow).
    code = cli_main(["import", str(har), "-o", str(out_dir / "s.db")])
    err = capsys.readouterr().err
    assert code == 2
    assert message in err, err
    assert list(out_dir.iterdir()) == []


def test_import_refuses_to_overwrite(tmp_path):
    har = tmp_path / "ok.har"
    har.write_text(json.dumps({"log": {"entries": [_GOOD]}}))
    existing = tmp_path / "s.db"
    existing.write_bytes(b"precious")
    result = run_inspector("import", har, "-o", existing)
    assert result.returncode == 2
    assert f"{existing} already exists" in result.stderr
    assert existing.read_bytes() == b"precious"


def test_import_missing_and_unreadable_files(tmp_path):
    result = run_inspector("import", tmp_path / "none.har", "-o", tmp_path / "s.db")
    assert result.returncode == 2
    assert "none.har: no such file" in result.stderr
    binary = tmp_path / "bin.har"
    binary.write_bytes(gzip.compress(b"{}"))
    result = run_inspector("import", binary, "-o", tmp_path / "s.db")
    assert result.returncode == 2
    assert "is not a HAR file" in result.stderr
    assert not (tmp_path / "s.db").exists()
    result = run_inspector("import", binary, "-o", tmp_path / "no" / "s.db")
    assert "directory" in result.stderr and "does not exist" in result.stderr


def test_empty_har_gives_an_empty_session(tmp_path):
    har = tmp_path / "empty.har"
    har.write_text(json.dumps({"log": {"version": "1.2", "entries": []}}))
    session = tmp_path / "s.db"
    assert run_inspector("import", har, "-o", session).returncode == 0
    assert sorted(p.name for p in Path(tmp_path).iterdir()) == ["empty.har", "s.db"]
    assert read_session(session) == []


@pytest.mark.parametrize("command", [["show"], ["replay"], ["export", "--format", "curl"]])
def test_a_har_given_as_a_session_says_to_import_it(tmp_path, command):
    har = tmp_path / "devtools.har"
    har.write_text(json.dumps({"log": {"version": "1.2", "entries": []}}))
    result = run_inspector(*command, har)
    assert result.returncode == 2
    assert result.stderr == (
        f"inspector: error: {har} is a HAR file, not a session: turn it into one with "
        f"`inspector import {har} -o {tmp_path / 'devtools.db'}`\n"
    )
