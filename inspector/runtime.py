"""Build the running proxy from a Config: CA, cert store, session store, bus, interceptor, server.

``run(config)`` serves on the current thread's loop until SIGINT/SIGTERM (dump);
``ProxyThread`` runs the same thing on a background thread (the TUI owns the main one).
"""

from __future__ import annotations

import asyncio
import errno
import gc
import ipaddress
import os
import signal
import socket
import sys
import threading
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TextIO

from certs import CAError, CertificateAuthority, CertStore
from inspector.bus import FINISHED, Bus, FlowEvent
from inspector.changes import Changes
from inspector.config import Config, ConfigError
from inspector.filters import FilterError
from inspector.flow import Flow
from inspector.intercept import Interceptor
from inspector.proxy import ProxyServer
from inspector.store import Store, StoreError
from protocol.authority import host_port

FEED_DELAY = 0.005  # seconds finished flows wait to reach the store together
SHUTDOWN_GRACE = 2.0  # seconds in-flight exchanges get to finish on SIGINT/SIGTERM
# Each finished flow (a dozen containers) lives until the store has written it, tens of
# milliseconds; at the default 700 new objects the cyclic collector ran every few
# exchanges under load and rescanned them (3-4% of the proxy's CPU in a perf profile).
GC_GEN0_THRESHOLD = 10_000
LOOP_ENV = "INSPECTOR_LOOP"  # "uvloop" or "asyncio": which event loop implementation to run
MALLOC_WARMUP = 4 * 1024 * 1024  # bytes freed at start-up (see warm_up_allocator)


@dataclass(slots=True)
class Runtime:
    """The parts of a running proxy, for the code that drives it (dump, TUI, tests)."""

    config: Config
    certstore: CertStore
    store: Store
    bus: Bus
    interceptor: Interceptor
    server: ProxyServer
    unsubscribe_store: Callable[[], None]  # stops recording after putting what is gathered
    changes: Changes | None = None  # rules and addons (-M, --map-local, -H, -B, --block-list, -s)

    @property
    def address(self) -> tuple[str, int]:
        return self.server.address

    def close_store(self) -> None:
        self.unsubscribe_store()
        self.store.flush()
        self.store.close()


def _serving_parts(config: Config) -> tuple[Bus, Interceptor, ProxyServer, Changes | None]:
    """Every part but the session (the CA on first use); ConfigError with a clear message."""
    try:
        ca = CertificateAuthority.load_or_create(config.confdir)
    except CAError as e:
        raise ConfigError(str(e)) from None
    bus = Bus()
    try:
        interceptor = Interceptor(config.intercept, bus=bus)
    except FilterError as e:
        raise ConfigError(f"bad --intercept expression: {e}") from None
    changes = Changes.from_config(config)  # RuleError (a ConfigError) for a bad pattern
    hooks = (changes,) if changes else ()
    server = ProxyServer(config, bus, CertStore(ca), interceptor=interceptor, hooks=hooks)
    return bus, interceptor, server, changes if changes else None


def _open_session(config: Config, bus: Bus) -> tuple[Store, Callable[[], None]]:
    """The session store, recording every finished flow from now on, and how to stop that."""
    path = config.session_path()
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        if config.session is None:
            path = _claim_new_file(path)
        store = Store(path)
    except StoreError as e:
        raise ConfigError(f"cannot record to session {path}: {e}") from None
    except OSError as e:
        where = f": {e.filename}" if e.filename else ""
        raise ConfigError(
            f"cannot record to session {path}: {e.strerror or e}{where} "
            f"(choose --session FILE, or a --confdir you can write to)"
        ) from None
    recorder = StoreFeeder(store)
    unsubscribe = bus.subscribe(recorder.on_event, StoreFeeder.KINDS)

    def stop_recording() -> None:
        unsubscribe()
        recorder.flush()

    return store, stop_recording


def _claim_new_file(path: Path) -> Path:
    """``path``, or ``NAME-2.db``, ``NAME-3.db``...: the first that did not exist, created now.

    A dated name is only as unique as its second: a proxy started in the same second as
    another (two ``inspector run`` at once) must not record into the other's session.
    Creating the file exclusively settles a race between the two.
    """
    for n in range(1, 1000):
        candidate = path if n == 1 else path.with_name(f"{path.stem}-{n}{path.suffix}")
        try:
            candidate.touch(exist_ok=False)
        except FileExistsError:
            continue
        return candidate
    raise FileExistsError(errno.EEXIST, "too many sessions started in one second", str(path))


class StoreFeeder:
    """Hands every finished flow to the store, a few milliseconds' worth at a time.

    Put one by one, each flow wakes the store's writer thread, which then competes
    with the event loop for the GIL (and, with the proxy on one core, for the core)
    in the middle of the next exchange. Flows finished on the event loop are gathered
    for ``delay`` seconds and put together; anything published off the loop is put at
    once. Nothing is dropped.
    """

    KINDS = FINISHED  # a flow is stored once it is finished

    def __init__(self, store: Store, delay: float = FEED_DELAY) -> None:
        self.store = store
        self.delay = delay
        self._pending: list[Flow] = []
        self._timer: asyncio.TimerHandle | None = None

    def on_event(self, event: FlowEvent) -> None:
        """Bus subscriber for ``KINDS`` only (the subscription filters the rest)."""
        try:
            loop = asyncio.get_running_loop()
        except RuntimeError:
            self.store.put(event.flow)
            return
        self._pending.append(event.flow)
        if self._timer is None:
            self._timer = loop.call_later(self.delay, self.flush)

    def flush(self) -> None:
        """Put what is gathered (called by the timer, and when recording stops)."""
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        pending, self._pending = self._pending, []
        for flow in pending:
            self.store.put(flow)


def new_event_loop() -> asyncio.AbstractEventLoop:
    """uvloop when installed (less CPU per request), unless INSPECTOR_LOOP=asyncio."""
    choice = os.environ.get(LOOP_ENV, "uvloop").strip().lower()
    if choice == "uvloop":
        try:
            import uvloop
        except ImportError:
            return asyncio.new_event_loop()
        return uvloop.new_event_loop()
    if choice != "asyncio":
        raise ConfigError(f"bad {LOOP_ENV}={choice!r}: use uvloop or asyncio")
    return asyncio.new_event_loop()


def announce(
    host: str,
    port: int,
    config: Config,
    stream: TextIO | None = None,
    *,
    session: Path | None = None,
    new_ca: Path | None = None,
) -> None:
    """The listening line (exactly as SPEC.md says, and first), where the session is
    recorded, a CA made just now, and warnings about risky settings."""
    out = stream or sys.stderr
    print(f"inspector: proxy listening on http://{host_port(host, port)}", file=out, flush=True)
    if session is not None:
        print(f"inspector: recording to {session}", file=out, flush=True)
    if new_ca is not None:
        print(
            f"inspector: created a local CA, {new_ca}: trust it to intercept HTTPS "
            "(`inspector ca` shows how)",
            file=out,
            flush=True,
        )
    if not _is_loopback(host):
        print(
            f"inspector: warning: listening on {host}, not loopback: anyone who can reach this "
            "address can use the proxy (add --proxy-auth USER:PASS)",
            file=out,
            flush=True,
        )
    if config.insecure:
        print(
            "inspector: warning: --insecure: upstream certificates are not verified",
            file=out,
            flush=True,
        )


def _is_loopback(host: str) -> bool:
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return host == "localhost"


async def start(config: Config) -> Runtime:
    """Build, bind, and only then open the session: a start that fails (address in use,
    unusable confdir or option) leaves no empty session file behind. ConfigError says why.
    """
    bus, interceptor, server, changes = _serving_parts(config)
    try:
        host, port = await server.start()
    except OSError as e:
        where = host_port(config.listen_host, config.listen_port)
        raise ConfigError(f"cannot listen on {where}: {_bind_failure(e)}") from None
    # No await from here until the store is subscribed: no client is served before it.
    try:
        store, stop_recording = _open_session(config, bus)
    except ConfigError:
        await server.shutdown(0)
        raise
    runtime = Runtime(
        config, server.certstore, store, bus, interceptor, server, stop_recording, changes
    )
    ca = server.certstore.ca
    announce(host, port, config, session=store.path, new_ca=ca.cert_path if ca.created else None)
    return runtime


# Why binding failed -> what to do about it.
_BIND_HINTS = {
    errno.EADDRINUSE: "another program holds it: pick another --listen-port, or 0 for a free one",
    errno.EACCES: "ports below 1024 need privileges: pick another --listen-port",
    errno.EADDRNOTAVAIL: "no interface here has this address: check --listen-host",
}


def _bind_failure(e: OSError) -> str:
    """The reason in the OS's words (asyncio wraps it in a longer text) and what to do."""
    if isinstance(e, socket.gaierror):
        return f"{e.strerror} (check --listen-host)"
    reason = os.strerror(e.errno) if e.errno else str(e)
    hint = _BIND_HINTS.get(e.errno or 0, "pick another --listen-port, or 0 for a free one")
    return f"{reason} ({hint})"


async def run(
    config: Config,
    on_ready: Callable[[Runtime], None] | None = None,
    *,
    stop: asyncio.Event | None = None,
) -> None:
    """Serve on the running loop until SIGINT/SIGTERM (or ``stop``), then shut down cleanly."""
    stop = stop or asyncio.Event()
    loop = asyncio.get_running_loop()
    # Handlers first: a signal sent the moment the listening line appears must stop
    # the proxy cleanly, not kill it with the session left open.
    installed = _install_signals(loop, stop)
    warm_up_allocator()
    _TUNED_GC.enter()
    try:
        runtime = await start(config)
        changes = runtime.changes
        try:
            if changes is not None:  # scripts load before the first exchange is served
                await changes.start(runtime.bus)
            if on_ready is not None:
                on_ready(runtime)
            await runtime.server.serve_until(stop)
        finally:
            await runtime.server.shutdown(SHUTDOWN_GRACE)
            if changes is not None:
                await changes.stop()
            runtime.close_store()
    finally:
        _TUNED_GC.exit()
        for sig in installed:
            loop.remove_signal_handler(sig)


def warm_up_allocator() -> None:
    """Allocate and free one large block, so that glibc serves the proxy's buffers from its heap.

    Every TLS read asks for a 256 KiB buffer and shrinks it to what arrived. glibc serves
    blocks that size with mmap (then mremap, munmap, and page faults to zero new pages)
    until its mmap threshold has risen, which happens only when a block larger than the
    threshold is freed. This one raises it: 6 system calls per intercepted exchange and
    the heap's grow/trim churn while streaming go away. Elsewhere than glibc it is one
    harmless allocation.
    """
    bytearray(MALLOC_WARMUP)


class _TunedCollector:
    """Fewer cyclic-GC runs while any proxy runs in this process; restored after the last."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._users = 0
        self._saved: tuple[int, int, int] = gc.get_threshold()
        self._froze = False

    def enter(self) -> None:
        with self._lock:
            self._users += 1
            if self._users == 1:
                self._saved = gc.get_threshold()
                # What start-up built lives on: no need to scan it again (unless the
                # embedding program manages frozen objects itself).
                self._froze = gc.get_freeze_count() == 0
                if self._froze:
                    gc.freeze()
                gc.set_threshold(GC_GEN0_THRESHOLD, *self._saved[1:])

    def exit(self) -> None:
        with self._lock:
            self._users -= 1
            if self._users == 0:
                gc.set_threshold(*self._saved)
                if self._froze:
                    gc.unfreeze()


_TUNED_GC = _TunedCollector()


def _install_signals(loop: asyncio.AbstractEventLoop, stop: asyncio.Event) -> list[int]:
    if threading.current_thread() is not threading.main_thread():
        return []
    installed = []
    for sig in (signal.SIGINT, signal.SIGTERM):
        try:
            loop.add_signal_handler(sig, stop.set)
            installed.append(sig)
        except (NotImplementedError, RuntimeError):
            pass
    return installed


class ProxyThread:
    """The proxy on a background thread with its own loop (the TUI keeps the main thread)."""

    def __init__(self, config: Config) -> None:
        self.config = config
        self.runtime: Runtime | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._stop: asyncio.Event | None = None
        self._ready = threading.Event()
        self._error: BaseException | None = None
        self._thread = threading.Thread(target=self._main, name="inspector-proxy", daemon=True)

    def start(self, timeout: float = 30.0) -> Runtime:
        """Start serving; returns once listening, or raises what went wrong (ConfigError)."""
        self._thread.start()
        if not self._ready.wait(timeout):
            raise ConfigError("the proxy did not start in time")
        if self._error is not None:
            raise self._error
        assert self.runtime is not None
        return self.runtime

    @property
    def bus(self) -> Bus:
        assert self.runtime is not None
        return self.runtime.bus

    @property
    def store(self) -> Store:
        assert self.runtime is not None
        return self.runtime.store

    @property
    def interceptor(self) -> Interceptor:
        assert self.runtime is not None
        return self.runtime.interceptor

    @property
    def address(self) -> tuple[str, int]:
        assert self.runtime is not None
        return self.runtime.address

    def _main(self) -> None:
        loop = new_event_loop()
        self._loop = loop
        asyncio.set_event_loop(loop)
        try:
            loop.run_until_complete(self._serve())
        except BaseException as e:
            if not self._ready.is_set():
                self._error = e
        finally:
            self._ready.set()
            loop.close()

    async def _serve(self) -> None:
        self._stop = asyncio.Event()

        def ready(runtime: Runtime) -> None:
            self.runtime = runtime
            self._ready.set()

        await run(self.config, ready, stop=self._stop)

    def stop(self, timeout: float = 10.0) -> None:
        """Shut down (in-flight exchanges get the grace period) and flush the store."""
        loop, stop = self._loop, self._stop
        if loop is not None and stop is not None and not loop.is_closed():
            try:
                loop.call_soon_threadsafe(stop.set)
            except RuntimeError:
                pass  # the loop already finished
        self._thread.join(timeout)
