"""Helpers for driving protocol.connection.Connection in the parser tests."""

from __future__ import annotations

from protocol.connection import CLIENT, SERVER, Connection
from protocol.events import NEED_DATA, PAUSED, ConnectionClosed, Data, EndOfMessage, Request
from protocol.headers import Headers

HOST = [(b"Host", b"example.com")]


def drain(conn: Connection, limit: int = 1000) -> list[object]:
    """Every event ``conn`` can produce now, ending with the NEED_DATA/PAUSED/closed stop."""
    out: list[object] = []
    for _ in range(limit):
        event = conn.next_event()
        out.append(event)
        if event is NEED_DATA or event is PAUSED or type(event) is ConnectionClosed:
            return out
    raise AssertionError("next_event() kept producing events")


def server_with(data: bytes, **limits: int) -> Connection:
    conn = Connection(SERVER, **limits)
    conn.receive_data(data)
    return conn


def client_after(
    method: bytes = b"GET", headers: list[tuple[bytes, bytes]] | None = None, **limits: int
) -> Connection:
    """A client connection that has sent a body-less request and awaits the response."""
    conn = Connection(CLIENT, **limits)
    conn.send(Request(method, b"/", Headers(HOST if headers is None else headers)))
    conn.send(EndOfMessage())
    return conn


def merge_data(events: list[object]) -> list[object]:
    """Join consecutive Data events (how bytes are split into Data is not part of the contract)."""
    out: list[object] = []
    for event in events:
        if type(event) is Data and out and type(out[-1]) is Data:
            out[-1] = Data(out[-1].data + event.data)
        elif type(event) is Data and not event.data:
            continue
        else:
            out.append(event)
    return out
