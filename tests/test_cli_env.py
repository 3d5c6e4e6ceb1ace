"""``inspector env``: lines that point a shell at a running proxy, for sh, fish and PowerShell."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from inspector.env import BUNDLE_VARS, NODE_CA_VAR, PROXY_VARS
from tests.cli_fixtures import inspector_command, inspector_env, run_inspector
from tests.conftest import needs_curl
from tests.servers import EchoServer

NAMES = [*PROXY_VARS, *BUNDLE_VARS, NODE_CA_VAR]
SHOW = f"import json, os; print(json.dumps({{k: os.environ.get(k) for k in {NAMES!r}}}))"


def test_eval_in_posix_sh_sets_every_variable(tmp_path: Path) -> None:
    done = run_inspector("env", "--confdir", str(tmp_path), "--proxy", "http://127.0.0.1:9999")
    assert done.returncode == 0, done.stderr
    assert done.stdout.startswith("# points this shell at the proxy http://127.0.0.1:9999: ")
    shell = subprocess.run(
        ["sh", "-c", f'eval "$1"; exec {sys.executable} -c "$2"', "sh", done.stdout, SHOW],
        capture_output=True, text=True, timeout=30, env=inspector_env(),
    )  # fmt: skip
    assert shell.returncode == 0, shell.stderr
    seen = json.loads(shell.stdout)
    assert {seen[k] for k in PROXY_VARS} == {"http://127.0.0.1:9999"}
    bundle = Path(seen["SSL_CERT_FILE"])
    assert {seen[k] for k in BUNDLE_VARS} == {str(bundle)}
    assert bundle.parent == tmp_path and bundle.is_file()
    assert seen[NODE_CA_VAR] == str(tmp_path / "ca.pem")


def test_the_comment_says_how_to_apply_the_lines_with_the_options_given(tmp_path: Path) -> None:
    conf = str(tmp_path)
    done = run_inspector("env", "--confdir", conf, "--proxy", "http://127.0.0.1:9999")
    assert done.stdout.splitlines()[0].endswith(
        f'eval "$(inspector env --proxy http://127.0.0.1:9999 --confdir {conf})"'
    )
    fish = run_inspector("env", "--shell", "fish", env=inspector_env(INSPECTOR_CONFDIR=conf))
    assert fish.stdout.splitlines()[0].endswith(": inspector env --shell fish | source")


def test_default_proxy_is_the_configured_listen_address(tmp_path: Path) -> None:
    (tmp_path / "config.toml").write_text(
        'listen-host = "0.0.0.0"\nlisten-port = 9090\nproxy-auth = "me:p@ss word"\n'
    )
    done = run_inspector("env", "--confdir", str(tmp_path))
    assert done.returncode == 0, done.stderr
    # Listening on every address is reached on loopback; credentials are percent-encoded.
    assert "export HTTP_PROXY='http://me:p%40ss%20word@127.0.0.1:9090'" in done.stdout
    assert "me:***@127.0.0.1:9090" in done.stdout.splitlines()[0]


def test_built_in_default_is_port_8080_and_inspector_confdir_env(tmp_path: Path) -> None:
    done = run_inspector("env", env=inspector_env(INSPECTOR_CONFDIR=str(tmp_path)))
    assert done.returncode == 0, done.stderr
    assert "export HTTPS_PROXY='http://127.0.0.1:8080'" in done.stdout
    assert f"export NODE_EXTRA_CA_CERTS='{tmp_path / 'ca.pem'}'" in done.stdout


def test_fish_and_powershell_syntax(tmp_path: Path) -> None:
    fish = run_inspector("env", "--confdir", str(tmp_path), "--shell", "fish")
    assert fish.returncode == 0, fish.stderr
    assert "set -gx HTTP_PROXY 'http://127.0.0.1:8080'" in fish.stdout
    assert "| source" in fish.stdout.splitlines()[0]
    pwsh = run_inspector("env", "--confdir", str(tmp_path), "--shell", "powershell")
    assert pwsh.returncode == 0, pwsh.stderr
    assert "$env:HTTPS_PROXY = 'http://127.0.0.1:8080'" in pwsh.stdout
    assert "Invoke-Expression" in pwsh.stdout.splitlines()[0]
    if shutil.which("fish"):
        out = subprocess.run(
            ["fish", "-c", f"{fish.stdout}\necho $HTTP_PROXY"],
            capture_output=True, text=True, timeout=30,
        )  # fmt: skip
        assert out.stdout.strip() == "http://127.0.0.1:8080"


def test_quotes_survive_in_paths(tmp_path: Path) -> None:
    confdir = tmp_path / "it's here"
    done = run_inspector("env", "--confdir", str(confdir))
    assert done.returncode == 0, done.stderr
    shell = subprocess.run(
        ["sh", "-c", 'eval "$1"; printf %s "$NODE_EXTRA_CA_CERTS"', "sh", done.stdout],
        capture_output=True, text=True, timeout=30,
    )  # fmt: skip
    assert shell.stdout == str(confdir / "ca.pem")


@pytest.mark.parametrize("bad", ["ftp://127.0.0.1:21", "http://127.0.0.1:notaport", "http://"])
def test_bad_proxy_url_is_a_clear_error(tmp_path: Path, bad: str) -> None:
    done = run_inspector("env", "--confdir", str(tmp_path), "--proxy", bad)
    assert done.returncode == 2
    assert f"inspector: error: bad --proxy {bad!r}: use http://HOST:PORT" in done.stderr
    assert done.stdout == ""


@needs_curl
def test_a_shell_pointed_by_env_reaches_a_running_proxy(
    tmp_path: Path, echo_server: EchoServer
) -> None:
    from tests.proxy_process import ProxyProcess

    proxy = ProxyProcess(tmp_path)
    try:
        lines = run_inspector("env", "--confdir", str(proxy.confdir), "--proxy", proxy.url)
        assert lines.returncode == 0, lines.stderr
        shell = subprocess.run(
            ["sh", "-c", f'eval "$1"; curl -sS {echo_server.url}/status/201', "sh", lines.stdout],
            capture_output=True, text=True, timeout=30,
        )  # fmt: skip
        assert shell.stdout == "status 201\n", shell.stderr
    finally:
        out, _ = proxy.stop()
    assert f"GET {echo_server.url}/status/201 -> 201 Created" in out


def test_inspector_ca_points_at_run_and_env_first(tmp_path: Path) -> None:
    done = run_inspector("ca", "--confdir", str(tmp_path))
    assert done.returncode == 0, done.stderr
    steps = done.stdout.split("-----END CERTIFICATE-----", 1)[1]
    assert steps.index("inspector run -- CMD") < steps.index("How to trust it")
    assert 'eval "$(inspector env)"' in steps


def test_node_lines_in_every_shell(tmp_path: Path) -> None:
    """Node's preload, after the NODE_OPTIONS the shell already exports, in each syntax."""
    preload = tmp_path / "node-proxy.cjs"
    require = f'--require "{preload}"'
    env = inspector_env(NODE_OPTIONS="--no-warnings")
    expected = {
        "sh": [f"export NODE_OPTIONS='--no-warnings {require}'", "export NODE_USE_ENV_PROXY='1'"],
        "fish": [
            f"set -gx NODE_OPTIONS '--no-warnings {require}'",
            "set -gx NODE_USE_ENV_PROXY '1'",
        ],
        "powershell": [
            f"$env:NODE_OPTIONS = '--no-warnings {require}'",
            "$env:NODE_USE_ENV_PROXY = '1'",
        ],
    }
    for shell, lines in expected.items():
        done = run_inspector("env", "--confdir", str(tmp_path), "--shell", shell, env=env)
        assert done.returncode == 0, done.stderr
        out = done.stdout.splitlines()
        assert out[1].startswith("# Node before 22.21/24 ignores the proxy variables")
        assert out[-2:] == lines
    assert "globalDispatcher" in preload.read_text()  # written into the confdir
    # Evaluated twice in sh (a second `eval "$(inspector env)"`): the preload is there once.
    twice = 'eval "$("$@")"; eval "$("$@")"; printf %s "$NODE_OPTIONS"'
    shell = subprocess.run(
        ["sh", "-c", twice, "sh", *inspector_command(), "env", "--confdir", str(tmp_path)],
        capture_output=True, text=True, timeout=60, env=inspector_env(),
    )  # fmt: skip
    assert shell.stdout == require, shell.stderr
