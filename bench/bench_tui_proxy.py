"""TUI benchmark: the proxy's throughput with the terminal UI attached vs `inspector dump -q`.

Runs the real `python -m inspector` in a pseudo-terminal (the UI paints to it; a thread
reads everything it writes, as a terminal would) and `python -m inspector dump -q`, each
pinned to core 0, against a local nginx, under the same load on core 1: N keep-alive
connections of small requests (bench/proxy_load.py keepalive). Runs alternate between
the two, --repeat times each, and the median requests/second of each is compared: the
target is the UI at >= 80% of dump. Also checks that every request was recorded.

On a machine shared with other work, requests/second swing with the CPU share core 0
happens to get; requests per CPU second of the proxy process (all its threads: proxy,
store writer, UI) is the steadier figure, and the ratio of those is printed too, with
the UI thread's share of the process's CPU time (what the UI takes from the proxy).

    PYTHONPATH=. python bench/bench_tui_proxy.py [--duration 5] [--connections 50] [--repeat 3]
"""

from __future__ import annotations

import argparse
import fcntl
import os
import pty
import shutil
import sqlite3
import statistics
import struct
import subprocess
import sys
import tempfile
import termios
import threading
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.bench_proxy import LOAD_CPUS, PROXY_CPUS, BenchError, run_load
from bench.proxies import CLOCK_TICKS, REPO, OurProxy, Proxy
from bench.upstream import NGINX, SMALL_PATH, Nginx, free_port, wait_listening

TARGET = 0.8  # the UI's throughput as a share of dump's
SCREEN = (160, 50)  # columns, rows of the pseudo-terminal
CTRL_C = b"\x03"


def thread_cpu_seconds(pid: int, tid: int) -> float:
    """utime + stime of one thread so far (proc(5), /proc/PID/task/TID/stat)."""
    stat = Path(f"/proc/{pid}/task/{tid}/stat").read_text()
    fields = stat[stat.rindex(")") + 2 :].split()
    return (int(fields[11]) + int(fields[12])) / CLOCK_TICKS


class TuiProxy(Proxy):
    """`python -m inspector` (proxy and UI in one process) on a pseudo-terminal."""

    name = "tui"

    def __init__(self, workdir: Path, cpus: str) -> None:
        super().__init__(workdir, cpus)
        self.master: int | None = None
        self.painted = 0  # bytes the UI wrote to its terminal
        self._reader: threading.Thread | None = None
        self.ui_cpu: list[float] = []  # the UI (main) thread's CPU seconds at each sample

    def cpu_seconds(self) -> float:
        """The process's CPU seconds; also samples its main thread's, where the UI runs."""
        self.ui_cpu.append(thread_cpu_seconds(self.pid, self.pid))
        return super().cpu_seconds()

    @property
    def session(self) -> Path:
        return self.workdir / f"tui-session-{self.runs}.db"

    def command(self) -> list[str]:
        self.port = free_port()
        return [
            sys.executable,
            "-m",
            "inspector",
            "--listen-host",
            "127.0.0.1",
            "--listen-port",
            str(self.port),
            "--confdir",
            str(self.workdir / "inspector-conf"),
            "--session",
            str(self.session),
            "--insecure",
        ]

    def start(self) -> None:
        self.runs += 1
        self.painted = 0
        master, slave = pty.openpty()
        cols, rows = SCREEN
        fcntl.ioctl(slave, termios.TIOCSWINSZ, struct.pack("HHHH", rows, cols, 0, 0))
        self.master = master
        self.proc = subprocess.Popen(
            ["taskset", "-c", self.cpus, *self.command()],
            stdin=slave,
            stdout=slave,
            stderr=slave,
            cwd=REPO,
            env={**os.environ, "PYTHONPATH": str(REPO), "TERM": "xterm-256color"},
            start_new_session=True,  # the pty becomes its controlling terminal
        )
        os.close(slave)
        self._reader = threading.Thread(target=self._read_terminal, daemon=True)
        self._reader.start()
        try:
            wait_listening("127.0.0.1", self.port, timeout=30, proc=self.proc)
        except RuntimeError as e:
            self.stop()
            raise RuntimeError(f"the TUI did not start: {e}") from None

    def _read_terminal(self) -> None:
        while True:
            try:
                data = os.read(self.master, 65536)
            except OSError:  # EIO: the UI closed its terminal
                return
            if not data:
                return
            self.painted += len(data)

    def stop(self) -> None:
        """Quit as a user would (ctrl+c, then ctrl+c to confirm); else SIGINT/SIGKILL."""
        if self.proc is not None and self.proc.poll() is None and self.master is not None:
            for _ in range(2):
                os.write(self.master, CTRL_C)
                time.sleep(0.5)
            try:
                self.proc.wait(timeout=15)
            except subprocess.TimeoutExpired:
                pass
        super().stop()
        if self._reader is not None:
            self._reader.join(timeout=5)
        if self.master is not None:
            os.close(self.master)
            self.master = None


def recorded(session: Path) -> int:
    with sqlite3.connect(f"file:{session}?mode=ro", uri=True) as conn:
        return conn.execute("SELECT count(*) FROM flows").fetchone()[0]


def dump_session(proxy: OurProxy) -> Path:
    return proxy.workdir / f"session-{proxy.runs}.db"


def one_run(proxy: Proxy, nginx: Nginx, args: argparse.Namespace) -> dict:
    """Start the proxy, load it, stop it; the figures of the measured part."""
    proxy.start()
    try:
        url = f"http://127.0.0.1:{nginx.plain_port}{SMALL_PATH}"
        load = ("--url", url, "--connections", str(args.connections))
        measured = run_load(
            proxy, "keepalive", *load, "--duration", str(args.duration), nginx=nginx
        )
        painted = getattr(proxy, "painted", None)
        ui_cpu = getattr(proxy, "ui_cpu", [])
        ui_share = (
            (ui_cpu[-1] - ui_cpu[-2]) / measured.cpu if len(ui_cpu) > 1 and measured.cpu else None
        )
    finally:
        proxy.stop()
    figures = measured.figures
    if figures.get("errors"):
        raise BenchError(f"{proxy.name}: {figures['errors']} errors: {figures['first_error']}")
    session = proxy.session if isinstance(proxy, TuiProxy) else dump_session(proxy)
    return {
        "rps": figures["rps"],
        "per_cpu": figures["requests"] / measured.cpu if measured.cpu else 0.0,
        "cpu": measured.cpu,
        "requests": figures["requests"],
        "recorded": recorded(session),
        "painted": painted,
        "ui_share": ui_share,
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--duration", type=float, default=5.0, help="measured seconds per run")
    parser.add_argument("--connections", type=int, default=50)
    parser.add_argument("--repeat", type=int, default=3, help="runs of each; medians compared")
    parser.add_argument("--keep-workdir", action="store_true")
    args = parser.parse_args(argv)
    for tool in (NGINX, "taskset"):
        if shutil.which(tool) is None:
            raise SystemExit(f"bench_tui_proxy: {tool} is required and not on PATH")
    os.sched_setaffinity(0, {int(LOAD_CPUS)})  # keep the harness off the proxy's core
    workdir = Path(tempfile.mkdtemp(prefix="bench-tui-proxy-"))
    nginx = Nginx(workdir / "nginx", cpus=LOAD_CPUS)
    proxies: list[Proxy] = [OurProxy(workdir, PROXY_CPUS), TuiProxy(workdir, PROXY_CPUS)]
    results: dict[str, list[dict]] = {p.name: [] for p in proxies}
    try:
        nginx.start()
        for run in range(args.repeat):
            for proxy in proxies:
                r = one_run(proxy, nginx, args)
                results[proxy.name].append(r)
                extra = f", {r['painted'] / 1e6:.1f} MB painted" if r["painted"] else ""
                if r["ui_share"] is not None:
                    extra += f", UI thread {r['ui_share']:.0%} of the CPU time"
                print(
                    f"run {run + 1} {proxy.name:<5} {r['rps']:8.0f} req/s  "
                    f"{r['per_cpu']:6.0f} req/cpu-s  "
                    f"recorded {r['recorded']}/{r['requests']}+warm-up{extra}",
                    flush=True,
                )
    except (BenchError, RuntimeError) as e:
        print(f"bench_tui_proxy: {e}", file=sys.stderr)
        return 1
    finally:
        for proxy in proxies:
            proxy.stop()
        nginx.stop()
        if not args.keep_workdir:
            shutil.rmtree(workdir, ignore_errors=True)
    for key, unit in (("rps", "req/s"), ("per_cpu", "req/cpu-s")):
        dump = statistics.median(r[key] for r in results["ours"])
        tui = statistics.median(r[key] for r in results["tui"])
        ratio = tui / dump
        verdict = "meets" if ratio >= TARGET else "MISSES"
        print(
            f"median {unit:<9}: dump -q {dump:6.0f}, TUI {tui:6.0f}: "
            f"ratio {ratio:4.0%} ({verdict} the >= {TARGET:.0%} target)"
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
