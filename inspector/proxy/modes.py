"""Which requests the proxy takes and where they go: proxy authentication, and target
resolution for the regular (explicit proxy), reverse and upstream-proxy modes."""

from __future__ import annotations

import base64
import binascii
import hmac
from dataclasses import dataclass
from urllib.parse import urlsplit

from inspector.config import Endpoint, Mode
from inspector.proxy.errors import ClientError
from protocol.authority import DEFAULT_PORTS, format_authority, split_authority
from protocol.headers import Headers

NOT_A_PROXY_REQUEST = (
    "inspector: this is an HTTP proxy, and the request target {target!r} is not an absolute URL.\n"
    "Send requests through the proxy instead of to it, e.g.\n"
    "  curl -x http://{listen} http://example.com/\n"
    "  https_proxy=http://{listen} curl https://example.com/   (add --cacert CONFDIR/ca.pem)\n"
    "or start it as a reverse proxy: inspector --mode reverse:http://HOST:PORT\n"
)


@dataclass(frozen=True, slots=True)
class Tunnel:
    """The origin a client's CONNECT tunnel leads to (requests inside are origin-form)."""

    scheme: str
    host: str
    port: int


@dataclass(frozen=True, slots=True)
class Target:
    scheme: str
    host: str
    port: int
    path: str  # origin-form, sent upstream
    via: Endpoint | None = None  # an upstream proxy to chain through

    @property
    def authority(self) -> str:
        return format_authority(self.scheme, self.host, self.port)


def parse_connect_target(target: bytes) -> tuple[str, int]:
    """The ``host:port`` of a CONNECT request (the port is required), or ClientError 400."""
    try:
        host, port = split_authority(target.decode("ascii"), 0)
        if port == 0:
            raise ValueError("a port is required, e.g. CONNECT example.com:443")
        return host, port
    except (ValueError, UnicodeDecodeError) as e:
        raise ClientError(400, f"inspector: bad CONNECT target {target!r}: {e}\n") from None


def _absolute(target: str) -> tuple[str, str, int, str]:
    try:
        parts = urlsplit(target)
    except ValueError as e:  # e.g. "Invalid IPv6 URL" for http://[::1/
        raise ClientError(400, f"inspector: bad URL {target!r}: {e}\n") from None
    scheme = parts.scheme.lower()
    if scheme not in DEFAULT_PORTS or not parts.netloc:
        raise ClientError(400, f"inspector: unsupported URL {target!r}: use http:// or https://\n")
    if "@" in parts.netloc:
        raise ClientError(400, f"inspector: credentials in the URL {target!r} are not accepted\n")
    try:
        host, port = split_authority(parts.netloc, DEFAULT_PORTS[scheme])
    except ValueError as e:
        raise ClientError(400, f"inspector: bad URL {target!r}: {e}\n") from None
    path = parts.path or "/"
    if parts.query:
        path = f"{path}?{parts.query}"
    return scheme, host, port, path


def resolve(mode: Mode, raw_target: bytes, tunnel: Tunnel | None, listen: str) -> Target:
    """The upstream target of a request, or ClientError when the request cannot be routed."""
    if not raw_target.isascii():
        raise ClientError(400, f"inspector: the request target {raw_target!r} is not ASCII\n")
    target = raw_target.decode("ascii")
    absolute = not target.startswith("/") and "://" in target
    if mode.kind == "reverse":
        assert mode.target is not None
        path = _absolute(target)[3] if absolute else target
        return Target(mode.target.scheme, mode.target.host, mode.target.port, path)
    via = mode.target if mode.kind == "upstream" else None
    if tunnel is not None and not absolute:
        return Target(tunnel.scheme, tunnel.host, tunnel.port, target, via)
    if not absolute:
        raise ClientError(400, NOT_A_PROXY_REQUEST.format(target=target, listen=listen))
    scheme, host, port, path = _absolute(target)
    if tunnel is not None:
        scheme = tunnel.scheme  # the tunnel's TLS decides, not what the client wrote
    return Target(scheme, host, port, path, via)


class ProxyAuth:
    """Basic proxy authentication (``--proxy-auth USER:PASS``): 407 without the credentials."""

    __slots__ = ("_expected",)

    def __init__(self, user: str, password: str) -> None:
        self._expected = f"{user}:{password}".encode()

    def check(self, headers: Headers) -> None:
        """Return if ``Proxy-Authorization`` carries the credentials, else ClientError 407."""
        given = headers.get(b"Proxy-Authorization")
        if given is not None and _basic_matches(given, self._expected):
            return
        why = (
            "the credentials given do not match --proxy-auth"
            if given is not None
            else "pass the --proxy-auth credentials (e.g. curl --proxy-user USER:PASS)"
        )
        raise ClientError(
            407,
            f"inspector: proxy authentication required: {why}\n",
            headers=((b"Proxy-Authenticate", b'Basic realm="inspector"'),),
        )


def _basic_matches(given: bytes, expected: bytes) -> bool:
    scheme, _, token = given.strip().partition(b" ")
    if scheme.lower() != b"basic":
        return False
    try:
        decoded = base64.b64decode(token.strip(), validate=True)
    except (binascii.Error, ValueError):
        return False
    return hmac.compare_digest(decoded, expected)
