"""The sans-IO WebSocket codec behind the ``websocket_message`` hook: frames, messages,
limits, protocol errors and permessage-deflate, fed as bytes arrive."""

from __future__ import annotations

import zlib

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from inspector.proxy.wsdeflate import (
    Agreement,
    DeflateCodec,
    UnsupportedExtension,
    parse_agreement,
)
from inspector.proxy.wsframes import (
    Frame,
    FrameError,
    Message,
    MessageReader,
    MessageTooBig,
    close_payload,
    encode_frame,
)
from inspector.websocket import Opcode, WebSocketMessage
from tests.test_proxy_websocket import frame

MASK = b"\x37\xfa\x21\x3d"


def drain(reader: MessageReader, data: bytes, *, byte_by_byte: bool = False) -> list[object]:
    out: list[object] = []
    for chunk in [data[i : i + 1] for i in range(len(data))] if byte_by_byte else [data]:
        reader.receive(chunk)
        while (item := reader.next_item()) is not None:
            out.append(item)
    return out


@pytest.mark.parametrize("byte_by_byte", [False, True])
def test_lengths_fragments_and_interleaved_control(byte_by_byte: bool) -> None:
    big = bytes(range(256)) * 300  # 76,800 bytes: a 64-bit length
    mid = b"m" * 300  # a 16-bit length
    wire = (
        frame(2, big, mask=MASK)
        + frame(1, b"frag", fin=False, mask=MASK)
        + frame(9, b"ping!", mask=MASK)
        + frame(0, mid, fin=False, mask=MASK)
        + frame(10, b"", mask=MASK)
        + frame(0, b"end", mask=MASK)
        + frame(8, close_payload(1000, "bye"))  # unmasked: a server's
    )
    items = drain(MessageReader(1 << 20), wire, byte_by_byte=byte_by_byte)
    assert items == [
        Message(2, big),
        Frame(9, b"ping!", frame(9, b"ping!", mask=MASK)),
        Frame(10, b"", frame(10, b"", mask=MASK)),
        Message(1, b"frag" + mid + b"end", frames=3),
        Frame(8, b"\x03\xe8bye", frame(8, b"\x03\xe8bye")),
    ]


def test_encode_frame_round_trips_with_a_fresh_mask() -> None:
    for n in (0, 125, 126, 65535, 65536):
        payload = bytes(range(256)) * (n // 256) + bytes(n % 256)
        a = encode_frame(2, payload, masked=True)
        b = encode_frame(2, payload, masked=True)
        assert a != b or n == 0  # each masked frame gets its own random key
        assert drain(MessageReader(1 << 20), a) == [Message(2, payload)]
        assert encode_frame(2, payload, masked=False) == frame(2, payload)


@pytest.mark.parametrize(
    ("wire", "text"),
    [
        (frame(3, b"x"), "reserved opcode 0x3"),
        (frame(0, b"x"), "continuation frame with no message started"),
        (frame(1, b"a", fin=False) + frame(1, b"b"), "a new message before"),
        (frame(9, b"p" * 126), "control frame longer than 125 bytes"),
        (frame(9, b"p", fin=False), "or split"),
        (bytes([0x81 | 0x40, 1]) + b"x", "reserved bits"),  # RSV1 with no extension
    ],
)
def test_protocol_errors_close_1002(wire: bytes, text: str) -> None:
    with pytest.raises(FrameError) as e:
        drain(MessageReader(1024), wire)
    assert e.value.code == 1002 and text in e.value.reason


def test_limit_is_checked_before_the_payload_arrives() -> None:
    reader = MessageReader(100)
    assert drain(reader, frame(1, b"a" * 60, fin=False)) == []
    # The second fragment's header alone is enough to refuse it: 60 + 41 > 100.
    with pytest.raises(MessageTooBig) as e:
        drain(reader, frame(0, b"b" * 41)[:2])
    assert e.value.code == 1009 and "more than 100 bytes" in e.value.reason
    assert drain(MessageReader(100), frame(1, b"c" * 100)) == [Message(1, b"c" * 100)]


def test_rsv1_allowed_with_deflate_and_flagged_compressed() -> None:
    wire = bytes([0xC1, 3]) + b"abc"
    (message,) = drain(MessageReader(100, extensions_rsv1=True), wire)
    assert message == Message(1, b"abc", compressed=True)


def test_agreement_parsing() -> None:
    assert parse_agreement(None) is None
    assert parse_agreement("permessage-deflate") == Agreement()
    terms = parse_agreement(
        "permessage-deflate; server_no_context_takeover; client_max_window_bits=10"
    )
    assert terms == Agreement(client_bits=10, server_no_takeover=True)
    for bad in ("x-webkit-deflate-frame", "permessage-deflate; server_max_window_bits=20"):
        with pytest.raises(UnsupportedExtension):
            parse_agreement(bad)


@pytest.mark.parametrize("no_takeover", [False, True])
def test_deflate_codec_round_trip_with_the_peers_inflater(no_takeover: bool) -> None:
    """What the codec deflates, an independent inflater with the agreed window reads,
    message after message (context kept unless the receiver asked otherwise)."""
    codec = DeflateCodec.for_direction(
        Agreement(client_bits=10, client_no_takeover=no_takeover), from_client=True
    )
    peer = zlib.decompressobj(-10)
    texts = [b"the same words again " * 20, b"the same words again " * 21, b"other"]
    sizes = []
    for text in texts:
        payload = codec.deflate(text)
        sizes.append(len(payload))
        assert peer.decompress(payload + b"\x00\x00\xff\xff") == text
        if no_takeover:
            peer = zlib.decompressobj(-10)
    # With context takeover the second, repeated message costs a few bytes.
    assert (sizes[1] < 10) is not no_takeover


def test_inflate_limit_and_corrupt_data() -> None:
    sender = zlib.compressobj(9, zlib.DEFLATED, -15)
    bomb = sender.compress(bytes(1 << 20)) + sender.flush(zlib.Z_SYNC_FLUSH)
    with pytest.raises(MessageTooBig) as e:
        DeflateCodec(15, False).inflate(bomb[:-4], 1000)
    assert e.value.code == 1009 and "inflating to more than 1000 bytes" in e.value.reason
    with pytest.raises(FrameError) as e2:
        DeflateCodec(15, False).inflate(b"\xff\xff\xff", 1000)
    assert e2.value.code == 1007


def test_the_addon_message_object() -> None:
    text = WebSocketMessage(1, "héllo".encode(), True, 12.5)
    assert (text.type, text.is_text, text.text, text.timestamp) == (
        Opcode.TEXT,
        True,
        "héllo",
        12.5,
    )
    text.text = "bye"
    assert text.content == b"bye" and not text.dropped and not text.injected
    text.content = "str works too"
    assert text.content == b"str works too"
    text.drop()
    assert text.dropped and "dropped" in repr(text)
    binary = WebSocketMessage(2, b"\x00\x01", False)
    assert not binary.is_text
    with pytest.raises(AttributeError, match=r"binary WebSocket message has no \.text"):
        _ = binary.text
    with pytest.raises(TypeError, match="takes bytes"):
        binary.content = 5  # type: ignore[assignment]


@settings(max_examples=200, deadline=None)
@given(
    frames=st.lists(
        st.tuples(
            st.sampled_from([0, 1, 2, 8, 9, 10]),
            st.binary(max_size=300),
            st.booleans(),
            st.booleans(),
        ),
        max_size=8,
    ),
    cuts=st.lists(st.integers(min_value=0, max_value=3000), max_size=6),
    noise=st.binary(max_size=20),
)
def test_any_bytes_give_items_or_a_frame_error_however_cut(
    frames: list[tuple[int, bytes, bool, bool]], cuts: list[int], noise: bytes
) -> None:
    """Arbitrary frame sequences (valid or not, then noise) give the same items whether
    fed whole or cut anywhere, and nothing but a FrameError ever escapes."""
    wire = (
        b"".join(
            frame(op, payload, fin=fin, mask=MASK if masked else None)
            for op, payload, fin, masked in frames
        )
        + noise
    )

    def run(chunks: list[bytes]) -> tuple[list[object], int | None]:
        reader, out = MessageReader(1000, extensions_rsv1=True), []
        try:
            for chunk in chunks:
                reader.receive(chunk)
                while (item := reader.next_item()) is not None:
                    out.append(item)  # taken one at a time, as the relay does
        except FrameError as e:
            return out, e.code
        return out, None

    points = sorted({min(c, len(wire)) for c in cuts})
    pieces = [wire[a:b] for a, b in zip([0, *points], [*points, len(wire)], strict=True)]
    assert run([wire]) == run(pieces)
