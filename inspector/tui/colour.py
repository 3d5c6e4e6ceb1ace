"""Syntax colours for the body viewer: Pygments tokens as Rich styles, line by line.

Lexing costs about a second per MiB of JSON on a loaded machine, so only the first
``COLOUR_LIMIT`` characters are coloured (in a worker thread); the rest shows plain.
"""

from __future__ import annotations

from rich.style import Style
from rich.syntax import Syntax

COLOUR_LIMIT = 256 * 1024  # characters of a formatted body that get colours
THEME = Syntax.get_theme("ansi_dark")  # the terminal's own palette: readable on any theme

LineSpans = dict[int, list[tuple[int, int, Style]]]  # line -> (start, end, style)


def line_spans(text: str, language: str, limit: int = COLOUR_LIMIT) -> LineSpans:
    """Styles for the tokens of the first ``limit`` characters of ``text``, by line."""
    from pygments.lexers import get_lexer_by_name
    from pygments.util import ClassNotFound

    try:
        lexer = get_lexer_by_name(language, stripnl=False, ensurenl=False)
    except ClassNotFound:
        return {}
    styles: dict[object, Style] = {}
    spans: LineSpans = {}
    line = column = 0
    for token_type, token in lexer.get_tokens(text[:limit]):
        if "\n" in token:  # whitespace between lines (and multi-line tokens, left plain)
            line += token.count("\n")
            column = len(token) - token.rfind("\n") - 1
            continue
        style = styles.get(token_type)
        if style is None:
            style = styles[token_type] = THEME.get_style_for_token(token_type)
        if style and not token.isspace():
            spans.setdefault(line, []).append((column, column + len(token), style))
        column += len(token)
    return spans
