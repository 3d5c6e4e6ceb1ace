"""Run ``inspector dump`` as a real subprocess for end-to-end tests."""

from __future__ import annotations

import os
import re
import select
import signal
import subprocess
import sys
import time
from pathlib import Path

_LISTENING = re.compile(r"inspector: proxy listening on http://(\[[^\]]+\]|[^:]+):(\d+)")


class ProxyProcess:
    """``python -m inspector dump`` on a free port, with its own confdir and session."""

    def __init__(self, tmp: Path, *args: str, startup_timeout: float = 30.0) -> None:
        self.confdir = tmp / "conf"
        self.session = tmp / "session.db"
        cmd = [
            sys.executable,
            "-m",
            "inspector",
            "dump",
            "--listen-port",
            "0",
            "--confdir",
            str(self.confdir),
            "--session",
            str(self.session),
            *args,
        ]
        env = dict(os.environ, PYTHONUNBUFFERED="1")
        self.proc = subprocess.Popen(
            cmd,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            env=env,
            cwd=Path(__file__).parents[1],
        )
        self.stderr_lines: list[str] = []
        self.host, self.port = self._wait_listening(startup_timeout)

    def _wait_listening(self, timeout: float) -> tuple[str, int]:
        assert self.proc.stderr is not None
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            ready, _, _ = select.select([self.proc.stderr], [], [], 0.2)
            if ready:
                line = self.proc.stderr.readline().decode(errors="replace")
                if not line and self.proc.poll() is not None:
                    break
                self.stderr_lines.append(line)
                m = _LISTENING.search(line)
                if m:
                    return m.group(1).strip("[]"), int(m.group(2))
            elif self.proc.poll() is not None:
                break
        self.proc.kill()
        raise RuntimeError(f"proxy did not start: {''.join(self.stderr_lines)}")

    @property
    def url(self) -> str:
        return f"http://{self.host}:{self.port}"

    def stop(self, sig: int = signal.SIGINT, timeout: float = 15.0) -> tuple[str, str]:
        """Signal the proxy, wait for it, and return (stdout, rest of stderr)."""
        if self.proc.poll() is None:
            self.proc.send_signal(sig)
        try:
            out, err = self.proc.communicate(timeout=timeout)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            out, err = self.proc.communicate()
        return out.decode(errors="replace"), "".join(self.stderr_lines) + err.decode(
            errors="replace"
        )
