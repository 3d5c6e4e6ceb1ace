"""Run addon scripts' hooks on the proxy's event loop, contained.

The proxy never stops for an addon: an exception in a hook is returned to the caller
(which records it on the flow), a hook that holds the event loop longer than
``SLOW_HOOK`` seconds is reported by name (each step of an ``async`` hook is timed,
not the awaits in between), and a script that fails to load or reload is reported and
has no hooks until it loads cleanly. ``watch()`` reloads a script within ``POLL`` seconds
of its file changing; exchanges in flight go on (a hook already running finishes in
the old code), and no connection is touched.
"""

from __future__ import annotations

import asyncio
import sys
import time
from collections import deque
from collections.abc import Callable, Generator, Iterable
from pathlib import Path
from typing import Any

from inspector.addons.script import Hook, Script, ScriptError, where_in

SLOW_HOOK = 1.0  # seconds a hook may hold the event loop before it is reported
POLL = 0.25  # seconds between looks at the script files (reload within about a second)
HISTORY = 50  # reports kept for a UI that starts listening after they were made


def _stderr(message: str) -> None:
    print(f"inspector: {message}", file=sys.stderr, flush=True)


class HookFailed(Exception):
    """A hook raised; ``where`` is ``file.py:LINE``, ``label`` the hook, ``exc`` the error."""

    def __init__(self, label: str, exc: BaseException, where: str) -> None:
        super().__init__(f"{exc} ({where}, in {label})")
        self.label = label
        self.exc = exc
        self.where = where


class _Timed:
    """Await a coroutine, timing each step it runs on the loop (what blocks the loop)."""

    __slots__ = ("coro", "on_step")

    def __init__(self, coro: Any, on_step: Callable[[float], None]) -> None:
        self.coro = coro
        self.on_step = on_step

    def __await__(self) -> Generator[Any, Any, Any]:
        coro, value, error = self.coro, None, None
        while True:
            started = time.perf_counter()
            try:
                step = coro.throw(error) if error is not None else coro.send(value)
            except StopIteration as done:
                self.on_step(time.perf_counter() - started)
                return done.value
            self.on_step(time.perf_counter() - started)
            try:
                value, error = (yield step), None
            except BaseException as e:  # cancellation and the like go into the coroutine
                value, error = None, e


class AddonHost:
    """The loaded scripts, in command-line order; their hooks run in that order."""

    def __init__(
        self,
        paths: Iterable[Path],
        report: Callable[[str], None] = _stderr,
        *,
        slow: float = SLOW_HOOK,
    ) -> None:
        self.scripts = [Script(Path(p)) for p in paths]
        self.report = report  # how load failures and slow hooks reach the user
        self.history: deque[str] = deque(maxlen=HISTORY)  # the latest reports, oldest first
        self.slow = slow
        self.running = False

    def __bool__(self) -> bool:
        return bool(self.scripts)

    def _say(self, message: str) -> None:
        self.history.append(message)
        self.report(message)

    def load_all(self) -> None:
        for script in self.scripts:
            self._load(script)

    def _load(self, script: Script) -> bool:
        try:
            script.load()
        except ScriptError as e:
            self._say(f"addon {script.name} is off until it loads cleanly: {e}")
            return False
        for note in script.notes:
            self._say(f"addon note: {note}")
        return True

    def hooks(self, name: str) -> list[Hook]:
        return [hook for script in self.scripts for hook in script.hooks.get(name, ())]

    def has(self, name: str) -> bool:
        return any(name in script.hooks for script in self.scripts)

    async def call(self, hook: Hook, *args: object) -> None:
        """Run one hook; HookFailed when it raises (never anything else but cancellation)."""
        started = time.perf_counter()
        try:
            result = hook.function(*args)
            self._check_step(hook, time.perf_counter() - started)
            if asyncio.iscoroutine(result):
                await _Timed(result, lambda took: self._check_step(hook, took))
        except asyncio.CancelledError:
            raise
        except Exception as e:
            path = self._path_of(hook)
            raise HookFailed(hook.label, e, where_in(path, e.__traceback__)) from e

    def _path_of(self, hook: Hook) -> Path:
        for script in self.scripts:
            if any(hook in found for found in script.hooks.values()):
                return script.path
        return Path(hook.label.split(":", 1)[0])

    def _check_step(self, hook: Hook, took: float) -> None:
        if took > self.slow:
            self._say(
                f"addon hook {hook.label} blocked the event loop for {took:.1f} s "
                "(every exchange waited): make it async and await the slow part, "
                "or run it in a thread (asyncio.to_thread)"
            )

    async def call_all(self, name: str, *args: object) -> None:
        """Run hook ``name`` of every script, reporting failures (running, done, error)."""
        for hook in self.hooks(name):
            try:
                await self.call(hook, *args)
            except HookFailed as e:
                self._say(f"addon hook {e.label} raised {type(e.exc).__name__}: {e}")

    async def start(self) -> None:
        """Load every script and run ``running()`` hooks (the proxy is listening)."""
        self.load_all()
        self.running = True
        await self.call_all("running")

    async def stop(self) -> None:
        self.running = False
        await self.call_all("done")

    async def watch(self, poll: float = POLL) -> None:
        """Reload scripts whose file changed, until cancelled."""
        while True:
            await asyncio.sleep(poll)
            for script in self.scripts:
                if script.file_stamp() != script.stamp:
                    await self.reload(script)

    async def reload(self, script: Script) -> None:
        for hook in script.hooks.get("done", ()):
            try:
                await self.call(hook)
            except HookFailed as e:
                self._say(f"addon hook {e.label} raised {type(e.exc).__name__}: {e}")
        if not self._load(script):
            return
        self._say(f"addon {script.name} reloaded")
        for hook in script.hooks.get("running", ()) if self.running else ():
            try:
                await self.call(hook)
            except HookFailed as e:
                self._say(f"addon hook {e.label} raised {type(e.exc).__name__}: {e}")
