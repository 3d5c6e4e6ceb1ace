"""Benchmark the data layer: store writes, paged reads, search and filters; bus publish.

    PYTHONPATH=. python bench/bench_store.py [--flows 100000] [--keep FILE] [--cpu-only]

Prints one line per figure. Flows are small (a few headers, 1 KiB request and
response bodies, half of them JSON text) so the numbers show the per-flow overhead.
"""

from __future__ import annotations

import argparse
import collections
import os
import resource
import statistics
import tempfile
import time
from pathlib import Path

from inspector.bus import Bus, EventKind, FlowEvent
from inspector.flow import Flow, FlowBody, FlowRequest, FlowResponse, Timings
from inspector.store import Store

BODY = 1024


def make_flow(i: int) -> Flow:
    host = f"host{i % 50}.example.com"
    text = i % 2 == 0
    body = (b'{"n": %d, "word": "alpha%d", "pad": "' % (i, i)).ljust(BODY - 2, b"x") + b'"}'
    resp_body = body if text else bytes((i + k) % 256 for k in range(BODY))
    flow = Flow(
        FlowRequest(
            "GET" if i % 3 else "POST",
            "https",
            host,
            443,
            f"/api/v1/items/{i}?page={i % 10}",
            headers=[(b"Host", host.encode()), (b"User-Agent", b"bench/1.0"), (b"Accept", b"*/*")],
            body=FlowBody(body, BODY),
        ),
        timings=Timings(start=1_700_000_000.0 + i, end=1_700_000_000.0 + i + (i % 97) / 1000),
    )
    flow.response = FlowResponse(
        (200, 201, 304, 404, 500)[i % 5],
        "",
        headers=[
            (b"Content-Type", b"application/json" if text else b"application/octet-stream"),
            (b"Content-Length", b"1024"),
            (b"Server", b"bench"),
        ],
        body=FlowBody(resp_body, BODY),
    )
    return flow


def timed(fn, repeat: int = 5) -> float:  # type: ignore[no-untyped-def]
    """Median wall time of ``fn()`` in milliseconds."""
    samples = []
    for _ in range(repeat):
        t0 = time.perf_counter()
        fn()
        samples.append((time.perf_counter() - t0) * 1000)
    return statistics.median(samples)


def _cpu_seconds() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def bench_writes(path: Path, n: int) -> None:
    flows = [make_flow(i) for i in range(n)]
    store = Store(path)
    cpu0 = _cpu_seconds()
    t0 = time.perf_counter()
    for flow in flows:
        store.put(flow)
    t_put = time.perf_counter() - t0
    store.flush()
    t_all = time.perf_counter() - t0
    cpu = _cpu_seconds() - cpu0
    store.close()
    size = path.stat().st_size
    print(f"put() caller cost: {t_put / n * 1e6:.2f} us/flow")
    print(f"write throughput: {n / t_all:,.0f} flows/s ({n:,} flows, {t_all:.1f} s)")
    print(f"write cost: {n / cpu:,.0f} flows per CPU-second (put + writer thread)")
    print(f"session file: {size / 1e6:.0f} MB ({size / n / 1024:.1f} KiB/flow)")


def _paced_puts(store: Store, flows: list[Flow], rate: float) -> None:
    """Put ``flows`` one at a time, ``rate`` per second, on a fixed schedule."""
    t0 = time.perf_counter()
    for i, flow in enumerate(flows):
        delay = t0 + i / rate - time.perf_counter()
        if delay > 0:
            time.sleep(delay)
        store.put(flow)


def bench_write_cpu(directory: Path, n: int, rate: float, trickled: int) -> None:
    """Process CPU per flow (put + writer thread): back to back, then trickled at ``rate``."""
    flows = [make_flow(i) for i in range(n)]
    with Store(directory / "cpu-batched.db") as store:
        cpu0 = time.process_time()
        for flow in flows:
            store.put(flow)
        store.flush()
        cpu = time.process_time() - cpu0
        cpu0 = time.process_time()
        store.search("alpha1")  # indexes every flow not yet indexed for search
        index_cpu = time.process_time() - cpu0
    print(f"CPU us per flow, put back to back: {cpu / n * 1e6:.0f} ({n:,} flows)")
    print(f"CPU us per flow, search index caught up later: {index_cpu / n * 1e6:.0f}")
    flows = flows[:trickled]
    with Store(directory / "cpu-trickled.db") as store:
        cpu0 = time.process_time()
        producer0 = time.thread_time()
        _paced_puts(store, flows, rate)
        producer = time.thread_time() - producer0
        store.flush()
        cpu = time.process_time() - cpu0
    print(
        f"CPU us per flow at {rate:,.0f} flows/s arriving 1 at a time: "
        f"{(cpu - producer) / len(flows) * 1e6:.0f} "
        f"(+{producer / len(flows) * 1e6:.0f} in the pacing thread; {len(flows):,} flows)"
    )


SEARCHES = ("alpha4242", "host7", "bench")
FILTERS = ("~c 404", "~m POST & ~d host7\\.", "~u items/4242", "~h 'server: bench'", "~b alpha4242")


def show(label: str, ms: float) -> None:
    print(f"{label.ljust(34)}{ms:8.2f} ms")


def _all_rows(store: Store) -> None:
    offset = 0
    while page := store.summary_rows(offset, 5000):
        offset += len(page)


def bench_reads(path: Path, n: int) -> None:
    store = Store(path, readonly=True)
    offset = max(0, n - 10_000)
    show(f"summaries(100 at {offset:,})", timed(lambda: store.summaries(offset, 100)))
    show("summaries(100 at 0)", timed(lambda: store.summaries(0, 100)))
    show(f"summary_rows(100 at {offset:,})", timed(lambda: store.summary_rows(offset, 100)))
    show(f"summary_rows: all {n:,} in pages of 5000", timed(lambda: _all_rows(store), repeat=1))
    show(
        f"summaries(100 at {offset:,}) by duration",
        timed(lambda: store.summaries(offset, 100, sort="duration", descending=True)),
    )
    show("count()", timed(store.count))
    for text in SEARCHES:
        show(f"search({text!r})", timed(lambda t=text: store.search(t)))
    for expr in FILTERS:
        show(f"count({expr!r})", timed(lambda e=expr: store.count(e), repeat=3))
    show("get(id)", timed(lambda: store.get(make_flow(n // 2).id)))
    store.close()


def bench_bus() -> None:
    bus = Bus()
    sinks = [collections.deque(maxlen=1024) for _ in range(3)]
    for sink in sinks:
        bus.subscribe(sink.append)
    event = FlowEvent(EventKind.RESPONSE, make_flow(0))
    n = 500_000
    publish = bus.publish
    t0 = time.perf_counter()
    for _ in range(n):
        publish(event)
    print(f"bus.publish (3 subscribers): {(time.perf_counter() - t0) / n * 1e6:.2f} us")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--flows", type=int, default=100_000)
    parser.add_argument("--keep", type=Path, help="write the session here and keep it")
    parser.add_argument("--cpu-flows", type=int, default=5000, help="flows for the CPU figures")
    parser.add_argument("--rate", type=float, default=1000.0, help="flows/s of the trickle")
    parser.add_argument("--cpu-only", action="store_true", help="only the CPU-per-flow figures")
    args = parser.parse_args()
    print(f"load average before: {os.getloadavg()[0]:.1f} on {os.cpu_count()} CPUs")
    with tempfile.TemporaryDirectory() as tmp:
        bench_write_cpu(Path(tmp), args.cpu_flows, args.rate, min(args.cpu_flows, 2000))
    if args.cpu_only:
        return
    bench_bus()
    with tempfile.TemporaryDirectory() as tmp:
        path = args.keep or Path(tmp) / "bench.db"
        bench_writes(path, args.flows)
        bench_reads(path, args.flows)


if __name__ == "__main__":
    main()
