"""The proxies under test: ours (`python -m inspector dump -q`), mitmdump, and none.

Each runs pinned to its own core and exposes what the harness measures from /proc:
CPU seconds (utime + stime of all threads), current RSS and peak RSS (VmHWM).
"""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import time
from collections.abc import Sequence
from pathlib import Path

from bench.upstream import free_port, wait_listening

REPO = Path(__file__).resolve().parent.parent
CLOCK_TICKS = os.sysconf("SC_CLK_TCK")
LISTENING_LINE = re.compile(r"inspector: proxy listening on http://(\[[^\]]+\]|[^\s:]+):(\d+)")


def cpu_seconds(pid: int) -> float:
    """utime + stime of every thread of pid so far."""
    stat = Path(f"/proc/{pid}/stat").read_text()
    fields = stat[stat.rindex(")") + 2 :].split()
    return (int(fields[11]) + int(fields[12])) / CLOCK_TICKS  # fields 14 and 15 of proc(5)


def status_kib(pid: int, key: str) -> int:
    """A `kB` line of /proc/PID/status, e.g. VmRSS or VmHWM."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith(key + ":"):
            return int(line.split()[1])
    raise KeyError(key)


class Proxy:
    """A proxy process under test; `address` is what the load generators are given."""

    name = "?"

    def __init__(self, workdir: Path, cpus: str) -> None:
        self.workdir, self.cpus = workdir, cpus
        self.proc: subprocess.Popen | None = None
        self.port = 0
        self.runs = 0

    @property
    def address(self) -> str:
        return f"127.0.0.1:{self.port}"

    @property
    def pid(self) -> int:
        assert self.proc is not None, "proxy not started"
        return self.proc.pid

    @property
    def ca_file(self) -> Path:
        raise NotImplementedError

    def cpu_seconds(self) -> float:
        return cpu_seconds(self.pid)

    def rss_kib(self) -> int:
        return status_kib(self.pid, "VmRSS")

    def peak_rss_kib(self) -> int:
        return status_kib(self.pid, "VmHWM")

    def loaded_library(self, fragment: str) -> bool:
        """Whether a shared object whose path contains fragment is mapped in the process."""
        return fragment in Path(f"/proc/{self.pid}/maps").read_text()

    def command(self) -> list[str]:
        raise NotImplementedError

    def start(self) -> None:
        self.runs += 1
        log = self.workdir / f"{self.name}-{self.runs}.log"
        self.log_path = log
        with open(log, "wb") as out:
            self.proc = subprocess.Popen(
                ["taskset", "-c", self.cpus, *self.command()],
                stdin=subprocess.DEVNULL,
                stdout=out,
                stderr=subprocess.STDOUT,
                cwd=REPO,
                env={**os.environ, "PYTHONPATH": str(REPO)},
            )
        try:
            self.wait_ready()
        except RuntimeError as e:
            self.stop()
            raise RuntimeError(f"{self.name} did not start: {e}\n{self.log_tail()}") from None

    def wait_ready(self) -> None:
        wait_listening("127.0.0.1", self.port, timeout=30, proc=self.proc)

    def log_tail(self, lines: int = 15) -> str:
        text = self.log_path.read_text(errors="replace").splitlines()[-lines:]
        return "\n".join("    " + line for line in text)

    def stop(self) -> None:
        """SIGINT (a clean shutdown), then SIGKILL if it hangs."""
        if self.proc is None:
            return
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGINT)
            try:
                self.proc.wait(timeout=15)
            except subprocess.TimeoutExpired:
                print(f"  note: {self.name} ignored SIGINT for 15 s; killed", file=sys.stderr)
                self.proc.kill()
                self.proc.wait()
        self.proc = None


class OurProxy(Proxy):
    name = "ours"
    uses_uvloop: bool | None = None  # seen in the process's memory map before it stops

    def __init__(self, workdir: Path, cpus: str, extra: Sequence[str] = ()) -> None:
        super().__init__(workdir, cpus)
        self.extra = list(extra)  # more options (rules, -s scripts: bench --ours-args)

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.uses_uvloop = self.loaded_library("uvloop")
        super().stop()

    @property
    def confdir(self) -> Path:
        return self.workdir / "inspector-conf"

    @property
    def ca_file(self) -> Path:
        return self.confdir / "ca.pem"

    def command(self) -> list[str]:
        session = self.workdir / f"session-{self.runs}.db"
        return [
            sys.executable,
            "-m",
            "inspector",
            "dump",
            "-q",
            "--listen-host",
            "127.0.0.1",
            "--listen-port",
            "0",
            "--confdir",
            str(self.confdir),
            "--session",
            str(session),
            "--insecure",
            *self.extra,
        ]

    def wait_ready(self) -> None:
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            match = LISTENING_LINE.search(self.log_path.read_text(errors="replace"))
            if match:
                self.port = int(match.group(2))
                return
            if self.proc is None or self.proc.poll() is not None:
                raise RuntimeError("exited before printing its listening line")
            time.sleep(0.05)
        raise RuntimeError("no 'inspector: proxy listening on' line within 30 s")


class Mitmdump(Proxy):
    name = "mitmdump"

    def __init__(self, workdir: Path, cpus: str, executable: Path) -> None:
        super().__init__(workdir, cpus)
        self.executable = executable

    @property
    def confdir(self) -> Path:
        return self.workdir / "mitmproxy-conf"

    @property
    def ca_file(self) -> Path:
        return self.confdir / "mitmproxy-ca-cert.pem"

    def command(self) -> list[str]:
        self.port = free_port()
        return [
            str(self.executable),
            "-q",
            "--listen-host",
            "127.0.0.1",
            "-p",
            str(self.port),
            "--set",
            f"confdir={self.confdir}",
            "--ssl-insecure",
        ]

    def wait_ready(self) -> None:
        super().wait_ready()
        deadline = time.monotonic() + 10
        while not self.ca_file.exists():  # written on first start, before listening
            if time.monotonic() > deadline:
                raise RuntimeError(f"no CA certificate at {self.ca_file}")
            time.sleep(0.05)

    def version(self) -> str:
        out = subprocess.run([str(self.executable), "--version"], capture_output=True, text=True)
        first = out.stdout.splitlines()[0] if out.stdout else "unknown"
        return first.split(":", 1)[-1].strip()


class NoProxy(Proxy):
    """The baseline: load generators talk to the upstream directly."""

    name = "none"

    @property
    def address(self) -> str:
        return "none"

    def start(self) -> None:
        pass

    def stop(self) -> None:
        pass
