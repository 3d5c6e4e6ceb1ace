"""Indent XML and HTML bodies for the viewers, safely: the bodies come from anyone.

XML goes through expat with every way out of the document shut: a document that declares
entities (a billion-laughs bomb, or an external entity naming a local file) is never
expanded, it is shown tag per line like HTML instead, and external entities and
parameter entities are never read. Indentation stops growing at ``MAX_INDENT`` levels, so
a deeply nested body cannot turn into a quadratic amount of leading spaces.
"""

from __future__ import annotations

from html.parser import HTMLParser
from xml.parsers import expat
from xml.sax.saxutils import escape, quoteattr

MAX_INDENT = 32  # nesting levels shown by indentation; deeper levels line up with the last


def _indent(depth: int) -> str:
    return "  " * min(depth, MAX_INDENT)


class UnsafeXML(Exception):
    """The document declares entities or reaches outside itself: it is not expanded."""


class _XMLIndenter:
    """Re-emit well-formed XML one element per line; elements holding only text stay on one."""

    def __init__(self) -> None:
        self.lines: list[str] = ['<?xml version="1.0" ?>']
        # Open elements: [start tag, written yet?, text gathered since the last child].
        self._open: list[list] = []
        parser = expat.ParserCreate()
        parser.SetParamEntityParsing(expat.XML_PARAM_ENTITY_PARSING_NEVER)
        parser.EntityDeclHandler = self._refuse_entity
        parser.ExternalEntityRefHandler = self._refuse_external
        parser.StartElementHandler = self._start
        parser.EndElementHandler = self._end
        parser.CharacterDataHandler = self._text
        parser.CommentHandler = lambda data: self._emit(f"<!--{data}-->")
        parser.ProcessingInstructionHandler = lambda t, d: self._emit(f"<?{t} {d}?>")
        parser.buffer_text = True
        self._parser = parser

    def feed(self, data: bytes) -> str:
        self._parser.Parse(data, True)
        return "\n".join(self.lines)

    def _refuse_entity(self, name: str, *_: object) -> None:
        raise UnsafeXML(f"the document declares the entity {name!r}")

    def _refuse_external(self, *_: object) -> int:
        raise UnsafeXML("the document refers to an external entity")

    def _flush(self) -> None:
        """Write the innermost open element's start tag and text before a child or a comment."""
        if not self._open:
            return
        top = self._open[-1]
        depth = len(self._open) - 1
        if not top[1]:
            self.lines.append(_indent(depth) + top[0])
            top[1] = True
        text = "".join(top[2]).strip()
        top[2].clear()
        if text:
            self.lines.append(_indent(depth + 1) + escape(text))

    def _emit(self, line: str) -> None:
        self._flush()
        self.lines.append(_indent(len(self._open)) + line)

    def _start(self, name: str, attrs: dict[str, str]) -> None:
        self._flush()
        attributes = "".join(f" {key}={quoteattr(value)}" for key, value in attrs.items())
        self._open.append([f"<{name}{attributes}>", False, []])

    def _text(self, data: str) -> None:
        if self._open:
            self._open[-1][2].append(data)

    def _end(self, name: str) -> None:
        start, written, texts = self._open[-1]
        depth = len(self._open) - 1
        if written:
            self._flush()
            self.lines.append(f"{_indent(depth)}</{name}>")
        else:
            text = "".join(texts).strip()
            inline = f"{start}{escape(text)}</{name}>" if text else f"{start[:-1]}/>"
            self.lines.append(_indent(depth) + inline)
        self._open.pop()


def indent_xml(data: bytes) -> str | None:
    """The document indented, or None when it is not well-formed or declares entities."""
    try:
        return _XMLIndenter().feed(data)
    except (expat.ExpatError, UnsafeXML, ValueError):
        return None


_VOID_TAGS = frozenset(
    "area base br col embed hr img input link meta source track wbr".split()  # noqa: SIM905
)


class _HTMLIndenter(HTMLParser):
    """Re-emit HTML one tag or text run per line, indented by nesting depth.

    Entity and character references are kept as written, never expanded.
    """

    def __init__(self) -> None:
        super().__init__(convert_charrefs=False)
        self.lines: list[str] = []
        self.depth = 0

    def _emit(self, text: str) -> None:
        self.lines.append(_indent(self.depth) + text)

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self._emit(self.get_starttag_text() or f"<{tag}>")
        if tag not in _VOID_TAGS:
            self.depth += 1

    def handle_startendtag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self._emit(self.get_starttag_text() or f"<{tag}/>")

    def handle_endtag(self, tag: str) -> None:
        self.depth = max(0, self.depth - 1)
        self._emit(f"</{tag}>")

    def handle_data(self, data: str) -> None:
        if data.strip():
            for line in data.strip().splitlines():
                self._emit(line.strip())

    def handle_entityref(self, name: str) -> None:
        self.handle_data(f"&{name};")

    def handle_charref(self, name: str) -> None:
        self.handle_data(f"&#{name};")

    def handle_comment(self, data: str) -> None:
        self._emit(f"<!--{data}-->")

    def handle_decl(self, decl: str) -> None:
        self._emit(f"<!{decl}>")

    def handle_pi(self, data: str) -> None:
        self._emit(f"<?{data}>")


def indent_html(text: str) -> str:
    """HTML (or XML that is not shown as XML) one tag or text run per line."""
    parser = _HTMLIndenter()
    parser.feed(text)
    parser.close()
    return "\n".join(parser.lines)
