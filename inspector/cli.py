"""The ``inspector`` command line: find the command, parse its options, hand off.

Proxy options may stand before or after the command word (``inspector -p 0 dump`` is
``inspector dump -p 0``); defaults come from ``CONFDIR/config.toml`` (see config_file).
The parsers themselves are in ``inspector.cli_parsers``.
"""

from __future__ import annotations

import argparse
import difflib
import sys
from collections.abc import Sequence
from pathlib import Path

from inspector.cli_parsers import (
    CONFIG_SKIP,
    PROXY_COMMANDS,
    RUN_USAGE,
    SUBCOMMANDS,
    build_parser,
)
from inspector.config import Config, ConfigError, default_confdir
from inspector.config_file import ConfigDefaults, OptionParser, config_path, read_config_file

__all__ = ["SUBCOMMANDS", "build_parser", "config_from_args", "main", "parse"]


def config_from_args(args: argparse.Namespace) -> Config:
    """Turn parsed proxy options (already checked by their types) into a Config."""
    return Config(
        listen_host=args.listen_host,
        listen_port=args.listen_port,
        mode=args.mode,
        confdir=args.confdir.expanduser(),
        session=args.session.expanduser() if args.session else None,
        upstream_ca=args.upstream_ca,
        insecure=args.insecure,
        connect_timeout=args.connect_timeout,
        read_timeout=args.read_timeout,
        ignore_hosts=args.ignore_hosts,
        intercept=args.intercept,
        filter=getattr(args, "filter", None),
        quiet=getattr(args, "quiet", False),
        body_limit=args.body_limit,
        proxy_auth=args.proxy_auth,
        http2=not args.no_http2,
        map_remote=tuple(args.map_remote),
        map_local=tuple(args.map_local),
        modify_headers=tuple(args.modify_headers),
        modify_body=tuple(args.modify_body),
        block_list=tuple(args.block_list),
        scripts=tuple(args.script),
    )


# --- finding the command word, config.toml, dispatch -----------------------------------------


def _value_options(parser: OptionParser) -> set[str]:
    """The option strings that take a value in the next word."""
    return {
        name for action in parser.options if action.nargs != 0 for name in action.option_strings
    }


def first_positional(words: Sequence[str], takes_value: set[str]) -> int:
    """Index of the first word that is neither an option nor an option's value (len if none)."""
    i = 0
    while i < len(words):
        word = words[i]
        if word == "--":
            return i
        if not word.startswith("-") or word == "-":
            return i
        i += 2 if word in takes_value else 1  # "--opt=value" and "-pVALUE" are one word
    return min(i, len(words))  # an option missing its value at the end: argparse says so


def split_command(argv: Sequence[str]) -> tuple[str | None, list[str]]:
    """The command word wherever the proxy options put it, and the words for its parser."""
    takes_value = _value_options(build_parser("run"))
    i = first_positional(argv, takes_value)
    if i == len(argv) or argv[i] == "--":
        return None, list(argv)
    if argv[i] not in SUBCOMMANDS:
        # The UI takes options only, so a first word is a mistyped command.
        raise ConfigError(_unknown_command(argv[i]))
    return argv[i], [*argv[:i], *argv[i + 1 :]]


def _config_defaults(command: str | None, words: list[str]) -> ConfigDefaults | None:
    """config.toml of the confdir the words name (or the default one), for a proxy command."""
    if command not in (*PROXY_COMMANDS, "env"):
        return None
    parser = build_parser(command)
    end = first_positional(words, _value_options(parser)) if command == "run" else len(words)
    probe = argparse.ArgumentParser(add_help=False, allow_abbrev=False)
    probe.add_argument("--confdir", type=Path, default=default_confdir())
    known, _ = probe.parse_known_args(words[:end])
    path = config_path(known.confdir)
    table = read_config_file(path)
    if not table:
        return None
    if "confdir" in table:
        raise ConfigError(
            f"{path}: key 'confdir': the file lives in the confdir, so it cannot move it; "
            "use --confdir DIR or INSPECTOR_CONFDIR"
        )
    # The run parser has every proxy option (the UI's and dump's): each key is checked there.
    return ConfigDefaults(
        path, table, reference=build_parser("run"), skip=CONFIG_SKIP.get(command, ())
    )


def parse(command: str | None, words: list[str]) -> argparse.Namespace:
    """Parse ``words`` for ``command`` with config.toml's defaults; ConfigError for the file."""
    defaults = _config_defaults(command, words)
    parser = build_parser(command)
    if defaults is not None and command in PROXY_COMMANDS:
        defaults.apply(parser)
    args = parser.parse_args(words)
    if defaults is not None and command in PROXY_COMMANDS:
        defaults.finish(args)
    if command == "env":
        args.listen = _listen_defaults(defaults)
    return args


def _listen_defaults(defaults: ConfigDefaults | None) -> argparse.Namespace:
    """The UI's listen address and proxy auth, as config.toml sets them (for `inspector env`)."""
    parser = build_parser(None)
    if defaults is not None:
        defaults.apply(parser)
    return parser.parse_args([])


def _run_command(command: str | None, args: argparse.Namespace) -> int:
    # Imports are deferred so that `inspector ca` does not load Textual, and so on;
    # options are validated before anything heavy is imported.
    if command in PROXY_COMMANDS:
        config = config_from_args(args)
        if command == "dump":
            from inspector.dump import run

            return run(config)
        if command == "run":
            from inspector.run import run_command

            return run_command(config, _run_words(args.command))
        from inspector.tui.app import run_live

        return run_live(config)
    if command == "show":
        if args.session is None:
            raise ConfigError(_which_session(args.confdir.expanduser()))
        from inspector.tui.app import run_show

        return run_show(args.session)
    if command == "env":
        from inspector.env import main as env_main

        return env_main(args)
    if command in ("replay", "export", "import"):
        return _run_file_command(command, args)
    from inspector.ca_command import main as ca_main

    return ca_main(args.confdir.expanduser())


def _run_file_command(command: str, args: argparse.Namespace) -> int:
    if command == "replay":
        from inspector.replay.cli import main as replay_main

        return replay_main(args)
    if command == "export":
        from inspector.export.cli import main as export_main

        return export_main(args)
    from inspector.importer import main as import_main

    return import_main(args)


def _run_words(words: list[str]) -> list[str]:
    """CMD and its arguments from what follows the options (a leading ``--`` dropped)."""
    if words[:1] == ["--"]:
        words = words[1:]
    if not words:
        raise ConfigError(f"inspector run needs a command to run: {RUN_USAGE}")
    return words


def _which_session(confdir: Path) -> str:
    """The error for `inspector show` without a file: the latest recordings, to pick from."""
    recent = sorted((confdir / "sessions").glob("*.db"), key=_recording_order, reverse=True)[:3]
    if not recent:
        return "inspector show needs a session file (record one with `inspector dump`)"
    listed = "\n".join(f"  inspector show {path}" for path in recent)
    return f"inspector show needs a session file; the latest recordings:\n{listed}"


def _recording_order(path: Path) -> tuple[str, int]:
    """Dated names in time order, ``DATE-2.db`` (a second proxy that second) after ``DATE.db``."""
    stem, _, n = path.stem.rpartition("-")
    if n.isdigit() and len(n) < 6:  # not the seconds of the date itself
        return stem, int(n)
    return path.stem, 1


def _unknown_command(word: str) -> str:
    if Path(word).is_file():
        hint = f" (to browse a saved session: inspector show {word})"
    else:
        close = difflib.get_close_matches(word, SUBCOMMANDS, n=1)
        hint = f" (did you mean '{close[0]}'?)" if close else ""
    return f"unknown command {word!r}{hint}; commands: {', '.join(SUBCOMMANDS)}"


def main(argv: Sequence[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    try:
        command, words = split_command(argv)
        args = parse(command, words)
        return _run_command(command, args)
    except ConfigError as e:
        print(f"inspector: error: {e}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        return 130


if __name__ == "__main__":
    sys.exit(main())
