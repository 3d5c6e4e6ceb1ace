"""``inspector run -- CMD``: real programs as CMD, their HTTPS verified through the proxy.

Every test runs the real ``inspector`` executable. The upstream is a local TLS server
whose certificate comes from an independent trustme CA the proxy is told about with
``--upstream-ca``; the programs trust only what ``inspector run`` gives them (no
``--insecure``, ``verify=False`` or ``-k`` anywhere).
"""

from __future__ import annotations

import json
import os
import re
import shutil
import signal
import socket
import ssl
import subprocess
import sys
import textwrap
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import datetime, timedelta
from pathlib import Path

import pytest
import trustme

from inspector.env import BUNDLE_VARS, NODE_CA_VAR, PROXY_VARS
from inspector.store import Store
from tests.cli_fixtures import (
    GitHttpsServer,
    inspector_command,
    inspector_env,
    make_bare_repo,
    run_inspector,
)
from tests.conftest import needs_curl
from tests.servers import EchoServer

SUMMARY = re.compile(r"^inspector: (\d+) exchanges, (\d+) errors; session (.+)$", re.MULTILINE)


@pytest.fixture(scope="module")
def confdir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """One confdir (one inspector CA) for the module: a CA is made once, as for a user."""
    return tmp_path_factory.mktemp("run-conf")


def inspector_run(
    tmp_path: Path,
    confdir: Path,
    upstream_ca_file: Path,
    *cmd: str,
    options: tuple[str, ...] = (),
    env: dict[str, str] | None = None,
) -> subprocess.CompletedProcess[str]:
    session = tmp_path / "run.db"
    return run_inspector(
        "run", "--confdir", str(confdir), "--session", str(session),
        "--upstream-ca", str(upstream_ca_file), *options, "--", *cmd,
        env=env, cwd=tmp_path,
    )  # fmt: skip


def recorded(tmp_path: Path) -> list:  # type: ignore[type-arg]
    with Store(tmp_path / "run.db", readonly=True) as store:
        return list(store.iter_flows())


def summary(stderr: str) -> tuple[int, int, str]:
    m = SUMMARY.search(stderr)
    assert m, stderr
    return int(m.group(1)), int(m.group(2)), m.group(3)


def assert_captured(done: subprocess.CompletedProcess[str], tmp_path: Path, url: str) -> None:
    """One exchange with ``url`` answered 200, on stderr and in the session."""
    assert "Traceback" not in done.stderr, done.stderr
    assert f"GET {url} -> 200 OK  " in done.stderr, done.stderr
    assert summary(done.stderr) == (1, 0, str(tmp_path / "run.db"))
    flows = recorded(tmp_path)
    assert [(f.request.url, f.response.status_code) for f in flows] == [(url, 200)]
    assert flows[0].tls is not None  # intercepted: the client spoke TLS to our leaf


@needs_curl
def test_curl_verifies_and_its_exit_status_is_kept(
    tmp_path: Path, confdir: Path, upstream_ca_file: Path, tls_echo_server: EchoServer
) -> None:
    url = f"{tls_echo_server.url}/status/404"
    done = inspector_run(tmp_path, confdir, upstream_ca_file, "curl", "-sS", "--fail", url)
    assert done.returncode == 22, done.stderr  # curl's own status for an HTTP error with --fail
    assert f"GET {url} -> 404 Not Found  " in done.stderr
    assert "SSL" not in done.stderr and "certificate" not in done.stderr
    assert summary(done.stderr)[:2] == (1, 0)
    assert recorded(tmp_path)[0].response.status_code == 404


@needs_curl
def test_curl_output_reaches_stdout_and_the_line_goes_to_stderr(
    tmp_path: Path, confdir: Path, upstream_ca_file: Path, tls_echo_server: EchoServer
) -> None:
    url = f"{tls_echo_server.url}/echo"
    done = inspector_run(tmp_path, confdir, upstream_ca_file, "curl", "-sS", url)
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout)["path"] == "/echo"
    assert " -> " not in done.stdout
    assert done.stderr.startswith("inspector: proxy listening on http://127.0.0.1:")
    assert_captured(done, tmp_path, url)


PYTHON_CLIENTS = {
    "requests": "import requests, sys\nr = requests.get(URL)\nprint(r.status_code)\nsys.exit(3)",
    "httpx": "import httpx, sys\nr = httpx.get(URL)\nprint(r.status_code)\nsys.exit(3)",
    "urllib": (
        "import sys, urllib.request\nprint(urllib.request.urlopen(URL).status)\nsys.exit(3)"
    ),
}


@pytest.mark.parametrize("client", sorted(PYTHON_CLIENTS))
def test_python_clients_verify_through_the_bundle(
    client: str,
    tmp_path: Path,
    confdir: Path,
    upstream_ca_file: Path,
    tls_echo_server: EchoServer,
) -> None:
    url = f"{tls_echo_server.url}/echo"
    script = tmp_path / f"use_{client}.py"
    script.write_text(f"URL = {url!r}\n" + PYTHON_CLIENTS[client] + "\n")
    done = inspector_run(tmp_path, confdir, upstream_ca_file, sys.executable, str(script))
    assert done.returncode == 3, done.stderr  # the script's own exit status
    assert done.stdout.strip() == "200"
    assert_captured(done, tmp_path, url)


NODE_VIA_CONNECT = textwrap.dedent(
    """\
    // A program tunnelling through HTTPS_PROXY by hand: its CONNECT, addressed to the proxy
    // itself, is left alone by the preload; the TLS handshake trusts NODE_EXTRA_CA_CERTS.
    const http = require("http"), tls = require("tls");
    const proxy = new URL(process.env.HTTPS_PROXY), target = new URL(process.argv[2]);
    const req = http.request({host: proxy.hostname, port: proxy.port, method: "CONNECT",
                              path: `${target.hostname}:${target.port}`});
    req.on("connect", (res, socket) => {
      const s = tls.connect({socket, host: target.hostname}, () => {
        s.write(`GET ${target.pathname} HTTP/1.1\\r\\nHost: ${target.host}\\r\\n` +
                "Connection: close\\r\\n\\r\\n");
      });
      let got = "";
      s.on("data", (d) => { got += d; });
      s.on("end", () => { console.log(got.split("\\r\\n")[0]); });
      s.on("error", (e) => { console.error(String(e)); process.exit(1); });
    });
    req.end();
    """
)


def node_version() -> tuple[int, int] | None:
    node = shutil.which("node")
    if node is None:
        return None
    out = subprocess.run([node, "--version"], capture_output=True, text=True, timeout=30)
    major, minor, *_ = out.stdout.strip().lstrip("v").split(".")
    return int(major), int(minor)


@pytest.mark.skipif(node_version() is None, reason="node is not installed")
def test_node_trusts_the_ca_through_node_extra_ca_certs(
    tmp_path: Path, confdir: Path, upstream_ca_file: Path, tls_echo_server: EchoServer
) -> None:
    url = f"{tls_echo_server.url}/echo"
    script = tmp_path / "tunnel.js"
    script.write_text(NODE_VIA_CONNECT)
    done = inspector_run(tmp_path, confdir, upstream_ca_file, "node", str(script), url)
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "HTTP/1.1 200 OK"
    assert_captured(done, tmp_path, url)


def _fetch_reads_proxy_env(version: tuple[int, int] | None) -> bool:
    # NODE_USE_ENV_PROXY=1 makes fetch use the proxy variables from Node 24.0 and 22.21.
    return version is not None and (version >= (24, 0) or (22, 21) <= version < (23, 0))


@pytest.mark.skipif(
    not _fetch_reads_proxy_env(node_version()),
    reason=f"node {node_version()}: fetch ignores HTTP(S)_PROXY before Node 22.21/24.0 "
    "(NODE_USE_ENV_PROXY=1 turns it on there)",
)
def test_node_fetch_with_node_use_env_proxy(
    tmp_path: Path, confdir: Path, upstream_ca_file: Path, tls_echo_server: EchoServer
) -> None:
    url = f"{tls_echo_server.url}/echo"
    code = f"fetch({url!r}).then(r => console.log(r.status), e => {{ throw e }})"
    env = inspector_env(NODE_USE_ENV_PROXY="1")
    done = inspector_run(tmp_path, confdir, upstream_ca_file, "node", "-e", code, env=env)
    assert done.returncode == 0, done.stderr
    assert_captured(done, tmp_path, url)


@pytest.mark.skipif(shutil.which("git") is None, reason="git is not installed")
def test_git_ls_remote_over_https(
    tmp_path: Path, confdir: Path, upstream_ca_file: Path, server_tls_context: ssl.SSLContext
) -> None:
    commit = make_bare_repo(tmp_path / "git")
    server = GitHttpsServer(tmp_path / "git", server_tls_context)
    try:
        url = f"{server.url}/repo.git"
        done = inspector_run(tmp_path, confdir, upstream_ca_file, "git", "ls-remote", url)
    finally:
        server.close()
    assert done.returncode == 0, done.stderr
    assert f"{commit}\trefs/heads/main" in done.stdout
    refs = f"GET {url}/info/refs?service=git-upload-pack -> 200 OK  "
    assert refs in done.stderr, done.stderr
    exchanges, errors, _ = summary(done.stderr)
    assert errors == 0 and exchanges == len(recorded(tmp_path)) >= 1


def test_environment_is_exactly_the_spec_and_no_proxy_is_kept(
    tmp_path: Path, confdir: Path, upstream_ca_file: Path
) -> None:
    names = [*PROXY_VARS, *BUNDLE_VARS, NODE_CA_VAR, "NO_PROXY", "no_proxy"]
    show = f"import json, os; print(json.dumps({{k: os.environ.get(k) for k in {names!r}}}))"
    env = inspector_env(NO_PROXY="internal.example", SSL_CERT_FILE="/nonexistent/bundle.pem")
    done = inspector_run(tmp_path, confdir, upstream_ca_file, sys.executable, "-c", show, env=env)
    assert done.returncode == 0, done.stderr
    seen = json.loads(done.stdout)
    port = re.search(r"listening on http://127\.0\.0\.1:(\d+)", done.stderr).group(1)
    assert {seen[k] for k in PROXY_VARS} == {f"http://127.0.0.1:{port}"}
    bundles = {seen[k] for k in BUNDLE_VARS}
    assert len(bundles) == 1
    bundle = Path(bundles.pop())
    assert bundle.parent == confdir and bundle.name.startswith("trust-")
    assert seen[NODE_CA_VAR] == str(confdir / "ca.pem")
    assert seen["NO_PROXY"] == "internal.example" and seen["no_proxy"] is None
    text = bundle.read_text()
    ours = (confdir / "ca.pem").read_text().strip()
    assert text.rstrip().endswith(ours)
    # The system's CAs are there too (hosts not intercepted still verify).
    assert text.count("BEGIN CERTIFICATE") > 1
    assert summary(done.stderr) == (0, 0, str(tmp_path / "run.db"))


@needs_curl
def test_hosts_left_alone_still_verify_against_the_system_cas(
    tmp_path: Path, upstream_ca: trustme.CA, upstream_ca_file: Path, tls_echo_server: EchoServer
) -> None:
    # The "system" store here is the trustme CA (SSL_CERT_FILE of inspector itself):
    # with --ignore-hosts the client talks TLS to the real server through a plain tunnel.
    url = f"{tls_echo_server.url}/echo"
    env = inspector_env(SSL_CERT_FILE=str(upstream_ca_file))
    confdir = tmp_path / "conf"
    done = inspector_run(
        tmp_path, confdir, upstream_ca_file, "curl", "-sS", url,
        options=("--ignore-hosts", "^127\\.0\\.0\\.1$"), env=env,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout)["path"] == "/echo"
    # A first run: the new CA is announced as already trusted by what `run` starts.
    assert f"created a local CA, {confdir / 'ca.pem'}: the programs `inspector run` starts" in (
        done.stderr
    )
    assert "trust it to intercept HTTPS" not in done.stderr
    assert done.stderr.startswith("inspector: proxy listening on ")
    bundle = next(confdir.glob("trust-*.pem"))
    assert upstream_ca.cert_pem.bytes().decode().strip() in bundle.read_text()
    # Written once per CA: a second run leaves the file as it is.
    before = bundle.stat().st_mtime_ns
    again = inspector_run(tmp_path, confdir, upstream_ca_file, "true", env=env)
    assert again.returncode == 0 and bundle.stat().st_mtime_ns == before


def test_quiet_prints_only_errors_and_the_summary(
    tmp_path: Path, confdir: Path, upstream_ca_file: Path, echo_server: EchoServer
) -> None:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        dead = s.getsockname()[1]
    script = tmp_path / "two.py"
    script.write_text(
        "import urllib.request, urllib.error\n"
        f"urllib.request.urlopen({echo_server.url + '/status/200'!r}).read()\n"
        "try:\n"
        f"    urllib.request.urlopen('http://127.0.0.1:{dead}/x')\n"
        "except urllib.error.HTTPError as e:\n"
        "    print(e.code)\n"
    )
    done = inspector_run(
        tmp_path, confdir, upstream_ca_file, sys.executable, str(script), options=("-q",)
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "502"
    lines = [ln for ln in done.stderr.splitlines() if " -> " in ln]
    assert lines == [
        f"GET http://127.0.0.1:{dead}/x -> ERROR ConnectionRefusedError: "
        "[Errno 111] Connection refused"
    ]
    assert summary(done.stderr)[:2] == (2, 1)


def test_a_busy_port_exits_2_without_running_the_command(
    tmp_path: Path, confdir: Path, upstream_ca_file: Path
) -> None:
    marker = tmp_path / "ran"
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        port = str(busy.getsockname()[1])
        done = inspector_run(
            tmp_path, confdir, upstream_ca_file, "touch", str(marker), options=("-p", port)
        )
    assert done.returncode == 2
    assert f"inspector: error: cannot listen on 127.0.0.1:{port}" in done.stderr
    assert not marker.exists()
    assert "Traceback" not in done.stderr


def test_missing_command_and_unknown_program(
    tmp_path: Path, confdir: Path, upstream_ca_file: Path
) -> None:
    done = run_inspector("run", "--confdir", str(confdir))
    assert done.returncode == 2
    assert "inspector run needs a command to run: inspector run [OPTIONS] -- CMD" in done.stderr
    done = inspector_run(tmp_path, confdir, upstream_ca_file, "no-such-program-xyz")
    assert done.returncode == 127
    assert "inspector: error: no-such-program-xyz: command not found" in done.stderr
    assert summary(done.stderr)[:2] == (0, 0)


def test_killed_command_gives_128_plus_the_signal(
    tmp_path: Path, confdir: Path, upstream_ca_file: Path
) -> None:
    done = inspector_run(tmp_path, confdir, upstream_ca_file, "sh", "-c", "kill -TERM $$")
    assert done.returncode == 128 + signal.SIGTERM
    assert summary(done.stderr)[:2] == (0, 0)


@contextmanager
def _start_run(tmp_path: Path, confdir: Path, *cmd: str) -> Iterator[subprocess.Popen[str]]:
    proc = subprocess.Popen(
        [*inspector_command(), "run", "--confdir", str(confdir),
         "--session", str(tmp_path / "run.db"), "--", *cmd],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, stdin=subprocess.DEVNULL, text=True,
        env=inspector_env(), start_new_session=True,  # its own group: a terminal's stand-in
    )  # fmt: skip
    try:
        yield proc
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
        proc.communicate(timeout=30)


CTRL_C_SCRIPT = """\
import sys, time, urllib.request
try:
    print("ready", flush=True)
    time.sleep(60)
except KeyboardInterrupt:
    # The proxy did not stop on the Ctrl-C: this request after it is still recorded.
    print(urllib.request.urlopen(sys.argv[1]).status, flush=True)
    sys.exit(5)
"""


def test_ctrl_c_reaches_the_command_and_the_proxy_keeps_recording(
    tmp_path: Path, confdir: Path, echo_server: EchoServer
) -> None:
    script = tmp_path / "ctrl_c.py"
    script.write_text(CTRL_C_SCRIPT)
    url = f"{echo_server.url}/status/200"
    with _start_run(tmp_path, confdir, sys.executable, str(script), url) as proc:
        assert proc.stdout.readline() == "ready\n"
        os.killpg(proc.pid, signal.SIGINT)  # what the terminal does on Ctrl-C
        out, err = proc.communicate(timeout=60)
        assert proc.returncode == 5, err
        assert out == "200\n"
        assert f"GET {url} -> 200 OK  " in err
        assert summary(err)[:2] == (1, 0)
        assert "Traceback" not in err.replace("KeyboardInterrupt", "")


def test_sigterm_to_inspector_is_passed_on_to_the_command(tmp_path: Path, confdir: Path) -> None:
    code = "import time; print('ready', flush=True); time.sleep(60)"
    with _start_run(tmp_path, confdir, sys.executable, "-c", code) as proc:
        assert proc.stdout.readline() == "ready\n"
        proc.send_signal(signal.SIGTERM)  # to inspector alone, not its group
        _, err = proc.communicate(timeout=60)
        assert proc.returncode == 128 + signal.SIGTERM
        assert summary(err)[:2] == (0, 0)


@needs_curl
def test_proxy_options_may_come_before_the_command_word(
    tmp_path: Path, confdir: Path, upstream_ca_file: Path, echo_server: EchoServer
) -> None:
    url = f"{echo_server.url}/status/404"
    done = run_inspector(
        "-q", "--confdir", str(confdir), "--session", str(tmp_path / "run.db"),
        "run", "--", "curl", "-sS", "-o", os.devnull, url,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    assert " -> " not in done.stderr  # -q: no error, so no line
    assert summary(done.stderr) == (1, 0, str(tmp_path / "run.db"))


def test_intercept_needs_the_ui(tmp_path: Path, confdir: Path) -> None:
    marker = tmp_path / "ran"
    done = run_inspector(
        "run", "--confdir", str(confdir), "--intercept", "~m GET", "--", "touch", str(marker)
    )
    assert done.returncode == 2
    assert "`inspector run` has none to release them" in done.stderr
    assert not marker.exists() and "listening" not in done.stderr


def test_proxies_started_in_the_same_second_each_record_to_a_new_file(
    tmp_path: Path, echo_server: EchoServer
) -> None:
    # Two runs at once, and a dated file already there for every second they could take:
    # each must record to a file of its own, never into another proxy's session.
    conf = tmp_path / "conf"
    (conf / "sessions").mkdir(parents=True)
    now = datetime.now()
    taken = [
        conf / "sessions" / f"{(now + timedelta(seconds=s)):%Y%m%d-%H%M%S}.db"
        for s in range(-1, 60)
    ]
    for path in taken:
        path.touch()
    fetch = f"import urllib.request as u; u.urlopen({echo_server.url + '/one'!r}).read()"
    runs = [
        subprocess.Popen(
            [
                *inspector_command(),
                "run",
                "--confdir",
                str(conf),
                "--",
                sys.executable,
                "-c",
                fetch,
            ],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
            text=True,
            env=inspector_env(),
        )
        for _ in range(2)
    ]
    errs = [run.communicate(timeout=60)[1] for run in runs]
    assert [run.returncode for run in runs] == [0, 0], errs
    sessions = [summary(err) for err in errs]
    assert [s[:2] for s in sessions] == [(1, 0), (1, 0)], errs
    assert sessions[0][2] != sessions[1][2]
    assert all(path.stat().st_size == 0 for path in taken)  # nobody else's file was touched
    for _, _, path in sessions:
        with Store(Path(path), readonly=True) as store:
            assert [f.request.path for f in store.iter_flows()] == ["/one"]
