"""The event bus: the proxy publishes flow events, the store, dump and TUI subscribe.

``publish`` runs on the proxy's hot path, so it is a plain loop over a tuple of
subscribers, called synchronously in the publisher's thread. Subscribers must only
hand the event off (append to a deque or queue). A subscriber may name the kinds it
wants; ``wants(kind)`` lets a publisher skip building events no one listens to.
Subscribing and unsubscribing replace the tuples under a lock (copy on write), so a
publish in progress is never disturbed and never takes the lock.
"""

from __future__ import annotations

import sys
import threading
import traceback
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from enum import StrEnum
from typing import TextIO

from inspector.flow import Flow


class EventKind(StrEnum):
    STARTED = "started"  # the request head arrived from the client
    REQUEST = "request"  # the request (head and body) is complete
    RESPONSE_HEADERS = "response_headers"  # the response head arrived from the upstream
    RESPONSE = "response"  # the response is complete: the flow is finished
    ERROR = "error"  # the exchange failed: the flow is finished
    WEBSOCKET = "websocket"  # a WebSocket message was added to the flow
    INTERCEPTED = "intercepted"  # the flow is held for the user
    UPDATED = "updated"  # the flow changed otherwise (resumed, edited, marked)
    REMOVED = "removed"  # the flow was deleted


FINISHED = (EventKind.RESPONSE, EventKind.ERROR)  # the kinds that end a flow


@dataclass(frozen=True, slots=True)
class FlowEvent:
    kind: EventKind
    flow: Flow


Subscriber = Callable[[FlowEvent], object]


class Bus:
    """Synchronous publish/subscribe of ``FlowEvent``s; a failing subscriber is dropped."""

    __slots__ = ("_by_kind", "_lock", "_stderr", "_subscribers")

    def __init__(self, *, stderr: TextIO | None = None) -> None:
        self._subscribers: tuple[tuple[Subscriber, frozenset[EventKind]], ...] = ()
        self._by_kind: dict[EventKind, tuple[Subscriber, ...]] = dict.fromkeys(EventKind, ())
        self._lock = threading.Lock()
        self._stderr = stderr

    def subscribe(
        self, callback: Subscriber, kinds: Iterable[EventKind] | None = None
    ) -> Callable[[], None]:
        """Call ``callback(event)`` for every event (of ``kinds``, when given) from now on.

        Returns the unsubscribe function.
        """
        wanted = frozenset(EventKind if kinds is None else kinds)
        with self._lock:
            self._set((*self._subscribers, (callback, wanted)))
        done = False

        def unsubscribe() -> None:
            nonlocal done
            if not done:
                done = True
                self._remove(callback)

        return unsubscribe

    def wants(self, kind: EventKind) -> bool:
        """Whether any subscriber takes events of ``kind``."""
        return bool(self._by_kind[kind])

    def publish(self, event: FlowEvent) -> None:
        for callback in self._by_kind[event.kind]:
            try:
                callback(event)
            except Exception as exc:
                self._drop_failed(callback, event, exc)

    def __len__(self) -> int:
        return len(self._subscribers)

    def _set(self, subscribers: tuple[tuple[Subscriber, frozenset[EventKind]], ...]) -> None:
        """Install a new subscriber list (the lock is held)."""
        self._by_kind = {
            kind: tuple(cb for cb, wanted in subscribers if kind in wanted) for kind in EventKind
        }
        self._subscribers = subscribers

    def _remove(self, callback: Subscriber) -> bool:
        """Remove one subscription of ``callback``; False when it was not subscribed."""
        with self._lock:
            subs = self._subscribers
            for i, (sub, _) in enumerate(subs):
                if sub is callback:
                    self._set(subs[:i] + subs[i + 1 :])
                    return True
        return False

    def _drop_failed(self, callback: Subscriber, event: FlowEvent, exc: Exception) -> None:
        # Only the thread that actually removes it reports, so the report appears once.
        if not self._remove(callback):
            return
        out = self._stderr if self._stderr is not None else sys.stderr
        name = getattr(callback, "__qualname__", None) or repr(callback)
        lines = traceback.format_exception(type(exc), exc, exc.__traceback__)
        try:
            out.write(
                f"inspector: event subscriber {name} raised on a {event.kind} event and was "
                f"unsubscribed (the proxy keeps running):\n{''.join(lines)}"
            )
            out.flush()
        except (OSError, ValueError):
            pass  # stderr closed: nothing more we can do, and the proxy must go on
