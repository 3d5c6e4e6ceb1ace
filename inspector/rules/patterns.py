"""Rule patterns as mitmproxy writes them: ``[SEP FILTER] SEP A SEP B``.

The first character is the separator (``|a|b`` is ``/a/b``). Two parts mean no filter;
three mean the first is a filter in this project's one filter language
(``inspector.filters``). Everything is checked and compiled once, at start-up: a bad
pattern is a ``RuleError`` (a ``ConfigError``: exit 2) naming the option, the pattern
and the position (0-based, counted in the pattern as typed).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

from inspector import filters
from inspector.config import ConfigError


class RuleError(ConfigError):
    """A rule pattern that cannot be used; says which option, which pattern, where and why."""

    def __init__(self, option: str, pattern: str, position: int, problem: str) -> None:
        super().__init__(f"bad {option} '{pattern}' at position {position}: {problem}")
        self.option = option
        self.pattern = pattern
        self.position = position


@dataclass(frozen=True, slots=True)
class Part:
    text: str
    position: int  # where it starts in the pattern


@dataclass(frozen=True, slots=True)
class Spec:
    """A split pattern: the option it came from, its filter (or None) and its parts."""

    option: str
    pattern: str
    filter: filters.Filter | None
    parts: tuple[Part, ...]
    # The filter looks at bodies (~b, ~bq, ~bs; an argument holding "~b" counts too, which
    # only holds a message whole for nothing).
    reads_bodies: bool = False

    @property
    def label(self) -> str:
        """How the flow names the rule that changed it: ``--map-remote |a|b``."""
        return f"{self.option} {self.pattern}"

    def error(self, part: Part, problem: str, offset: int = 0) -> RuleError:
        return RuleError(self.option, self.pattern, part.position + offset, problem)


def split(option: str, pattern: str, *, names: tuple[str, ...], need_filter: bool = False) -> Spec:
    """Split ``pattern`` into a filter (optional unless ``need_filter``) and the parts
    ``names`` (named in errors)."""
    opt = "" if need_filter else "["
    usage = f"{opt}/FILTER{opt and ']'}/{'/'.join(names)}"
    if len(pattern) < 2:
        raise RuleError(option, pattern, 0, f"expected {usage} (the first character separates)")
    sep = pattern[0]
    # A required filter comes first and the parts after it hold no separator, so the
    # filter may hold it (``/~u /ads/404``); otherwise the last part may.
    texts = (
        pattern[1:].rsplit(sep, len(names)) if need_filter else pattern[1:].split(sep, len(names))
    )
    pieces, pos = [], 1
    for text in texts:
        pieces.append(Part(text, pos))
        pos += len(text) + 1
    if len(pieces) < len(names) or (need_filter and len(pieces) == len(names)):
        raise RuleError(
            option, pattern, len(pattern), f"expected {usage} with {sep!r} between the parts"
        )
    flt = None
    if len(pieces) > len(names):
        head = pieces.pop(0)
        flt = _filter(option, pattern, head)
    return Spec(option, pattern, flt, tuple(pieces), flt is not None and "~b" in str(flt))


def _filter(option: str, pattern: str, part: Part) -> filters.Filter:
    try:
        return filters.parse(part.text)
    except filters.FilterError as e:
        where = part.position + e.position
        raise RuleError(
            option, pattern, where, f"in the filter {part.text!r}: {e.message}"
        ) from None


def regex(spec: Spec, part: Part, *, binary: bool = False) -> re.Pattern:
    """Compile a part as a regex (case-sensitive, as in mitmproxy)."""
    if not part.text:
        raise spec.error(part, "the regex is empty")
    try:
        return re.compile(part.text.encode("utf-8") if binary else part.text)
    except re.error as e:
        raise spec.error(part, f"bad regex: {e.msg}", e.pos or 0) from None


def check_template(spec: Spec, part: Part, compiled: re.Pattern) -> None:
    """Refuse a replacement whose group references the regex cannot fill (``\\3``, ``\\g<x>``)."""
    template = part.text.encode("utf-8") if isinstance(compiled.pattern, bytes) else part.text
    try:
        # An empty alternative matches anywhere, with the same groups as the rule's regex.
        probe = re.compile(compiled.pattern + (b"|" if isinstance(template, bytes) else "|"))
        match = probe.match(template[:0])
        if match is not None:
            match.expand(template)
    except (re.error, IndexError) as e:  # IndexError: an unknown group name
        raise spec.error(part, f"bad replacement: {e.args[0]}") from None


def read_value(spec: Spec, part: Part) -> bytes:
    """A part as bytes; ``@FILE`` reads FILE (once, now)."""
    if not part.text.startswith("@"):
        return part.text.encode("utf-8")
    path = Path(part.text[1:]).expanduser()
    try:
        return path.read_bytes()
    except OSError as e:
        raise spec.error(part, f"cannot read {path}: {e.strerror or e}") from None
