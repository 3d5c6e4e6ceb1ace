"""Compression bombs: decoding for the viewers and replay --diff stops at DECODE_LIMIT.

Each bomb is made here with the real streaming compressor over zeros, never held
decoded. zstd and br reach 2 GiB from tens of kilobytes or less; a deflate stream cannot
pass 1032:1, so the gzip and deflate bombs are ~65 kB inflating to 64 MiB, twice the
limit. Memory is measured with tracemalloc around the decode: the peak must stay
within the limit, the output buffer's growth slack (an eighth) and one decode step,
whatever the bomb would inflate to.
"""

from __future__ import annotations

import tracemalloc
import zlib
from collections.abc import Callable, Iterator

import brotli
import pytest
import zstandard

from inspector import content
from inspector.content import DECODE_LIMIT, ContentError, DecodedTooLarge
from inspector.diff import body_differences
from inspector.flow import FlowBody, FlowResponse
from inspector.http import HTTPFlow
from tests.replay_fixtures import make_flow

MiB = 1024 * 1024
ZEROS = bytes(MiB)
# What a decode may hold at its peak: the limit, the growth slack of the buffer gathering
# the output (BytesIO keeps an eighth spare), one step of output and the compressed input.
PEAK_ALLOWED = DECODE_LIMIT + DECODE_LIMIT // 8 + 4 * MiB


def _stream(compress: Callable[[bytes], bytes], flush: Callable[[], bytes], mib: int) -> bytes:
    return b"".join([*(compress(ZEROS) for _ in range(mib)), flush()])


def _zlib_bomb(wbits: int, mib: int) -> bytes:
    c = zlib.compressobj(9, zlib.DEFLATED, wbits)
    return _stream(c.compress, c.flush, mib)


def _br_bomb(mib: int) -> bytes:
    c = brotli.Compressor(quality=3, lgwin=24)
    return _stream(c.process, c.finish, mib)


def _zstd_bomb(mib: int) -> bytes:
    c = zstandard.ZstdCompressor(level=3).compressobj()
    return _stream(c.compress, c.flush, mib)


@pytest.fixture(scope="module")
def bombs() -> dict[str, tuple[bytes, int]]:
    """Content-Encoding -> (body, bytes it would inflate to)."""
    br = _br_bomb(2048)
    return {
        "gzip": (_zlib_bomb(16 + zlib.MAX_WBITS, 64), 64 * MiB),
        "deflate": (_zlib_bomb(zlib.MAX_WBITS, 64), 64 * MiB),
        "br": (br, 2048 * MiB),
        "zstd": (_zstd_bomb(2048), 2048 * MiB),
        # Stacked: the outer gzip layer is tiny, the br layer under it is the bomb.
        "br, gzip": (zlib.compress(br, wbits=16 + zlib.MAX_WBITS), 2048 * MiB),
    }


CODINGS = ["gzip", "deflate", "br", "zstd", "br, gzip"]


def _peak(fn: Callable[[], object]) -> tuple[object, int]:
    tracemalloc.start()
    try:
        try:
            result: object = fn()
        except ContentError as e:
            result = e
        return result, tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()


def test_bombs_are_small_and_inflate_far_past_the_limit(
    bombs: dict[str, tuple[bytes, int]],
) -> None:
    for coding, (body, inflated) in bombs.items():
        assert len(body) < 200_000, coding
        assert inflated >= 2 * DECODE_LIMIT, coding
    # The stream really is what it claims: the first mebibytes decode to zeros.
    zstd_body = bombs["zstd"][0]
    assert zstandard.ZstdDecompressor().stream_reader(zstd_body).read(MiB) == ZEROS


@pytest.mark.parametrize("coding", CODINGS)
def test_decode_stops_at_the_limit(coding: str, bombs: dict[str, tuple[bytes, int]]) -> None:
    body, _ = bombs[coding]
    result, peak = _peak(lambda: content.decode(body, coding))
    assert isinstance(result, DecodedTooLarge), result
    assert str(result) == f"{coding.split(', ')[0]}: decoded size exceeds {DECODE_LIMIT // MiB} MiB"
    assert peak < PEAK_ALLOWED, f"{coding}: {peak / MiB:.1f} MiB held"


@pytest.mark.parametrize("coding", CODINGS)
def test_viewer_shows_the_raw_bytes_with_a_note(
    coding: str, bombs: dict[str, tuple[bytes, int]]
) -> None:
    body, _ = bombs[coding]
    view, peak = _peak(lambda: content.render(body, "text/plain", coding))
    assert isinstance(view, content.View)
    note = f"decoded size exceeds {DECODE_LIMIT // MiB} MiB; showing raw"
    assert any(note in line for line in view.notes), view.notes
    assert view.viewer == "hex"  # the compressed bytes themselves
    assert peak < PEAK_ALLOWED


def _response(data: bytes, coding: str) -> FlowResponse:
    headers = [(b"Content-Encoding", coding.encode()), (b"Content-Type", b"text/plain")]
    return FlowResponse(200, "OK", headers=headers, body=FlowBody(data, len(data)))


@pytest.mark.parametrize("coding", ["gzip", "zstd"])
def test_replay_diff_compares_bombs_raw(coding: str, bombs: dict[str, tuple[bytes, int]]) -> None:
    body, _ = bombs[coding]
    other = body[:-8] + bytes(8)  # same size, different bytes
    lines, peak = _peak(lambda: body_differences(_response(body, coding), _response(other, coding)))
    assert isinstance(lines, list) and len(lines) == 1 and lines[0].startswith("body: ")
    assert peak < PEAK_ALLOWED
    assert body_differences(_response(body, coding), _response(body, coding)) == []


def test_a_body_just_under_the_limit_still_decodes() -> None:
    data = b"a" * (DECODE_LIMIT - 1)
    decoded, codings = content.decode(zlib.compress(data, wbits=16 + zlib.MAX_WBITS), "gzip")
    assert decoded == data and codings == ["gzip"]
    with pytest.raises(DecodedTooLarge):
        content.decode(zlib.compress(data + b"aa", wbits=16 + zlib.MAX_WBITS), "gzip")


def _truncated() -> Iterator[tuple[str, bytes]]:
    text = b"hello world " * 1000
    yield "gzip", zlib.compress(text, wbits=16 + zlib.MAX_WBITS)[:-30]
    yield "deflate", zlib.compress(text)[:-30]
    yield "br", brotli.compress(text)[:-10]


@pytest.mark.parametrize(("coding", "body"), list(_truncated()))
def test_a_truncated_stream_is_an_error_not_a_short_body(coding: str, body: bytes) -> None:
    with pytest.raises(ContentError, match=f"{coding}: incomplete or truncated stream"):
        content.decode(body, coding)


@pytest.mark.parametrize("coding", ["gzip", "deflate", "br", "zstd"])
def test_garbage_is_an_error_naming_the_coding(coding: str) -> None:
    with pytest.raises(ContentError, match=f"^{coding}: "):
        content.decode(b"this is not compressed at all", coding)


@pytest.mark.parametrize("coding", ["gzip", "br"])
def test_addons_and_modify_body_see_a_bomb_as_an_error(
    coding: str, bombs: dict[str, tuple[bytes, int]]
) -> None:
    """``flow.response.content`` (addons, --modify-body) decodes in the proxy itself."""
    body, _ = bombs[coding]
    flow = make_flow("127.0.0.1", 9, response_headers=[(b"Content-Encoding", coding.encode())])
    assert flow.response is not None
    flow.response.body = FlowBody(body, len(body))
    result, peak = _peak(lambda: _content_or_error(HTTPFlow(flow)))
    assert isinstance(result, ValueError) and "decoded size exceeds" in str(result)
    assert peak < PEAK_ALLOWED


def _content_or_error(flow: HTTPFlow) -> object:
    assert flow.response is not None
    try:
        return flow.response.content
    except ValueError as e:
        return e
