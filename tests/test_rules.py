"""Rule patterns and kinds (inspector.rules) on recorded flows; end to end in test_rules_proxy."""

from __future__ import annotations

import asyncio
import gzip
import os
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from inspector import filters
from inspector.flow import Flow, FlowBody, FlowRequest, FlowResponse
from inspector.http import HTTPFlow, Request
from inspector.rules import RuleError, RuleSet
from inspector.rules.kinds import _same_origin_path
from inspector.rules.sides import REQUEST, RESPONSE, for_side


def flow_for(url: str = "http://example.com/api/x?q=1", body: bytes = b"") -> Flow:
    req = FlowRequest("GET", "http", "", 80, "/", headers=[(b"Host", b"example.com")])
    HTTPFlow(Flow(req)).request.url = url
    req.body = FlowBody(body, len(body))
    return Flow(req)


def run_request(rules: RuleSet, flow: Flow) -> tuple[HTTPFlow, list[str]]:
    view = HTTPFlow(flow)
    return view, asyncio.run(rules.request(view))


@pytest.mark.parametrize(
    ("option", "pattern", "position", "words"),
    [
        ("map_remote", "|[bad|x", 1, "bad regex: unterminated character set"),
        ("map_remote", "|a(|x", 2, "missing ), unterminated subpattern"),
        ("map_remote", "|a|\\2", 3, "invalid group reference 2"),
        ("map_remote", "/only-one", 9, "expected [/FILTER]/URL-REGEX/REPLACEMENT"),
        ("map_local", "|~x|a|b", 1, "unknown operator ~x"),
        ("modify_headers", "#~q & (#X#1", 7, "expected a filter"),
        ("modify_headers", "/X Y/1", 1, "bad header name"),
        ("modify_headers", "/~q/X/@/no/such/file", 6, "cannot read"),
        ("modify_body", "/(?P<a>x)/\\g<b>", 10, "unknown group name"),
        ("block_list", "/~d ads/99", 8, "STATUS must be a status code"),
        ("block_list", "/404", 4, "expected /FILTER/STATUS"),
    ],
)
def test_a_bad_pattern_names_the_option_and_the_position(
    option: str, pattern: str, position: int, words: str
) -> None:
    with pytest.raises(RuleError) as info:
        RuleSet.from_options(**{option: [pattern]})
    message = str(info.value)
    assert message.startswith(
        f"bad --{option.replace('_', '-')} '{pattern}' at position {position}:"
    )
    assert words in message
    assert info.value.position == position


def test_any_first_character_separates() -> None:
    a = RuleSet.from_options(map_remote=["|example\\.com|127.0.0.1:9"])
    b = RuleSet.from_options(map_remote=["#example\\.com#127.0.0.1:9"])
    for rules in (a, b):
        flow = flow_for()
        run_request(rules, flow)
        assert flow.request.url == "http://127.0.0.1:9/api/x?q=1"


def test_map_remote_rewrites_the_url_and_the_host_header_follows() -> None:
    rules = RuleSet.from_options(
        map_remote=["|~m GET|http://example\\.com/api/(.*)|https://localhost:8443/v2/\\1"]
    )
    flow = flow_for()
    _, labels = run_request(rules, flow)
    assert flow.request.url == "https://localhost:8443/v2/x?q=1"
    assert flow.request.header("host") == "localhost:8443"
    assert labels == [
        "--map-remote |~m GET|http://example\\.com/api/(.*)|https://localhost:8443/v2/\\1"
    ]
    other = flow_for("http://example.com/api/x")
    other.request.method = "POST"
    assert run_request(rules, other)[1] == []  # the filter says GET only


def test_block_list_answers_or_closes() -> None:
    rules = RuleSet.from_options(block_list=["/~d tracker/403", "|~u /ads/|444"])
    flow = flow_for("http://tracker.test/pixel")
    _, labels = run_request(rules, flow)
    assert flow.response is not None and flow.response.status_code == 403
    assert b"blocked by --block-list /~d tracker/403" in flow.response.body.data
    assert labels == ["--block-list /~d tracker/403"]
    closed = flow_for("http://example.com/ads/1")
    view, labels = run_request(rules, closed)
    assert view.killed and closed.response is None and labels == ["--block-list |~u /ads/|444"]
    untouched = flow_for()
    assert run_request(rules, untouched)[1] == [] and untouched.response is None


def test_modify_headers_per_direction_and_from_a_file(tmp_path: Path) -> None:
    token = tmp_path / "token"
    token.write_text("Bearer abc\n")
    rules = RuleSet.from_options(
        modify_headers=["/~q/Authorization/@" + str(token), "/~s/Server/", "/X-Both/1", "/X-Both/2"]
    )
    flow = flow_for()
    flow.request.headers.append((b"X-Both", b"old"))
    view, labels = run_request(rules, flow)
    req = view.request.headers
    assert req["authorization"] == "Bearer abc" and req.get_all("x-both") == ["1", "2"]
    assert "--modify-headers /~s/Server/" not in labels
    flow.response = FlowResponse(200, "OK", headers=[(b"Server", b"secret/1.0")])
    labels = rules.response(view)
    assert flow.response.header("server") is None
    assert "--modify-headers /~s/Server/" in labels
    assert "--modify-headers /~q/Authorization/@" + str(token) not in labels


def test_modify_body_decodes_and_re_encodes() -> None:
    rules = RuleSet.from_options(
        modify_body=['/~s/"admin": false/"admin": true', "/~q/tok=\\w+/tok=X"]
    )
    flow = flow_for(body=b"a=1&tok=secret")
    flow.request.headers.append((b"Content-Length", b"14"))
    view, labels = run_request(rules, flow)
    assert flow.request.body.data == b"a=1&tok=X" and flow.request.header("content-length") == "9"
    assert labels == ["--modify-body /~q/tok=\\w+/tok=X"]
    body = gzip.compress(b'{"admin": false}')
    headers = [(b"Content-Encoding", b"gzip"), (b"Content-Length", str(len(body)).encode())]
    flow.response = FlowResponse(200, "OK", headers=headers, body=FlowBody(body, len(body)))
    assert rules.response(view) == ['--modify-body /~s/"admin": false/"admin": true']
    assert gzip.decompress(flow.response.body.data) == b'{"admin": true}'
    assert flow.response.header("content-length") == str(len(flow.response.body.data))


def test_map_local_serves_files_and_never_escapes_its_directory(tmp_path: Path) -> None:
    root = tmp_path / "site"
    (root / "css").mkdir(parents=True)
    (root / "index.html").write_text("<h1>home</h1>")
    (root / "css" / "a.css").write_text("body{}")
    (tmp_path / "secret.txt").write_text("do not serve")
    os.symlink(tmp_path / "secret.txt", root / "link.txt")
    rules = RuleSet.from_options(map_local=[f"|example\\.com/static|{root}"])

    def get(url: str) -> FlowResponse:
        flow = flow_for(url)
        run_request(rules, flow)
        assert flow.response is not None
        return flow.response

    css = get("http://example.com/static/css/a.css?v=3")
    assert (css.status_code, css.body.data, css.header("content-type")) == (
        200,
        b"body{}",
        "text/css",
    )
    assert get("http://example.com/static/").body.data == b"<h1>home</h1>"
    for escape in ("/static/../secret.txt", "/static/%2e%2e/secret.txt", "/static/link.txt"):
        resp = get("http://example.com" + escape)
        assert resp.status_code == 404 and b"do not serve" not in resp.body.data
        assert b"outside" in resp.body.data
    missing = get("http://example.com/static/nope.js")
    assert missing.status_code == 404 and b"cannot read" in missing.body.data


def test_order_block_then_local_then_remote_then_modifications(tmp_path: Path) -> None:
    file = tmp_path / "mock.json"
    file.write_text('{"mock": true}')
    rules = RuleSet.from_options(
        block_list=["/~u /blocked/404"],
        map_local=[f"|/local/|{file}"],
        map_remote=["|example\\.com|backend.test"],
        modify_headers=["/~q/X-Seen/yes"],
    )
    blocked = flow_for("http://example.com/blocked/local/")
    assert run_request(rules, blocked)[1] == ["--block-list /~u /blocked/404"]
    local = flow_for("http://example.com/local/")
    assert run_request(rules, local)[1] == [f"--map-local |/local/|{file}"]
    assert local.request.host == "example.com" and local.request.header("x-seen") is None
    remote = flow_for("http://example.com/other")
    labels = run_request(rules, remote)[1]
    assert labels == ["--map-remote |example\\.com|backend.test", "--modify-headers /~q/X-Seen/yes"]
    assert (
        remote.request.header("host") == "backend.test" and remote.request.header("x-seen") == "yes"
    )


def test_har_keeps_the_originals_and_redaction_covers_them() -> None:
    from inspector.addons.host import AddonHost
    from inspector.changes import Changes
    from inspector.export.har import har_document

    rules = RuleSet.from_options(modify_headers=["/~q/Authorization/Bearer new-token-123"])
    flow = flow_for("http://example.com/x?token=old-secret-456")
    flow.request.headers.append((b"Authorization", b"Bearer old-token-789"))
    asyncio.run(Changes(rules, AddonHost([]), 1024).request(flow))
    entry = har_document([flow])["log"]["entries"][0]
    original = entry["_original"]
    assert original["modifiedBy"] == ["--modify-headers /~q/Authorization/Bearer new-token-123"]
    old = {"name": "Authorization", "value": "Bearer old-token-789"}
    assert old in original["request"]["headers"]
    assert {"name": "Authorization", "value": "Bearer new-token-123"} in entry["request"]["headers"]
    assert "response" not in original
    redacted = str(har_document([flow], redact=True))
    for secret in ("old-token-789", "new-token-123", "old-secret-456"):
        assert secret not in redacted


def test_only_rules_on_bodies_or_framing_hold_a_message() -> None:
    headers_only = RuleSet.from_options(
        modify_headers=["/~q/X-Req/1", "/~s & ~d api/X-Resp/1"], map_remote=["|a|b"]
    )
    flow = flow_for("http://api.test/stream")
    assert not headers_only.holds_request(flow)  # edited on the streamed head instead
    flow.response = FlowResponse(200, "OK", headers=[(b"Content-Type", b"text/event-stream")])
    assert not headers_only.holds_response(flow)
    body = RuleSet.from_options(modify_body=["/~s & ~d api/a/b"])
    assert body.holds_response(flow) and not body.holds_request(flow_for("http://cdn.test/"))
    assert RuleSet.from_options(modify_headers=["/~bq token/X/1"]).holds_request(flow_for())
    framing = RuleSet.from_options(modify_headers=["/~s/Transfer-Encoding/"])
    assert framing.holds_response(flow)
    assert RuleSet.from_options(block_list=["/~d api/404"]).holds_request(flow_for("http://api.x/"))


def test_head_rules_edit_a_streamed_message() -> None:
    rules = RuleSet.from_options(
        map_remote=["|//old\\.test/|//new.test/"], modify_headers=["/~q/X-A/1", "/~s/Server/"]
    )
    flow = flow_for("http://old.test/x")
    labels = rules.request_head(flow)
    assert labels == ["--map-remote |//old\\.test/|//new.test/", "--modify-headers /~q/X-A/1"]
    assert flow.request.url == "http://new.test/x" and flow.request.header("x-a") == "1"
    flow.response = FlowResponse(200, "OK", headers=[(b"Server", b"s"), (b"Content-Length", b"2")])
    assert rules.response_head(flow) == ["--modify-headers /~s/Server/"]
    assert flow.response.headers == [(b"Content-Length", b"2")]


def test_header_rules_keep_command_line_order_across_filters() -> None:
    rules = RuleSet.from_options(modify_headers=["/X/1", "/~d api/X/2", "/~q/X/3", "/~s/X/4"])
    api, other = flow_for("http://api.test/"), flow_for("http://cdn.test/")
    run_request(rules, api)
    run_request(rules, other)
    assert HTTPFlow(api).request.headers.get_all("x") == ["1", "2", "3"]
    assert HTTPFlow(other).request.headers.get_all("x") == ["1", "3"]
    api.response = FlowResponse(200, "OK", headers=[(b"X", b"upstream")])
    assert rules.response(HTTPFlow(api)) == [
        "--modify-headers /X/1", "--modify-headers /~d api/X/2", "--modify-headers /~s/X/4"
    ]  # fmt: skip
    assert api.response.headers == [(b"X", b"1"), (b"X", b"2"), (b"X", b"4")]


@pytest.mark.parametrize(
    ("expr", "on_requests", "on_responses"),
    [
        ("~q", True, False),
        ("~s", False, True),
        ("!~s", True, False),
        ("~s & ~d api", False, "~d api"),
        ("~q | ~d api", True, "~d api"),
        ("~s | ~d api", "~d api", True),
        ("!(~q & ~u x)", "!~u x", True),
        ("~d a & (~q | ~u x) & ~c 200", "~d a & ~c 200", "~d a & ~u x & ~c 200"),
        ("~d api", "~d api", "~d api"),
        ("~marked", "~marked", "~marked"),
    ],
)
def test_a_rules_filter_is_decided_per_side_once(
    expr: str, on_requests: bool | str, on_responses: bool | str
) -> None:
    flt = filters.parse(expr)
    for side, expected in ((REQUEST, on_requests), (RESPONSE, on_responses)):
        folded = for_side(flt, side)
        assert (folded if isinstance(folded, bool) else str(folded)) == expected


@pytest.mark.parametrize(
    "expr", ["~q", "~s", "!~s", "~s & ~d api", "~q | ~u x", "!(~s | ~d api)", "~d api & ~c 2xx"]
)
@pytest.mark.parametrize("url", ["http://api.test/x", "http://cdn.test/y"])
def test_the_folded_filter_answers_as_the_whole_one(expr: str, url: str) -> None:
    flt = filters.parse(expr)
    flow = flow_for(url)
    for side in (REQUEST, RESPONSE):
        if side == RESPONSE:
            flow.response = FlowResponse(200, "OK")
        folded = for_side(flt, side)
        assert (folded if isinstance(folded, bool) else folded(flow)) == flt(flow)


def test_header_plans_follow_each_flows_filters_and_keep_the_order() -> None:
    rules = RuleSet.from_options(
        modify_headers=["/~d api/X/1", "/~s & ~u b/X/2", "/X/3", "/~u a/Y/"]
    )
    for url, xs, y_kept in [
        ("http://api.test/a", ["1", "3"], False),
        ("http://cdn.test/b", ["2", "3"], True),
        ("http://api.test/a", ["1", "3"], False),  # the kept plan, the same answer
        ("http://api.test/b", ["1", "2", "3"], False),
        ("http://cdn.test/c", ["3"], True),
    ]:
        flow = flow_for(url)
        flow.response = FlowResponse(200, "OK", headers=[(b"X", b"up"), (b"Y", b"up")])
        rules.response_head(flow)
        assert [v.decode() for n, v in flow.response.headers if n == b"X"] == xs
        assert ((b"Y", b"up") in flow.response.headers) is y_kept


def test_a_map_remote_rule_that_does_not_match_changes_nothing() -> None:
    rules = RuleSet.from_options(map_remote=["|//other\\.test/(.*)|//new.test/\\1"])
    flow = flow_for("http://example.com/api/x?q=1")
    before = (flow.request.url, list(flow.request.headers))
    assert rules.request_head(flow) == []
    assert (flow.request.url, flow.request.headers) == before


def _outcome(request: FlowRequest, url: str, fast: bool) -> tuple:
    """What setting ``url`` leaves of ``request`` (a copy): through the rule's shortcut
    when it takes the URL, or through the addon API's setter; or the error."""
    r = FlowRequest(request.method, request.scheme, request.host, request.port, request.path,
                    headers=list(request.headers))  # fmt: skip
    origin = f"{r.scheme}://{r.authority}"
    path = _same_origin_path(r, origin, url) if fast else None
    try:
        if path is not None:
            r.path = path
        else:
            Request(r).url = url
    except ValueError as e:
        return ("error", str(e))
    return (r.scheme, r.host, r.port, r.path, r.headers)


ORIGINS = [
    FlowRequest("GET", "http", "example.com", 80, "/", headers=[(b"Host", b"example.com")]),
    FlowRequest("GET", "https", "api.test", 8443, "/a", headers=[(b"host", b"api.test:8443")]),
    FlowRequest("GET", "http", "Example.COM", 80, "/", headers=[(b"Host", b"Example.COM")]),
    FlowRequest("GET", "http", "::1", 8080, "/", headers=[(b"Host", b"[::1]:8080")]),
    FlowRequest("GET", "http", "10.0.0.1", 80, "/"),  # no Host header
]


@settings(max_examples=300, deadline=None)
@given(rest=st.text(alphabet="/?#&=%.~aZ9é \t\r\n\x00\x7f", max_size=12))
def test_a_path_only_rewrite_ends_as_the_url_setter_would(rest: str) -> None:
    for origin in ORIGINS:
        prefix = f"{origin.scheme}://{origin.authority}"
        assert origin.url == prefix + origin.path
        for url in (prefix + rest, prefix + "/" + rest):
            assert _outcome(origin, url, fast=True) == _outcome(origin, url, fast=False)


def test_map_remote_rewriting_the_path_alone_keeps_the_rest() -> None:
    rules = RuleSet.from_options(map_remote=["|/api/v1/|/api/v2/"])
    flow = flow_for("http://example.com:8080/api/v1/users?id=7")
    headers = list(flow.request.headers)
    assert rules.request_head(flow) == ["--map-remote |/api/v1/|/api/v2/"]
    assert flow.request.url == "http://example.com:8080/api/v2/users?id=7"
    assert flow.request.headers == headers
