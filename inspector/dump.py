"""``inspector dump``: the proxy in the foreground, one line per finished exchange on stdout.

Lines are rendered by ``inspector.render.flow_line`` on a printer thread, so a slow
terminal or pipe never stalls the proxy's event loop. Everything is recorded to the
session whatever is printed.
"""

from __future__ import annotations

import asyncio
import queue
import sys
import threading
from typing import TextIO

from inspector import filters, runtime
from inspector.bus import FINISHED, EventKind, FlowEvent
from inspector.config import Config
from inspector.flow import Flow
from inspector.render import flow_line

_STOP = object()


class LinePrinter:
    """Prints finished flows (RESPONSE) and exception events (ERROR) that pass the filter."""

    def __init__(
        self, flt: filters.Filter | None, *, quiet: bool, out: TextIO | None = None
    ) -> None:
        self.filter = flt
        self.quiet = quiet
        self.out = out or sys.stdout
        self._queue: queue.SimpleQueue[object] = queue.SimpleQueue()
        self._thread = threading.Thread(target=self._print_loop, name="inspector-dump", daemon=True)
        self._thread.start()

    def on_event(self, event: FlowEvent) -> None:
        """Bus subscriber: only hands the flow to the printer thread."""
        kind = event.kind
        if kind is EventKind.ERROR or (kind is EventKind.RESPONSE and not self.quiet):
            self._queue.put(event.flow)

    def _print_loop(self) -> None:
        while True:
            flow = self._queue.get()
            if flow is _STOP:
                return
            assert isinstance(flow, Flow)
            try:
                if self.filter is not None and not self.filter(flow):
                    continue
                self.out.write(flow_line(flow) + "\n")
                if self._queue.empty():
                    self.out.flush()
            except (OSError, ValueError):
                return  # stdout went away (a closed pipe): keep proxying, stop printing

    def close(self) -> None:
        """Print what is queued, then stop."""
        self._queue.put(_STOP)
        self._thread.join(10)
        try:
            self.out.flush()
        except (OSError, ValueError):
            pass


def run(config: Config) -> int:
    """Run the proxy until SIGINT/SIGTERM; 0 on a clean stop, 2 for a bad --filter."""
    if config.intercept:  # held flows wait for the UI to release them: here they never would
        print(
            "inspector: error: --intercept holds flows for editing in the UI, and "
            "`inspector dump` has none to release them: run `inspector --intercept EXPR`",
            file=sys.stderr,
        )
        return 2
    try:
        flt = filters.parse(config.filter) if config.filter else None
    except filters.FilterError as e:
        print(f"inspector: error: bad --filter expression: {e}", file=sys.stderr)
        print(f"filter syntax:\n{filters.HELP}", file=sys.stderr)
        return 2
    printer = LinePrinter(flt, quiet=config.quiet)

    def ready(rt: runtime.Runtime) -> None:
        rt.bus.subscribe(printer.on_event, FINISHED)

    loop = runtime.new_event_loop()
    try:
        loop.run_until_complete(runtime.run(config, ready))
    finally:
        printer.close()
        _close_loop(loop)
    return 0


def _close_loop(loop: asyncio.AbstractEventLoop) -> None:
    try:
        loop.run_until_complete(loop.shutdown_asyncgens())
    finally:
        loop.close()
