"""The ``inspector`` command line: parse options, build a Config, hand off to a subcommand."""

from __future__ import annotations

import argparse
import difflib
import re
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import NoReturn

from inspector.config import (
    DEFAULT_BODY_LIMIT,
    Config,
    ConfigError,
    Mode,
    default_confdir,
    parse_size,
)

SUBCOMMANDS = ("dump", "show", "replay", "export", "import", "ca")


def _positive_float(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected seconds, got {text!r}") from None
    if value <= 0:
        raise argparse.ArgumentTypeError(f"must be greater than 0, got {text!r}")
    return value


def _port(text: str) -> int:
    if not text.isdigit() or not 0 <= int(text) <= 65535:
        raise argparse.ArgumentTypeError(f"expected a port 0-65535, got {text!r}")
    return int(text)


def _add_proxy_options(p: argparse.ArgumentParser, *, dump: bool) -> None:
    p.add_argument("--listen-host", default="127.0.0.1", help="address to listen on")
    p.add_argument("--listen-port", type=_port, default=8080, help="0 picks a free port")
    p.add_argument("--mode", default="regular", help="regular, reverse:URL or upstream:URL")
    p.add_argument("--confdir", type=Path, default=default_confdir())
    p.add_argument("--session", type=Path, help="SQLite session file to record to")
    p.add_argument("--upstream-ca", type=Path, help="extra CA bundle for upstream servers")
    p.add_argument("--insecure", action="store_true", help="do not verify upstream certificates")
    p.add_argument("--connect-timeout", type=_positive_float, default=10.0, metavar="S")
    p.add_argument("--read-timeout", type=_positive_float, default=30.0, metavar="S")
    p.add_argument("--ignore-hosts", metavar="REGEX", help="tunnel these hosts' TLS untouched")
    p.add_argument("--intercept", metavar="EXPR", help="hold matching flows for editing")
    p.add_argument("--body-limit", default=str(DEFAULT_BODY_LIMIT), metavar="SIZE")
    p.add_argument("--proxy-auth", metavar="USER:PASS", help="require Basic proxy auth")
    p.add_argument(
        "--no-http2", action="store_true", help="offer only HTTP/1.1 to clients and upstreams"
    )
    _add_rule_options(p)
    if dump:
        p.add_argument("--filter", metavar="EXPR", help="print only matching exchanges")
        p.add_argument("-q", "--quiet", action="store_true", help="print only exception events")


def _add_rule_options(p: argparse.ArgumentParser) -> None:
    """Rules and addons (inspector.rules, inspector.addons); each option is repeatable."""
    rule = p.add_argument_group("rules (the first character of a PATTERN separates its parts)")
    add = rule.add_argument
    add(
        "-M",
        "--map-remote",
        action="append",
        default=[],
        metavar="PATTERN",
        help="[/FILTER]/URL-REGEX/REPLACEMENT: send matching requests to the rewritten URL",
    )
    add(
        "--map-local",
        action="append",
        default=[],
        metavar="PATTERN",
        help="[/FILTER]/URL-REGEX/FILE-OR-DIR: answer from a local file (404 when missing)",
    )
    add(
        "-H",
        "--modify-headers",
        action="append",
        default=[],
        metavar="PATTERN",
        help="[/FILTER]/NAME/[@]VALUE: set a header (~q requests, ~s responses; empty removes)",
    )
    add(
        "-B",
        "--modify-body",
        action="append",
        default=[],
        metavar="PATTERN",
        help="[/FILTER]/REGEX/[@]REPLACEMENT: replace in bodies (framing headers follow)",
    )
    add(
        "--block-list",
        action="append",
        default=[],
        metavar="PATTERN",
        help="/FILTER/STATUS: answer matching requests with STATUS (444: close, no response)",
    )
    add(
        "-s",
        "--script",
        action="append",
        default=[],
        type=Path,
        metavar="FILE",
        help="load a Python addon (reloaded when the file changes)",
    )


def _rule_options(args: argparse.Namespace) -> dict:
    """The rule and addon fields of Config, checked (a bad pattern or script: exit 2)."""
    fields = {
        name: tuple(getattr(args, name, None) or ())
        for name in ("map_remote", "map_local", "modify_headers", "modify_body", "block_list")
    }
    if any(fields.values()):
        from inspector.rules import RuleSet

        RuleSet.from_options(**fields)  # compiles every pattern: RuleError says where
    scripts = tuple(path.expanduser() for path in getattr(args, "script", None) or ())
    for path in scripts:
        if not path.is_file():
            raise ConfigError(f"-s/--script {path}: no such file")
    return {**fields, "scripts": scripts}


class _Parser(argparse.ArgumentParser):
    """A bad option is one line saying what was wrong and where the options are listed."""

    def error(self, message: str) -> NoReturn:
        self.exit(2, f"{self.prog}: error: {message} (`{self.prog} --help` lists the options)\n")


def build_parser(command: str | None) -> argparse.ArgumentParser:
    prog = "inspector" if command is None else f"inspector {command}"
    p = _Parser(
        prog=prog,
        description=_DESCRIPTIONS[command],
        epilog=_commands_help() if command is None else None,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    if command in (None, "dump"):
        _add_proxy_options(p, dump=command == "dump")
    elif command == "show":
        p.add_argument("session", type=Path, nargs="?", help="session file to browse")
        p.add_argument(
            "--confdir",
            type=Path,
            default=default_confdir(),
            help="lists its recent sessions when SESSION is left out",
        )
    elif command == "replay":
        p.add_argument("session", type=Path)
        p.add_argument("--filter", metavar="EXPR", help="replay only matching exchanges")
        p.add_argument("--target", metavar="URL", help="send to this scheme://host:port instead")
        p.add_argument("--diff", action="store_true", help="show differences from the recording")
        p.add_argument("--keep-host", action="store_true", help="keep the recorded Host header")
        p.add_argument("--concurrency", type=int, default=1, metavar="N")
        p.add_argument("--rate", type=float, default=None, metavar="R", help="requests per second")
        p.add_argument("--into", type=Path, metavar="OTHER", help="record replays into this file")
        p.add_argument(
            "--ignore-header",
            action="append",
            default=None,
            metavar="NAME",
            help="header to ignore in --diff (repeatable; adds to the defaults)",
        )
        p.add_argument("--insecure", action="store_true", help="do not verify certificates")
        p.add_argument("--upstream-ca", type=Path, help="extra CA bundle to verify servers with")
        p.add_argument("--timeout", type=_positive_float, default=30.0, metavar="S")
    elif command == "export":
        p.add_argument("session", type=Path)
        p.add_argument("--format", required=True, choices=("har", "curl", "raw", "pytest"))
        p.add_argument("--filter", metavar="EXPR")
        p.add_argument("--redact", action="store_true", help="mask credentials")
        p.add_argument("-o", "--output", type=Path, metavar="FILE", help="default: stdout")
    elif command == "import":
        p.add_argument("har", type=Path, metavar="FILE.har")
        p.add_argument("-o", "--output", type=Path, required=True, metavar="SESSION")
    elif command == "ca":
        p.add_argument("--confdir", type=Path, default=default_confdir())
    return p


_DESCRIPTIONS = {
    None: "HTTP debugging proxy with a live terminal UI.",
    "dump": "Proxy without a UI: one line per exchange and per exception event.",
    "show": "Browse a saved session in the terminal UI.",
    "replay": "Re-send captured requests; exit 0 all match, 1 differences, 2 errors.",
    "export": "Export exchanges as HAR, curl commands, raw HTTP or a pytest module.",
    "import": "Turn a HAR file into a session.",
    "ca": "Print the local CA certificate and how to trust it.",
}


def config_from_args(args: argparse.Namespace) -> Config:
    """Turn parsed proxy options into a Config, or raise ConfigError."""
    ignore = None
    if args.ignore_hosts:
        try:
            ignore = re.compile(args.ignore_hosts)
        except re.error as e:
            raise ConfigError(f"bad --ignore-hosts regex {args.ignore_hosts!r}: {e}") from None
    auth = None
    if args.proxy_auth:
        user, sep, password = args.proxy_auth.partition(":")
        if not sep or not user:
            raise ConfigError("bad --proxy-auth: use USER:PASS")
        auth = (user, password)
    if args.upstream_ca and not args.upstream_ca.is_file():
        raise ConfigError(f"--upstream-ca {args.upstream_ca}: no such file")
    return Config(
        listen_host=args.listen_host,
        listen_port=args.listen_port,
        mode=Mode.parse(args.mode),
        confdir=args.confdir.expanduser(),
        session=args.session.expanduser() if args.session else None,
        upstream_ca=args.upstream_ca,
        insecure=args.insecure,
        connect_timeout=args.connect_timeout,
        read_timeout=args.read_timeout,
        ignore_hosts=ignore,
        intercept=args.intercept,
        filter=getattr(args, "filter", None),
        quiet=getattr(args, "quiet", False),
        body_limit=parse_size(args.body_limit),
        proxy_auth=auth,
        http2=not args.no_http2,
        **_rule_options(args),
    )


def _run_command(command: str | None, args: argparse.Namespace) -> int:
    # Imports are deferred so that `inspector ca` does not load Textual, and so on;
    # options are validated before anything heavy is imported.
    if command in (None, "dump"):
        config = config_from_args(args)
        if command == "dump":
            from inspector.dump import run

            return run(config)
        from inspector.tui.app import run_live

        return run_live(config)
    if command == "show":
        if args.session is None:
            raise ConfigError(_which_session(args.confdir.expanduser()))
        from inspector.tui.app import run_show

        return run_show(args.session)
    if command == "replay":
        from inspector.replay.cli import main as replay_main

        return replay_main(args)
    if command == "export":
        from inspector.export.cli import main as export_main

        return export_main(args)
    if command == "import":
        from inspector.importer import main as import_main

        return import_main(args)
    from inspector.ca_command import main as ca_main

    return ca_main(args.confdir.expanduser())


def _which_session(confdir: Path) -> str:
    """The error for `inspector show` without a file: the latest recordings, to pick from."""
    recent = sorted((confdir / "sessions").glob("*.db"), reverse=True)[:3]
    if not recent:
        return "inspector show needs a session file (record one with `inspector dump`)"
    listed = "\n".join(f"  inspector show {path}" for path in recent)
    return f"inspector show needs a session file; the latest recordings:\n{listed}"


def _commands_help() -> str:
    width = max(map(len, SUBCOMMANDS))
    lines = [f"  {name:<{width}}  {_DESCRIPTIONS[name]}" for name in SUBCOMMANDS]
    return "commands:\n" + "\n".join(lines) + "\n\nRun 'inspector COMMAND --help' for its options."


def _unknown_command(word: str) -> str:
    if Path(word).is_file():
        hint = f" (to browse a saved session: inspector show {word})"
    else:
        close = difflib.get_close_matches(word, SUBCOMMANDS, n=1)
        hint = f" (did you mean '{close[0]}'?)" if close else ""
    return f"unknown command {word!r}{hint}; commands: {', '.join(SUBCOMMANDS)}"


def main(argv: Sequence[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    command = argv[0] if argv and argv[0] in SUBCOMMANDS else None
    if command is None and argv and not argv[0].startswith("-"):
        # The UI takes options only, so a first word is a mistyped command.
        print(f"inspector: error: {_unknown_command(argv[0])}", file=sys.stderr)
        return 2
    args = build_parser(command).parse_args(argv[1:] if command else argv)
    try:
        return _run_command(command, args)
    except ConfigError as e:
        print(f"inspector: error: {e}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        return 130


if __name__ == "__main__":
    sys.exit(main())
