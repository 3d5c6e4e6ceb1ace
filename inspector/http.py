"""The addon API: ``from inspector import http`` (mitmproxy's names, so scripts port by the import).

``HTTPFlow`` wraps one recorded ``inspector.flow.Flow``; ``flow.request`` and
``flow.response`` are ``Request``/``Response`` views that edit the flow in place, so
what a hook changes is what the proxy sends on and records. Text views over wire bytes:

- ``.headers``: ``inspector.multidict.Headers`` (case-insensitive, ordered, str to str).
- ``.content``: the body with its Content-Encoding undone; setting it encodes it again
  with the message's Content-Encoding (gzip, deflate, br, zstd; an encoding this
  proxy cannot produce is dropped from the headers and the body goes identity) and
  fixes the framing (Content-Length set, Transfer-Encoding removed). ``.raw_content``
  is the body as on the wire. Both are ``None`` for a body larger than the addon limit
  (``--body-limit``), which streams through untouched; setting them then is an error.
- ``.text``: ``.content`` decoded with the Content-Type charset (UTF-8 by default).
- Setting ``request.url``, ``.host``, ``.port`` or ``.scheme`` re-targets the request;
  the Host header follows the new authority.
"""

from __future__ import annotations

import hashlib
import time
import zlib
from collections.abc import Iterable, Mapping
from http.cookies import SimpleCookie
from urllib.parse import parse_qsl, urlencode, urlsplit

from inspector.content import ContentError, charset, decode, media_type, parse_encodings
from inspector.flow import Flow, FlowBody, FlowError, FlowRequest, FlowResponse
from inspector.multidict import Headers, MultiDictView, StrPairs, as_pairs
from inspector.websocket import WebSocketData
from protocol.status import describe

__all__ = ["Error", "HTTPFlow", "Headers", "Message", "MultiDictView", "Request", "Response"]

FORM = "application/x-www-form-urlencoded"
_NO_BODY_STATUS = (204, 304)


def _gzip(data: bytes) -> bytes:
    c = zlib.compressobj(6, zlib.DEFLATED, 16 + zlib.MAX_WBITS)
    return c.compress(data) + c.flush()


def _brotli(data: bytes) -> bytes:
    import brotli  # optional (the decoders extra): br bodies were decoded with it

    return brotli.compress(data)


def _zstd(data: bytes) -> bytes:
    import zstandard

    return zstandard.ZstdCompressor().compress(data)


ENCODERS = {"gzip": _gzip, "x-gzip": _gzip, "deflate": zlib.compress, "br": _brotli, "zstd": _zstd}


def encode(data: bytes, codings: list[str]) -> bytes:
    """Apply ``codings`` in order; ContentError when one cannot be produced here."""
    for coding in codings:
        encoder = ENCODERS.get(coding)
        if encoder is None:
            raise ContentError(f"cannot encode Content-Encoding {coding!r}")
        try:
            data = encoder(data)
        except ImportError as e:
            raise ContentError(f"cannot encode Content-Encoding {coding!r}: {e}") from None
    return data


class Message:
    """What requests and responses share: headers, bodies, version."""

    __slots__ = ("_m",)
    _m: FlowRequest | FlowResponse

    @property
    def headers(self) -> Headers:
        return Headers(self._m.headers)

    @headers.setter
    def headers(self, value: Headers | Mapping[str, str] | Iterable[tuple[str, str]]) -> None:
        fields = value.fields if isinstance(value, Headers) else Headers(list(_items(value))).fields
        self._m.headers[:] = list(fields)

    @property
    def http_version(self) -> str:
        return self._m.http_version

    @http_version.setter
    def http_version(self, value: str) -> None:
        self._m.http_version = value

    @property
    def trailers(self) -> Headers:
        return Headers(self._m.trailers)

    @property
    def raw_content(self) -> bytes | None:
        body = self._m.body
        return None if body.truncated else body.data

    @raw_content.setter
    def raw_content(self, data: bytes | None) -> None:
        if self._m.body.truncated:
            raise ValueError(
                f"this body ({self._m.body.size} bytes) is larger than the addon limit "
                "(--body-limit): it streams through untouched and cannot be replaced"
            )
        data = data or b""
        self._m.body = FlowBody(data, len(data), False, hashlib.sha256(data).hexdigest())
        self._fix_framing(data)

    def _fix_framing(self, data: bytes) -> None:
        headers = Headers(self._m.headers)
        te = "transfer-encoding" in headers
        if te:
            del headers["transfer-encoding"]
        if data or te or "content-length" in headers or isinstance(self._m, FlowResponse):
            headers["Content-Length"] = str(len(data))

    @property
    def content(self) -> bytes | None:
        raw = self.raw_content
        if raw is None or not raw:
            return raw
        try:
            return decode(raw, self._header("content-encoding"))[0]
        except ContentError as e:
            raise ValueError(f"cannot decode the body: {e}") from None

    @content.setter
    def content(self, data: bytes | str | None) -> None:
        if isinstance(data, str):
            self.text = data
            return
        data = data or b""
        codings = parse_encodings(self._header("content-encoding"))
        if codings:
            try:
                data = encode(data, codings)
            except ContentError:
                del self.headers["content-encoding"]  # sent identity, the header says so
        self.raw_content = data

    @property
    def text(self) -> str | None:
        content = self.content
        if content is None:
            return None
        return content.decode(self._charset(), "surrogateescape")

    @text.setter
    def text(self, text: str | None) -> None:
        text = text or ""
        try:
            data = text.encode(self._charset(), "surrogateescape")
        except UnicodeEncodeError:
            data = text.encode("utf-8", "surrogateescape")
            content_type = self._header("content-type")
            if content_type is not None:
                self.headers["Content-Type"] = f"{media_type(content_type)}; charset=utf-8"
        self.content = data

    def get_text(self, strict: bool = True) -> str | None:
        return self.text

    def set_text(self, text: str | None) -> None:
        self.text = text

    def get_content(self, strict: bool = True) -> bytes | None:
        return self.content

    def set_content(self, data: bytes | None) -> None:
        self.content = data

    def _charset(self) -> str:
        name = charset(self._header("content-type")) or "utf-8"
        try:
            "".encode(name)
        except LookupError:
            return "utf-8"
        return name

    def _header(self, name: str) -> str | None:
        return self._m.header(name)

    @property
    def timestamp_start(self) -> float:
        return self._m.timestamp

    def __eq__(self, other: object) -> bool:
        return type(other) is type(self) and other._m is self._m  # type: ignore[attr-defined]

    def __hash__(self) -> int:
        return id(self._m)


def _items(value: Mapping[str, str] | Iterable[tuple[str, str]]) -> Iterable[tuple[str, str]]:
    return value.items() if isinstance(value, Mapping) else value


class Request(Message):
    """``flow.request``: a view over an ``inspector.flow.FlowRequest``."""

    __slots__ = ()
    _m: FlowRequest

    def __init__(self, message: FlowRequest) -> None:
        self._m = message

    @classmethod
    def make(
        cls,
        method: str,
        url: str,
        content: bytes | str = b"",
        headers: Mapping[str, str] | Iterable[tuple[str, str]] = (),
    ) -> Request:
        req = cls(FlowRequest(method, "http", "", 80, "/", timestamp=time.time()))
        req.headers = headers
        req.url = url
        req.content = content
        return req

    @property
    def method(self) -> str:
        return self._m.method

    @method.setter
    def method(self, value: str) -> None:
        self._m.method = value.upper()

    @property
    def scheme(self) -> str:
        return self._m.scheme

    @scheme.setter
    def scheme(self, value: str) -> None:
        value = value.lower()
        if value not in ("http", "https"):
            raise ValueError(f"bad scheme {value!r}: http or https")
        self._retarget(value, self._m.host, self._m.port)

    @property
    def host(self) -> str:
        return self._m.host

    @host.setter
    def host(self, value: str) -> None:
        self._retarget(self._m.scheme, value.strip("[]"), self._m.port)

    @property
    def port(self) -> int:
        return self._m.port

    @port.setter
    def port(self, value: int) -> None:
        if not 0 < int(value) < 65536:
            raise ValueError(f"bad port {value!r}: 1-65535")
        self._retarget(self._m.scheme, self._m.host, int(value))

    def _retarget(self, scheme: str, host: str, port: int) -> None:
        if not host or any(ch in host for ch in "/?#@ \r\n"):
            raise ValueError(f"bad host {host!r}")
        m = self._m
        before = m.authority
        m.scheme, m.host, m.port = scheme, host.lower(), port
        if m.authority != before or "host" not in self.headers:
            self.headers["Host"] = m.authority  # the Host header follows the new authority

    @property
    def authority(self) -> str:
        return self._m.authority

    @property
    def path(self) -> str:
        return self._m.path

    @path.setter
    def path(self, value: str) -> None:
        if any(ch in value for ch in " \r\n\x00"):
            raise ValueError(f"bad path {value!r}: no spaces or control characters")
        self._m.path = value if value.startswith("/") or value == "*" else "/" + value

    @property
    def url(self) -> str:
        return self._m.url

    @url.setter
    def url(self, value: str) -> None:
        parts = urlsplit(value)
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise ValueError(f"bad URL {value!r}: expected http(s)://HOST[:PORT]/PATH")
        try:
            port = parts.port or (443 if parts.scheme == "https" else 80)
        except ValueError:
            raise ValueError(f"bad port in URL {value!r}") from None
        path = parts.path or "/"
        self.path = f"{path}?{parts.query}" if parts.query else path
        self._retarget(parts.scheme, parts.hostname, port)

    @property
    def host_header(self) -> str | None:
        return self._m.header("host")

    @property
    def pretty_host(self) -> str:
        """The host the client asked for (Host header without the port), else ``host``."""
        value = self._m.header("host")
        if not value:
            return self._m.host
        host = value.rsplit("]", 1)[0].lstrip("[") if value.startswith("[") else value
        return host.rsplit(":", 1)[0] if host.count(":") == 1 else host

    @property
    def pretty_url(self) -> str:
        value = self._m.header("host")
        if not value or self._m.method == "CONNECT":
            return self._m.url
        return f"{self._m.scheme}://{value}{self._m.path}"

    # -- query string, form body, cookies: ordered multi-mappings --

    @property
    def query(self) -> MultiDictView:
        return MultiDictView(self._get_query, self._set_query)

    @query.setter
    def query(self, value: Mapping[str, str] | Iterable[tuple[str, str]]) -> None:
        self._set_query(as_pairs(value))

    def _get_query(self) -> StrPairs:
        _, _, query = self._m.path.partition("?")
        return parse_qsl(query, keep_blank_values=True)

    def _set_query(self, pairs: StrPairs) -> None:
        path = self._m.path.partition("?")[0]
        self._m.path = f"{path}?{urlencode(pairs)}" if pairs else path

    @property
    def urlencoded_form(self) -> MultiDictView:
        return MultiDictView(self._get_form, self._set_form)

    @urlencoded_form.setter
    def urlencoded_form(self, value: Mapping[str, str] | Iterable[tuple[str, str]]) -> None:
        self._set_form(as_pairs(value))

    def _get_form(self) -> StrPairs:
        if media_type(self._header("content-type")) != FORM:
            return []
        content = self.content
        return parse_qsl((content or b"").decode("latin-1"), keep_blank_values=True)

    def _set_form(self, pairs: StrPairs) -> None:
        self.headers["Content-Type"] = FORM
        self.content = urlencode(pairs).encode("ascii")

    @property
    def cookies(self) -> MultiDictView:
        return MultiDictView(self._get_cookies, self._set_cookies)

    @cookies.setter
    def cookies(self, value: Mapping[str, str] | Iterable[tuple[str, str]]) -> None:
        self._set_cookies(as_pairs(value))

    def _get_cookies(self) -> StrPairs:
        pairs: StrPairs = []
        for header in self.headers.get_all("cookie"):
            for part in header.split(";"):
                name, sep, value = part.strip().partition("=")
                if sep and name:
                    pairs.append((name, value))
        return pairs

    def _set_cookies(self, pairs: StrPairs) -> None:
        if pairs:
            self.headers["Cookie"] = "; ".join(f"{n}={v}" for n, v in pairs)
        else:
            self.headers.pop("cookie", None)

    def __repr__(self) -> str:
        return f"Request({self.method} {self.url})"


class Response(Message):
    """``flow.response``: a view over an ``inspector.flow.FlowResponse``."""

    __slots__ = ()
    _m: FlowResponse

    def __init__(self, message: FlowResponse) -> None:
        self._m = message

    @classmethod
    def make(
        cls,
        status_code: int = 200,
        content: bytes | str = b"",
        headers: Headers | Mapping[str, str] | Iterable[tuple[str, str]] | None = None,
    ) -> Response:
        """A new response (the reason phrase is the standard one); framing headers set."""
        resp = cls(FlowResponse(int(status_code), describe(int(status_code)).phrase))
        resp._m.timestamp = time.time()
        if headers is not None:
            resp.headers = headers
        if isinstance(content, str) and "content-type" not in resp.headers:
            resp.headers["Content-Type"] = "text/plain; charset=utf-8"
        resp.content = content
        return resp

    @property
    def status_code(self) -> int:
        return self._m.status_code

    @status_code.setter
    def status_code(self, value: int) -> None:
        if not 100 <= int(value) <= 999:
            raise ValueError(f"bad status code {value!r}: 100-999")
        self._m.status_code = int(value)

    @property
    def reason(self) -> str:
        return self._m.reason

    @reason.setter
    def reason(self, value: str) -> None:
        if any(ch in value for ch in "\r\n\x00"):
            raise ValueError("bad reason phrase: CR, LF and NUL are not allowed")
        self._m.reason = value

    def _fix_framing(self, data: bytes) -> None:
        if self._m.status_code in _NO_BODY_STATUS or self._m.status_code < 200:
            return
        super()._fix_framing(data)

    @property
    def cookies(self) -> MultiDictView:
        """``name -> value`` of the Set-Cookie headers (read-only: edit the headers)."""
        return MultiDictView(self._get_cookies, _read_only)

    def _get_cookies(self) -> StrPairs:
        pairs: StrPairs = []
        for header in self.headers.get_all("set-cookie"):
            jar: SimpleCookie = SimpleCookie()
            try:
                jar.load(header)
            except Exception:  # a malformed cookie is skipped, as browsers do
                continue
            pairs.extend((name, morsel.value) for name, morsel in jar.items())
        return pairs

    def __repr__(self) -> str:
        return f"Response({self.status_code} {self.reason})"


def _read_only(pairs: StrPairs) -> None:
    raise TypeError("response cookies are read-only here: edit headers['Set-Cookie']")


class Error:
    """``flow.error``: why the exchange failed (``.exc_type``, ``.message``, ``.phase``)."""

    __slots__ = ("_e",)

    def __init__(self, error: FlowError) -> None:
        self._e = error

    @property
    def exc_type(self) -> str:
        return self._e.exc_class

    @property
    def message(self) -> str:
        return self._e.message

    msg = message  # mitmproxy's name

    @property
    def phase(self) -> str:
        return str(self._e.phase)

    @property
    def timestamp(self) -> float:
        return self._e.timestamp

    def __repr__(self) -> str:
        return f"Error({self.exc_type}: {self.message})"


class HTTPFlow:
    """One exchange as addons see it; views are made once per flow, so ``is`` holds."""

    __slots__ = ("_killed", "_request", "_response", "flow", "websocket")

    def __init__(self, flow: Flow) -> None:
        self.flow = flow  # the recorded flow (inspector.flow.Flow)
        self._request = Request(flow.request)
        self._response: Response | None = None
        self._killed = False
        # In a websocket_message hook, the connection's messages (inspector.websocket), as
        # mitmproxy has them (``flow.websocket.messages[-1]`` is the one at hand); else None.
        self.websocket: WebSocketData | None = None

    @property
    def id(self) -> str:
        return self.flow.id

    @property
    def request(self) -> Request:
        if self._request._m is not self.flow.request:
            self._request = Request(self.flow.request)
        return self._request

    @property
    def response(self) -> Response | None:
        message = self.flow.response
        if message is None:
            return None
        if self._response is None or self._response._m is not message:
            self._response = Response(message)
        return self._response

    @response.setter
    def response(self, value: Response | None) -> None:
        if value is not None and not isinstance(value, Response):
            raise TypeError("flow.response takes an http.Response (see http.Response.make)")
        self.flow.response = None if value is None else value._m
        self._response = value

    @property
    def error(self) -> Error | None:
        return None if self.flow.error is None else Error(self.flow.error)

    @property
    def marked(self) -> bool:
        return self.flow.marked

    @marked.setter
    def marked(self, value: bool) -> None:
        self.flow.marked = bool(value)

    @property
    def comment(self) -> str:
        return self.flow.comment

    @comment.setter
    def comment(self, value: str) -> None:
        self.flow.comment = str(value)

    @property
    def live(self) -> bool:
        return not self.flow.finished

    @property
    def timestamp_start(self) -> float:
        return self.flow.timings.start

    @property
    def killed(self) -> bool:
        return self._killed

    def kill(self) -> None:
        """Close the client's connection without a response (in a ``request`` hook)."""
        self._killed = True

    def __repr__(self) -> str:
        return f"<HTTPFlow {self.flow.request.method} {self.flow.request.url}>"
