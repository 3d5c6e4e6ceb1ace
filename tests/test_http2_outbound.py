"""protocol.http2_outbound.sendable does what h2's outbound normalisation and validation do.

h2 itself is the judge: each header block goes through h2's own pipeline
(``normalize_outbound_headers`` then ``validate_outbound_headers``, as ``send_headers``
runs them with the options on) and through ``sendable``; both must give the same
fields, with the same never-indexed marks, or both refuse it with ``ProtocolError``.
"""

from __future__ import annotations

from collections.abc import Callable

import h2.config
import h2.connection
import pytest
from h2.exceptions import ProtocolError
from h2.utilities import (
    HeaderValidationFlags,
    normalize_outbound_headers,
    validate_outbound_headers,
)
from hpack import NeverIndexedHeaderTuple

from protocol.http2_outbound import OUTBOUND_OFF, request_pseudo, sendable

REQUEST = request_pseudo(b"GET", b"https", b"example.com", b"/path")
RESPONSE = [(b":status", b"200")]

CASES = [
    [(b"content-type", b"text/plain"), (b"x-a", b"1")],
    [(b"Content-Type", b"text/plain"), (b"X-MiXed", b"v")],
    [(b"x-space", b"  padded \t"), (b" x-name ", b"v")],
    [(b"connection", b"close"), (b"keep-alive", b"5"), (b"transfer-encoding", b"chunked")],
    [(b"upgrade", b"h2c"), (b"proxy-connection", b"keep-alive"), (b"x-kept", b"1")],
    [(b"te", b"trailers"), (b"TE", b"Trailers")],
    [(b"te", b"gzip")],
    [(b"authorization", b"Bearer abc"), (b"proxy-authorization", b"Basic eA==")],
    [(b"cookie", b"a=1"), (b"cookie", b"session=" + b"x" * 40)],
    [(b":fake", b"1")],
    [(b"host", b"example.com")],
    [(b"host", b"other.example")],
    [(b"host", b"example.com"), (b"host", b"example.com")],
    [(b"x-empty", b"")],
]


def h2_pipeline(fields: list, *, response: bool) -> list:
    flags = HeaderValidationFlags(
        is_client=not response,
        is_trailer=False,
        is_response_header=response,
        is_push_promise=False,
    )
    return list(validate_outbound_headers(normalize_outbound_headers(fields, flags), flags))


def outcome(run: Callable[[], list]) -> tuple[str, list]:
    try:
        fields = run()
    except ProtocolError:
        return "refused", []
    return "sent", [(type(f) is NeverIndexedHeaderTuple, tuple(f)) for f in fields]


@pytest.mark.parametrize("regular", CASES)
@pytest.mark.parametrize("response", [False, True])
def test_sendable_matches_h2s_own_outbound_pipeline(regular: list, response: bool) -> None:
    pseudo = RESPONSE if response else REQUEST
    authority = None if response else b"example.com"
    theirs = outcome(lambda: h2_pipeline([*pseudo, *regular], response=response))
    ours = outcome(lambda: sendable(pseudo, regular, authority))
    assert ours == theirs


def test_request_pseudo_refuses_what_h2_refuses() -> None:
    with pytest.raises(ProtocolError):
        request_pseudo(b"GET", b"https", b"h", b"")
    with pytest.raises(ProtocolError):
        request_pseudo(b"CONNECT", b"https", b"h", b"/")


def test_a_connection_with_the_checks_off_sends_what_sendable_gives() -> None:
    config = h2.config.H2Configuration(header_encoding=None, **OUTBOUND_OFF)
    client = h2.connection.H2Connection(config)
    server = h2.connection.H2Connection(
        h2.config.H2Configuration(client_side=False, header_encoding=None)
    )
    client.initiate_connection()
    server.initiate_connection()
    server.receive_data(client.data_to_send())
    client.receive_data(server.data_to_send())
    fields = sendable(REQUEST, [(b"X-A", b" 1 "), (b"connection", b"close")], b"example.com")
    client.send_headers(1, fields, end_stream=True)
    events = server.receive_data(client.data_to_send())
    received = [e.headers for e in events if hasattr(e, "headers")]
    assert received == [[*REQUEST, (b"x-a", b"1")]]
