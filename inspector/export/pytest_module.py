"""A runnable pytest module that replays recorded exchanges: capture once, keep as a test.

Each exchange becomes one parametrised test that sends the recorded request with the
``protocol`` client (headers prepared as ``inspector replay`` prepares them) and asserts
the recorded status and body. ``INSPECTOR_BASE_URL`` points every request at another
server; ``INSPECTOR_CA_FILE`` adds a CA bundle for https.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from dataclasses import dataclass

from inspector.config import Endpoint
from inspector.export.redact import redact_flow
from inspector.flow import Flow
from inspector.replay.http2 import trailers_asked
from inspector.replay.request import ReplayError, authority, check_replayable, outgoing_headers
from protocol.headers import HeaderPairs


@dataclass(slots=True)
class ModuleTally:
    """How many tests a module holds, and how many flows were left out of it."""

    exported: int = 0
    left_out: int = 0


_HEADER = '''\
"""Regression tests captured by http-inspector.

Each test sends one recorded request again with the `protocol` client (over HTTP/2 for
an exchange recorded over HTTP/2) and checks the status and the body against the recording.

    python -m pytest THIS_FILE
    INSPECTOR_BASE_URL=http://127.0.0.1:8000 python -m pytest THIS_FILE  # another server
    INSPECTOR_CA_FILE=ca.pem python -m pytest THIS_FILE  # extra CA bundle for https
"""

import asyncio
import hashlib
import os
import ssl
from urllib.parse import urlsplit

import pytest

import protocol
from protocol.headers import Headers
from protocol.http2 import AsyncHTTP2Connection
from protocol.http2_fields import to_http2

BASE_URL = os.environ.get("INSPECTOR_BASE_URL", "")  # empty: each exchange's recorded server
TIMEOUT = float(os.environ.get("INSPECTOR_TIMEOUT", "30"))
'''

_FOOTER = '''

def _target(exchange):
    """(scheme, host, port, Host header or None) the request goes to."""
    if not BASE_URL:
        return exchange["scheme"], exchange["host"], exchange["port"], None
    parts = urlsplit(BASE_URL if "://" in BASE_URL else "http://" + BASE_URL)
    scheme = parts.scheme
    port = parts.port or (443 if scheme == "https" else 80)
    return scheme, parts.hostname, port, parts.netloc.rpartition("@")[2]


def _tls_context():
    return ssl.create_default_context(cafile=os.environ.get("INSPECTOR_CA_FILE") or None)


def _send(exchange):
    if exchange["http2"]:
        return asyncio.run(_send_http2(exchange, *_target(exchange)))
    scheme, host, port, authority = _target(exchange)
    if scheme == "https":
        conn = protocol.HTTPSConnection(host, port, timeout=TIMEOUT, context=_tls_context())
    else:
        conn = protocol.HTTPConnection(host, port, timeout=TIMEOUT)
    try:
        conn.putrequest(
            exchange["method"], exchange["path"], skip_host=True, skip_accept_encoding=True
        )
        for name, value in exchange["headers"]:
            if authority is not None and name.lower() == b"host":
                value = authority.encode("ascii")
            conn.putheader(name, value)
        conn.endheaders(exchange["body"] or None)
        response = conn.getresponse()
        return response.status, response.read()
    finally:
        conn.close()


async def _send_http2(exchange, scheme, host, port, authority):
    """TLS with ALPN h2 for https, prior knowledge for http."""
    context = None
    if scheme == "https":
        context = _tls_context()
        context.set_alpn_protocols(["h2"])
    conn = AsyncHTTP2Connection(
        host, port, ssl=context, server_hostname=host,
        connect_timeout=TIMEOUT, read_timeout=TIMEOUT,
    )
    try:
        await conn.connect()
        headers = Headers(exchange["headers"])
        authority = authority.encode("ascii") if authority else headers.get(b"host")
        stream = await conn.open_stream(
            exchange["method"].encode("ascii"), scheme.encode("ascii"), authority,
            exchange["path"].encode("latin-1"), to_http2(headers),
            end_stream=not exchange["body"],
        )
        if exchange["body"]:
            await stream.send_data(exchange["body"])
            await stream.send_end()
        response = await stream.receive_response()
        body = b"".join([chunk async for chunk in stream.iter_body()])
        return response.status_code, body
    finally:
        await conn.close()


@pytest.mark.parametrize("exchange", EXCHANGES, ids=[e["id"] for e in EXCHANGES])
def test_exchange(exchange):
    status, body = _send(exchange)
    assert status == exchange["status"], f"got status {status}, recorded {exchange['status']}"
    if exchange["response_body"] is not None:
        assert body == exchange["response_body"]
    else:  # the recording kept only part of the body: check its size and digest
        assert len(body) == exchange["response_size"]
        if exchange["response_sha256"]:
            assert hashlib.sha256(body).hexdigest() == exchange["response_sha256"]
'''


def pytest_module(flows: Iterable[Flow], redact: bool = False) -> str:
    """The source of a pytest module with one test per replayable flow that has a response."""
    return "".join(pytest_chunks(flows, redact, ModuleTally()))


def pytest_chunks(flows: Iterable[Flow], redact: bool, tally: ModuleTally) -> Iterator[str]:
    """The module a piece at a time, one flow in memory at once; a flow that cannot become a
    test is a ``# left out: ...`` comment in its place in the list, saying why."""
    yield _HEADER + "\nEXCHANGES = [\n"
    for flow in flows:
        if redact:
            flow = redact_flow(flow)
        reason = unusable_reason(flow)
        if reason:
            tally.left_out += 1
            note = f"{flow.request.method} {flow.request.url}: {reason}"
            yield "    # left out: " + " ".join(note.split()) + "\n"
        else:
            tally.exported += 1
            yield _exchange_literal(flow, tally.exported)
    yield "]\n" + _FOOTER


def unusable_reason(flow: Flow) -> str | None:
    """Why ``flow`` cannot become a test (None when it can)."""
    try:
        check_replayable(flow)
    except ReplayError as e:
        return str(e)
    if flow.error is not None:  # a failed exchange is no recording of what the server does
        return f"the exchange failed: {flow.error.exc_class} during {flow.error.phase}"
    if flow.response is None:
        return "no response was recorded"
    return None


def _exchange_literal(flow: Flow, number: int) -> str:
    req, resp = flow.request, flow.response
    assert resp is not None
    complete = not resp.body.truncated
    fields = {
        "id": f"{number:03d}-{req.method}-{req.path.split('?')[0]}"[:80],
        "method": req.method,
        "scheme": req.scheme,
        "host": req.host,
        "port": req.port,
        "path": req.path,
        "headers": _headers(flow),
        "body": req.body.data,
        "http2": flow.request.http_version == "HTTP/2",
        "status": resp.status_code,
        "response_body": resp.body.data if complete else None,
        "response_size": resp.body.size,
        "response_sha256": resp.body.sha256,
    }
    lines = [f"        {key!r}: {value!r},\n" for key, value in fields.items()]
    return "    {\n" + "".join(lines) + "    },\n"


def _headers(flow: Flow) -> HeaderPairs:
    """The headers as replay sends them; over HTTP/2 with ``TE: trailers`` when recorded (gRPC)."""
    req = flow.request
    headers = outgoing_headers(req, authority(Endpoint(req.scheme, req.host, req.port)))
    if req.http_version == "HTTP/2" and trailers_asked(req):
        headers.append((b"te", b"trailers"))
    return headers
