"""One Config object built from the command line and passed down; no globals."""

from __future__ import annotations

import os
import re
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from urllib.parse import urlsplit

from protocol.authority import default_port, host_port

DEFAULT_BODY_LIMIT = 4 * 1024 * 1024
CONFDIR_ENV = "INSPECTOR_CONFDIR"  # sets the default confdir


def default_confdir() -> Path:
    """Where the CA, config.toml and the dated sessions live unless --confdir says otherwise:
    $INSPECTOR_CONFDIR, else ~/.inspector."""
    from_env = os.environ.get(CONFDIR_ENV, "").strip()
    return Path(from_env).expanduser() if from_env else Path.home() / ".inspector"


_SIZE_RE = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*([kmg]i?b?|b)?\s*$", re.IGNORECASE)
_SIZE_POWERS = {"": 0, "b": 0, "k": 1, "m": 2, "g": 3}


class ConfigError(Exception):
    """A bad option value; the message says what was wrong and what to do."""


def parse_size(text: str) -> int:
    """Parse ``4MiB``, ``512k``, ``1000`` into a byte count."""
    m = _SIZE_RE.match(text)
    if not m:
        raise ConfigError(f"bad size {text!r}: use a number with an optional unit, e.g. 4MiB, 512k")
    unit = (m.group(2) or "").lower()
    base = 1024 if "i" in unit else 1000
    return int(float(m.group(1)) * base ** _SIZE_POWERS[unit[:1]])


@dataclass(frozen=True, slots=True)
class Endpoint:
    """scheme://host:port of a reverse target or an upstream proxy."""

    scheme: str
    host: str
    port: int

    @classmethod
    def parse(cls, url: str, what: str) -> Endpoint:
        parts = urlsplit(url if "://" in url else f"http://{url}")
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise ConfigError(f"bad {what} URL {url!r}: expected http://HOST[:PORT] or https://...")
        if parts.path not in ("", "/") or parts.query or parts.fragment:
            raise ConfigError(
                f"bad {what} URL {url!r}: give only scheme://host[:port] "
                "(each request keeps its own path; --map-remote rewrites paths)"
            )
        try:
            port = parts.port or default_port(parts.scheme)
        except ValueError:
            raise ConfigError(f"bad port in {what} URL {url!r}") from None
        return cls(parts.scheme, parts.hostname, port)

    @property
    def url(self) -> str:
        return f"{self.scheme}://{host_port(self.host, self.port)}"


@dataclass(frozen=True, slots=True)
class Mode:
    kind: str  # "regular", "reverse" or "upstream"
    target: Endpoint | None = None

    @classmethod
    def parse(cls, text: str) -> Mode:
        if text == "regular":
            return cls("regular")
        kind, sep, url = text.partition(":")
        if sep and kind in ("reverse", "upstream") and url:
            return cls(kind, Endpoint.parse(url, f"{kind} mode"))
        raise ConfigError(
            f"bad mode {text!r}: use regular, reverse:URL or upstream:URL "
            "(e.g. reverse:http://127.0.0.1:9000)"
        )

    def __str__(self) -> str:
        return self.kind if self.target is None else f"{self.kind}:{self.target.url}"


@dataclass(slots=True)
class Config:
    listen_host: str = "127.0.0.1"
    listen_port: int = 8080
    mode: Mode = field(default_factory=lambda: Mode("regular"))
    confdir: Path = field(default_factory=default_confdir)
    session: Path | None = None  # None: a new file under confdir/sessions
    upstream_ca: Path | None = None
    insecure: bool = False
    connect_timeout: float = 10.0
    read_timeout: float = 30.0
    ignore_hosts: re.Pattern[str] | None = None
    intercept: str | None = None  # filter expression text
    filter: str | None = None  # dump: filter expression text
    quiet: bool = False
    body_limit: int = DEFAULT_BODY_LIMIT
    proxy_auth: tuple[str, str] | None = None
    http2: bool = True  # --no-http2 turns it off: only HTTP/1.1 to clients and upstreams
    # Rules (patterns as typed; inspector.rules compiles them) and addon scripts.
    map_remote: tuple[str, ...] = ()
    map_local: tuple[str, ...] = ()
    modify_headers: tuple[str, ...] = ()
    modify_body: tuple[str, ...] = ()
    block_list: tuple[str, ...] = ()
    scripts: tuple[Path, ...] = ()

    def session_path(self) -> Path:
        """The session file to record to, choosing a new dated name when none was given."""
        if self.session is not None:
            return self.session
        stamp = datetime.now().strftime("%Y%m%d-%H%M%S")
        return self.confdir / "sessions" / f"{stamp}.db"
