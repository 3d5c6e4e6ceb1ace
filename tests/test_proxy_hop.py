"""Hop-by-hop stripping: the one-pass request helper agrees with the separate calls."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from inspector.proxy.hop import is_upgrade, request_fields, strip_hop_by_hop

NAMES = [b"Host", b"Connection", b"proxy-connection", b"Upgrade", b"Keep-Alive", b"TE", b"X-A"]
VALUES = [b"upgrade", b"close, X-A", b"keep-alive", b"Host", b"x-a, Upgrade", b"websocket", b""]


def test_request_fields_plain_request():
    fields = [(b"Host", b"a.test"), (b"Connection", b"keep-alive"), (b"Accept", b"*/*")]
    assert request_fields(fields) == ([(b"Host", b"a.test"), (b"Accept", b"*/*")], False, True)


def test_request_fields_upgrade_keeps_upgrade_and_adds_connection():
    fields = [(b"Host", b"a.test"), (b"Connection", b"Upgrade"), (b"Upgrade", b"websocket")]
    forwarded, upgrade, has_host = request_fields(fields)
    assert upgrade and has_host
    assert forwarded == [
        (b"Host", b"a.test"),
        (b"Upgrade", b"websocket"),
        (b"Connection", b"Upgrade"),
    ]


def test_request_fields_host_named_by_connection_is_not_forwarded():
    fields = [(b"Host", b"a.test"), (b"Connection", b"close, HOST")]
    assert request_fields(fields) == ([], False, False)


def test_two_connection_fields_both_count():
    fields = [
        (b"Connection", b"x-a"),
        (b"X-A", b"1"),
        (b"Proxy-Connection", b"x-b"),
        (b"X-B", b"2"),
    ]
    assert strip_hop_by_hop(fields) == []


@given(st.lists(st.tuples(st.sampled_from(NAMES), st.sampled_from(VALUES)), max_size=6))
def test_request_fields_matches_separate_calls(fields):
    upgrade = is_upgrade(fields)
    forwarded = strip_hop_by_hop(fields, upgrade=upgrade)
    has_host = any(name.lower() == b"host" for name, _ in forwarded)
    assert request_fields(fields) == (forwarded, upgrade, has_host)
