"""Record a body as it streams: the first ``limit`` bytes, the full size and a SHA-256."""

from __future__ import annotations

import hashlib

from inspector.flow import FlowBody


class BodyRecorder:
    """Memory stays bounded by ``limit`` however large the body is."""

    __slots__ = ("_buf", "_hash", "_limit", "size")

    def __init__(self, limit: int) -> None:
        self._limit = limit
        self._buf = bytearray()
        self._hash: hashlib._Hash | None = None
        self.size = 0

    def add(self, data: bytes) -> None:
        if not data:
            return
        self.size += len(data)
        room = self._limit - len(self._buf)
        if room > 0:
            self._buf += data if len(data) <= room else data[:room]
        if self._hash is None:
            self._hash = hashlib.sha256()
        self._hash.update(data)

    @property
    def complete(self) -> bool:
        """Every byte seen is held (the body can be re-sent from the recording)."""
        return len(self._buf) == self.size

    def body(self) -> FlowBody:
        data = bytes(self._buf)
        digest = self._hash.hexdigest() if self._hash is not None else None
        return FlowBody(data, self.size, self.size > len(data), digest)
