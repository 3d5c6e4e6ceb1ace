"""A replayed response body as it streams in: the first bytes kept, the whole size and hash."""

from __future__ import annotations

import hashlib

from inspector.flow import FlowBody


class BodyRecorder:
    """Keeps up to ``limit`` bytes of a body as it streams past, with its size and SHA-256."""

    def __init__(self, limit: int) -> None:
        self.limit = limit
        self._digest = hashlib.sha256()
        self._kept = bytearray()
        self._size = 0

    def add(self, chunk: bytes) -> None:
        self._digest.update(chunk)
        self._size += len(chunk)
        if len(self._kept) < self.limit:
            self._kept += chunk[: self.limit - len(self._kept)]

    def body(self) -> FlowBody:
        kept = bytes(self._kept)
        return FlowBody(
            data=kept,
            size=self._size,
            truncated=self._size > len(kept),
            sha256=self._digest.hexdigest(),
        )
