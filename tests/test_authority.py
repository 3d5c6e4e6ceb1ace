"""protocol.authority: the one helper for IPv6 brackets, default ports and host:port text."""

from __future__ import annotations

import re

import pytest

import protocol
from protocol.authority import (
    bracket,
    default_port,
    format_authority,
    host_port,
    split_authority,
)


def test_default_ports_per_scheme() -> None:
    assert (default_port("http"), default_port("https")) == (
        protocol.HTTP_PORT,
        protocol.HTTPS_PORT,
    )
    assert protocol.DEFAULT_PORTS == {"http": 80, "https": 443}


@pytest.mark.parametrize(
    ("host", "written"),
    [
        ("example.com", "example.com"),
        ("10.0.0.1", "10.0.0.1"),
        ("::1", "[::1]"),
        ("fe80::1%lo", "[fe80::1%lo]"),
    ],
)
def test_bracket_only_ipv6_literals(host: str, written: str) -> None:
    assert bracket(host) == written
    assert host_port(host, 8080) == f"{written}:8080"


@pytest.mark.parametrize(
    ("scheme", "host", "port", "expected"),
    [
        ("http", "h.test", 80, "h.test"),
        ("http", "h.test", 443, "h.test:443"),
        ("https", "h.test", 443, "h.test"),
        ("https", "::1", 443, "[::1]"),
        ("https", "::1", 8443, "[::1]:8443"),
    ],
)
def test_format_authority_drops_only_the_default_port(
    scheme: str, host: str, port: int, expected: str
) -> None:
    assert format_authority(scheme, host, port) == expected


@pytest.mark.parametrize(
    ("host", "port"), [("example.com", 8080), ("::1", 1), ("192.0.2.7", 65535)]
)
def test_split_authority_reads_what_host_port_writes(host: str, port: int) -> None:
    assert split_authority(host_port(host, port), 0) == (host, port)


def test_split_authority_lower_cases_and_fills_the_default() -> None:
    assert split_authority("API.Example.COM", 443) == ("api.example.com", 443)
    assert split_authority("[FE80::A%eth0]", 80) == ("fe80::a%eth0", 80)


@pytest.mark.parametrize(
    ("text", "says"),
    [
        ("", "no host"),
        (":8080", "no host"),
        ("[::1", "unclosed ["),
        ("[::1]8080", "junk after ]"),
        ("user@host:80", "bad host"),
        ("two words", "bad host"),
        ("host:0", "bad port"),
        ("host:65536", "bad port"),
        ("host:http", "bad port"),
    ],
)
def test_split_authority_says_what_is_wrong(text: str, says: str) -> None:
    with pytest.raises(ValueError, match=re.escape(says)):
        split_authority(text, 80)


@pytest.mark.parametrize("text", ["GET", b"X-Custom-Header", "M-SEARCH", "!#$%&'*+.^_`|~"])
def test_is_token_accepts_tchars(text: str | bytes) -> None:
    assert protocol.is_token(text)


@pytest.mark.parametrize("text", ["", "GET ", "a:b", "caf\u00e9", b"x\r\ny", "GET\n", "(x)"])
def test_is_token_refuses_everything_else(text: str | bytes) -> None:
    assert not protocol.is_token(text)
