"""The HTTP/1.1 grammar (RFC 9110 / RFC 9112) as regexes compiled once.

Each validator notes the attack it closes. Everything here works on bytes.
"""

from __future__ import annotations

import re

# RFC 9110 5.6.2: token = 1*tchar
TCHAR_BYTES = b"!#$%&'*+-.^_`|~0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"
"""Every ``tchar``, for ``bytes.translate`` (deleting them leaves what is not one)."""
TCHAR = rb"[" + re.escape(TCHAR_BYTES) + rb"]"
TOKEN = TCHAR + rb"+"
# RFC 9110 5.5: field-vchar = VCHAR / obs-text. No CR, LF, NUL or other controls:
# a CR or LF inside a value is header injection / response splitting (bpo-43882,
# CVE-2019-9740, CVE-2019-9947), a NUL truncates the value in C-based peers.
_VCHAR = rb"[\x21-\x7e\x80-\xff]"
# field-content without leading/trailing whitespace: the greedy run stops at the
# first control character and backs up at most to the last visible one, so every
# line is matched or refused in linear time (no ReDoS).
_FIELD_VALUE = rb"(?:[\t\x20-\x7e\x80-\xff]*" + _VCHAR + rb")?"

BLOCK_BYTES = b"\t\r\n" + bytes(range(0x20, 0x7F)) + bytes(range(0x80, 0x100))
"""Every byte a header block may hold: field-vchar, SP, HTAB and the CRLF line ends."""

token_re = re.compile(TOKEN)
"""A method, a header name, a transfer-coding or a connection option."""


def is_token(text: str | bytes) -> bool:
    """Whether ``text`` is one RFC 9110 token (a method, a header name), as str or bytes."""
    if isinstance(text, str):
        if not text.isascii():
            return False
        text = text.encode("ascii")
    return token_re.fullmatch(text) is not None


field_value_re = re.compile(rb"[\t\x20-\x7e\x80-\xff]*")
"""A header value we are asked to send: any visible text, SP and HTAB, nothing else."""

header_field_lines_re = re.compile(
    rb"^(" + TOKEN + rb"):[ \t]*+(" + _FIELD_VALUE + rb")[ \t]*\r\n", re.MULTILINE
)
"""One ``name: value CRLF`` line, anchored at a line start; ``findall`` over a header
block gives the raw ``(name, value)`` pairs with the value's surrounding whitespace
dropped. The block is valid only if every ``\\n`` in it ends a match: that refuses
obs-fold (a line starting with SP/HTAB), whitespace between name and colon
("Transfer-Encoding : chunked" smuggling, CVE-2019-16869), bare LF line endings
(CVE-2019-16785) and every control character."""

request_line_re = re.compile(rb"(" + TOKEN + rb") ([\x21-\x7e\x80-\xff]+) HTTP/(\d\.\d)")
"""``method SP request-target SP HTTP-version``, exactly one SP between parts. A
target with spaces or controls is refused: CRLF in a URL is request splitting
(CVE-2019-9740, CVE-2019-9947)."""

status_line_re = re.compile(rb"HTTP/(\d\.\d) ([1-9]\d\d)(?: ([\t\x20-\x7e\x80-\xff]*))?")
"""``HTTP-version SP status-code [SP reason-phrase]``; a missing SP after the code is
accepted (common in the wild and unambiguous)."""

http_version_re = re.compile(rb"HTTP/(\d\.\d)")

_QUOTED_STRING = rb'"(?:[^"\\\x00-\x08\x0a-\x1f\x7f]|\\[\t\x20-\x7e\x80-\xff])*"'
_CHUNK_EXT_VALUE = rb"(?:" + TOKEN + rb"|" + _QUOTED_STRING + rb")"
_CHUNK_EXT = rb"(?:[ \t]*;[ \t]*" + TOKEN + rb"(?:[ \t]*=[ \t]*" + _CHUNK_EXT_VALUE + rb")?)*"
chunk_size_line_re = re.compile(rb"([0-9A-Fa-f]{1,16})(" + _CHUNK_EXT + rb")")
"""``chunk-size [chunk-ext]`` (RFC 9112 7.1.1). At most 16 hex digits so the size
fits 64 bits (an overflowing size wraps to a small one in C peers and desyncs
them). No sign, no leading whitespace, no ``0x``: a size two parsers read
differently is request smuggling (chunk header parsing, CVE-2015-3183)."""

content_length_re = re.compile(rb"[0-9]{1,18}")
"""``Content-Length = 1*DIGIT``; no sign, no whitespace inside (CL.TE/TE.CL smuggling);
18 digits keeps it within 64 bits."""

request_target_re = re.compile(rb"[\x21-\x7e\x80-\xff]+")
"""A request-target we are asked to send: no SP, CR, LF, NUL or controls
(CVE-2019-9740 / CVE-2019-9947: CRLF injection in URLs)."""

reason_phrase_re = re.compile(rb"[\t\x20-\x7e\x80-\xff]*")
"""A reason phrase we are asked to send (no CR/LF: response splitting)."""

comma_split_re = re.compile(rb"[ \t]*,[ \t]*")
"""The list separator of ``#rule`` values (RFC 9110 5.6.1)."""
