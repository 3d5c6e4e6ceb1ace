"""Proxy benchmark: our proxy vs mitmdump vs no proxy, in one run, against a local nginx.

    python bench/bench_proxy.py                      # all six scenarios, ~3-5 minutes
    python bench/bench_proxy.py --scenarios 1,4 --proxies none,ours
    MITMDUMP=/path/to/mitmdump python bench/bench_proxy.py
    python bench/bench_proxy.py --profile /tmp/prof  # then py-spy our proxy under load
    python bench/bench_proxy.py --scenarios none --proxies ours --profile /tmp/prof \
        --profile-loads newhost                      # only 3b's new-host load

The proxy under test runs on core 0, nginx and the load generators on core 1. Next to
throughput it reports the proxy's CPU time per request (utime+stime delta from
/proc/PID/stat / requests): the figure that stays stable on a noisy machine. The table is
printed and written to bench/results/proxy.md.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import platform
import re
import resource
import shlex
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

if __package__ in (None, ""):  # run as a script: make `bench` importable
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.proxies import Mitmdump, NoProxy, OurProxy, Proxy
from bench.upstream import BIG_PATH, BIG_SIZE, EXTRA_HOSTS, NGINX, SMALL_PATH, Nginx

PROXY_CPUS, LOAD_CPUS = "0", "1"
PIN_LOAD = ("taskset", "-c", LOAD_CPUS)
DEFAULT_MITMDUMP = "/work/venvs/mitm/bin/mitmdump"
LOAD_SCRIPT = Path(__file__).resolve().parent / "proxy_load.py"
WRK_SCRIPT = Path(__file__).resolve().parent / "wrk_proxy.lua"
RESULTS = Path(__file__).resolve().parent / "results" / "proxy.md"
PROXY_NAMES = ("none", "ours", "mitmdump")


class BenchError(Exception):
    """A load run failed in a way that makes its figures meaningless."""


@dataclass
class Row:
    """One line of the results table: a metric measured for each proxy."""

    scenario: str
    metric: str
    target: str = ""
    # Whether ours meets the target, given (ours, mitmdump); it returns None when the
    # target is relative to mitmdump and mitmdump was not measured.
    check: Callable[[float, float | None], bool | None] | None = None
    values: dict[str, float] = field(default_factory=dict)
    notes: dict[str, str] = field(default_factory=dict)
    digits: int = 0

    @property
    def higher_is_better(self) -> bool:
        return self.metric.endswith("/s")  # rates; every other figure is a cost


def best_of(runs: list[list[Row]]) -> list[Row]:
    """Merge repeated runs of one scenario: the best value per cell (noise only hurts)."""
    merged = runs[0]
    for rows in runs[1:]:
        for into, row in zip(merged, rows, strict=True):
            for name, value in row.values.items():
                old = into.values.get(name)
                better = old is None or (value > old if row.higher_is_better else value < old)
                if better:
                    into.values[name] = value
                    into.notes.pop(name, None)
            for name, note in row.notes.items():
                if name not in into.values:
                    into.notes[name] = note
    return merged


@dataclass
class Settings:
    duration: float
    connections: int
    idle_connections: int
    latency_requests: int
    newconn_concurrency: int


# -- running loads ----------------------------------------------------------------------


@dataclass
class Measured:
    figures: dict
    cpu: float | None  # proxy CPU seconds during the measured part
    rss_before: int | None  # KiB
    rss_after: int | None


class UpstreamCounter:
    """Counts the connections nginx accepts between start() and stop()."""

    def __init__(self, nginx: Nginx | None) -> None:
        self.nginx, self.before = nginx, 0

    def start(self) -> None:
        if self.nginx is not None:
            self.before = self.nginx.accepted()

    def stop(self) -> int | None:
        if self.nginx is None:
            return None
        return self.nginx.accepted() - self.before - 1  # minus the first status query


def run_load(proxy: Proxy, command: str, *args: str, nginx: Nginx | None = None) -> Measured:
    """Run proxy_load.py on the load core; sample the proxy around the measured part."""
    cmd = [*PIN_LOAD, sys.executable, str(LOAD_SCRIPT), command, "--proxy", proxy.address, *args]
    with tempfile.TemporaryFile("w+") as errfile:
        proc = subprocess.Popen(
            cmd, stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=errfile, text=True
        )
        assert proc.stdout is not None and proc.stdin is not None
        live = proxy.proc is not None
        figures: dict | None = None
        cpu = cpu0 = rss0 = rss1 = None
        counter = UpstreamCounter(nginx)
        for line in proc.stdout:
            event = json.loads(line)
            if event["event"] == "measure_start":
                counter.start()
                if live:
                    cpu0, rss0 = proxy.cpu_seconds(), proxy.rss_kib()
            elif event["event"] == "measure_end":
                figures = event
                figures["upstream_conns"] = counter.stop()
                if live and cpu0 is not None:
                    cpu, rss1 = proxy.cpu_seconds() - cpu0, proxy.rss_kib()
                break
        proc.stdin.close()  # an idle load releases its held connections on EOF
        proc.stdout.read()
        try:
            proc.wait(timeout=120)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
        errfile.seek(0)
        err = errfile.read()
    if figures is None:
        raise BenchError(f"load generator failed ({command}): {err.strip()[-800:]}")
    return Measured(figures, cpu, rss0, rss1)


def parse_wrk(output: str) -> tuple[int, float, int]:
    """(requests, elapsed seconds, bad responses + socket errors) from wrk's report."""
    done = re.search(r"(\d+) requests in ([\d.]+)(us|ms|s|m)\b", output)
    if not done:
        raise BenchError(f"could not read wrk's output:\n{output}")
    scale = {"us": 1e-6, "ms": 1e-3, "s": 1.0, "m": 60.0}[done.group(3)]
    bad = sum(int(n) for n in re.findall(r"Non-2xx or 3xx responses: (\d+)", output))
    sock = re.search(
        r"Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)", output
    )
    if sock:
        bad += sum(int(n) for n in sock.groups())
    return int(done.group(1)), float(done.group(2)) * scale, bad


def run_wrk(
    proxy: Proxy, upstream_url: str, connections: int, duration: float, nginx: Nginx | None = None
) -> Measured:
    env = {**os.environ, "WRK_TARGET_URL": upstream_url}
    if proxy.proc is None:  # no proxy: origin-form straight at nginx
        url, script = upstream_url, []
    else:
        url, script = f"http://{proxy.address}/", ["-s", str(WRK_SCRIPT)]
    base = [*PIN_LOAD, "wrk", "-t1", f"-c{connections}", "--timeout", "10s", *script]
    subprocess.run([*base, "-d1s", url], env=env, capture_output=True, timeout=60)  # warm-up
    counter = UpstreamCounter(nginx)
    counter.start()
    cpu0 = proxy.cpu_seconds() if proxy.proc else None
    seconds = f"-d{max(1, round(duration))}s"  # wrk takes whole seconds
    out = subprocess.run([*base, seconds, url], env=env, capture_output=True, text=True, timeout=99)
    cpu = proxy.cpu_seconds() - cpu0 if cpu0 is not None else None
    requests, elapsed, errors = parse_wrk(out.stdout + out.stderr)
    figures = {"requests": requests, "elapsed": elapsed, "errors": errors}
    figures["upstream_conns"] = counter.stop()
    return Measured(figures, cpu, None, None)


def note_errors(row: Row, name: str, figures: dict) -> None:
    if figures.get("errors"):
        first = figures.get("first_error") or ""
        row.notes[name] = f"{figures['errors']} errors {first[:80]}".strip()


# -- scenarios: each measures the proxies in turn, a fresh proxy process per run -----------


def at_least(factor: float) -> Callable[[float, float | None], bool | None]:
    """A check: ours is at least factor times mitmdump's figure (None without mitmdump)."""
    return lambda ours, mitm: None if mitm is None else ours >= factor * mitm


def sixth_of_mitmdump(ours: float, mitm: float | None) -> bool:
    """The CPU target: at most 1/6 of mitmdump's in the same run (200 us without it).

    The issue puts it both ways, 1/6 of mitmdump's and <= 200 us (1/6 of its reference
    figure); on a shared machine only the ratio within one run holds still.
    """
    return ours <= (200 if mitm is None else mitm / 6)


def each_proxy(proxies: list[Proxy], row: Row, measure: Callable[[Proxy], None]) -> None:
    """Run measure against a fresh process of each proxy; a failure becomes a note in row."""
    for proxy in proxies:
        try:
            with running(proxy):
                measure(proxy)
        except (BenchError, RuntimeError, subprocess.TimeoutExpired) as e:
            row.notes[proxy.name] = f"failed: {str(e).splitlines()[0][:160]}"
            print(f"  {proxy.name} failed: {e}", file=sys.stderr)


def scenario_plain_keepalive(proxies: list[Proxy], nginx: Nginx, s: Settings) -> list[Row]:
    title = f"1 plain keep-alive, {s.connections} conns (wrk)"
    rps = Row(title, "requests/s")
    cpu = Row(title, "proxy CPU us/request", "<= 1/6 mitmdump (~200)", sixth_of_mitmdump)
    opened = Row(title, UPSTREAM_CONNS_METRIC, digits=1)
    url = f"http://127.0.0.1:{nginx.plain_port}{SMALL_PATH}"

    def measure(proxy: Proxy) -> None:
        m = run_wrk(proxy, url, s.connections, s.duration, nginx)
        record_rate(rps, cpu, proxy.name, m, m.figures["requests"], 1e6)
        record_upstream_conns(opened, proxy.name, m)

    each_proxy(proxies, rps, measure)
    return [rps, cpu, opened]


def scenario_tls_keepalive(proxies: list[Proxy], nginx: Nginx, s: Settings) -> list[Row]:
    title = f"2 intercepted HTTPS keep-alive, {s.connections} conns"
    rps = Row(title, "requests/s")
    cpu = Row(title, "proxy CPU us/request", "<= 1/6 mitmdump (~200)", sixth_of_mitmdump)
    opened = Row(title, UPSTREAM_CONNS_METRIC, digits=1)
    url = f"https://127.0.0.1:{nginx.tls_port}{SMALL_PATH}"

    def measure(proxy: Proxy) -> None:
        load = ["--url", url, "--ca", str(ca_for(proxy, nginx)), "--duration", str(s.duration)]
        m = run_load(proxy, "keepalive", *load, "--connections", str(s.connections), nginx=nginx)
        record_rate(rps, cpu, proxy.name, m, m.figures["requests"], 1e6)
        record_upstream_conns(opened, proxy.name, m)

    each_proxy(proxies, rps, measure)
    return [rps, cpu, opened]


# 3b's load, in the scenario and under --profile: one connection to each extra host.
NEW_HOSTS_ARGS = ["--hosts", ",".join(EXTRA_HOSTS), "--count", str(len(EXTRA_HOSTS))]


def scenario_new_connections(proxies: list[Proxy], nginx: Nginx, s: Settings) -> list[Row]:
    same = "3a new intercepted conns (CONNECT+TLS+1 req), same host"
    new = f"3b new intercepted conns, {len(EXTRA_HOSTS)} new hosts (certificate minted)"
    rows = [
        Row(same, "connections/s", ">= 3x mitmdump", at_least(3)),
        Row(same, "proxy CPU ms/connection", digits=2),
        Row(new, "connections/s", ">= 3x mitmdump", at_least(3)),
        Row(new, "proxy CPU ms/connection", digits=2),
    ]
    url = f"https://127.0.0.1:{nginx.tls_port}{SMALL_PATH}"
    conc = str(s.newconn_concurrency)

    def measure(proxy: Proxy) -> None:
        base = ["--url", url, "--ca", str(ca_for(proxy, nginx)), "--concurrency", conc]
        m = run_load(proxy, "newconn", *base, "--duration", str(s.duration))
        record_rate(rows[0], rows[1], proxy.name, m, m.figures["connections"], 1e3)
        # Direct to nginx, whose certificate names 127.0.0.1 only: check the chain alone.
        direct = ["--no-hostname-check"] if proxy.proc is None else []
        hosts = NEW_HOSTS_ARGS
        m = run_load(proxy, "newconn", *base, *hosts, *direct)
        record_rate(rows[2], rows[3], proxy.name, m, m.figures["connections"], 1e3)

    each_proxy(proxies, rows[0], measure)
    return rows


def scenario_latency(proxies: list[Proxy], nginx: Nginx, s: Settings) -> list[Row]:
    title = f"4 latency, {s.latency_requests} sequential plain requests, 1 conn"
    p50, p99 = Row(title, "p50 us"), Row(title, "p99 us")
    added50 = Row(title, "added p50 us (vs none)", "< 400", lambda o, _m: o < 400)
    added99 = Row(title, "added p99 us (vs none)")
    url = f"http://127.0.0.1:{nginx.plain_port}{SMALL_PATH}"

    def measure(proxy: Proxy) -> None:
        m = run_load(proxy, "latency", "--url", url, "--count", str(s.latency_requests))
        p50.values[proxy.name], p99.values[proxy.name] = m.figures["p50_us"], m.figures["p99_us"]

    each_proxy(proxies, p50, measure)
    for name in p50.values.keys() - {"none"}:
        if "none" in p50.values:
            added50.values[name] = p50.values[name] - p50.values["none"]
            added99.values[name] = p99.values[name] - p99.values["none"]
    return [p50, p99, added50, added99]


def scenario_big_download(proxies: list[Proxy], nginx: Nginx, s: Settings) -> list[Row]:
    title = f"5 {BIG_SIZE >> 20} MiB download, plain HTTP"
    speed = Row(title, "MB/s", ">= 5x mitmdump", at_least(5))
    peak = Row(title, "proxy peak RSS MiB", "< 64", lambda o, _m: o < 64)
    cpu = Row(title, "proxy CPU ms/MiB", digits=2)
    url = f"http://127.0.0.1:{nginx.plain_port}{BIG_PATH}"

    def measure(proxy: Proxy) -> None:
        m = run_load(proxy, "download", "--url", url)
        speed.values[proxy.name] = m.figures["mb_per_s"]
        if proxy.proc:
            peak.values[proxy.name] = proxy.peak_rss_kib() / 1024
            cpu.values[proxy.name] = m.cpu / (m.figures["bytes"] / 2**20) * 1e3

    each_proxy(proxies, speed, measure)
    return [speed, peak, cpu]


def scenario_idle_memory(proxies: list[Proxy], nginx: Nginx, s: Settings) -> list[Row]:
    title = f"6 {s.idle_connections} idle intercepted HTTPS conns"
    per = Row(title, "proxy KiB/connection", "<= 100", lambda o, _m: o <= 100)
    before = Row(title, "proxy RSS before MiB", digits=1)
    after = Row(title, "proxy RSS after MiB", digits=1)
    url = f"https://127.0.0.1:{nginx.tls_port}{SMALL_PATH}"

    def measure(proxy: Proxy) -> None:
        ca, count = str(ca_for(proxy, nginx)), str(s.idle_connections)
        m = run_load(proxy, "idle", "--url", url, "--ca", ca, "--count", count)
        note_errors(per, proxy.name, m.figures)
        before.values[proxy.name] = m.rss_before / 1024
        after.values[proxy.name] = m.rss_after / 1024
        if m.figures["connections"]:
            per.values[proxy.name] = (m.rss_after - m.rss_before) / m.figures["connections"]

    # No proxy, no proxy memory: the baseline column stays empty.
    each_proxy([p for p in proxies if not isinstance(p, NoProxy)], per, measure)
    return [per, before, after]


SCENARIOS = {
    "1": scenario_plain_keepalive,
    "2": scenario_tls_keepalive,
    "3": scenario_new_connections,
    "4": scenario_latency,
    "5": scenario_big_download,
    "6": scenario_idle_memory,
}


@contextlib.contextmanager
def running(proxy: Proxy) -> Iterator[Proxy]:
    """A fresh proxy process for one measurement."""
    proxy.start()
    try:
        yield proxy
    finally:
        proxy.stop()


def ca_for(proxy: Proxy, nginx: Nginx) -> Path:
    return nginx.ca_file if proxy.proc is None else proxy.ca_file


# Keep-alive loads should reuse upstream connections: a high figure means pool churn.
UPSTREAM_CONNS_METRIC = "upstream conns opened per 1k requests"


def record_upstream_conns(row: Row, name: str, m: Measured) -> None:
    opened, requests = m.figures.get("upstream_conns"), m.figures.get("requests")
    if opened is not None and requests:
        row.values[name] = opened / requests * 1000


def record_rate(rate: Row, cpu: Row, name: str, m: Measured, count: int, unit: float) -> None:
    """Fill a throughput row and a CPU-per-item row (unit: 1e6 for us, 1e3 for ms)."""
    note_errors(rate, name, m.figures)
    if count == 0:
        rate.notes[name] = rate.notes.get(name, "") + " nothing completed"
        return
    rate.values[name] = count / m.figures["elapsed"]
    if m.cpu is not None:
        cpu.values[name] = m.cpu / count * unit


# -- report ------------------------------------------------------------------------------


def fmt(value: float | None, digits: int) -> str:
    if value is None:
        return "-"
    return f"{value:,.{digits}f}"


def render_table(rows: list[Row], names: list[str]) -> str:
    head = ["scenario", "metric", *names]
    if "ours" in names and "mitmdump" in names:
        head.append("ours/mitmdump")
    head += ["target (ours)", "met"]
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for row in rows:
        cells = [row.scenario, row.metric]
        for name in names:
            cell = fmt(row.values.get(name), row.digits)
            if name in row.notes:
                cell += f" ({row.notes[name]})"
            cells.append(cell)
        ours, mitm = row.values.get("ours"), row.values.get("mitmdump")
        if "ours" in names and "mitmdump" in names:
            cells.append(f"{ours / mitm:.2f}x" if ours is not None and mitm else "-")
        verdict = row.check(ours, mitm) if row.check is not None and ours is not None else None
        met = {None: "-", True: "yes", False: "NO"}[verdict]
        cells += [row.target or "", met]
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines)


def cpu_model() -> str:
    for line in Path("/proc/cpuinfo").read_text().splitlines():
        if line.startswith("model name"):
            return line.split(":", 1)[1].strip()
    return platform.processor() or "unknown"


def tool_version(cmd: list[str]) -> str:
    try:
        out = subprocess.run(cmd, capture_output=True, text=True, timeout=10)
    except (OSError, subprocess.TimeoutExpired):
        return "not found"
    text = (out.stdout + out.stderr).strip().splitlines()
    return text[0] if text else "unknown"


def load_average() -> str:
    return " ".join(Path("/proc/loadavg").read_text().split()[:3])


def environment(mitm: Mitmdump | None, uvloop_in_ours: str, load_before: str) -> list[str]:
    try:
        import uvloop

        uv = f"installed {uvloop.__version__}"
    except ImportError:
        uv = "not installed"
    return [
        f"- CPU: {cpu_model()}, {os.cpu_count()} cores; proxy on core {PROXY_CPUS}, "
        f"nginx + load generators on core {LOAD_CPUS}",
        f"- kernel {platform.release()}, Python {platform.python_version()} ({sys.executable})",
        f"- mitmproxy: {mitm.version() if mitm else 'not run'}",
        f"- uvloop: {uv}; used by our proxy: {uvloop_in_ours}",
        f"- {tool_version(['nginx', '-v'])}; {tool_version(['wrk', '-v']).split(' [')[0]}",
        f"- load average before / after the run: {load_before} / {load_average()} "
        "(other work on the machine inflates every figure, CPU per request least)",
    ]


# -- profile -----------------------------------------------------------------------------

PROFILE_LOADS = ["plain", "intercepted", "newhost"]


def profile_ours(
    ours: OurProxy, nginx: Nginx, s: Settings, outdir: Path, which: list[str] = PROFILE_LOADS
) -> str:
    """py-spy our proxy under the plain and intercepted keep-alive loads and 3b's new-host
    load; top costs.

    Two views per load: every busy thread (the store writer thread included) and only the
    thread holding the GIL (where the Python CPU time goes), plus a flame graph SVG.
    """
    outdir.mkdir(parents=True, exist_ok=True)
    report = []
    plain_url = f"http://127.0.0.1:{nginx.plain_port}{SMALL_PATH}"
    tls_url = f"https://127.0.0.1:{nginx.tls_port}{SMALL_PATH}"
    tls_load = ["--url", tls_url, "--ca", str(ours.ca_file), "--duration", str(s.duration)]
    newhost_load = ["--url", tls_url, "--ca", str(ours.ca_file)]
    newhost_load += ["--concurrency", str(s.newconn_concurrency), *NEW_HOSTS_ARGS]
    # label: (title, load, passes, py-spy samples per second)
    loads: dict[str, tuple[str, Callable[[], object], int, int]] = {
        "plain": (
            "plain keep-alive",
            lambda: run_wrk(ours, plain_url, s.connections, s.duration),
            1,
            SPY_RATE,
        ),
        "intercepted": (
            "intercepted keep-alive",
            lambda: run_load(ours, "keepalive", *tls_load),
            1,
            SPY_RATE,
        ),
        # 3b's load: every connection mints a certificate and opens a new upstream
        # connection. One pass over the hosts lasts ~1.5 s, so it is repeated against a
        # fresh proxy process (empty certificate cache and pool), sampled 4x as often,
        # and the samples summed.
        "newhost": (
            f"new-host (3b: {len(EXTRA_HOSTS)} hosts, fresh process per pass)",
            lambda: run_load(ours, "newconn", *newhost_load),
            NEWHOST_PASSES,
            4 * SPY_RATE,
        ),
    }
    for label in which:
        title, load, passes, rate = loads[label]
        outputs = {v: outdir / f"proxy-{label}-{v}.{'svg' if v == 'svg' else 'txt'}" for v in VIEWS}
        for view in outputs.values():
            view.unlink(missing_ok=True)
        for index in range(passes):
            spied_run(ours, load, outputs, rate, svg=index == 0)
        report.append(f"### py-spy, our proxy, {title} load ({outputs['svg']})\n")
        for view, view_title in (("gil", "GIL holder"), ("threads", "all busy threads")):
            path = outputs[view]
            text = (
                summarise_collapsed(path, view_title) if path.exists() else "py-spy wrote nothing\n"
            )
            report.append(text)
    return "\n".join(report)


VIEWS = {"threads": ["--format", "raw"], "gil": ["--format", "raw", "--gil"], "svg": []}
NEWHOST_PASSES = 6
SPY_RATE = 100  # py-spy's default samples per second


def spied_run(
    ours: OurProxy, load: Callable[[], object], outputs: dict[str, Path], rate: int, *, svg: bool
) -> None:
    """One load against a fresh proxy under py-spy; raw samples are appended to outputs."""
    views = [v for v in VIEWS if svg or v != "svg"]
    with tempfile.TemporaryDirectory() as tmp:
        parts = {v: Path(tmp) / f"{v}.out" for v in views}
        with running(ours):
            spies = [
                spy_on(ours.pid, [*VIEWS[v], "--rate", str(rate), "-o", str(parts[v])])
                for v in views
            ]
            load()
            for spy in spies:
                spy.send_signal(signal.SIGINT)  # py-spy writes its output on Ctrl-C
            for spy in spies:
                spy.wait(timeout=60)
        for view, part in parts.items():
            if not part.exists():
                continue
            if view == "svg":
                shutil.copyfile(part, outputs[view])
            else:  # collapsed stacks: one "stack count" per line, so passes just add up
                with open(outputs[view], "ab") as out:
                    out.write(part.read_bytes().rstrip(b"\n") + b"\n")


def spy_on(pid: int, options: list[str]) -> subprocess.Popen:
    """py-spy sampling pid from the load core, without pausing it (--nonblocking)."""
    cmd = [*PIN_LOAD, "py-spy", "record", "--pid", str(pid), "--nonblocking", *options]
    return subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)


# Frames every sample has (interpreter start-up, thread bootstrap): noise in a ranking.
BOILERPLATE = re.compile(r"\((<frozen runpy>|threading\.py|inspector/(__main__|cli)\.py)\)$")


def summarise_collapsed(path: Path, view: str, top: int = 15) -> str:
    """Self and inclusive share of samples per function from py-spy's collapsed stacks."""
    own: dict[str, int] = {}
    inclusive: dict[str, int] = {}
    total = 0
    for line in path.read_text().splitlines():
        stack, _, count = line.rpartition(" ")
        if not count.isdigit():
            continue
        n = int(count)
        total += n
        frames = stack.split(";")
        own[frames[-1]] = own.get(frames[-1], 0) + n  # with its line number
        for frame in {re.sub(r":\d+\)$", ")", f) for f in frames}:
            if not BOILERPLATE.search(frame):
                inclusive[frame] = inclusive.get(frame, 0) + n
    if not total:
        return "no samples\n"

    def table(counts: dict[str, int], title: str) -> str:
        ranked = sorted(counts.items(), key=lambda kv: -kv[1])[:top]
        body = "\n".join(f"| {100 * n / total:5.1f}% | `{f}` |" for f, n in ranked)
        head = f"{title}, {view} ({total} samples)"
        return f"{head}\n\n| share | function (file) |\n|---|---|\n{body}\n"

    return table(own, "Self time") + "\n" + table(inclusive, "Inclusive time")


# -- main --------------------------------------------------------------------------------


def positive(kind: type) -> Callable[[str], float]:
    """An argparse type: a number of `kind` greater than zero, with a clear message."""

    def parse(text: str) -> float:
        try:
            value = kind(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"expected a {kind.__name__}, got {text!r}") from None
        if value <= 0:
            raise argparse.ArgumentTypeError(f"must be greater than 0, got {text!r}")
        return value

    return parse


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument(
        "--mitmdump",
        default=os.environ.get("MITMDUMP", DEFAULT_MITMDUMP),
        help=f"mitmdump executable (env MITMDUMP; default {DEFAULT_MITMDUMP})",
    )
    p.add_argument("--proxies", default=",".join(PROXY_NAMES), help="none,ours,mitmdump")
    p.add_argument("--scenarios", default=",".join(SCENARIOS), help="1-6 comma list, or none")
    p.add_argument("--duration", type=positive(float), default=5.0, help="seconds per timed run")
    p.add_argument("--connections", type=positive(int), default=50, help="keep-alive connections")
    p.add_argument("--idle-connections", type=positive(int), default=1000)
    p.add_argument("--latency-requests", type=positive(int), default=2000)
    p.add_argument("--newconn-concurrency", type=positive(int), default=10)
    p.add_argument("--repeat", type=positive(int), default=1, help="runs per scenario; best kept")
    p.add_argument("--output", type=Path, default=RESULTS, help="markdown file to write")
    p.add_argument("--profile", type=Path, metavar="DIR", help="then py-spy our proxy under load")
    p.add_argument(
        "--profile-loads",
        default=",".join(PROFILE_LOADS),
        help="loads to profile with --profile: " + ",".join(PROFILE_LOADS),
    )
    p.add_argument("--keep-workdir", action="store_true", help="keep configs, logs, sessions")
    p.add_argument(
        "--ours-args",
        default="",
        metavar="ARGS",
        help="more options for our proxy, shell-quoted (rules, -s FILE): their cost per request",
    )
    return p


def select(text: str, allowed, what: str) -> list[str]:
    chosen = [t.strip() for t in text.split(",") if t.strip()]
    bad = [c for c in chosen if c not in allowed]
    if bad or not chosen:
        choices = ", ".join(allowed)
        raise SystemExit(f"bench_proxy: unknown {what} {bad or text!r}; choose from {choices}")
    return chosen


def check_tools(names: list[str], mitmdump: Path) -> list[str]:
    """Drop what cannot run, with a note; exit if a required tool is missing."""
    notes = []
    for tool in (NGINX, "taskset", "wrk"):
        if shutil.which(tool) is None:
            raise SystemExit(f"bench_proxy: {tool} is required and not on PATH")
    if "mitmdump" in names and not os.access(mitmdump, os.X_OK):
        names.remove("mitmdump")
        notes.append(
            f"mitmdump column skipped: no executable at {mitmdump} "
            f"(install: python3 -m venv /work/venvs/mitm && "
            f"/work/venvs/mitm/bin/pip install 'mitmproxy==11.0.*'; "
            f"or set MITMDUMP)"
        )
    if os.cpu_count() and os.cpu_count() < 2:
        raise SystemExit("bench_proxy: needs 2 cores (proxy on core 0, load on core 1)")
    return notes


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    names = sorted(select(args.proxies, PROXY_NAMES, "proxy"), key=PROXY_NAMES.index)
    scenarios = [] if args.scenarios == "none" else select(args.scenarios, SCENARIOS, "scenario")
    profile_loads = select(args.profile_loads, PROFILE_LOADS, "profile load")
    mitmdump = Path(args.mitmdump)
    notes = check_tools(names, mitmdump)
    for note in notes:
        print(f"note: {note}", file=sys.stderr)
    _soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))  # children inherit it
    os.sched_setaffinity(0, {int(LOAD_CPUS)})  # keep the harness off the proxy's core
    settings = Settings(
        duration=args.duration,
        connections=args.connections,
        idle_connections=args.idle_connections,
        latency_requests=args.latency_requests,
        newconn_concurrency=args.newconn_concurrency,
    )
    workdir = Path(tempfile.mkdtemp(prefix="bench-proxy-"))
    nginx = Nginx(workdir / "nginx", cpus=LOAD_CPUS)
    makers = {
        "none": lambda: NoProxy(workdir, PROXY_CPUS),
        "ours": lambda: OurProxy(workdir, PROXY_CPUS, shlex.split(args.ours_args)),
        "mitmdump": lambda: Mitmdump(workdir, PROXY_CPUS, mitmdump),
    }
    proxies = [makers[n]() for n in names]
    rows: list[Row] = []
    uvloop_in_ours = "not run"
    started, load_before = time.monotonic(), load_average()
    try:
        nginx.start()
        print(
            f"nginx on :{nginx.plain_port} (plain) :{nginx.tls_port} (TLS); workdir {workdir}",
            file=sys.stderr,
        )
        for key in scenarios:
            t0 = time.monotonic()
            print(f"scenario {key}: {SCENARIOS[key].__name__} ...", file=sys.stderr, flush=True)
            try:
                runs = [SCENARIOS[key](proxies, nginx, settings) for _ in range(args.repeat)]
                rows += best_of(runs)
            except (BenchError, RuntimeError) as e:
                notes.append(f"scenario {key} failed: {e}")
                print(f"  FAILED: {e}", file=sys.stderr)
            print(f"  {time.monotonic() - t0:.0f} s", file=sys.stderr)
        ours = next((p for p in proxies if isinstance(p, OurProxy)), None)
        if ours is not None and ours.uses_uvloop is not None:
            uvloop_in_ours = "yes" if ours.uses_uvloop else "no"
        profile = ""
        if args.profile and ours is None:
            notes.append("--profile skipped: it profiles our proxy, add ours to --proxies")
        elif args.profile and shutil.which("py-spy") is None:
            notes.append("--profile skipped: py-spy is not on PATH (pip install py-spy)")
        elif args.profile and ours is not None:
            profile = profile_ours(ours, nginx, settings, args.profile, profile_loads)
    finally:
        for proxy in proxies:
            proxy.stop()
        nginx.stop()
        if not args.keep_workdir:
            shutil.rmtree(workdir, ignore_errors=True)
    mitm = next((p for p in proxies if isinstance(p, Mitmdump)), None)
    report = "\n".join(
        [
            "# Proxy benchmark",
            "",
            render_table(rows, names),
            "",
            "CPU figures are the proxy process's utime+stime during the measured part divided by "
            "the requests (or connections) completed; a fresh proxy process per run"
            + (f"; best of {args.repeat} runs per cell." if args.repeat > 1 else "."),
            "",
            *(f"- note: {n}" for n in notes),
            "",
            "## Environment",
            "",
            *environment(mitm, uvloop_in_ours, load_before),
            f"- total benchmark time {time.monotonic() - started:.0f} s",
            "",
            profile,
        ]
    )
    args.output.parent.mkdir(parents=True, exist_ok=True)
    args.output.write_text(report)
    print(report)
    print(f"written to {args.output}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
