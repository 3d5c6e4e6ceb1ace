"""``CONFDIR/config.toml``: defaults for the proxy options, checked as the command line is.

Keys are the long option names without the dashes (``listen-port = 9090``,
``map-remote = ["|example\\\\.com|127.0.0.1:9000"]``). Each value goes through the same
conversion as the option's command-line text, so a bad value is refused with the same
message, prefixed by the file and the key. The command line wins over the file.
"""

from __future__ import annotations

import argparse
import difflib
import tomllib
from collections.abc import Collection, Iterable
from pathlib import Path
from typing import Any, NoReturn

from inspector.config import ConfigError

CONFIG_NAME = "config.toml"
# Keys naming files: a relative path is relative to config.toml's directory, not to
# wherever the proxy happens to be started.
PATH_KEYS = frozenset({"script", "upstream-ca", "session"})


class OptionParser(argparse.ArgumentParser):
    """An ArgumentParser that keeps a list of its options, for config.toml to set defaults on,
    and says what is wrong with a bad option in one line that points at --help."""

    def __init__(self, *args: object, **kwargs: object) -> None:
        self.options: list[argparse.Action] = []
        self.repeatable: set[str] = set()  # dests of the options given once per value
        super().__init__(*args, **kwargs)  # type: ignore[arg-type]

    def add_argument(self, *args: object, **kwargs: object) -> argparse.Action:  # type: ignore[override]
        return self._keep(super().add_argument(*args, **kwargs), kwargs)  # type: ignore[arg-type]

    def add_argument_group(self, *args: object, **kwargs: object) -> Any:  # type: ignore[override]
        """A group (a heading in --help) whose options this parser keeps too."""
        group = super().add_argument_group(*args, **kwargs)  # type: ignore[arg-type]
        add = group.add_argument

        def add_argument(*a: object, **kw: object) -> argparse.Action:
            return self._keep(add(*a, **kw), kw)  # type: ignore[arg-type]

        group.add_argument = add_argument  # type: ignore[method-assign]
        return group

    def _keep(self, action: argparse.Action, kwargs: dict[str, object]) -> argparse.Action:
        self.options.append(action)
        if kwargs.get("action") in ("append", "extend"):
            self.repeatable.add(action.dest)
        return action

    def error(self, message: str) -> NoReturn:
        self.exit(2, f"{self.prog}: error: {message} (`{self.prog} --help` lists the options)\n")


def config_path(confdir: Path) -> Path:
    """Where the config file of ``confdir`` is."""
    return confdir.expanduser() / CONFIG_NAME


def read_config_file(path: Path) -> dict[str, object]:
    """The keys of the config file at ``path``: {} when there is none; ConfigError if unreadable."""
    try:
        data = path.read_bytes()
    except (FileNotFoundError, NotADirectoryError):
        return {}  # no file; a confdir that cannot be is reported where the CA is made
    except OSError as e:
        raise ConfigError(f"cannot read {path}: {e.strerror or e}") from None
    try:
        return tomllib.loads(data.decode("utf-8"))
    except UnicodeDecodeError:
        raise ConfigError(f"{path}: not UTF-8 text") from None
    except tomllib.TOMLDecodeError as e:
        raise ConfigError(f"{path}: not valid TOML: {e}") from None


class ConfigDefaults:
    """The checked values of one config file, made into a parser's defaults.

    ``reference`` has every option any proxy command takes: each key is checked against
    it (an unknown one is an error), then set on the parsers that take it and do not
    ``skip`` it.
    """

    def __init__(
        self,
        path: Path,
        table: dict[str, object],
        *,
        reference: OptionParser,
        skip: Collection[str] = (),
    ) -> None:
        self.path = path
        self.skip = skip
        self._values: dict[str, object] = {}  # key -> checked value (a list when repeatable)
        actions = _long_options(reference.options)
        for key, value in table.items():
            action = actions.get(key)
            if action is None:
                raise self.error(key, _unknown_key_hint(key, actions))
            if action.dest in reference.repeatable:
                self._values[key] = self._list_value(key, action, value)
            else:
                self._values[key] = self._scalar_value(key, action, value)
        self._lists: dict[str, tuple[argparse.Action, object]] = {}

    def error(self, key: str, problem: str) -> ConfigError:
        return ConfigError(f"{self.path}: key {key!r}: {problem}")

    def apply(self, parser: OptionParser) -> None:
        """Set the parser's defaults from the keys it takes."""
        actions = _long_options(parser.options)
        for key, value in self._values.items():
            action = actions.get(key)
            if action is None or key in self.skip:
                continue
            if action.dest in parser.repeatable:
                self._lists[action.dest] = (action, value)
            else:
                parser.set_defaults(**{action.dest: value})

    def finish(self, args: argparse.Namespace) -> argparse.Namespace:
        """Fill in the repeatable options the command line did not give (it wins)."""
        for dest, (action, values) in self._lists.items():
            if getattr(args, dest, None) is action.default:
                setattr(args, dest, values)
        return args

    def _scalar_value(self, key: str, action: argparse.Action, value: object) -> object:
        if action.nargs == 0:  # a flag: --insecure
            if not isinstance(value, bool):
                raise self.error(key, f"expected true or false, got {value!r}")
            return value
        text = self._text(key, value)
        self._convert(key, action, text)
        return text  # argparse converts a string default through the option's type itself

    def _list_value(self, key: str, action: argparse.Action, value: object) -> list[object]:
        items = value if isinstance(value, list) else [value]
        return [self._convert(key, action, self._text(key, item)) for item in items]

    def _text(self, key: str, value: object) -> str:
        if isinstance(value, bool) or not isinstance(value, str | int | float):
            raise self.error(key, f"expected a string or a number, got {_toml_kind(value)}")
        if key in PATH_KEYS:
            return str(self.path.parent / Path(str(value)).expanduser())  # absolute stays so
        return str(value)

    def _convert(self, key: str, action: argparse.Action, text: str) -> object:
        try:
            converted = action.type(text) if callable(action.type) else text
        except (argparse.ArgumentTypeError, TypeError, ValueError) as e:
            raise self.error(key, str(e) or f"bad value {text!r}") from None
        if action.choices is not None and converted not in action.choices:
            choices = ", ".join(map(str, action.choices))
            raise self.error(key, f"{text!r} is not one of {choices}")
        return converted


def _long_options(actions: Iterable[argparse.Action]) -> dict[str, argparse.Action]:
    """Each option's long name without the dashes -> its action."""
    out = {}
    for action in actions:
        for name in action.option_strings:
            if name.startswith("--") and name not in ("--help", "--version"):
                out[name[2:]] = action
    return out


def _unknown_key_hint(key: str, known: Collection[str]) -> str:
    close = difflib.get_close_matches(key, known, n=1)
    hint = f" (did you mean {close[0]!r}?)" if close else ""
    return f"unknown key{hint}; keys are the long option names without the dashes: " + ", ".join(
        sorted(known)
    )


def _toml_kind(value: object) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, list):
        return "a list"
    if isinstance(value, dict):
        return "a table"
    return type(value).__name__
