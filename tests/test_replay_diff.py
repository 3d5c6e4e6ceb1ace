"""The recorded-vs-replayed response comparison, and how replay prepares a request."""

from __future__ import annotations

import gzip
import json

import pytest

from inspector.config import ConfigError, Endpoint
from inspector.diff import MAX_BODY_LINES, compare, json_differences
from inspector.flow import FlowResponse
from inspector.replay.cli import Tally, parse_target
from inspector.replay.engine import ReplayOptions, replay_request
from inspector.replay.request import ReplayError, check_replayable, outgoing_headers, skip_reason
from tests.replay_fixtures import body, make_flow


def resp(status=200, headers=(), data=b"", reason=""):
    return FlowResponse(status_code=status, reason=reason, headers=list(headers), body=body(data))


JSON = [(b"Content-Type", b"application/json")]


def test_identical_responses_match_despite_volatile_headers():
    a = resp(headers=[(b"Date", b"Mon"), (b"Server", b"a"), (b"X-Request-Id", b"1")], data=b"x")
    b = resp(headers=[(b"Date", b"Tue"), (b"Server", b"b"), (b"X-Request-Id", b"2")], data=b"x")
    diff = compare(a, b)
    assert diff.same
    assert diff.lines() == []


def test_status_and_header_differences():
    a = resp(200, [(b"X-Mode", b"old"), (b"X-Gone", b"1"), (b"Vary", b"a"), (b"Vary", b"b")])
    b = resp(404, [(b"X-Mode", b"new"), (b"X-New", b"2"), (b"Vary", b"a")])
    diff = compare(a, b)
    assert diff.status == "200 OK -> 404 Not Found"
    assert sorted(diff.headers) == [
        "header + X-New: 2",
        "header - Vary: b",
        "header - X-Gone: 1",
        "header ~ X-Mode: old -> new",
    ]
    assert diff.parts == ["status", "headers"]


def test_ignore_header_extends_the_defaults():
    a = resp(headers=[(b"X-Trace", b"1"), (b"ETag", b'"a"')])
    b = resp(headers=[(b"X-Trace", b"2"), (b"ETag", b'"b"')])
    assert not compare(a, b).same
    assert compare(a, b, ignore=["x-TRACE"]).same


def test_json_bodies_compare_structurally_with_paths():
    old = {"items": [{"price": 10}, {"price": 5}, {"price": 10}], "gone": True, "same": [1, 2]}
    new = {"items": [{"price": 10}, {"price": 5}, {"price": 12}, 7], "same": [1, 2], "odd key": 1}
    a = resp(headers=JSON, data=json.dumps(old).encode())
    b = resp(headers=JSON, data=json.dumps(new, indent=4).encode())
    assert compare(a, b).body == [
        "$.items[2].price: 10 -> 12",
        "$.items[3]: + 7",
        "$.gone: - true",
        '$["odd key"]: + 1',
    ]
    # Formatting and key order alone are no difference.
    c = resp(headers=JSON, data=json.dumps(dict(reversed(list(old.items())))).encode())
    assert compare(a, c).same


def test_json_type_changes_are_reported():
    assert list(json_differences({"a": 1}, {"a": "1"})) == ['$.a: 1 -> "1"']
    assert list(json_differences({"a": True}, {"a": 1})) == ["$.a: true -> 1"]
    assert list(json_differences([1], {"a": 1})) == ['$: [1] -> {"a":1}']


def test_text_bodies_get_a_capped_unified_diff():
    old = "\n".join(f"line {i}" for i in range(200)).encode()
    new = "\n".join(f"line {i}" if i % 2 else f"LINE {i}" for i in range(200)).encode()
    lines = compare(resp(data=old), resp(data=new)).body
    assert lines[0] == "body --- recorded"
    assert lines[1] == "body +++ replayed"
    assert "-line 0" in lines and "+LINE 0" in lines
    assert len(lines) == MAX_BODY_LINES + 1
    assert lines[-1].startswith("... ") and lines[-1].endswith(" more lines of body differences")


def test_binary_bodies_compare_by_size_and_digest():
    diff = compare(resp(data=bytes(range(256))), resp(data=bytes(range(255, -1, -1))))
    assert len(diff.body) == 1
    assert diff.body[0].startswith("body: 256 B sha256 ")
    assert " -> 256 B sha256 " in diff.body[0]


def test_bodies_are_compared_after_content_encoding():
    text = b'{"a": 1}'
    a = resp(headers=[*JSON, (b"Content-Encoding", b"gzip")], data=gzip.compress(text, mtime=1))
    b = resp(headers=JSON, data=text)
    assert compare(a, b).body == []
    assert compare(a, b).headers == ["header - Content-Encoding: gzip"]


def test_truncated_recordings_compare_by_size_and_sha256():
    a = resp(data=b"")
    a.body = body(b"x" * 10, size=100)
    a.body.sha256 = "ab" * 32
    b = resp(data=b"y" * 100)
    lines = compare(a, b).body
    assert lines and lines[0].startswith("body (truncated in the recording): 100 B sha256 abab")


def test_truncated_recordings_without_a_digest_compare_size_and_kept_bytes():
    a = resp(data=b"")
    a.body = body(b"", size=5000)  # a browser HAR that left the content out
    assert a.body.sha256 is None and a.body.truncated
    assert compare(a, resp(data=b"z" * 5000)).same
    assert not compare(a, resp(data=b"z" * 4999)).same
    b = resp(data=b"")
    b.body = body(b"abc", size=5000)
    assert compare(b, resp(data=b"abc" + b"z" * 4997)).same
    assert not compare(b, resp(data=b"abd" + b"z" * 4997)).same


def test_missing_responses():
    assert compare(None, None).same
    assert compare(None, resp()).status == "no response -> 200 OK"


# --- request preparation --------------------------------------------------------------------


def test_outgoing_headers_keep_order_and_case_and_drop_hop_by_hop():
    flow = make_flow(
        "127.0.0.1",
        8000,
        "POST",
        "/x",
        [
            (b"user-AGENT", b"ua"),
            (b"Connection", b"keep-alive, X-Hop"),
            (b"X-Hop", b"1"),
            (b"Transfer-Encoding", b"chunked"),
            (b"Keep-Alive", b"timeout=5"),
            (b"X-Last", b"z"),
        ],
        b"12345",
    )
    assert outgoing_headers(flow.request, "target:9") == [
        (b"Host", b"target:9"),
        (b"user-AGENT", b"ua"),
        (b"Content-Length", b"5"),
        (b"X-Last", b"z"),
    ]
    assert outgoing_headers(flow.request, None)[0] == (b"Host", b"127.0.0.1:8000")


def test_content_length_added_for_an_unframed_body_and_host_inserted():
    flow = make_flow("h", 80, "POST", "/", [(b"X-A", b"1")], b"abc", host_header=False)
    assert outgoing_headers(flow.request, "h") == [
        (b"Host", b"h"),
        (b"X-A", b"1"),
        (b"Content-Length", b"3"),
    ]


def test_replay_request_follows_the_target():
    flow = make_flow("old.example", 8080, "GET", "/p?q=1")
    options = ReplayOptions(target=Endpoint("https", "::1", 8443))
    req = replay_request(flow, options)
    assert (req.scheme, req.host, req.port, req.path) == ("https", "::1", 8443, "/p?q=1")
    assert req.headers[0] == (b"Host", b"[::1]:8443")
    kept = replay_request(flow, ReplayOptions(target=Endpoint("http", "n", 80), keep_host=True))
    assert kept.headers[0] == (b"Host", b"old.example:8080")


@pytest.mark.parametrize(
    ("url", "message"),
    [
        ("ftp://x", "bad --target URL"),
        ("http://host:99999", "bad port in --target URL"),
        ("http://host:8000/api", "give only scheme://host"),
    ],
)
def test_bad_targets(url, message):
    with pytest.raises(ConfigError, match=message):
        parse_target(url)


def test_unreplayable_flows():
    flow = make_flow("h", 80, "POST", "/", request_body=b"abc")
    flow.request.body = body(b"abc", size=10_000_000)
    with pytest.raises(ReplayError, match=r"body was cut at capture \(3 B of 10.0 MB recorded\)"):
        check_replayable(flow)
    tunnel = make_flow("h", 443, "CONNECT", "h:443")
    assert skip_reason(tunnel) == "CONNECT tunnels are not replayed"
    upgrade = make_flow("h", 80, status=101)
    assert "WebSocket" in skip_reason(upgrade)


def test_tally_summary_and_exit_codes():
    tally = Tally(total=40, match=10, differ=2)
    assert tally.summary() == "replayed 12 of 40: 10 match, 2 differ, 0 errors"
    assert tally.exit_code() == 1
    tally.interrupted = True
    assert tally.summary().endswith("; interrupted")
    assert Tally(total=1, match=1).exit_code() == 0
    assert Tally(total=2, match=1, errors=1, skipped=1).summary().endswith("1 errors, 1 skipped")
    assert Tally(total=2, differ=1, errors=1).exit_code() == 2
