"""A curl command line that sends a recorded request again, byte for byte.

Every header goes out with ``-H`` in its recorded order and case; curl's own default
headers (``User-Agent``, ``Accept``, ``Content-Type`` for a body, ``Expect``) are
switched off when the recording did not have them, so the request is the same.
Arguments are quoted for POSIX ``sh`` (dash included, not only bash): ``'...'`` for
printable text, ``"$(printf '\\ooo...')"`` (octal escapes) for an argument holding other
bytes. A request body that is not plain text (tabs and newlines are) is piped in with
``printf '...' | curl --data-binary @-``, NUL bytes included.
"""

from __future__ import annotations

import shlex

from inspector.export.redact import redact_flow
from inspector.flow import Flow, FlowRequest

INLINE_BODY_LIMIT = 4096  # bodies larger than this go to a file when the caller gives one
# Headers curl computes itself from the URL and the body.
_FRAMING = (b"content-length", b"transfer-encoding")
# Headers curl adds on its own: (name as curl sends it, when it adds it).
_CURL_DEFAULTS = ((b"User-Agent", "always"), (b"Accept", "always"), (b"Content-Type", "body"))
_PRINTABLE = frozenset(range(0x20, 0x7F))
_TEXT = _PRINTABLE | {0x09, 0x0A}  # what a body may hold to be written as it is


def quote_arg(arg: bytes | str) -> str:
    """Quote one argument for POSIX sh, whatever bytes it holds (except NUL, and a final
    newline, which command substitution drops: neither occurs in a header or a URL)."""
    data = arg.encode("utf-8") if isinstance(arg, str) else arg
    if all(b in _PRINTABLE for b in data):
        return shlex.quote(data.decode("ascii"))
    return f'"$(printf {printf_format(data)})"'


def printf_format(data: bytes) -> str:
    """A quoted ``printf`` format that prints exactly ``data``: octal escapes (POSIX
    printf's, three digits so that a following digit is never read into one) for
    anything but printable ASCII (and a leading ``-``); ``%`` and ``\\`` doubled."""
    out = []
    for i, b in enumerate(data):
        if b == 0x2D and i == 0:  # a leading "-" would read as an option to some printfs
            out.append("\\055")
        elif b == 0x25:  # %
            out.append("%%")
        elif b == 0x5C:  # \
            out.append("\\\\")
        elif b in _PRINTABLE:
            out.append(chr(b))
        else:
            out.append(f"\\{b:03o}")
    return shlex.quote("".join(out))


def needs_body_file(body: bytes) -> bool:
    """True when a body is better sent from a file than inline: large or not text."""
    if len(body) > INLINE_BODY_LIMIT:
        return True
    return any(b not in _TEXT and b != 0x0D for b in body)


def curl_command(flow: Flow, redact: bool = False, *, body_file: str | None = None) -> str:
    """The curl command for ``flow``'s request.

    ``body_file``: a path the caller writes the request body to; the command then reads
    it with ``--data-binary @FILE``. Without one, the body is inline: text as it is,
    anything else (and a body curl would read as ``@file``) piped in through ``printf``.
    """
    if redact:
        flow = redact_flow(flow)
    req = flow.request
    body = req.body.data
    names = {name.lower() for name, _ in req.headers}
    args: list[str] = ["curl", _version_option(req)]
    args += _method_args(req.method, bool(body))
    if "/." in req.path.split("?")[0]:
        args.append("--path-as-is")
    if any(c in req.path for c in "[]{}"):
        args.append("--globoff")
    for name, value in req.headers:
        if name.lower() not in _FRAMING:
            args += ["-H", quote_arg(_header_arg(name, value))]
    for name, when in _CURL_DEFAULTS:
        if name.lower() not in names and (when == "always" or body):
            args += ["-H", quote_arg(name + b":")]
    if body and b"expect" not in names:
        args += ["-H", quote_arg(b"Expect:")]
    prefix = ""
    if body:
        if body_file is not None:
            args += ["--data-binary", quote_arg("@" + body_file)]
        elif body[:1] != b"@" and all(b in _TEXT for b in body):
            args += ["--data-binary", shlex.quote(body.decode("ascii"))]
        else:  # curl reads "@name" as a file name, and no argument carries NUL: pipe it in
            prefix = f"printf {printf_format(body)} | "
            args += ["--data-binary", "@-"]
    args.append(quote_arg(req.url))
    return prefix + " ".join(args)


def _version_option(req: FlowRequest) -> str:
    """The protocol the request was made with: HTTP/2 over TLS (ALPN) or prior knowledge."""
    if req.http_version != "HTTP/2":
        return "--http1.1"
    return "--http2" if req.scheme == "https" else "--http2-prior-knowledge"


def _method_args(method: str, has_body: bool) -> list[str]:
    # curl sends GET without a body and POST with one; HEAD needs --head to not wait for a body.
    if method == "HEAD" and not has_body:
        return ["--head"]
    if (method == "GET" and not has_body) or (method == "POST" and has_body):
        return []
    return ["-X", quote_arg(method)]


def _header_arg(name: bytes, value: bytes) -> bytes:
    # "Name:" would remove the header in curl; "Name;" sends it with an empty value.
    return name + b";" if not value else name + b": " + value
