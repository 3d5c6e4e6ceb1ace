"""``inspector run [OPTIONS] -- CMD [ARGS...]``: one command's traffic, recorded.

A proxy starts on a free loopback port (on a background thread), CMD runs with the
environment of ``inspector.env`` (the proxy variables and a CA bundle that trusts the
inspector CA), one dump-style line per finished exchange goes to stderr, and when CMD
ends the proxy drains, stops and says what it recorded. The exit status is CMD's.

Signals: CMD runs in our process group, so Ctrl-C at a terminal reaches CMD (and its
children) directly; the proxy ignores it and keeps recording CMD's last requests. A
SIGTERM or SIGHUP sent to inspector alone is passed on to CMD.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from types import FrameType

from certs import CAError, CertificateAuthority
from inspector import filters
from inspector.bus import FINISHED, EventKind, FlowEvent
from inspector.config import Config, ConfigError
from inspector.dump import LinePrinter
from inspector.env import confdir_files, proxy_environment, proxy_url
from inspector.runtime import ProxyThread

NOT_FOUND = 127  # the shell's status for a command that does not exist
NOT_EXECUTABLE = 126  # ... and for one that cannot be run
_PASSED_ON = tuple(getattr(signal, name) for name in ("SIGTERM", "SIGHUP") if hasattr(signal, name))


class Tally:
    """Finished exchanges and failed ones, counted on the proxy's thread."""

    def __init__(self) -> None:
        self.exchanges = 0
        self.errors = 0

    def on_event(self, event: FlowEvent) -> None:
        self.exchanges += 1
        if event.kind is EventKind.ERROR:
            self.errors += 1


def run_command(config: Config, command: list[str]) -> int:
    """Run ``command`` through a new proxy; CMD's exit status, 2 if the proxy cannot start."""
    if config.intercept:
        raise ConfigError(
            "--intercept holds flows for editing in the UI, and `inspector run` has none to "
            "release them: run `inspector --intercept EXPR` and point the program at it "
            '(eval "$(inspector env)")'
        )
    flt = filters.parse(config.filter) if config.filter else None
    new_ca = _make_ca(config)
    proxy = ProxyThread(config)
    runtime = proxy.start()  # ConfigError (exit 2) when it cannot: CMD is not run
    if new_ca is not None:
        print(
            f"inspector: created a local CA, {new_ca}: the programs `inspector run` starts "
            "trust it (`inspector ca` shows how to trust it elsewhere)",
            file=sys.stderr,
            flush=True,
        )
    printer = LinePrinter(flt, quiet=config.quiet, out=sys.stderr)
    tally = Tally()
    try:
        runtime.bus.subscribe(printer.on_event, FINISHED)
        runtime.bus.subscribe(tally.on_event, FINISHED)
        with _signals_passed_on() as slot:
            try:
                status = _run_child(command, _child_environment(config, proxy), slot)
            finally:  # still ignoring Ctrl-C: a second one must not cut the drain short
                proxy.stop()  # in-flight exchanges get the grace period; the store is flushed
    finally:
        proxy.stop()  # (already stopped, unless interrupted before CMD started)
        printer.close()
    print(
        f"inspector: {tally.exchanges} exchanges, {tally.errors} errors; "
        f"session {runtime.store.path}",
        file=sys.stderr,
        flush=True,
    )
    return status


def _make_ca(config: Config) -> Path | None:
    """Make the CA on a first run before the proxy starts (its own first-run advice, to go
    and trust it, is not for `run`); the new certificate's path, None when it existed."""
    try:
        ca = CertificateAuthority.load_or_create(config.confdir)
    except CAError as e:
        raise ConfigError(str(e)) from None
    return ca.cert_path if ca.created else None


def _child_environment(config: Config, proxy: ProxyThread) -> dict[str, str]:
    ca = proxy.runtime.certstore.ca if proxy.runtime is not None else None
    assert ca is not None
    host, port = proxy.address
    url = proxy_url(host, port, config.proxy_auth)
    return {**os.environ, **proxy_environment(url, *confdir_files(ca))}


@contextmanager
def _signals_passed_on() -> Iterator[list[subprocess.Popen[bytes]]]:
    """While CMD runs: ignore SIGINT (the terminal sends it to CMD too), pass on SIGTERM/HUP.

    A handler, not SIG_IGN, so that CMD does not inherit an ignored SIGINT through exec.
    Yields a list the caller puts the child in once it has started.
    """
    child: list[subprocess.Popen[bytes]] = []

    def pass_on(signum: int, frame: FrameType | None) -> None:
        if child and child[0].poll() is None:
            child[0].send_signal(signum)

    def ignore(signum: int, frame: FrameType | None) -> None:
        pass

    saved = {signal.SIGINT: signal.signal(signal.SIGINT, ignore)}
    for sig in _PASSED_ON:
        saved[sig] = signal.signal(sig, pass_on)
    try:
        yield child
    finally:
        for sig, handler in saved.items():
            signal.signal(sig, handler)


def _run_child(command: list[str], env: dict[str, str], slot: list[subprocess.Popen[bytes]]) -> int:
    """Start CMD, wait for it; its status (128+N when signal N killed it)."""
    try:
        child = subprocess.Popen(command, env=env)
    except FileNotFoundError:
        print(f"inspector: error: {command[0]}: command not found", file=sys.stderr)
        return NOT_FOUND
    except OSError as e:
        print(f"inspector: error: cannot run {command[0]}: {e.strerror or e}", file=sys.stderr)
        return NOT_EXECUTABLE
    slot.append(child)
    status = child.wait()
    return 128 - status if status < 0 else status
