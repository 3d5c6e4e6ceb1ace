"""Every limit of the protocol layer, in one place.

Each cap on what a peer may send has a name here and an error where it is
enforced; the I/O shells' read sizes live here too. Other modules import these
names (``protocol.errors.MAX_LINE``, ``protocol.connection.MAX_HEADERS``,
``protocol.aio.READ_CHUNK`` and ``MAX_INTERIM`` stay importable where they were).
"""

from __future__ import annotations

MAX_LINE = 65536
"""Longest line: request line (414), status line, header line (431), chunk-size line.
``http.client``'s ``_MAXLINE``: a longer line raises ``LineTooLong``."""

MAX_HEADERS = 100
"""Most header fields in one head (``http.client``'s ``_MAXHEADERS``): the 101st raises
``got more than 100 headers`` as soon as it arrives, and a server answers 431."""

MAX_HEADER_BYTES = 65536
"""Largest header block after the start line; more raises a ``LineTooLong`` subclass
(a server answers 431)."""

MAX_INTERIM = 50
"""1xx responses the asyncio client accepts before the final one; more is a misbehaving server."""

READ_CHUNK = 262144
"""Largest read of the asyncio clients (HTTP/1.1 and HTTP/2) and of the proxy, and their
stream readers' limit: a reader stops reading the socket past twice this."""

SYNC_READ_CHUNK = 65536
"""How much one socket read of the synchronous client asks for when it may read ahead
(a response it owns the connection of): large reads keep the per-byte cost low."""
