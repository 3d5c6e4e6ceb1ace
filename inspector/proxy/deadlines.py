"""Read timeouts for every stream of the proxy, kept by one watchdog task.

An ``asyncio.timeout()`` around each read costs a timer handle scheduled and
cancelled per read, about a tenth of the proxy's CPU per request. Here a read only
notes its deadline in a dict; a watchdog ticking a few times per shortest timeout
fails the reads whose deadline passed by setting a TimeoutError on their stream.
"""

from __future__ import annotations

import asyncio
import contextlib

MIN_TICK = 0.02
MAX_TICK = 0.5


class ReadDeadlines:
    """``arm(reader, seconds)`` before awaiting a read, ``disarm(reader)`` after it."""

    def __init__(self) -> None:
        self._armed: dict[asyncio.StreamReader, float] = {}
        self._tick = MAX_TICK
        self._task: asyncio.Task[None] | None = None
        self._loop: asyncio.AbstractEventLoop | None = None

    def arm(self, reader: asyncio.StreamReader, seconds: float) -> None:
        loop = self._loop
        if loop is None:
            loop = self._loop = asyncio.get_running_loop()
        if seconds / 5 < self._tick:
            self._tick = max(MIN_TICK, seconds / 5)
        if self._task is None:
            self._task = loop.create_task(self._watch())
        self._armed[reader] = loop.time() + seconds

    def disarm(self, reader: asyncio.StreamReader) -> None:
        self._armed.pop(reader, None)

    async def _watch(self) -> None:
        loop = asyncio.get_running_loop()
        while True:
            await asyncio.sleep(self._tick)
            if not self._armed:
                continue
            now = loop.time()
            expired = [r for r, deadline in self._armed.items() if deadline <= now]
            for reader in expired:
                del self._armed[reader]
                reader.set_exception(TimeoutError("timed out"))

    async def close(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None
        self._armed.clear()
