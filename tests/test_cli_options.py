"""The command line's conventions: --version, help with defaults, option placement, short
flags, and CONFDIR/config.toml (with INSPECTOR_CONFDIR), through the real executable."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from inspector import __version__
from inspector.cli import SUBCOMMANDS, build_parser, config_from_args, parse
from tests.cli_fixtures import inspector_env, run_inspector
from tests.proxy_process import ProxyProcess


def test_version() -> None:
    done = run_inspector("--version")
    assert done.returncode == 0
    assert done.stdout == f"inspector {__version__}\n"
    assert re.fullmatch(r"\d+\.\d+\.\d+", __version__)


def _option_entries(help_text: str) -> dict[str, str]:
    """Each option's first spelling -> its help text, from the "options:" and group blocks."""
    block = help_text.split("options:\n", 1)[1].split("\ncommands:\n", 1)[0]
    entries: dict[str, str] = {}
    current = None
    for line in block.splitlines():
        if not line.startswith(" "):  # a group's heading, or the blank line before it
            current = None
            continue
        m = re.match(r"^  (-[^ ,]+)", line)
        if m:
            current = m.group(1)
            entries[current] = line[2:]
        elif current is not None:
            entries[current] += " " + line.strip()
    return entries


@pytest.mark.parametrize("command", [None, *SUBCOMMANDS])
def test_every_option_has_help_and_shows_its_default(command: str | None) -> None:
    done = run_inspector(*([command] if command else []), "--help")
    assert done.returncode == 0, done.stderr
    entries = _option_entries(done.stdout)
    parser = build_parser(command)
    expected = {a.option_strings[0] for a in parser.options if a.option_strings}
    assert set(entries) >= expected
    for option, text in entries.items():
        if option in ("-h", "--version"):
            continue
        assert re.search(r"\((default: [^)]+|required)\)", text), f"{command} {option}: {text}"
    for action in parser.options:
        own = (action.help or "").split("(default:")[0].strip()
        assert len(own) > 3, f"{command} {action.option_strings or action.dest} has no help"


def test_proxy_options_before_and_after_the_command_word(tmp_path: Path) -> None:
    before = run_inspector("--listen-port", "notaport", "dump")
    after = run_inspector("dump", "--listen-port", "notaport")
    for done in (before, after):
        assert done.returncode == 2
        assert "inspector dump: error: argument -p/--listen-port: expected a port" in done.stderr
    # A value that looks like a command word is still the option's value.
    done = run_inspector("--mode", "dump", "dump")
    assert "bad mode 'dump'" in done.stderr


def test_short_flags_reach_the_proxy(tmp_path: Path) -> None:
    proxy = ProxyProcess(tmp_path, "-p", "0", "-m", "reverse:http://127.0.0.1:9", "-q")
    _, err = proxy.stop()
    assert proxy.proc.returncode == 0, err
    assert "listening on http://127.0.0.1:" in err
    help_text = run_inspector("dump", "--help").stdout
    for flag in ("-p PORT, --listen-port PORT", "-m MODE, --mode MODE", "-q, --quiet"):
        assert flag in help_text


def _config(tmp_path: Path, text: str) -> Path:
    confdir = tmp_path / "conf"
    confdir.mkdir(exist_ok=True)
    (confdir / "config.toml").write_text(text)
    return confdir


def test_config_file_sets_defaults_and_the_command_line_wins(tmp_path: Path) -> None:
    confdir = _config(
        tmp_path,
        'listen-port = 0\nmode = "reverse:http://127.0.0.1:9"\nread-timeout = 2.5\n'
        'body-limit = "64k"\nquiet = true\nignore-hosts = "^bank\\\\."\n',
    )
    help_text = run_inspector("dump", "--confdir", str(confdir), "--help").stdout
    entries = _option_entries(help_text)
    assert "(default: reverse:http://127.0.0.1:9)" in entries["-m"]
    assert "(default: 2.5)" in entries["--read-timeout"]
    assert "(default: 64k)" in entries["--body-limit"]
    assert "(default: on)" in entries["-q"]
    assert "(default: ^bank\\.)" in entries["--ignore-hosts"]
    # The command line wins: --listen-port given there is the one used.
    done = run_inspector("dump", "--confdir", str(confdir), "--listen-port", "notaport")
    assert done.returncode == 2 and "expected a port 0-65535, got 'notaport'" in done.stderr


def test_config_file_reaches_a_running_proxy(tmp_path: Path) -> None:
    _config(tmp_path, 'mode = "upstream:http://127.0.0.1:3128"\n')
    proxy = ProxyProcess(tmp_path)  # its --confdir is tmp_path/conf
    _, err = proxy.stop()
    assert proxy.proc.returncode == 0, err
    assert "listening on" in err


def test_inspector_confdir_sets_where_config_and_ca_live(tmp_path: Path) -> None:
    confdir = _config(tmp_path, "listen-port = 70000\n")
    done = run_inspector("dump", env=inspector_env(INSPECTOR_CONFDIR=str(confdir)))
    assert done.returncode == 2
    assert f"{confdir / 'config.toml'}: key 'listen-port': expected a port 0-65535" in done.stderr
    ca = run_inspector("ca", env=inspector_env(INSPECTOR_CONFDIR=str(confdir)))
    assert ca.returncode == 0 and f"CA certificate: {confdir / 'ca.pem'}" in ca.stdout


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("listen-prot = 9090\n", "key 'listen-prot': unknown key (did you mean 'listen-port'?)"),
        ('mode = "sideways"\n', "key 'mode': bad mode 'sideways': use regular, reverse:URL"),
        ("insecure = 1\n", "key 'insecure': expected true or false, got 1"),
        ("connect-timeout = -1\n", "key 'connect-timeout': must be greater than 0"),
        ('ignore-hosts = "(["\n', "key 'ignore-hosts': bad regex '(['"),
        ('intercept = "~x"\n', "key 'intercept': bad --intercept expression '~x'"),
        ("listen-host = [1, 2]\n", "key 'listen-host': expected a string or a number, got a list"),
        ('confdir = "/elsewhere"\n', "key 'confdir': the file lives in the confdir"),
        ("listen-port = \n", "not valid TOML: "),
    ],
)
def test_config_file_errors_name_the_file_and_the_key(
    tmp_path: Path, text: str, message: str
) -> None:
    confdir = _config(tmp_path, text)
    done = run_inspector("dump", "--confdir", str(confdir), "-p", "0")  # never 8080, even failing
    assert done.returncode == 2
    assert done.stderr.startswith(f"inspector: error: {confdir / 'config.toml'}: "), done.stderr
    assert message in done.stderr
    assert "Traceback" not in done.stderr


def test_keys_other_commands_take_are_left_alone(tmp_path: Path) -> None:
    # `filter` and `quiet` are dump's and run's; the UI's `intercept` does not stop dump.
    confdir = _config(tmp_path, 'intercept = "~m POST"\nfilter = "~c 500"\n')
    proxy = ProxyProcess(tmp_path)
    _, err = proxy.stop()
    assert proxy.proc.returncode == 0, err
    help_text = run_inspector("--confdir", str(confdir), "--help").stdout
    assert "(default: ~m POST)" in _option_entries(help_text)["--intercept"]


def test_repeatable_keys_take_lists_and_the_command_line_replaces_them(tmp_path: Path) -> None:
    confdir = _config(
        tmp_path,
        'map-remote = ["|example\\\\.com|127.0.0.1:9000"]\nscript = ["addon.py"]\n'
        'modify-headers = "|X-From|config"\n',
    )
    (confdir / "addon.py").write_text("def request(flow):\n    pass\n")
    args = parse("dump", ["--confdir", str(confdir)])
    config = config_from_args(args)
    assert config.map_remote == ("|example\\.com|127.0.0.1:9000",)
    assert config.modify_headers == ("|X-From|config",)  # one string is a list of one
    assert config.scripts == (confdir / "addon.py",)  # relative to config.toml, not the cwd
    args = parse("dump", ["--confdir", str(confdir), "-M", "|a|b", "-M", "|c|d"])
    assert config_from_args(args).map_remote == ("|a|b", "|c|d")  # the command line wins


def test_bad_rule_pattern_in_config_names_the_key(tmp_path: Path) -> None:
    confdir = _config(tmp_path, 'block-list = ["/~d x/abc"]\n')
    done = run_inspector("dump", "--confdir", str(confdir), "-p", "0")
    assert done.returncode == 2
    assert f"{confdir / 'config.toml'}: key 'block-list': bad --block-list '/~d x/abc'" in (
        done.stderr
    )
