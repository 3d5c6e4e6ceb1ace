"""The addon API views (inspector.http, inspector.multidict) over recorded flows."""

from __future__ import annotations

import gzip
import zlib

import pytest

from inspector.flow import Flow, FlowBody, FlowRequest, FlowResponse
from inspector.http import HTTPFlow, Request, Response
from inspector.multidict import Headers


def make_flow(path: str = "/a?x=1&y=2&x=3", headers=None, body: bytes = b"") -> Flow:
    pairs = headers if headers is not None else [(b"Host", b"example.com"), (b"Accept", b"*/*")]
    return Flow(
        FlowRequest(
            "GET", "http", "example.com", 80, path, headers=pairs, body=FlowBody(body, len(body))
        )
    )


def test_headers_are_case_insensitive_ordered_and_edit_the_flow() -> None:
    flow = make_flow(headers=[(b"Host", b"h"), (b"Set-Cookie", b"a=1"), (b"set-cookie", b"b=2")])
    h = HTTPFlow(flow).request.headers
    assert h["SET-COOKIE"] == "a=1, b=2"
    assert h.get_all("Set-Cookie") == ["a=1", "b=2"]
    assert "host" in h and "HOST" in h and "nope" not in h
    assert list(h) == ["Host", "Set-Cookie"] and len(h) == 2
    h["X-New"] = "1"
    h.add("set-cookie", "c=3")
    h["set-cookie"] = "only"  # replaces all, at the first one's place
    del h["host"]
    assert flow.request.headers == [(b"Set-Cookie", b"only"), (b"X-New", b"1")]
    with pytest.raises(KeyError):
        del h["host"]
    assert h.get("missing") is None and h.get("x-new") == "1"


def test_headers_refuse_smuggling_and_bad_names() -> None:
    h = HTTPFlow(make_flow()).request.headers
    with pytest.raises(ValueError, match="CR, LF"):
        h["X"] = "a\r\nEvil: 1"
    with pytest.raises(ValueError, match="bad header name"):
        h["Bad Name"] = "1"
    assert Headers(content_type="text/plain").fields == [(b"content-type", b"text/plain")]
    assert Headers([("A", "1"), ("a", "2")]).get_all("A") == ["1", "2"]


def test_query_is_a_settable_ordered_multidict() -> None:
    flow = make_flow()
    req = HTTPFlow(flow).request
    assert req.query.get_all("x") == ["1", "3"] and req.query["x"] == "1"
    req.query["y"] = "changed"
    req.query.add("z", "a b")
    assert flow.request.path == "/a?x=1&y=changed&x=3&z=a+b"
    del req.query["x"]
    assert flow.request.path == "/a?y=changed&z=a+b"
    req.query = {}
    assert flow.request.path == "/a"


def test_setting_url_or_host_retargets_and_the_host_header_follows() -> None:
    flow = make_flow()
    req = HTTPFlow(flow).request
    req.url = "https://[::1]:8443/new?q=1"
    assert (flow.request.scheme, flow.request.host, flow.request.port) == ("https", "::1", 8443)
    assert flow.request.path == "/new?q=1" and req.headers["Host"] == "[::1]:8443"
    req.host = "other.test"
    assert req.headers["host"] == "other.test:8443" and req.url == "https://other.test:8443/new?q=1"
    req.port = 443
    assert req.headers["host"] == "other.test"
    with pytest.raises(ValueError, match="bad URL"):
        req.url = "ftp://x/"


def test_pretty_host_and_url_come_from_the_host_header() -> None:
    flow = make_flow(headers=[(b"Host", b"front.test:8080")])
    flow.request.host = "10.0.0.1"
    req = Request(flow.request)
    assert req.pretty_host == "front.test"
    assert req.pretty_url == "http://front.test:8080/a?x=1&y=2&x=3"


def test_form_and_cookies() -> None:
    body = b"user=ann&role=x&role=y"
    flow = make_flow(
        headers=[
            (b"Host", b"h"),
            (b"Content-Type", b"application/x-www-form-urlencoded"),
            (b"Content-Length", b"22"),
            (b"Cookie", b"sid=1; theme=dark"),
        ],
        body=body,
    )
    req = HTTPFlow(flow).request
    assert req.urlencoded_form.get_all("role") == ["x", "y"]
    req.urlencoded_form["user"] = "bob smith"
    assert flow.request.body.data == b"user=bob+smith&role=x&role=y"
    assert req.headers["content-length"] == str(len(flow.request.body.data))
    assert dict(req.cookies) == {"sid": "1", "theme": "dark"}
    req.cookies["sid"] = "2"
    assert req.headers["cookie"] == "sid=2; theme=dark"


def test_content_is_decoded_and_re_encoded_with_the_same_coding() -> None:
    for coding, compress, decompress in (
        ("gzip", gzip.compress, gzip.decompress),
        ("deflate", zlib.compress, zlib.decompress),
    ):
        resp = Response(
            FlowResponse(
                200,
                "OK",
                headers=[
                    (b"Content-Encoding", coding.encode()),
                    (b"Transfer-Encoding", b"chunked"),
                ],
                body=FlowBody(compress(b"hello world"), 0),
            )
        )
        assert resp.content == b"hello world" and resp.text == "hello world"
        resp.text = "bye"
        raw = resp.raw_content
        assert raw is not None and decompress(raw) == b"bye"
        assert resp.headers["content-encoding"] == coding
        assert "transfer-encoding" not in resp.headers
        assert resp.headers["content-length"] == str(len(raw))


def test_an_encoding_that_cannot_be_produced_is_dropped() -> None:
    resp = Response(FlowResponse(200, headers=[(b"Content-Encoding", b"compress")]))
    resp.content = b"plain"
    assert resp.raw_content == b"plain" and "content-encoding" not in resp.headers


def test_text_uses_the_declared_charset() -> None:
    resp = Response.make(200, b"", {"Content-Type": "text/plain; charset=latin-1"})
    resp.text = "caf\u00e9"
    assert resp.raw_content == b"caf\xe9"
    resp.text = "\u20ac"  # not in latin-1: sent as UTF-8 and the header says so
    assert resp.raw_content == "\u20ac".encode() and resp.headers["content-type"].endswith("utf-8")


def test_a_body_over_the_limit_is_none_and_cannot_be_set() -> None:
    flow = make_flow()
    flow.request.body = FlowBody(b"x" * 10, 100, True)
    req = HTTPFlow(flow).request
    assert req.content is None and req.text is None
    with pytest.raises(ValueError, match="addon limit"):
        req.content = b"new"


def test_response_make_and_flow_response_assignment() -> None:
    flow = make_flow()
    view = HTTPFlow(flow)
    assert view.response is None
    view.response = Response.make(404, "gone", {"X-Mock": "1"})
    resp = flow.response
    assert resp is not None and (resp.status_code, resp.reason) == (404, "Not Found")
    assert resp.body.data == b"gone" and resp.header("content-length") == "4"
    assert resp.header("content-type") == "text/plain; charset=utf-8"
    assert view.response is view.response and view.response.headers["x-mock"] == "1"
    assert Response.make(204).headers.get("content-length") is None
    with pytest.raises(TypeError):
        view.response = "nope"  # type: ignore[assignment]


def test_flow_fields() -> None:
    flow = make_flow()
    view = HTTPFlow(flow)
    view.marked = True
    view.comment = "seen"
    assert (flow.marked, flow.comment, view.id) == (True, "seen", flow.id)
    assert view.error is None and not view.killed
    view.kill()
    assert view.killed
