"""HTTP/2 proxy benchmark: h2load through our proxy, mitmdump and no proxy, to an HTTP/2 nginx.

    python bench/bench_h2.py                          # both scenarios, ~3 minutes
    python bench/bench_h2.py --requests 50000 --proxies ours,mitmdump --repeat 3

h2load (Debian's nghttp2-client) speaks HTTP/2 over TLS (ALPN h2) but cannot use a proxy,
and the two proxies part ways in reverse mode (mitmdump takes no HTTP/2 prior knowledge
on a plain port, ours no TLS from clients), so for each proxy a socat turns h2load's
connections into CONNECT tunnels through it: both proxies intercept the TLS and speak
HTTP/2 on both sides, as they do for a browser. Our proxy in reverse mode with h2c prior
knowledge from h2load ("ours-h2c") is measured too. "none" is h2load straight to nginx.

Scenarios:
  1. many small requests (~200 B) multiplexed, 10 connections x 10 streams (h2load -m 10):
     requests/s and the proxy's CPU per request (utime+stime from /proc/PID/stat over the
     measured run, divided by the requests; the figure that holds still on a busy machine);
  2. one 256 MiB download on one stream: MB/s and the proxy's peak RSS (VmHWM).

Pinning as bench_proxy.py: the proxy on core 0; nginx, socat and h2load on core 1. A fresh
proxy process per run. The table is printed and written to bench/results/h2.md.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

if __package__ in (None, ""):  # run as a script: make `bench` importable
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.bench_proxy import (
    DEFAULT_MITMDUMP,
    LOAD_CPUS,
    PIN_LOAD,
    PROXY_CPUS,
    Row,
    best_of,
    cpu_model,
    load_average,
    render_table,
    tool_version,
)
from bench.proxies import Mitmdump, NoProxy, OurProxy, Proxy
from bench.upstream import BIG_PATH, BIG_SIZE, SMALL_PATH, Nginx, free_port, wait_listening

RESULTS = Path(__file__).resolve().parent / "results" / "h2.md"
PROXY_NAMES = ("none", "ours", "ours-h2c", "mitmdump")
CONNECTIONS, STREAMS = 10, 10


class H2Nginx(Nginx):
    """bench/upstream.py's nginx with HTTP/2 on its TLS ports (nginx 1.22: ``listen ... http2``)."""

    def _config(self) -> str:
        return super()._config().replace(" ssl;", " ssl http2;")


class ReverseOurs(OurProxy):
    """Our proxy in reverse mode to nginx: h2load speaks HTTP/2 with prior knowledge to it."""

    name = "ours-h2c"

    def __init__(self, workdir: Path, cpus: str, upstream: str) -> None:
        super().__init__(workdir, cpus, ["--mode", f"reverse:{upstream}"])


class Tunnel:
    """socat on the load core: each connection to ``port`` becomes a CONNECT through a proxy."""

    def __init__(self, proxy: Proxy, target_port: int) -> None:
        self.port = free_port()
        self.proc = subprocess.Popen(
            [
                *PIN_LOAD, "socat",
                f"TCP-LISTEN:{self.port},bind=127.0.0.1,fork,reuseaddr",
                f"PROXY:127.0.0.1:127.0.0.1:{target_port},proxyport={proxy.port}",
            ],
            stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
        )  # fmt: skip
        wait_listening("127.0.0.1", self.port, proc=self.proc)

    def close(self) -> None:
        self.proc.terminate()
        self.proc.wait(10)


@contextlib.contextmanager
def client_url(proxy: Proxy, nginx: Nginx, path: str) -> Iterator[str]:
    """The URL h2load is given to reach nginx's ``path`` through ``proxy`` (a fresh process)."""
    if isinstance(proxy, NoProxy):
        yield f"https://127.0.0.1:{nginx.tls_port}{path}"
        return
    proxy.start()
    tunnel = None
    try:
        if isinstance(proxy, ReverseOurs):
            yield f"http://127.0.0.1:{proxy.port}{path}"
        else:
            tunnel = Tunnel(proxy, nginx.tls_port)
            yield f"https://127.0.0.1:{tunnel.port}{path}"
    finally:
        if tunnel is not None:
            tunnel.close()


def h2load(url: str, *options: str, timeout: float = 600) -> tuple[int, int, float]:
    """Run h2load on the load core: (succeeded, failed, seconds) from its report."""
    done = subprocess.run(
        [*PIN_LOAD, "h2load", *options, url], capture_output=True, text=True, timeout=timeout
    )
    out = done.stdout + done.stderr
    finished = re.search(r"finished in ([\d.]+)(us|ms|s),", out)
    counts = re.search(
        r"requests: \d+ total, \d+ started, \d+ done, (\d+) succeeded, (\d+) failed", out
    )
    if not finished or not counts:
        raise RuntimeError(f"could not read h2load's report:\n{out[-600:]}")
    if "Application protocol: h2" not in out and url.startswith("https"):
        raise RuntimeError(f"h2load did not get HTTP/2 (ALPN h2):\n{out[-600:]}")
    scale = {"us": 1e-6, "ms": 1e-3, "s": 1.0}[finished.group(2)]
    return int(counts.group(1)), int(counts.group(2)), float(finished.group(1)) * scale


def scenario_small(proxies: list[Proxy], nginx: Nginx, requests: int) -> list[Row]:
    title = f"1 small requests, {CONNECTIONS} conns x {STREAMS} streams (h2load)"
    rate = Row(title, "requests/s")
    cpu = Row(title, "proxy CPU us/request", "<= 1/5 mitmdump", _fifth_of_mitmdump)
    options = ["-c", str(CONNECTIONS), "-m", str(STREAMS)]
    for proxy in proxies:
        try:
            with client_url(proxy, nginx, SMALL_PATH) as url:
                h2load(url, "-n", str(CONNECTIONS * STREAMS * 20), *options)  # warm-up, mints
                cpu0 = proxy.cpu_seconds() if proxy.proc else None
                ok, failed, seconds = h2load(url, "-n", str(requests), *options)
                if cpu0 is not None:
                    cpu.values[proxy.name] = (proxy.cpu_seconds() - cpu0) / max(ok, 1) * 1e6
            rate.values[proxy.name] = ok / seconds
            if failed:
                rate.notes[proxy.name] = f"{failed} failed"
        except (RuntimeError, subprocess.TimeoutExpired) as e:
            rate.notes[proxy.name] = f"failed: {str(e).splitlines()[0][:120]}"
        finally:
            proxy.stop()
    return [rate, cpu]


def scenario_download(proxies: list[Proxy], nginx: Nginx) -> list[Row]:
    title = f"2 one {BIG_SIZE >> 20} MiB download over HTTP/2"
    speed = Row(title, "MB/s")
    peak = Row(title, "proxy peak RSS MiB", "< 64", lambda ours, _m: ours < 64)
    cpu = Row(title, "proxy CPU ms/MiB", digits=2)
    for proxy in proxies:
        try:
            with client_url(proxy, nginx, BIG_PATH) as url:
                cpu0 = proxy.cpu_seconds() if proxy.proc else None
                ok, _failed, seconds = h2load(url, "-n", "1", "-c", "1")
                if ok != 1:
                    raise RuntimeError("the download did not complete")
                speed.values[proxy.name] = BIG_SIZE / seconds / 1e6
                if cpu0 is not None:
                    cpu.values[proxy.name] = (proxy.cpu_seconds() - cpu0) / (BIG_SIZE >> 20) * 1e3
                    peak.values[proxy.name] = proxy.peak_rss_kib() / 1024
        except (RuntimeError, subprocess.TimeoutExpired) as e:
            speed.notes[proxy.name] = f"failed: {str(e).splitlines()[0][:120]}"
        finally:
            proxy.stop()
    return [speed, peak, cpu]


def _fifth_of_mitmdump(ours: float, mitm: float | None) -> bool | None:
    return None if mitm is None else ours <= mitm / 5


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--proxies", default=",".join(PROXY_NAMES), help="comma-separated")
    p.add_argument("--requests", type=int, default=20000, help="scenario 1 requests per run")
    p.add_argument("--repeat", type=int, default=1, help="runs per scenario; best kept")
    p.add_argument("--scenarios", default="1,2", help="comma-separated: 1 small, 2 download")
    p.add_argument("--mitmdump", default=os.environ.get("MITMDUMP", DEFAULT_MITMDUMP))
    p.add_argument("-o", "--output", type=Path, default=RESULTS)
    return p


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    names = [n for n in PROXY_NAMES if n in args.proxies.split(",")]
    missing = [t for t in ("h2load", "socat", "nginx", "taskset") if shutil.which(t) is None]
    if missing:
        print(f"bench_h2: needs {', '.join(missing)} on PATH", file=sys.stderr)
        return 2
    os.sched_setaffinity(0, {int(LOAD_CPUS)})  # keep the harness off the proxy's core
    workdir = Path(tempfile.mkdtemp(prefix="bench-h2-"))
    nginx = H2Nginx(workdir / "nginx", cpus=LOAD_CPUS)
    rows: list[Row] = []
    started, load_before = time.monotonic(), load_average()
    try:
        nginx.start()
        proxies = _proxies(names, workdir, nginx, Path(args.mitmdump))
        if "1" in args.scenarios.split(","):
            print("scenario 1: small requests ...", file=sys.stderr, flush=True)
            rows += best_of(
                [scenario_small(proxies, nginx, args.requests) for _ in range(args.repeat)]
            )
        if "2" in args.scenarios.split(","):
            print("scenario 2: download ...", file=sys.stderr, flush=True)
            rows += best_of([scenario_download(proxies, nginx) for _ in range(args.repeat)])
    finally:
        nginx.stop()
        shutil.rmtree(workdir, ignore_errors=True)
    report = _report(rows, names, args, started, load_before, Path(args.mitmdump))
    args.output.parent.mkdir(parents=True, exist_ok=True)
    args.output.write_text(report)
    print(report)
    return 0


def _proxies(names: list[str], workdir: Path, nginx: Nginx, mitmdump: Path) -> list[Proxy]:
    makers = {
        "none": lambda: NoProxy(workdir, PROXY_CPUS),
        "ours": lambda: OurProxy(workdir, PROXY_CPUS),
        "ours-h2c": lambda: ReverseOurs(workdir, PROXY_CPUS, f"https://127.0.0.1:{nginx.tls_port}"),
        "mitmdump": lambda: Mitmdump(workdir, PROXY_CPUS, mitmdump),
    }
    return [makers[n]() for n in names]


def _report(
    rows: list[Row], names: list[str], args: argparse.Namespace, started: float, load: str,
    mitmdump: Path,
) -> str:  # fmt: skip
    mitm_version = tool_version([str(mitmdump), "--version"]) if "mitmdump" in names else "not run"
    return "\n".join(
        [
            "# HTTP/2 proxy benchmark",
            "",
            render_table(rows, names),
            "",
            f"Scenario 1: {args.requests} requests per run after a warm-up; "
            f"best of {args.repeat} run(s) per cell; a fresh proxy process per run.",
            "",
            "## Environment",
            "",
            f"- CPU: {cpu_model()}, {os.cpu_count()} cores; proxy on core {PROXY_CPUS}, "
            f"nginx + socat + h2load on core {LOAD_CPUS}",
            f"- Python {sys.version.split()[0]}; {mitm_version}; "
            f"{tool_version(['nginx', '-v'])}; {tool_version(['h2load', '--version'])}",
            f"- load average before / after: {load} / {load_average()}; "
            f"total time {time.monotonic() - started:.0f} s",
            "",
        ]
    )


if __name__ == "__main__":
    sys.exit(main())
