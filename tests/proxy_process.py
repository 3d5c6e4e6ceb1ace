"""Run ``inspector dump`` as a real subprocess for end-to-end tests."""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import threading
from pathlib import Path

_LISTENING = re.compile(r"inspector: proxy listening on http://(\[[^\]]+\]|[^:]+):(\d+)")


class ProxyProcess:
    """``python -m inspector dump`` on a free port, with its own confdir and session.

    One thread per pipe collects stdout and stderr for the whole run, so nothing the
    proxy prints after the listening line is lost, and a full stdout pipe never blocks it.
    Only these threads read the pipes (two readers on one pipe would split its lines).
    """

    def __init__(
        self,
        tmp: Path,
        *args: str,
        startup_timeout: float = 30.0,
        env: dict[str, str] | None = None,
    ) -> None:
        self.confdir = tmp / "conf"
        self.session = tmp / "session.db"
        cmd = [
            sys.executable, "-m", "inspector", "dump", "--listen-port", "0",
            "--confdir", str(self.confdir), "--session", str(self.session), *args,
        ]  # fmt: skip
        self.proc = subprocess.Popen(
            cmd,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            env={**os.environ, "PYTHONUNBUFFERED": "1", **(env or {})},
            cwd=Path(__file__).parents[1],
        )
        self.stderr_lines: list[str] = []
        self._stdout: list[bytes] = []
        self._address: tuple[str, int] | None = None
        self._listening = threading.Event()
        self._stderr_reader = threading.Thread(target=self._read_stderr, daemon=True)
        self._stderr_reader.start()
        self._stdout_reader = threading.Thread(target=self._read_stdout, daemon=True)
        self._stdout_reader.start()
        if not self._listening.wait(startup_timeout) or self._address is None:
            self.proc.kill()
            self._stderr_reader.join(5)
            raise RuntimeError(f"proxy did not start: {''.join(self.stderr_lines)}")
        self.host, self.port = self._address

    def _read_stderr(self) -> None:
        assert self.proc.stderr is not None
        with self.proc.stderr:
            for raw in self.proc.stderr:
                line = raw.decode(errors="replace")
                self.stderr_lines.append(line)
                m = _LISTENING.search(line)
                if m and self._address is None:
                    self._address = (m.group(1).strip("[]"), int(m.group(2)))
                    self._listening.set()
        self._listening.set()  # the process ended: stop waiting

    def _read_stdout(self) -> None:
        assert self.proc.stdout is not None
        with self.proc.stdout:
            while chunk := self.proc.stdout.read1(65536):
                self._stdout.append(chunk)

    @property
    def url(self) -> str:
        return f"http://{self.host}:{self.port}"

    def stop(self, sig: int = signal.SIGINT, timeout: float = 15.0) -> tuple[str, str]:
        """Signal the proxy, wait for it, and return (stdout, everything on stderr)."""
        if self.proc.poll() is None:
            self.proc.send_signal(sig)
        try:
            self.proc.wait(timeout)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
        self._stdout_reader.join(10)
        self._stderr_reader.join(10)
        out = b"".join(self._stdout).decode(errors="replace")
        return out, "".join(self.stderr_lines)
