"""An asyncio stream whose reader counts what its transport fed it.

Beside what a connection has read, that count tells whether a peer sent anything while
nobody was reading (an idle keep-alive connection), which no public StreamReader call says.
"""

from __future__ import annotations

import asyncio

from protocol.limits import READ_CHUNK


class CountingReader(asyncio.StreamReader):
    """A StreamReader that counts the bytes its transport fed it. Beside what the
    connection read, that tells whether a peer sent anything while nobody was reading,
    which no public StreamReader call says."""

    fed = 0

    def feed_data(self, data: bytes) -> None:
        self.fed += len(data)
        _feed_data(self, data)


_feed_data = asyncio.StreamReader.feed_data  # one lookup, not super() per read


async def open_counted(
    host: str, port: int, local_addr: tuple[str, int] | None
) -> tuple[CountingReader, asyncio.StreamWriter]:
    """``asyncio.open_connection`` with a ``CountingReader``."""
    loop = asyncio.get_running_loop()
    reader = CountingReader(limit=READ_CHUNK, loop=loop)
    transport, protocol = await loop.create_connection(
        lambda: asyncio.StreamReaderProtocol(reader, loop=loop), host, port, local_addr=local_addr
    )
    return reader, asyncio.StreamWriter(transport, protocol, reader, loop)
