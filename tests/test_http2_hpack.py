"""protocol.http2_hpack against the hpack package (the reference), both directions.

Every block our encoder writes must decode to the same fields with hpack's decoder, and
every block hpack writes (Huffman-coded, indexed, table size updates) must decode with
ours, across table evictions and resizes; malformed blocks raise hpack's error classes,
which h2 turns into COMPRESSION_ERROR.
"""

from __future__ import annotations

import random

import h2.config
import h2.connection
import hpack
import pytest
from hpack import HeaderTuple, NeverIndexedHeaderTuple

from protocol.http2_hpack import Decoder, Encoder, encode_integer, install

NAMES = [b"date", b"server", b"x-trace", b"cookie", b":path", b"content-length", b"x-" + b"n" * 60]


def random_fields(rng: random.Random) -> list[tuple[bytes, bytes]]:
    fields = [(b":status", rng.choice([b"200", b"404", b"299"]))]
    for _ in range(rng.randint(0, 12)):
        size = rng.choice([0, 1, 5, 30, 300, 2000])
        value = bytes(rng.choice(b"abcxyz019 ;=/\xc3\xa9") for _ in range(size)).strip()
        fields.append((rng.choice(NAMES), value))
    return fields


@pytest.mark.parametrize("resize", [False, True])
def test_blocks_round_trip_with_hpack_both_ways(resize: bool) -> None:
    rng = random.Random(7)
    ours_out, theirs_in = Encoder(), hpack.Decoder()
    theirs_out, ours_in = hpack.Encoder(), Decoder()
    for i in range(600):
        if resize and i % 50 == 0:
            size = rng.choice([0, 64, 256, 4096])
            ours_out.header_table_size = size
            theirs_out.header_table_size = size
        fields = random_fields(rng)
        assert [tuple(f) for f in theirs_in.decode(ours_out.encode(fields), raw=True)] == fields
        assert [tuple(f) for f in ours_in.decode(theirs_out.encode(fields))] == fields
    assert ours_out.table.size <= ours_out.header_table_size


def test_repeated_fields_are_indexed_and_sensitive_ones_never() -> None:
    encoder = Encoder()
    fields = [(b"x-trace", b"abc"), NeverIndexedHeaderTuple(b"authorization", b"secret")]
    first, second = encoder.encode(fields), encoder.encode(fields)
    assert len(second) < len(first)
    assert second[0] == 0x80 | 62  # x-trace: the newest (only) dynamic entry
    assert b"secret" in second  # never indexed: sent literally each time
    decoded = hpack.Decoder().decode(first, raw=True)
    assert isinstance(decoded[1], NeverIndexedHeaderTuple)
    assert isinstance(Decoder().decode(first)[1], NeverIndexedHeaderTuple)  # kept on receipt


def test_a_table_size_change_is_signalled_first_smallest_then_last() -> None:
    encoder = Encoder()
    encoder.header_table_size = 0
    encoder.header_table_size = 1024
    block = encoder.encode([HeaderTuple(b"x-a", b"1")])
    assert block.startswith(encode_integer(0, 5, 0x20) + encode_integer(1024, 5, 0x20))
    decoder = hpack.Decoder()
    assert decoder.decode(block, raw=True) == [(b"x-a", b"1")]
    assert decoder.header_table_size == 1024


@pytest.mark.parametrize(
    ("block", "error"),
    [
        (b"\x80", hpack.exceptions.InvalidTableIndex),  # index 0
        (b"\xbf", hpack.exceptions.InvalidTableIndex),  # index 63: the table is empty
        (b"\xff\xff\xff\xff\xff\xff\xff\x7f", hpack.HPACKDecodingError),  # endless integer
        (b"\x40\x05ab", hpack.HPACKDecodingError),  # a name cut short
        (b"\x3f\xe2\x1f", hpack.exceptions.InvalidTableSizeError),  # 4097: past our 4096
        (b"\x82\x20", hpack.HPACKDecodingError),  # a size update after a field
        (b"\x00\x81\xff\x00", hpack.HPACKDecodingError),  # a Huffman string with EOS
    ],
)
def test_malformed_blocks_raise_hpack_errors(block: bytes, error: type[Exception]) -> None:
    with pytest.raises(error):
        Decoder().decode(block)


def test_an_oversized_header_list_is_refused() -> None:
    decoder = Decoder(max_header_list_size=100)
    block = hpack.Encoder().encode([(b"x-a", b"v" * 40), (b"x-b", b"v" * 40)])
    with pytest.raises(hpack.exceptions.OversizedHeaderListError):
        decoder.decode(block)


def test_install_keeps_the_connections_limits_and_h2_speaks_through_it() -> None:
    client = h2.connection.H2Connection(h2.config.H2Configuration(header_encoding=None))
    server = h2.connection.H2Connection(
        h2.config.H2Configuration(client_side=False, header_encoding=None)
    )
    limit = client.decoder.max_header_list_size
    install(client)
    install(server)
    assert isinstance(client.decoder, Decoder)
    assert client.decoder.max_header_list_size == limit
    client.initiate_connection()
    server.initiate_connection()
    server.receive_data(client.data_to_send())
    client.receive_data(server.data_to_send())
    request = [(b":method", b"GET"), (b":scheme", b"https"), (b":authority", b"h")]
    request.append((b":path", b"/"))
    for _ in range(3):
        stream_id = client.get_next_available_stream_id()
        client.send_headers(stream_id, request, end_stream=True)
        events = server.receive_data(client.data_to_send())
        assert [e.headers for e in events if hasattr(e, "headers")] == [request]
