"""Command-line parsing into a Config: defaults, validation and clear errors."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from inspector.cli import build_parser, config_from_args
from inspector.config import DEFAULT_BODY_LIMIT, ConfigError, Endpoint, Mode, parse_size


def _config(*argv: str):
    return config_from_args(build_parser("dump").parse_args(list(argv)))


def test_defaults_follow_the_spec() -> None:
    cfg = _config()
    assert cfg.listen_host == "127.0.0.1"
    assert cfg.listen_port == 8080
    assert cfg.mode == Mode("regular")
    assert cfg.confdir == Path.home() / ".inspector"
    assert cfg.connect_timeout == 10.0 and cfg.read_timeout == 30.0
    assert cfg.body_limit == DEFAULT_BODY_LIMIT
    assert not cfg.insecure and cfg.proxy_auth is None and cfg.ignore_hosts is None


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("1000", 1000),
        ("512k", 512_000),
        ("4MiB", 4 * 1024 * 1024),
        ("2 MB", 2_000_000),
        ("1g", 10**9),
        ("3KiB", 3072),
        ("10b", 10),
    ],
)
def test_parse_size(text: str, expected: int) -> None:
    assert parse_size(text) == expected


@pytest.mark.parametrize("text", ["", "lots", "-5", "4XB", "1.2.3"])
def test_parse_size_rejects_garbage_with_a_hint(text: str) -> None:
    with pytest.raises(ConfigError, match=r"e\.g\. 4MiB"):
        parse_size(text)


def test_modes_parse_their_targets() -> None:
    reverse = Mode.parse("reverse:https://example.test:8443")
    assert reverse.kind == "reverse"
    assert reverse.target == Endpoint("https", "example.test", 8443)
    upstream = Mode.parse("upstream:http://[::1]:3128")
    assert upstream.target == Endpoint("http", "::1", 3128)
    assert str(upstream) == "upstream:http://[::1]:3128"
    assert Mode.parse("reverse:http://h").target.port == 80


@pytest.mark.parametrize(
    "text", ["transparent", "reverse:", "reverse:ftp://x", "upstream:http://h:99999"]
)
def test_bad_modes_say_what_to_use(text: str) -> None:
    with pytest.raises(ConfigError) as info:
        Mode.parse(text)
    assert text.split(":")[0] in str(info.value) or "port" in str(info.value)


def test_proxy_auth_and_ignore_hosts(capsys: pytest.CaptureFixture[str]) -> None:
    cfg = _config("--proxy-auth", "alice:s3:cret", "--ignore-hosts", r"^bank\.")
    assert cfg.proxy_auth == ("alice", "s3:cret")
    assert cfg.ignore_hosts is not None and cfg.ignore_hosts.search("bank.example")
    with pytest.raises(SystemExit):
        _config("--proxy-auth", "nopassword")
    assert "argument --proxy-auth: expected USER:PASS, got 'nopassword'" in capsys.readouterr().err
    with pytest.raises(SystemExit):
        _config("--ignore-hosts", "([")
    assert "argument --ignore-hosts: bad regex '(['" in capsys.readouterr().err


def test_session_path_defaults_under_confdir(tmp_path: Path) -> None:
    cfg = _config("--confdir", str(tmp_path))
    path = cfg.session_path()
    assert path.parent == tmp_path / "sessions" and path.suffix == ".db"
    assert _config("--session", str(tmp_path / "s.db")).session_path() == tmp_path / "s.db"


def _run(*argv: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "inspector", *argv], capture_output=True, text=True, timeout=60
    )


def test_cli_reports_bad_options_without_a_traceback(tmp_path: Path) -> None:
    result = _run("dump", "--mode", "bogus", "--confdir", str(tmp_path))
    assert result.returncode == 2
    assert "inspector dump: error: argument -m/--mode: bad mode 'bogus'" in result.stderr
    assert "Traceback" not in result.stderr
    result = _run("dump", "--listen-port", "70000")
    assert result.returncode == 2 and "expected a port" in result.stderr
    result = _run("dump", "--read-timeout", "0")
    assert result.returncode == 2 and "greater than 0" in result.stderr
    result = _run("dump", "--upstream-ca", str(tmp_path / "missing.pem"))
    assert result.returncode == 2 and "no such file" in result.stderr


def test_every_subcommand_has_help() -> None:
    for command in ("dump", "show", "replay", "export", "import", "ca"):
        result = _run(command, "--help")
        assert result.returncode == 0, result.stderr
        assert f"inspector {command}" in result.stdout
