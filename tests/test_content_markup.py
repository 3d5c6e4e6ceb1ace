"""Pretty-printing untrusted XML and HTML: nothing expands, nothing is read from elsewhere."""

from __future__ import annotations

import time
import tracemalloc
from pathlib import Path

import pytest

from inspector import content
from inspector.markup import MAX_INDENT, indent_xml

BILLION_LAUGHS = b"""<?xml version="1.0"?>
<!DOCTYPE lolz [
 <!ENTITY lol "lol">
 <!ENTITY lol1 "&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;">
 <!ENTITY lol2 "&lol1;&lol1;&lol1;&lol1;&lol1;&lol1;&lol1;&lol1;&lol1;&lol1;">
 <!ENTITY lol3 "&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;">
 <!ENTITY lol4 "&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;">
 <!ENTITY lol5 "&lol4;&lol4;&lol4;&lol4;&lol4;&lol4;&lol4;&lol4;&lol4;&lol4;">
 <!ENTITY lol6 "&lol5;&lol5;&lol5;&lol5;&lol5;&lol5;&lol5;&lol5;&lol5;&lol5;">
 <!ENTITY lol7 "&lol6;&lol6;&lol6;&lol6;&lol6;&lol6;&lol6;&lol6;&lol6;&lol6;">
 <!ENTITY lol8 "&lol7;&lol7;&lol7;&lol7;&lol7;&lol7;&lol7;&lol7;&lol7;&lol7;">
 <!ENTITY lol9 "&lol8;&lol8;&lol8;&lol8;&lol8;&lol8;&lol8;&lol8;&lol8;&lol8;">
]>
<lolz><a>&lol9;</a></lolz>
"""

# Below expat's own amplification guard (which starts at 8 MiB): one entity of 100 kB
# used 60 times would still be 6 MB of text if anything expanded it.
QUADRATIC = (
    b'<?xml version="1.0"?><!DOCTYPE q [<!ENTITY big "'
    + b"x" * 100_000
    + b'">]><q>'
    + b"&big;" * 60
    + b"</q>"
)


def _format(body: bytes, content_type: str = "application/xml") -> tuple[str, int, float]:
    """The viewer's text, the peak of traced memory, and the CPU seconds it took (CPU, not
    wall-clock time: a machine busy with other work does not make the viewer look slow)."""
    tracemalloc.start()
    start = time.process_time()
    try:
        text = content.format_markup(body, content_type)
        return text, tracemalloc.get_traced_memory()[1], time.process_time() - start
    finally:
        tracemalloc.stop()


@pytest.mark.parametrize("content_type", ["application/xml", "text/xml", None])
def test_billion_laughs_is_shown_unexpanded(content_type: str | None) -> None:
    text, peak, seconds = _format(BILLION_LAUGHS, content_type)  # type: ignore[arg-type]
    assert "&lol9;" in text
    assert "lollol" not in text
    assert len(text) < 2 * len(BILLION_LAUGHS)
    assert peak < 1_000_000 and seconds < 2


def test_quadratic_blowup_is_shown_unexpanded() -> None:
    text, peak, _ = _format(QUADRATIC)
    assert text.count("&big;") == 60
    assert len(text) < 2 * len(QUADRATIC) and peak < 5_000_000


def test_billion_laughs_through_the_viewer() -> None:
    view = content.render(BILLION_LAUGHS, "application/xml")
    assert view.viewer == "markup"
    assert "&lol9;" in view.text and "lollol" not in view.text


@pytest.fixture
def secret_file(tmp_path: Path) -> Path:
    path = tmp_path / "secret.txt"
    path.write_text("TOP-SECRET-LOCAL-CONTENT\n")
    return path


def _external(kind: str, path: Path) -> bytes:
    url = path.as_uri()
    if kind == "general":
        return (
            f'<?xml version="1.0"?><!DOCTYPE r [<!ENTITY xxe SYSTEM "{url}">]><r><a>&xxe;</a></r>'
        ).encode()
    if kind == "parameter":
        return (
            f'<?xml version="1.0"?><!DOCTYPE r [<!ENTITY % xxe SYSTEM "{url}"> %xxe;]>'
            f"<r><a>1</a></r>"
        ).encode()
    # An external DTD: the document names the file as its DTD.
    return f'<?xml version="1.0"?><!DOCTYPE r SYSTEM "{url}"><r><a>1</a></r>'.encode()


@pytest.mark.parametrize("kind", ["general", "parameter", "external-dtd"])
def test_external_entities_are_never_read(kind: str, secret_file: Path) -> None:
    body = _external(kind, secret_file)
    text, _, _ = _format(body)
    assert "TOP-SECRET" not in text
    view = content.render(body, "application/xml")
    assert "TOP-SECRET" not in view.text
    assert "<a>" in view.text  # the document is still shown


def test_xml_without_a_dtd_is_indented_with_its_text_escaped() -> None:
    body = b'<r a="1 &amp; 2"><b>x &lt; y</b><!--c--><c/><?pi data?></r>'
    assert indent_xml(body) == "\n".join(
        [
            '<?xml version="1.0" ?>',
            '<r a="1 &amp; 2">',
            "  <b>x &lt; y</b>",
            "  <!--c-->",
            "  <c/>",
            "  <?pi data?>",
            "</r>",
        ]
    )


def test_mixed_content_keeps_its_text() -> None:
    lines = indent_xml(b"<p>one<b>two</b>three</p>").splitlines()  # type: ignore[union-attr]
    assert lines[1:] == ["<p>", "  one", "  <b>two</b>", "  three", "</p>"]


@pytest.mark.parametrize("content_type", ["application/xml", "text/html"])
def test_deep_nesting_does_not_grow_indentation_without_bound(content_type: str) -> None:
    depth = 20_000
    body = b"<a>" * depth + b"x" + b"</a>" * depth
    text, _, seconds = _format(body, content_type)
    widest = max(len(line) - len(line.lstrip()) for line in text.splitlines())
    assert widest <= 2 * MAX_INDENT
    assert len(text) < 100 * len(body) and seconds < 10
