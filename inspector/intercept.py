"""Hold matching flows before they go upstream or back to the client, until the UI decides.

The proxy awaits ``hold(flow, stage)`` on its event loop; the UI (another thread)
calls ``resume(flow_id)`` or ``kill(flow_id)``. Held flows wait on their own
futures, so every other exchange keeps flowing.
"""

from __future__ import annotations

import asyncio
import threading
from dataclasses import dataclass

from inspector import filters
from inspector.bus import Bus, EventKind, FlowEvent
from inspector.flow import Flow

STAGES = ("request", "response")

__all__ = ["STAGES", "FlowKilled", "Interceptor"]


class FlowKilled(Exception):
    """The user killed a held flow in the UI (the proxy ends the exchange with it)."""

    def __init__(self, message: str = "killed by the user") -> None:
        super().__init__(message)


@dataclass(slots=True)
class _Held:
    flow: Flow
    stage: str
    future: asyncio.Future[None]
    loop: asyncio.AbstractEventLoop


class Interceptor:
    """The filter of flows to hold, and the flows held right now."""

    def __init__(self, expr: str | None = None, *, bus: Bus | None = None) -> None:
        self._filter: filters.Filter | None = None
        self.expr: str | None = None
        self.bus = bus
        self._held: dict[str, _Held] = {}
        self._lock = threading.Lock()
        self.set_filter(expr)

    def set_filter(self, expr: str | None) -> None:
        """Hold flows matching ``expr`` from now on (None or "" holds nothing); FilterError."""
        parsed = filters.parse(expr) if expr else None
        self._filter, self.expr = parsed, (expr or None)

    def matches(self, flow: Flow) -> bool:
        flt = self._filter
        return flt is not None and bool(flt(flow))

    async def hold(self, flow: Flow, stage: str) -> None:
        """Wait until the UI resumes the flow; FlowKilled if it kills it."""
        if stage not in STAGES:
            raise ValueError(f"stage must be one of {STAGES}, not {stage!r}")
        loop = asyncio.get_running_loop()
        held = _Held(flow, stage, loop.create_future(), loop)
        with self._lock:
            self._held[flow.id] = held
        flow.intercepted = True
        if self.bus is not None:
            self.bus.publish(FlowEvent(EventKind.INTERCEPTED, flow))
        try:
            await held.future
        finally:
            with self._lock:
                if self._held.get(flow.id) is held:
                    del self._held[flow.id]

    def held(self) -> list[Flow]:
        with self._lock:
            return [h.flow for h in self._held.values()]

    def stage_of(self, flow_id: str) -> str | None:
        with self._lock:
            held = self._held.get(flow_id)
        return held.stage if held is not None else None

    def resume(self, flow_id: str) -> bool:
        """Let a held flow go on (with any edits made to it); False if it is not held."""
        return self._settle(flow_id, None)

    def kill(self, flow_id: str) -> bool:
        """Drop a held flow: its client gets an error; False if it is not held."""
        return self._settle(flow_id, FlowKilled())

    def resume_all(self) -> None:
        for flow in self.held():
            self.resume(flow.id)

    def _settle(self, flow_id: str, exc: BaseException | None) -> bool:
        with self._lock:
            held = self._held.pop(flow_id, None)
        if held is None:
            return False

        def settle() -> None:
            if held.future.done():
                return
            if exc is None:
                held.future.set_result(None)
            else:
                held.future.set_exception(exc)

        held.loop.call_soon_threadsafe(settle)
        return True
