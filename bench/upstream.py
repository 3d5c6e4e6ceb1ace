"""The benchmark's upstream: an nginx on loopback serving a small response and a big file.

It listens plain on 127.0.0.1 and TLS on 127.0.0.1 plus 127.0.0.2..127.0.0.250 (all of
127.0.0.0/8 is loopback on Linux), so a client can CONNECT to a new IP each time and make
the proxy mint a new certificate without any DNS.
"""

from __future__ import annotations

import grp
import os
import pwd
import shutil
import socket
import subprocess
import time
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path

import trustme

NGINX = shutil.which("nginx") or "/usr/sbin/nginx"
SMALL_PATH = "/small"
BIG_PATH = "/big.bin"
BIG_SIZE = 256 * 1024 * 1024
# ~200 bytes of body, like a small JSON API answer.
SMALL_BODY = '{"status":"ok","items":[' + ",".join(f'"item-{i:02d}"' for i in range(16)) + "]}"
STATUS_PATH = "/nginx-status"
EXTRA_HOSTS = tuple(f"127.0.0.{i}" for i in range(2, 251))


def free_port(host: str = "127.0.0.1") -> int:
    """A port the kernel says is free right now on host."""
    with socket.socket() as s:
        s.bind((host, 0))
        return s.getsockname()[1]


def wait_listening(host: str, port: int, timeout: float = 15.0, proc=None) -> None:
    """Poll until host:port accepts TCP connections, or raise RuntimeError."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc is not None and proc.poll() is not None:
            raise RuntimeError(f"process exited with status {proc.returncode} before listening")
        try:
            with socket.create_connection((host, port), timeout=0.5):
                return
        except OSError:
            time.sleep(0.05)
    raise RuntimeError(f"nothing listening on {host}:{port} after {timeout:.0f}s")


def _user_directive() -> str:
    # nginx started as root drops its workers to "nobody"; keep them as us so they can
    # read the temp dir. Not root: the directive is ignored, so leave it out.
    if os.geteuid() != 0:
        return ""
    user = pwd.getpwuid(os.geteuid()).pw_name
    group = grp.getgrgid(os.getegid()).gr_name
    return f"user {user} {group};"


@dataclass
class Nginx:
    """An nginx process serving SMALL_PATH and BIG_PATH, plain and TLS, from workdir."""

    workdir: Path
    cpus: str = "1"
    plain_port: int = 0
    tls_port: int = 0
    ca: trustme.CA = field(default_factory=trustme.CA)
    proc: subprocess.Popen | None = None

    @property
    def ca_file(self) -> Path:
        return self.workdir / "upstream-ca.pem"

    def start(self) -> None:
        self.workdir.mkdir(parents=True, exist_ok=True)
        self._write_content()
        last_error = ""
        for _attempt in range(3):  # a chosen port can be taken in between: pick again
            self.plain_port, self.tls_port = free_port(), free_port()
            conf = self.workdir / "nginx.conf"
            conf.write_text(self._config())
            self.proc = subprocess.Popen(
                [
                    "taskset",
                    "-c",
                    self.cpus,
                    NGINX,
                    "-p",
                    str(self.workdir),
                    "-c",
                    str(conf),
                    "-e",
                    str(self.workdir / "error.log"),
                ],
                stdout=subprocess.DEVNULL,
                stderr=subprocess.PIPE,
            )
            try:
                wait_listening("127.0.0.1", self.plain_port, proc=self.proc)
                wait_listening("127.0.0.1", self.tls_port, proc=self.proc)
                return
            except RuntimeError as e:
                last_error = f"{e}: {self._stderr()}"
                self.stop()
        raise RuntimeError(f"nginx did not start: {last_error}")

    def _stderr(self) -> str:
        if self.proc is None or self.proc.poll() is None or self.proc.stderr is None:
            return ""
        return self.proc.stderr.read().decode(errors="replace").strip()

    def _write_content(self) -> None:
        www = self.workdir / "www"
        www.mkdir(exist_ok=True)
        big = www / BIG_PATH.lstrip("/")
        if not big.exists() or big.stat().st_size != BIG_SIZE:
            with open(big, "wb") as f:
                f.truncate(BIG_SIZE)  # sparse: reads as zeros, costs no disk
        (self.workdir / "tmp").mkdir(exist_ok=True)
        self.ca.cert_pem.write_to_path(str(self.ca_file))
        leaf = self.ca.issue_cert("127.0.0.1", "localhost")
        leaf.private_key_and_cert_chain_pem.write_to_path(str(self.workdir / "upstream.pem"))

    def _config(self) -> str:
        d = self.workdir
        tls_listens = "\n".join(
            f"        listen {h}:{self.tls_port} ssl;" for h in ("127.0.0.1", *EXTRA_HOSTS)
        )
        locations = f"""
        location = {SMALL_PATH} {{ default_type application/json; return 200 '{SMALL_BODY}'; }}
        location / {{ root {d}/www; }}"""
        return f"""
{_user_directive()}
worker_processes 1;
daemon off;
pid {d}/nginx.pid;
error_log {d}/error.log warn;
worker_rlimit_nofile 20000;
events {{ worker_connections 16384; }}
http {{
    access_log off;
    client_body_temp_path {d}/tmp/body;
    proxy_temp_path {d}/tmp/proxy;
    fastcgi_temp_path {d}/tmp/fastcgi;
    uwsgi_temp_path {d}/tmp/uwsgi;
    scgi_temp_path {d}/tmp/scgi;
    default_type application/octet-stream;
    sendfile on;
    tcp_nopush on;
    keepalive_requests 100000000;
    keepalive_timeout 600s;
    server {{
        listen 127.0.0.1:{self.plain_port};
        location = {STATUS_PATH} {{ stub_status; }}
        {locations}
    }}
    server {{
{tls_listens}
        ssl_certificate {d}/upstream.pem;
        ssl_certificate_key {d}/upstream.pem;
        ssl_protocols TLSv1.2 TLSv1.3;
        {locations}
    }}
}}
"""

    def accepted(self) -> int:
        """nginx's accepted-connections counter (this query's own connection included)."""
        url = f"http://127.0.0.1:{self.plain_port}{STATUS_PATH}"
        with urllib.request.urlopen(url, timeout=10) as response:
            text = response.read().decode()
        # "Active connections: 1\nserver accepts handled requests\n 12 12 40\n..."
        return int(text.splitlines()[2].split()[0])

    def stop(self) -> None:
        if self.proc is None:
            return
        if self.proc.poll() is None:
            self.proc.terminate()  # SIGTERM: fast shutdown of master and worker
            try:
                self.proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self.proc = None
