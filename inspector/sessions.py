"""Opening a saved session file, for ``show``, ``export``, ``replay``, ``import`` and the UI.

One set of errors for all of them, each a ``ConfigError`` (printed as ``inspector: error:
...``, exit status 2) that names the file and says what to do: a missing file, a missing
directory for a new one, and from the store a directory, a file that is not a session,
an empty or newer one. A bad ``--filter`` reads the same everywhere too.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

from inspector.config import ConfigError
from inspector.filters import FilterError, parse

if TYPE_CHECKING:
    from inspector.store import Store


def check_new_session(path: Path) -> None:
    """ConfigError unless a session file can be created at ``path`` (its directory exists)."""
    if not path.parent.is_dir():
        raise ConfigError(f"cannot create {path}: directory {path.parent} does not exist")


def open_session(path: Path, *, readonly: bool = True, create: bool = False) -> Store:
    """Open the session file at ``path``; ``create`` makes it when missing (and writable)."""
    from inspector.store import Store, StoreError  # SQLite is loaded only when a file is opened

    path = Path(path).expanduser()
    if create:
        check_new_session(path)
    elif not path.exists():
        raise ConfigError(
            f"session file {path} does not exist (record one with `inspector` or `inspector dump`)"
        )
    try:
        return Store(path, readonly=readonly and not create)
    except StoreError as e:
        if path.suffix.lower() == ".har" and not create:  # a common first try: say the way
            raise ConfigError(
                f"{path} is a HAR file, not a session: turn it into one with "
                f"`inspector import {path} -o {path.with_suffix('.db')}`"
            ) from None
        raise ConfigError(str(e)) from None  # it names the file and what to do


def check_filter(expr: str | None) -> None:
    """Raise ConfigError naming the problem in a bad filter expression."""
    if expr is None:
        return
    try:
        parse(expr)
    except FilterError as e:
        raise ConfigError(f"bad --filter {expr!r}: {e}") from None


def selected_ids(store: Store, expr: str | None, *, skip_replays: bool = False) -> list[str]:
    """Ids of the flows matching ``expr``, in capture order, read before anything is added.

    ``skip_replays`` leaves out flows that are themselves replays of another flow.
    """
    check_filter(expr)
    return [
        flow.id
        for flow in store.iter_flows(expr)
        if not (skip_replays and flow.replay_of is not None)
    ]
