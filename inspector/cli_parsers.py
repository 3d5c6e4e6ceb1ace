"""The parsers of the ``inspector`` commands: every option, the check of its value, its help.

Each option's type does the whole check of its value, so the command line and
``config.toml`` (``inspector.config_file``) refuse a bad value with the same message.
"""

from __future__ import annotations

import argparse
import re
import ssl
import sys
from collections.abc import Callable
from pathlib import Path

from inspector import __version__
from inspector.config import ConfigError, Mode, default_confdir, parse_size
from inspector.config_file import OptionParser

SUBCOMMANDS = ("dump", "run", "env", "show", "replay", "export", "import", "ca")
PROXY_COMMANDS = (None, "dump", "run")  # the commands that start a proxy
# Keys of config.toml a proxy command leaves alone: only the UI can release held flows,
# and `run` always picks a free port (a configured one is the UI's, likely in use).
CONFIG_SKIP: dict[str | None, tuple[str, ...]] = {
    None: (),
    "dump": ("intercept",),
    "run": ("intercept", "listen-port"),
}
RUN_USAGE = "inspector run [OPTIONS] -- CMD [ARGS...]"


# --- option values: each check serves the command line and config.toml alike ---------------


def _positive(unit: str) -> Callable[[str], float]:
    """The check of a number of ``unit`` that must be above zero (``inf`` means no bound)."""

    def check(text: str) -> float:
        try:
            value = float(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"expected {unit}, got {text!r}") from None
        if not value > 0:  # `not >` also refuses nan, which compares false to everything
            raise argparse.ArgumentTypeError(f"must be greater than 0, got {text!r}")
        return value

    return check


_seconds = _positive("seconds")


def _port(text: str) -> int:
    if not text.isdigit() or not 0 <= int(text) <= 65535:
        raise argparse.ArgumentTypeError(f"expected a port 0-65535, got {text!r}")
    return int(text)


def _host(text: str) -> str:
    # An empty host would bind every interface: that must be asked for by name (0.0.0.0, ::).
    if not text.strip():
        raise argparse.ArgumentTypeError(
            "empty address: give one, e.g. 127.0.0.1 (or 0.0.0.0 for every interface)"
        )
    return text


def _mode(text: str) -> Mode:
    try:
        return Mode.parse(text)
    except ConfigError as e:
        raise argparse.ArgumentTypeError(str(e)) from None


def _regex(text: str) -> re.Pattern[str]:
    try:
        return re.compile(text)
    except re.error as e:
        raise argparse.ArgumentTypeError(f"bad regex {text!r}: {e}") from None


def _user_pass(text: str) -> tuple[str, str]:
    user, sep, password = text.partition(":")
    if not sep or not user:
        raise argparse.ArgumentTypeError(f"expected USER:PASS, got {text!r}")
    return user, password


def _size(text: str) -> int:
    try:
        return parse_size(text)
    except ConfigError as e:
        raise argparse.ArgumentTypeError(str(e)) from None


def _existing_file(text: str) -> Path:
    path = Path(text).expanduser()
    if path.is_dir():
        raise argparse.ArgumentTypeError(f"{text}: is a directory, not a file")
    if not path.is_file():
        raise argparse.ArgumentTypeError(f"{text}: no such file")
    return path


def _ca_bundle(text: str) -> Path:
    """An existing file OpenSSL reads as trusted certificates (checked now, not per connection)."""
    path = _existing_file(text)
    try:
        ssl.create_default_context().load_verify_locations(cafile=str(path))
    except (ssl.SSLError, OSError, ValueError) as e:
        raise argparse.ArgumentTypeError(
            f"{text}: not a CA bundle (PEM certificates): {e}"
        ) from None
    return path


def _expression(option: str) -> Callable[[str], str]:
    """The check of a filter expression given to ``option``."""

    def check(text: str) -> str:
        from inspector.filters import FilterError, parse  # the grammar only when one is given

        try:
            parse(text)
        except FilterError as e:
            raise argparse.ArgumentTypeError(f"bad {option} expression {text!r}: {e}") from None
        return text

    return check


# --- parsers ----------------------------------------------------------------------------------


class _HelpFormatter(argparse.RawDescriptionHelpFormatter):
    """Every option's help ends with its default (from config.toml when it sets one)."""

    def _get_help_string(self, action: argparse.Action) -> str:
        text = action.help or ""
        if not action.option_strings or action.default is argparse.SUPPRESS or "default:" in text:
            return text
        if action.required:
            return f"{text} (required)"
        return f"{text} (default: {_shown_default(action)})"


def _shown_default(action: argparse.Action) -> str:
    value = action.default
    if action.nargs == 0:
        return "on" if value else "off"
    if value is None or value == []:
        return "none"
    if isinstance(value, list):
        value = ", ".join(map(str, value))
    return str(value).replace("%", "%%")  # help texts are %-formatted by argparse


def _add_proxy_options(p: OptionParser, command: str | None) -> None:
    """The options of every command that starts a proxy (the UI, dump, run)."""
    _add_listen_options(p, command)
    _add_confdir(p)
    _add_upstream_options(p)
    _add_recording_options(p, command)
    _add_rule_options(p)


def _add_listen_options(p: OptionParser, command: str | None) -> None:
    p.add_argument(
        "--listen-host",
        type=_host,
        default="127.0.0.1",
        metavar="HOST",
        help="address to listen on",
    )
    p.add_argument(
        "-p",
        "--listen-port",
        type=_port,
        default=0 if command == "run" else 8080,
        metavar="PORT",
        help="0 picks a free port",
    )
    p.add_argument(
        "-m", "--mode", type=_mode, default="regular", help="regular, reverse:URL or upstream:URL"
    )
    p.add_argument(
        "--proxy-auth",
        type=_user_pass,
        metavar="USER:PASS",
        help="require Basic proxy authentication (407 otherwise)",
    )


def _add_upstream_options(p: OptionParser) -> None:
    p.add_argument(
        "--upstream-ca",
        type=_ca_bundle,
        metavar="FILE",
        help="extra CA bundle to verify upstream servers with (default: the system trust store)",
    )
    p.add_argument("--insecure", action="store_true", help="do not verify upstream certificates")
    p.add_argument(
        "--connect-timeout",
        type=_seconds,
        default=10.0,
        metavar="S",
        help="upstream connect and TLS handshake timeout, in seconds (504 when it passes)",
    )
    p.add_argument(
        "--read-timeout",
        type=_seconds,
        default=30.0,
        metavar="S",
        help="upstream silence allowed while a response is awaited or streams, in seconds",
    )
    p.add_argument(
        "--ignore-hosts", type=_regex, metavar="REGEX", help="tunnel these hosts' TLS untouched"
    )
    p.add_argument(
        "--no-http2", action="store_true", help="offer only HTTP/1.1 to clients and upstreams"
    )


def _add_recording_options(p: OptionParser, command: str | None) -> None:
    p.add_argument(
        "--session",
        type=Path,
        metavar="PATH",
        help="SQLite file to record every exchange to (default: a new file under DIR/sessions)",
    )
    p.add_argument(
        "--body-limit",
        type=_size,
        default="4MiB",
        metavar="SIZE",
        help="how much of each body is recorded (bodies always stream through whole)",
    )
    p.add_argument(
        "--intercept",
        type=_expression("--intercept"),
        metavar="EXPR",
        help="hold matching requests and responses for editing in the UI",
    )
    if command in ("dump", "run"):
        p.add_argument(
            "--filter",
            type=_expression("--filter"),
            metavar="EXPR",
            help="print only matching exchanges",
        )
        p.add_argument("-q", "--quiet", action="store_true", help="print only exception events")


def _rule(option: str, kind: str) -> Callable[[str], str]:
    """The check of one PATTERN of a rule option: compiled once here, kept as typed."""

    def check(text: str) -> str:
        from inspector.rules import kinds  # the rules only when a pattern is given

        try:
            getattr(kinds, kind).from_pattern(text)
        except ConfigError as e:  # RuleError names the option, the pattern and the position
            raise argparse.ArgumentTypeError(str(e)) from None
        return text

    check.__name__ = option  # argparse names the type in its "invalid value" message
    return check


def _add_rule_options(p: OptionParser) -> None:
    """Rules and addons (inspector.rules, inspector.addons); each option is repeatable."""
    rule = p.add_argument_group("rules (the first character of a PATTERN separates its parts)")
    for flags, kind, text in _RULE_OPTIONS:
        rule.add_argument(
            *flags,
            action="append",
            default=[],
            type=_rule(flags[-1], kind),
            metavar="PATTERN",
            help=text,
        )
    rule.add_argument(
        "-s",
        "--script",
        action="append",
        default=[],
        type=_existing_file,
        metavar="FILE",
        help="load a Python addon, repeatable (reloaded when the file changes)",
    )


_RULE_OPTIONS = (
    (
        ("-M", "--map-remote"),
        "MapRemoteRule",
        "[/FILTER]/URL-REGEX/REPLACEMENT: send matching requests to the rewritten URL",
    ),
    (
        ("--map-local",),
        "MapLocalRule",
        "[/FILTER]/URL-REGEX/FILE-OR-DIR: answer from a local file (404 when missing)",
    ),
    (
        ("-H", "--modify-headers"),
        "HeaderRule",
        "[/FILTER]/NAME/[@]VALUE: set a header (~q requests, ~s responses; empty removes)",
    ),
    (
        ("-B", "--modify-body"),
        "BodyRule",
        "[/FILTER]/REGEX/[@]REPLACEMENT: replace in bodies (framing headers follow)",
    ),
    (
        ("--block-list",),
        "BlockRule",
        "/FILTER/STATUS: answer matching requests with STATUS (444: close, no response)",
    ),
)


def _add_confdir(p: OptionParser, text: str | None = None) -> None:
    p.add_argument(
        "--confdir", type=Path, default=default_confdir(), metavar="DIR", help=text or _CONFDIR_HELP
    )


_CONFDIR_HELP = (
    "where the CA, config.toml and the sessions live; INSPECTOR_CONFDIR sets the default"
)


def build_parser(command: str | None) -> OptionParser:
    """The parser of ``command`` (None: the UI), with the built-in defaults."""
    p = OptionParser(
        prog="inspector" if command is None else f"inspector {command}",
        description=_DESCRIPTIONS[command],
        epilog=_commands_help() if command is None else None,
        formatter_class=_HelpFormatter,
        allow_abbrev=False,  # options may precede the command word: no guessing at prefixes
        usage=RUN_USAGE if command == "run" else None,
    )
    if command is None:
        p.add_argument("--version", action="version", version=f"inspector {__version__}")
    if command in PROXY_COMMANDS:
        _add_proxy_options(p, command)
    if command == "run":
        p.add_argument(
            "command",
            nargs=argparse.REMAINDER,
            metavar="CMD [ARGS...]",
            help="the program to run (after --) and its arguments",
        )
    elif command is not None and command != "dump":
        _COMMAND_OPTIONS[command](p)
    return p


def _show_options(p: OptionParser) -> None:
    p.add_argument("session", type=Path, nargs="?", help="session file to browse")
    _add_confdir(p, "lists its recent sessions when SESSION is left out")


def _replay_options(p: OptionParser) -> None:
    p.add_argument("session", type=Path, help="session file to replay from")
    p.add_argument("--filter", metavar="EXPR", help="replay only matching exchanges")
    p.add_argument("--target", metavar="URL", help="send to this scheme://host:port instead")
    p.add_argument("--diff", action="store_true", help="show differences from the recording")
    p.add_argument("--keep-host", action="store_true", help="keep the recorded Host header")
    p.add_argument(
        "--concurrency", type=int, default=1, metavar="N", help="requests in flight at once"
    )
    p.add_argument(
        "--rate",
        type=_positive("requests per second"),
        metavar="R",
        help="requests per second (default: no cap)",
    )
    p.add_argument("--into", type=Path, metavar="OTHER", help="record replays into this file")
    p.add_argument(
        "--ignore-header",
        action="append",
        metavar="NAME",
        help="header to ignore in --diff, repeatable (default: Date, Server and the like)",
    )
    p.add_argument("--insecure", action="store_true", help="do not verify certificates")
    p.add_argument(
        "--upstream-ca",
        type=_ca_bundle,
        metavar="FILE",
        help="extra CA bundle to verify servers with (default: the system trust store)",
    )
    p.add_argument(
        "--timeout", type=_seconds, default=30.0, metavar="S", help="per request, seconds"
    )


def _export_options(p: OptionParser) -> None:
    p.add_argument("session", type=Path, help="session file to export from")
    p.add_argument(
        "--format", required=True, choices=("har", "curl", "raw", "pytest"), help="output format"
    )
    p.add_argument("--filter", metavar="EXPR", help="export only matching exchanges")
    p.add_argument("--redact", action="store_true", help="mask credentials")
    p.add_argument(
        "-o", "--output", type=Path, metavar="FILE", help="file to write (default: stdout)"
    )


def _import_options(p: OptionParser) -> None:
    p.add_argument("har", type=Path, metavar="FILE.har", help="HAR file to read")
    p.add_argument(
        "-o", "--output", type=Path, required=True, metavar="SESSION", help="new session file"
    )


def _ca_options(p: OptionParser) -> None:
    _add_confdir(p)


def _env_options(p: OptionParser) -> None:
    p.add_argument(
        "--proxy",
        metavar="URL",
        help="the running proxy (default: the listen address of the options and config.toml)",
    )
    p.add_argument(
        "--shell",
        choices=("sh", "fish", "powershell"),
        default="powershell" if sys.platform == "win32" else "sh",
        help="syntax of the lines",
    )
    _ca_options(p)


_COMMAND_OPTIONS = {
    "show": _show_options,
    "replay": _replay_options,
    "export": _export_options,
    "import": _import_options,
    "ca": _ca_options,
    "env": _env_options,
}

_DESCRIPTIONS = {
    None: "HTTP debugging proxy with a live terminal UI.",
    "dump": "Proxy without a UI: one line per exchange and per exception event.",
    "run": "Run a command through a new proxy that records its traffic.",
    "env": "Print the lines that point a shell at a running proxy.",
    "show": "Browse a saved session in the terminal UI.",
    "replay": "Re-send captured requests; exit 0 all match, 1 differences, 2 errors.",
    "export": "Export exchanges as HAR, curl commands, raw HTTP or a pytest module.",
    "import": "Turn a HAR file into a session.",
    "ca": "Print the local CA certificate and how to trust it.",
}


def _commands_help() -> str:
    width = max(map(len, SUBCOMMANDS))
    lines = [f"  {name:<{width}}  {_DESCRIPTIONS[name]}" for name in SUBCOMMANDS]
    return "commands:\n" + "\n".join(lines) + "\n\nRun 'inspector COMMAND --help' for its options."
