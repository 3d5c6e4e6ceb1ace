"""Authorities (RFC 3986 3.2): IPv6 brackets, default ports per scheme, ``host:port`` text.

Hosts are kept bare everywhere (``::1``, not ``[::1]``); brackets are added only where a
host is written next to a port or into a URL, and taken off where such text is parsed.
"""

from __future__ import annotations

import re

DEFAULT_PORTS = {"http": 80, "https": 443}
"""The port a URL of each scheme means when it names none (RFC 9110 4.2)."""

_REG_NAME = re.compile(r"[A-Za-z0-9](?:[A-Za-z0-9._-]*[A-Za-z0-9_])?\.?")  # DNS-ish, no userinfo
_IPV6 = re.compile(r"[0-9A-Fa-f:.]+(?:%[A-Za-z0-9._~-]+)?")  # a literal, with an optional zone id


def default_port(scheme: str) -> int:
    """443 for ``https``, 80 for ``http`` (and for anything else, as a plain-HTTP guess)."""
    return DEFAULT_PORTS.get(scheme, DEFAULT_PORTS["http"])


def bracket(host: str) -> str:
    """``host`` as written before a ``:port`` or in a URL: an IPv6 literal in brackets."""
    return f"[{host}]" if ":" in host else host


def host_port(host: str, port: int) -> str:
    """``host:port`` text, always with the port (``[::1]:8080``)."""
    return f"{bracket(host)}:{port}"


def format_authority(scheme: str, host: str, port: int) -> str:
    """The authority of a URL or a Host header: the port only when not the scheme's default."""
    # bracket() and default_port() written out: every flow's URL is built from this.
    if ":" in host:
        host = f"[{host}]"
    return host if port == DEFAULT_PORTS.get(scheme, 80) else f"{host}:{port}"


def split_authority(text: str, default: int) -> tuple[str, int]:
    """``host:port``, ``[v6]:port`` or ``host`` -> (lower-cased bare host, port).

    ``default`` is the port when the text names none. Raises ValueError naming what is
    wrong: an unclosed bracket, no host, a host with characters no name has (userinfo,
    spaces), or a port that is not 1-65535.
    """
    bracketed = text.startswith("[")
    if bracketed:
        end = text.find("]")
        if end < 0:
            raise ValueError(f"unclosed [ in {text!r}")
        host, rest = text[1:end], text[end + 1 :]
        if rest and not rest.startswith(":"):
            raise ValueError(f"junk after ] in {text!r}")
        port_text = rest[1:]
    else:
        host, sep, port_text = text.rpartition(":")
        if not sep:
            host, port_text = text, ""
    if not host:
        raise ValueError(f"no host in {text!r}")
    if not (_IPV6 if bracketed else _REG_NAME).fullmatch(host):
        raise ValueError(f"bad host {host!r}")
    if not port_text:
        return host.lower(), default
    if not port_text.isdigit() or not 0 < int(port_text) < 65536:
        raise ValueError(f"bad port {port_text!r} in {text!r}")
    return host.lower(), int(port_text)
