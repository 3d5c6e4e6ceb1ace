"""The rule kinds: block list, map local, map remote, modify headers, modify body.

Each is built from its option's pattern (``from_pattern``, which raises ``RuleError``) and
works on a flow through the addon API's views (``inspector.http``), so a rule edits a
message exactly as an addon would: framing headers follow a changed body, the Host header
follows a new authority, a compressed body is decoded for the replacement and encoded
again with the same Content-Encoding.
"""

from __future__ import annotations

import asyncio
import mimetypes
import re
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import unquote

from inspector.flow import Flow, FlowRequest, FlowResponse
from inspector.http import HTTPFlow, Message, Request, Response
from inspector.multidict import header_name, header_value
from inspector.rules.patterns import Spec, check_template, read_value, regex, split
from inspector.rules.sides import SideRules

CLOSE = 444  # --block-list status that closes the connection without any response
_NO_BODY = (204, 304)
# What a rewritten URL may be taken as without parsing it (see _same_origin_path): a host
# that urlsplit() gives back as it is (lower case, no IPv6 brackets, no userinfo), and a
# path it keeps whole (no fragment, whitespace or control character, which it drops).
_PLAIN_HOST = re.compile(r"[a-z0-9.-]+")
_PLAIN_PATH = re.compile(r"/[^#\x00-\x20\x7f]*")


@dataclass(frozen=True, slots=True)
class BlockRule:
    """``--block-list /FILTER/STATUS``: answer locally (444: close without a response)."""

    spec: Spec
    status: int

    @classmethod
    def from_pattern(cls, pattern: str) -> BlockRule:
        spec = split("--block-list", pattern, names=("STATUS",), need_filter=True)
        part = spec.parts[0]
        status = part.text.strip()
        if not status.isdigit() or not 200 <= int(status) <= 599:
            raise spec.error(part, f"STATUS must be a status code 200-599 (or {CLOSE} to close)")
        return cls(spec, int(status))

    def apply(self, flow: HTTPFlow) -> bool:
        if self.status == CLOSE:
            flow.kill()
            return True
        text = "" if self.status in _NO_BODY else f"inspector: blocked by {self.spec.label}\n"
        flow.response = Response.make(self.status, text)
        return True


@dataclass(frozen=True, slots=True)
class MapLocalRule:
    """``--map-local [/FILTER]/URL-REGEX/FILE-OR-DIR``: answer from a local file."""

    spec: Spec
    regex: re.Pattern[str]
    path: Path

    @classmethod
    def from_pattern(cls, pattern: str) -> MapLocalRule:
        spec = split("--map-local", pattern, names=("URL-REGEX", "FILE-OR-DIR"))
        url_part, path_part = spec.parts
        if not path_part.text:
            raise spec.error(path_part, "FILE-OR-DIR is empty")
        return cls(spec, regex(spec, url_part), Path(path_part.text).expanduser().absolute())

    async def apply(self, flow: HTTPFlow) -> bool:
        url = flow.request.url
        match = self.regex.search(url)
        if match is None:
            return False
        status, body, content_type = await asyncio.to_thread(self._read, url[match.end() :])
        flow.response = Response.make(status, body, {"Content-Type": content_type})
        return True

    def _read(self, rest: str) -> tuple[int, bytes, str]:
        """(status, body, content type) for the URL's ``rest`` after the match (off the loop)."""
        base = self.path
        if base.is_dir():
            rest = unquote(re.split(r"[?#]", rest, maxsplit=1)[0]).lstrip("/")
            if not rest or rest.endswith("/"):
                rest += "index.html"
            try:
                target = (base / rest).resolve()
                inside = target.is_relative_to(base.resolve())
            except (OSError, ValueError):
                inside = False
            if not inside:
                return self._missing(f"{rest!r} is outside {base}: not served")
        else:
            target = base
        try:
            data = target.read_bytes()
        except OSError as e:
            return self._missing(f"cannot read {target}: {e.strerror or e}")
        content_type = mimetypes.guess_type(target.name)[0] or "application/octet-stream"
        return 200, data, content_type

    def _missing(self, why: str) -> tuple[int, bytes, str]:
        text = f"inspector: {self.spec.label}: {why}\n"
        return 404, text.encode("utf-8"), "text/plain; charset=utf-8"


@dataclass(frozen=True, slots=True)
class MapRemoteRule:
    """``--map-remote [/FILTER]/URL-REGEX/REPLACEMENT``: send to the rewritten URL."""

    spec: Spec
    regex: re.Pattern[str]
    replacement: str

    @classmethod
    def from_pattern(cls, pattern: str) -> MapRemoteRule:
        spec = split("--map-remote", pattern, names=("URL-REGEX", "REPLACEMENT"))
        url_part, repl_part = spec.parts
        compiled = regex(spec, url_part)
        check_template(spec, repl_part, compiled)
        return cls(spec, compiled, repl_part.text)


def apply_remotes(rules: list[MapRemoteRule], flow: Flow) -> list[str]:
    """Rewrite the URL with each rule in turn; the request is re-targeted once, at the end."""
    r = flow.request
    origin = "" if r.method == "CONNECT" else f"{r.scheme}://{r.authority}"
    start = url = origin + r.path if origin else r.url
    labels = []
    for rule in rules:
        # A search first: sub() parses a template with groups on every call, match or not.
        if rule.regex.search(url) is None:
            continue
        new = rule.regex.sub(rule.replacement, url)
        if new != url:
            labels.append(rule.spec.label)
            url = new
    if url != start:
        path = _same_origin_path(r, origin, url)
        if path is not None:  # the common rewrite: the path alone
            r.path = path
            return labels
        r.headers = list(r.headers)  # the Host header may change
        try:
            Request(r).url = url
        except ValueError as e:
            raise ValueError(f"{labels[-1]}: the rewritten URL is not usable: {e}") from None
    return labels


def _same_origin_path(m: FlowRequest, origin: str, url: str) -> str | None:
    """The path of ``url`` when it starts with ``origin`` (``m``'s scheme://authority)
    and setting ``http.Request.url`` to it would change the path alone, else None. That
    setter runs urlsplit(), lowers the host, adds a missing Host header and drops an
    empty query; any doubt is a None, and the setter does it."""
    if not origin or not url.startswith(origin) or _PLAIN_HOST.fullmatch(m.host) is None:
        return None
    if m.scheme not in ("http", "https") or not 0 < m.port < 65536:
        return None
    path = url[len(origin) :]
    if _PLAIN_PATH.fullmatch(path) is None or path.find("?") == len(path) - 1:
        return None
    for name, _ in m.headers:
        if name.lower() == b"host":
            return path
    return None


@dataclass(frozen=True, slots=True)
class HeaderRule:
    """``--modify-headers [/FILTER]/NAME/[@]VALUE``: set NAME (an empty VALUE removes it)."""

    spec: Spec
    name: bytes  # checked once, at start-up
    value: bytes  # b"" removes

    @classmethod
    def from_pattern(cls, pattern: str) -> HeaderRule:
        spec = split("--modify-headers", pattern, names=("NAME", "[@]VALUE"))
        name_part, value_part = spec.parts
        try:
            name = header_name(name_part.text)
        except ValueError as e:
            raise spec.error(name_part, str(e)) from None
        raw = read_value(spec, value_part)
        if value_part.text.startswith("@"):
            raw = raw.strip()  # a value file usually ends with a newline
        try:
            value = header_value(name_part.text, raw)
        except ValueError as e:
            raise spec.error(value_part, str(e)) from None
        return cls(spec, name, value)


@dataclass(frozen=True, slots=True)
class HeaderPlan:
    """What a set of matching header rules does, worked out once: every matching rule's
    name is removed, then each value added (two rules with one name give two fields, as
    in mitmproxy)."""

    names: frozenset[bytes]
    added: tuple[tuple[bytes, bytes], ...]
    labels: tuple[str, ...]

    @classmethod
    def of(cls, rules: list[HeaderRule]) -> HeaderPlan:
        return cls(
            frozenset(rule.name.lower() for rule in rules),
            tuple((rule.name, rule.value) for rule in rules if rule.value),
            tuple(rule.spec.label for rule in rules),
        )

    def apply(self, message: FlowRequest | FlowResponse) -> list[str]:
        """Give the message a new list of header pairs (the old one is left as it was);
        the labels when anything changed."""
        if not self.labels:
            return []
        fields, names = message.headers, self.names
        kept = [pair for pair in fields if pair[0].lower() not in names]
        kept += self.added
        if kept == fields:
            return []
        message.headers = kept
        return list(self.labels)


class HeaderPlans:
    """The header rules of one side, planned: those the side alone decides once, at
    start-up; with the others, one plan per set of filters that held, kept for the next
    flows (up to ``KEPT`` sets)."""

    __slots__ = ("_entries", "_fixed", "_plans", "_tests")
    KEPT = 64

    def __init__(self, rules: SideRules[HeaderRule]) -> None:
        self._entries = rules.entries
        entries = enumerate(self._entries)
        self._tests = tuple((i, test) for i, (_, test) in entries if test is not None)
        self._fixed = HeaderPlan.of([rule for rule, test in self._entries if test is None])
        self._plans: dict[tuple[int, ...], HeaderPlan] = {}

    def plan(self, flow: Flow) -> HeaderPlan:
        """The plan for ``flow``: every rule that applies to it, in command-line order."""
        if not self._tests:
            return self._fixed
        held = tuple([i for i, test in self._tests if test(flow)])
        if not held:
            return self._fixed
        plan = self._plans.get(held)
        if plan is None:
            rules = [r for i, (r, test) in enumerate(self._entries) if test is None or i in held]
            plan = HeaderPlan.of(rules)
            if len(self._plans) < self.KEPT:
                self._plans[held] = plan
        return plan


@dataclass(frozen=True, slots=True)
class BodyRule:
    """``--modify-body [/FILTER]/REGEX/[@]REPLACEMENT``: replace in the decoded body.

    ``@FILE`` replacements are used literally; written ones may use ``\\1`` groups.
    """

    spec: Spec
    regex: re.Pattern[bytes]
    replacement: bytes | Callable[[re.Match[bytes]], bytes]

    @classmethod
    def from_pattern(cls, pattern: str) -> BodyRule:
        spec = split("--modify-body", pattern, names=("REGEX", "[@]REPLACEMENT"))
        regex_part, repl_part = spec.parts
        compiled = regex(spec, regex_part, binary=True)
        if repl_part.text.startswith("@"):
            data = read_value(spec, repl_part)
            return cls(spec, compiled, lambda _match: data)
        check_template(spec, repl_part, compiled)
        return cls(spec, compiled, repl_part.text.encode("utf-8"))


def apply_bodies(rules: list[BodyRule], message: Message) -> list[str]:
    """Replace in the decoded content; the body is set again only when something matched."""
    if not rules:
        return []
    try:
        content = message.content
    except ValueError:
        return []  # an encoding this proxy cannot decode: left as it is
    if content is None:
        return []  # larger than the body limit: streamed through untouched
    labels = []
    for rule in rules:
        content, count = rule.regex.subn(rule.replacement, content)
        if count:
            labels.append(rule.spec.label)
    if labels:
        message.content = content
    return labels
