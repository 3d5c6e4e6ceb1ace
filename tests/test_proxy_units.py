"""The proxy's pure helpers: target resolution, hop-by-hop fields, ClientHello parsing,
body recording and error mapping."""

from __future__ import annotations

import hashlib
import ssl

import pytest

from inspector.config import Mode
from inspector.failures import flow_error
from inspector.flow import Phase
from inspector.proxy import errors
from inspector.proxy.errors import ClientError, UpstreamError
from inspector.proxy.hop import is_upgrade, strip_hop_by_hop
from inspector.proxy.modes import Target, Tunnel, parse_connect_target, resolve
from inspector.proxy.recorder import BodyRecorder
from inspector.proxy.sniff import looks_like_http, looks_like_tls, parse_client_hello
from protocol.authority import split_authority
from protocol.errors import BadStatusLine

REGULAR = Mode("regular")


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("example.com", ("example.com", 80)),
        ("Example.COM:8080", ("example.com", 8080)),
        ("[::1]:443", ("::1", 443)),
        ("[fe80::1%eth0]", ("fe80::1%eth0", 80)),
        ("127.0.0.1:1", ("127.0.0.1", 1)),
    ],
)
def test_split_authority(text: str, expected: tuple[str, int]) -> None:
    assert split_authority(text, 80) == expected


@pytest.mark.parametrize(
    "text", ["", ":80", "host:0", "host:65536", "host:x", "[::1", "[::1]x", "u@host:1", "a b"]
)
def test_split_authority_rejects(text: str) -> None:
    with pytest.raises(ValueError):
        split_authority(text, 80)


def test_resolve_regular_absolute_form() -> None:
    t = resolve(REGULAR, b"http://Example.com:8080/a?b=c", None, "127.0.0.1:8080")
    assert t == Target("http", "example.com", 8080, "/a?b=c")
    assert resolve(REGULAR, b"https://h", None, "x").port == 443
    assert resolve(REGULAR, b"http://h", None, "x").path == "/"


def test_resolve_inside_a_tunnel_uses_the_tunnel() -> None:
    tunnel = Tunnel("https", "site.test", 8443)
    assert resolve(REGULAR, b"/x", tunnel, "l") == Target("https", "site.test", 8443, "/x")


@pytest.mark.parametrize(
    ("target", "says"),
    [
        (b"/x", "is not an absolute URL"),
        (b"ftp://h/", "unsupported URL"),
        (b"http://u:p@h/", "credentials in the URL"),
        (b"http://h/\xc3\xa9", "not ASCII"),
        (b"http://h:99999/", "bad port"),
    ],
)
def test_resolve_refuses(target: bytes, says: str) -> None:
    with pytest.raises(ClientError) as e:
        resolve(REGULAR, target, None, "127.0.0.1:8080")
    assert e.value.status == 400 and says in str(e.value)


def test_resolve_reverse_and_upstream() -> None:
    reverse = Mode.parse("reverse:https://backend.test:9443")
    assert resolve(reverse, b"/p?q", None, "l") == Target("https", "backend.test", 9443, "/p?q")
    assert resolve(reverse, b"http://other/p", None, "l").host == "backend.test"
    upstream = Mode.parse("upstream:http://corp-proxy:3128")
    t = resolve(upstream, b"http://h/", None, "l")
    assert (t.host, t.via) == ("h", upstream.target)


def test_connect_target_needs_a_port() -> None:
    assert parse_connect_target(b"h.test:443") == ("h.test", 443)
    assert parse_connect_target(b"[::1]:8443") == ("::1", 8443)
    for bad in (b"h.test", b"http://h/", b"h:0"):
        with pytest.raises(ClientError):
            parse_connect_target(bad)


def test_hop_by_hop_fields_are_dropped_in_order() -> None:
    fields = [
        (b"Host", b"h"),
        (b"Connection", b"keep-alive, X-Private"),
        (b"X-Private", b"1"),
        (b"Keep-Alive", b"timeout=5"),
        (b"Proxy-Authorization", b"Basic eA=="),
        (b"TE", b"gzip"),
        (b"Upgrade", b"websocket"),
        (b"x-Kept", b"yes"),
        (b"TE", b"trailers"),
        (b"Transfer-Encoding", b"chunked"),
    ]
    assert strip_hop_by_hop(fields) == [
        (b"Host", b"h"),
        (b"x-Kept", b"yes"),
        (b"TE", b"trailers"),  # relayed end to end, like the trailers themselves
        (b"Transfer-Encoding", b"chunked"),
    ]


def test_upgrade_survives_for_an_upgrade() -> None:
    fields = [(b"Connection", b"Upgrade"), (b"Upgrade", b"websocket"), (b"Host", b"h")]
    assert is_upgrade(fields)
    assert strip_hop_by_hop(fields, upgrade=True) == [
        (b"Upgrade", b"websocket"),
        (b"Host", b"h"),
        (b"Connection", b"Upgrade"),
    ]
    assert not is_upgrade([(b"Upgrade", b"websocket")])


def client_hello(server_name: str | None, alpn: list[str] | None) -> bytes:
    ctx = ssl.create_default_context()
    if alpn:
        ctx.set_alpn_protocols(alpn)
    incoming, outgoing = ssl.MemoryBIO(), ssl.MemoryBIO()
    obj = ctx.wrap_bio(incoming, outgoing, server_hostname=server_name)
    if server_name is None:
        ctx.check_hostname = False
    with pytest.raises(ssl.SSLWantReadError):
        obj.do_handshake()
    return outgoing.read()


def test_parse_a_real_client_hello() -> None:
    data = client_hello("api.example.test", ["http/1.1", "h2"])
    assert looks_like_tls(data) and not looks_like_http(data)
    hello = parse_client_hello(data)
    assert hello is not None
    assert hello.sni == "api.example.test" and hello.alpn == ["http/1.1", "h2"]


def test_client_hello_without_sni_and_garbage() -> None:
    ctx_less = client_hello(None, None)
    hello = parse_client_hello(ctx_less)
    assert hello is not None and hello.sni is None
    assert parse_client_hello(b"\x16\x03\x01\x00\x05\x01\x00") is None
    assert parse_client_hello(b"GET / HTTP/1.1\r\n") is None
    assert looks_like_http(b"OPTIONS * HTTP/1.1") and not looks_like_http(b"\x00\x01")


def test_body_recorder_keeps_the_head_and_hashes_everything() -> None:
    rec = BodyRecorder(10)
    for part in (b"0123", b"456789ab", b"cdef"):
        rec.add(part)
    body = rec.body()
    assert (body.data, body.size, body.truncated) == (b"0123456789", 16, True)
    assert body.sha256 == hashlib.sha256(b"0123456789abcdef").hexdigest()
    assert not rec.complete
    empty = BodyRecorder(10).body()
    assert (empty.data, empty.size, empty.truncated, empty.sha256) == (b"", 0, False, None)


def test_error_mapping() -> None:
    assert errors.upstream_status(TimeoutError()) == 504
    assert errors.upstream_status(ConnectionRefusedError(111, "Connection refused")) == 502
    err = UpstreamError(BadStatusLine("SSH-2.0"), Phase.STATUS_LINE, "h:1")
    assert errors.upstream_error_body(err) == (
        b"inspector: upstream h:1 failed during status line: BadStatusLine: SSH-2.0\n"
    )
    fe = flow_error(TimeoutError(), Phase.CONNECT)
    assert (fe.exc_class, fe.message, fe.phase) == ("TimeoutError", "timed out", "connect")
    assert errors.client_status(ValueError()) == 400
