"""TUI benchmark: key-press latency over a big session while flows keep arriving.

Builds a session of --flows flows (default 100,000), runs the app headless with
``App.run_test`` while a thread publishes --rate new flows per second on the bus
(recorded to the store as the proxy does), and measures how long the UI takes to
handle a key press: moving the cursor, paging, opening a flow's detail, applying a
filter (the key press, and until the filtered list is painted), a global search (until
its results are painted). Prints p50/p95/max, the garbage collector's pauses by
generation (the usual cause of a slow key) and memory (RSS, peak RSS).

    PYTHONPATH=. python bench/bench_tui.py [--flows 100000] [--rate 1000] [--presses 200]
        [--filters 40] [--searches 10] [--session FILE]

A session given with --session is built there once and reused; the flows published
live are recorded into it too, so reuse a copy when the figures must be comparable.
With --rate 0 the session is opened read-only, as ``inspector show`` opens it.
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import os
import sys
import tempfile
import threading
import time
from collections.abc import Callable
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from textual import events
from textual.screen import Screen
from textual.widgets import Input

from inspector.bus import Bus, EventKind, FlowEvent
from inspector.store import Store
from inspector.tui.app import InspectorApp
from inspector.tui.screens.search_results import SearchResultsScreen
from inspector.tui.session import Session
from inspector.tui.widgets.filter_bar import FilterBar
from inspector.tui.widgets.flow_table import FlowTable
from inspector.tui.widgets.status_bar import SourceInfo
from tests.tui_fixtures import numbered_flow

KEY_TIMEOUT = 30.0  # seconds a key may take before the benchmark gives up


def rss_mb() -> float:
    with open("/proc/self/statm") as f:
        pages = int(f.read().split()[1])
    return pages * os.sysconf("SC_PAGE_SIZE") / 1e6


def peak_rss_mb() -> float:
    """The process's highest RSS so far (VmHWM)."""
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) * 1024 / 1e6
    return 0.0


def build(path: Path, n: int) -> float:
    start = time.perf_counter()
    store = Store(path)
    for i in range(n):
        store.put(numbered_flow(i))
    store.close()
    return time.perf_counter() - start


class Publisher(threading.Thread):
    """Publishes ``rate`` finished flows per second, as the proxy thread would."""

    def __init__(self, bus: Bus, first: int, rate: float) -> None:
        super().__init__(daemon=True)
        self.bus, self.next, self.rate = bus, first, rate
        self.stop = threading.Event()
        self.sent = 0

    def run(self) -> None:
        period = 0.01  # publish in 10 ms slices
        per_slice = max(1, round(self.rate * period))
        deadline = time.perf_counter()
        while self.rate > 0 and not self.stop.is_set():
            for _ in range(per_slice):
                flow = numbered_flow(self.next)
                flow.id = f"live{self.next:028x}"
                self.next += 1
                self.bus.publish(FlowEvent(EventKind.STARTED, flow))
                self.bus.publish(FlowEvent(EventKind.RESPONSE, flow))
                self.sent += 1
            deadline += period
            time.sleep(max(0.0, deadline - time.perf_counter()))


def pct(values: list[float], q: float) -> float:
    values = sorted(values)
    return values[min(len(values) - 1, int(q * len(values)))] * 1000


def report(name: str, values: list[float]) -> None:
    if not values:
        return
    print(
        f"{name:<38} n={len(values):<4} p50 {pct(values, 0.5):7.1f} ms   "
        f"p95 {pct(values, 0.95):7.1f} ms   max {max(values) * 1000:7.1f} ms"
    )


class Pauses:
    """The cyclic garbage collector's pauses by generation (gc.callbacks), while measuring.

    Wall-clock pauses include time other processes took the core; the CPU time the
    collections used (thread_time) is the steadier figure on a shared machine.
    """

    def __init__(self) -> None:
        self.by_generation: dict[int, list[tuple[float, float]]] = {0: [], 1: [], 2: []}
        self._start = (0.0, 0.0)
        self.recording = False
        gc.callbacks.append(self._callback)

    def _callback(self, phase: str, info: dict) -> None:
        if phase == "start":
            self._start = (time.perf_counter(), time.thread_time())
        elif self.recording:
            wall, cpu = self._start
            self.by_generation[info["generation"]].append(
                (time.perf_counter() - wall, time.thread_time() - cpu)
            )

    def report(self, seconds: float) -> None:
        for generation, pauses in self.by_generation.items():
            if pauses:
                walls = [w for w, _ in pauses]
                cpus = [c for _, c in pauses]
                print(
                    f"GC gen {generation}: {len(pauses) / seconds:6.1f}/s, "
                    f"{sum(walls) / seconds:5.1%} of the time ({sum(cpus) / seconds:5.1%} CPU), "
                    f"p50 {pct(walls, 0.5):6.1f} ms ({pct(cpus, 0.5):6.1f} CPU), "
                    f"max {max(walls) * 1000:6.1f} ms"
                )


class Frames:
    """Counts screen repaints and their cost, by wrapping the screen's compositor refresh.

    ``expect(name, done)`` asks for the end of the first repaint that starts once
    ``done()`` holds (the one that shows the effect of a key press): ``shown[name]``.
    """

    def __init__(self) -> None:
        self.count = 0
        self.costs: list[float] = []
        self._expected: dict[str, Callable[[], bool]] = {}
        self.shown: dict[str, float] = {}
        original = Screen._compositor_refresh

        def refresh(screen: Screen) -> None:
            start = time.perf_counter()
            shows = [name for name, done in self._expected.items() if done()]
            original(screen)
            end = time.perf_counter()
            for name in shows:
                del self._expected[name]
                self.shown[name] = end
            self.costs.append(end - start)
            self.count += 1

        Screen._compositor_refresh = refresh  # type: ignore[method-assign]

    def expect(self, name: str, done: Callable[[], bool]) -> None:
        self.shown.pop(name, None)
        self._expected[name] = done


async def key_latency(app: InspectorApp, frames: Frames, key: str, done) -> float:
    """Seconds from a key press until its effect (``done()``) is painted on screen.

    Pilot.press waits for the whole process to go idle, which never happens while flows
    keep arriving, so the key goes to the driver and the repaint is waited for.
    """
    start = time.perf_counter()
    char = {"enter": "\r", "escape": "\x1b"}.get(key, key if len(key) == 1 else None)
    frames.expect("key", done)
    app._driver.send_message(events.Key(key, char))
    return await painted(frames, "key", start, f"key {key!r}")


async def painted(frames: Frames, name: str, start: float, what: str) -> float:
    """Seconds from ``start`` until the repaint expected as ``name`` has ended."""
    while name not in frames.shown:
        await asyncio.sleep(0.0005)
        if time.perf_counter() - start > KEY_TIMEOUT:
            raise TimeoutError(f"{what} was not painted within {KEY_TIMEOUT} s")
    return frames.shown[name] - start


async def search_latencies(
    app: InspectorApp, frames: Frames, list_screen: Screen, count: int, flows: int
) -> list[float]:
    """Seconds from enter in the search prompt until the results screen shows its hits
    (a word of the bodies: ``{"n": N}``, also in the URL)."""
    latencies = []
    for i in range(count):
        word = str((1000 + i * 7919) % flows)
        await key_latency(app, frames, "slash", lambda: bool(app.screen.query(FilterBar)))
        await asyncio.sleep(0.05)
        app.screen.query_one(FilterBar).query_one(Input).value = word

        def found() -> bool:
            screen = app.screen
            return isinstance(screen, SearchResultsScreen) and bool(screen.result_ids)

        latencies.append(await key_latency(app, frames, "enter", found))
        await asyncio.sleep(0.05)
        await key_latency(app, frames, "escape", lambda: app.screen is list_screen)
        await asyncio.sleep(0.05)
    return latencies


async def run(args: argparse.Namespace, path: Path) -> None:
    if args.rate:  # recorded to as the proxy does
        store = Store(path)
        bus = Bus()
        bus.subscribe(lambda e: e.kind is EventKind.RESPONSE and store.put(e.flow))
        info = SourceInfo(session=str(path), address="http://127.0.0.1:8080")
    else:  # nothing arrives: the file read only, as `inspector show` opens it
        store = Store(path, readonly=True)
        bus = Bus()
        info = SourceInfo(session=str(path), readonly=True)
    app = InspectorApp(Session(store=store, info=info, bus=bus))
    frames = Frames()
    pauses = Pauses()
    before = rss_mb()
    started = time.perf_counter()
    frames.expect("first screen", lambda: len(app.state.index) > 0)
    async with app.run_test(size=(160, 50)) as pilot:
        while not app.loaded:
            await pilot.pause(0.05)
        load = time.perf_counter() - started
        await pilot.pause(0.2)
        first = frames.shown["first screen"] - started
        print(f"first screen (rows painted) {first:.2f} s after the app started")
        print(f"loaded {app.state.index.total} flows into the list in {load:.2f} s")
        print(f"RSS {before:.0f} MB before load, {rss_mb():.0f} MB after")
        publisher = Publisher(bus, args.flows, args.rate)
        publisher.start()
        table = app.screen.query_one(FlowTable)
        list_screen = app.screen
        await pilot.press("home")
        frames.costs.clear()
        pauses.recording = True
        measured_from = time.perf_counter()
        moves = []
        for i in range(args.presses):
            before_cursor = table.cursor
            key = "up" if i % 2 else "down"
            moves.append(
                await key_latency(app, frames, key, lambda b=before_cursor: table.cursor != b)
            )
        pages = []
        for i in range(max(2, args.presses // 4)):
            before_cursor = table.cursor
            key = "pageup" if i % 2 else "pagedown"
            pages.append(
                await key_latency(app, frames, key, lambda b=before_cursor: table.cursor != b)
            )
        opens, backs = [], []
        for i in range(max(1, args.presses // 10)):
            table.follow = False
            table.cursor = (i * 7919) % len(app.state.index)
            await asyncio.sleep(0.05)
            opens.append(
                await key_latency(app, frames, "enter", lambda: app.screen is not list_screen)
            )
            await asyncio.sleep(0.05)
            backs.append(
                await key_latency(app, frames, "escape", lambda: app.screen is list_screen)
            )
        keys, results = [], []
        prompt = list_screen.query_one("#prompt")
        for i in range(args.filters):
            expr = "~c 404" if i % 2 else "~m PUT & ~d host1"
            await key_latency(app, frames, "f", lambda: bool(app.screen.query(FilterBar)))
            await asyncio.sleep(0.05)  # the prompt's input has the focus
            app.screen.query_one(FilterBar).query_one(Input).value = expr

            def filtered(expr: str = expr) -> bool:
                """The query for ``expr`` was answered and the table sized for its rows
                (not the worker's end: its state changes after the answer is shown)."""
                index = app.state.index
                return (
                    app.state.filter_expr == expr
                    and index.expr == expr
                    and index.pending is None
                    and table.virtual_size.height == len(index) + 1
                )

            start = time.perf_counter()
            frames.expect("filtered", filtered)
            keys.append(await key_latency(app, frames, "enter", lambda: not prompt.display))
            results.append(await painted(frames, "filtered", start, f"filter {expr!r}"))
            while app.screen.query(FilterBar):  # closed prompts leave the DOM a little later
                await asyncio.sleep(0.001)
            await asyncio.sleep(0.1)
        searches = await search_latencies(app, frames, list_screen, args.searches, args.flows)
        pauses.recording = False
        measured = time.perf_counter() - measured_from
        publisher.stop.set()
        publisher.join()
        await pilot.pause(0.3)
        print(f"published {publisher.sent} live flows meanwhile ({args.rate:.0f}/s)")
        report("move (up/down) to painted", moves)
        report("page (pagedown/pageup) to painted", pages)
        report("open detail (enter) to painted", opens)
        report("back to list (escape) to painted", backs)
        report("filter (enter) to painted", keys)
        report("filter until the list is painted", results)
        report("search (enter) until results painted", searches)
        report("screen repaint cost", frames.costs)
        pauses.report(measured)
        total = app.state.index.total
        print(f"RSS at the end {rss_mb():.0f} MB for {total} flows, peak {peak_rss_mb():.0f} MB")
    store.close()


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--flows", type=int, default=100_000)
    parser.add_argument("--rate", type=float, default=1000.0, help="live flows per second")
    parser.add_argument("--presses", type=int, default=200, help="cursor moves")
    parser.add_argument("--filters", type=int, default=40, help="filters applied")
    parser.add_argument("--searches", type=int, default=10, help="global searches")
    parser.add_argument("--session", type=Path, help="reuse/build the session here")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        path = args.session or Path(tmp) / "bench.db"
        if not path.exists():
            print(f"building a {args.flows}-flow session: {build(path, args.flows):.1f} s")
        asyncio.run(run(args, path))
    return 0


if __name__ == "__main__":
    sys.exit(main())
