"""The real ``inspector`` executable in a subprocess, and a local HTTPS git endpoint.

``inspector_command()`` is the console script installed next to the running Python (what
a user types), falling back to ``python -m inspector`` where it is not installed. The
worktree's code wins through PYTHONPATH either way.
"""

from __future__ import annotations

import os
import shutil
import ssl
import subprocess
import sys
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def inspector_command() -> list[str]:
    """The argv prefix that runs the ``inspector`` executable."""
    script = shutil.which("inspector", path=str(Path(sys.executable).parent))
    return [script] if script else [sys.executable, "-m", "inspector"]


def inspector_env(**extra: str) -> dict[str, str]:
    """The environment for an inspector subprocess: this worktree's code, no inherited proxy."""
    env = {k: v for k, v in os.environ.items() if not k.lower().endswith("_proxy")}
    env["PYTHONPATH"] = str(ROOT)
    env["PYTHONUNBUFFERED"] = "1"
    env.update(extra)
    return env


def run_inspector(
    *args: str, env: dict[str, str] | None = None, timeout: float = 60, cwd: Path | None = None
) -> subprocess.CompletedProcess[str]:
    """Run ``inspector ARGS...`` to completion, capturing text output."""
    return subprocess.run(
        [*inspector_command(), *args],
        capture_output=True,
        text=True,
        timeout=timeout,
        env=env or inspector_env(),
        cwd=cwd or ROOT,
        stdin=subprocess.DEVNULL,
    )


def on_a_terminal(argv: list[str], *, timeout: float = 120) -> tuple[int, str]:
    """Run ``argv`` with stdout and stderr on one new pseudo-terminal; its status and all it
    showed there (control codes included)."""
    import pty
    import select

    primary, secondary = pty.openpty()
    proc = subprocess.Popen(
        argv, stdin=subprocess.DEVNULL, stdout=secondary, stderr=secondary,
        env=inspector_env(TERM="xterm", COLUMNS="100"),
    )  # fmt: skip
    os.close(secondary)
    shown = bytearray()
    try:
        while True:
            ready, _, _ = select.select([primary], [], [], timeout)
            assert ready, f"no output within {timeout} s"
            try:
                chunk = os.read(primary, 65536)
            except OSError:  # the other end closed: the process is done
                break
            if not chunk:
                break
            shown += chunk
    finally:
        os.close(primary)
    return proc.wait(timeout=60), shown.decode(errors="replace")


def make_bare_repo(root: Path, name: str = "repo.git") -> str:
    """A bare repository under ``root`` with one empty commit on main; returns the commit id."""
    repo = root / name
    ident = {
        "GIT_AUTHOR_NAME": "t",
        "GIT_AUTHOR_EMAIL": "t@example.invalid",
        "GIT_COMMITTER_NAME": "t",
        "GIT_COMMITTER_EMAIL": "t@example.invalid",
    }
    env = {**os.environ, **ident}

    def git(*args: str, data: bytes | None = None) -> str:
        out = subprocess.run(
            ["git", f"--git-dir={repo}", *args],
            input=data,
            capture_output=True,
            check=True,
            env=env,
            timeout=30,
        )
        return out.stdout.decode().strip()

    subprocess.run(["git", "init", "-q", "--bare", str(repo)], check=True, timeout=30)
    tree = git("hash-object", "-t", "tree", "-w", "--stdin", data=b"")
    commit = git("commit-tree", tree, "-m", "first")
    git("update-ref", "refs/heads/main", commit)
    git("symbolic-ref", "HEAD", "refs/heads/main")
    return commit


class GitHttpsServer:
    """``git http-backend`` (smart HTTP, protocol v2 included) behind a TLS server on loopback."""

    def __init__(self, project_root: Path, tls: ssl.SSLContext) -> None:
        root = str(project_root)

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, format: str, *args: object) -> None:
                pass

            def do_GET(self) -> None:
                self._backend()

            def do_POST(self) -> None:
                self._backend()

            def _backend(self) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                body = self.rfile.read(length) if length else b""
                path, _, query = self.path.partition("?")
                env = {
                    "PATH": os.environ.get("PATH", ""),
                    "GIT_PROJECT_ROOT": root,
                    "GIT_HTTP_EXPORT_ALL": "1",
                    "REQUEST_METHOD": self.command,
                    "PATH_INFO": path,
                    "QUERY_STRING": query,
                    "CONTENT_TYPE": self.headers.get("Content-Type", ""),
                    "CONTENT_LENGTH": str(len(body)),
                    "HTTP_CONTENT_ENCODING": self.headers.get("Content-Encoding", ""),
                    "GIT_PROTOCOL": self.headers.get("Git-Protocol", ""),
                    "REMOTE_ADDR": "127.0.0.1",
                }
                out = subprocess.run(
                    ["git", "http-backend"], input=body, env=env, capture_output=True, timeout=30
                ).stdout
                self._reply(out)

            def _reply(self, cgi_output: bytes) -> None:
                ends = [
                    (i, len(sep))
                    for sep in (b"\r\n\r\n", b"\n\n")
                    if (i := cgi_output.find(sep)) >= 0
                ]
                end, width = min(ends) if ends else (len(cgi_output), 0)
                head, payload = cgi_output[:end], cgi_output[end + width :]
                status, headers = 200, []
                for line in head.decode("latin-1").splitlines():
                    name, _, value = line.partition(":")
                    if name.lower() == "status":
                        status = int(value.split()[0])
                    else:
                        headers.append((name, value.strip()))
                self.send_response(status)
                for name, value in headers:
                    self.send_header(name, value)
                self.send_header("Content-Length", str(len(payload)))
                self.end_headers()
                self.wfile.write(payload)

        class Server(ThreadingHTTPServer):
            daemon_threads = True

        self.httpd = Server(("127.0.0.1", 0), Handler)
        self.httpd.socket = tls.wrap_socket(self.httpd.socket, server_side=True)
        self.port = self.httpd.server_address[1]
        self._thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)
        self._thread.start()

    @property
    def url(self) -> str:
        return f"https://127.0.0.1:{self.port}"

    def close(self) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()
