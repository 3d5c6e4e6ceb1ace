"""Open a session and select its flows, turning every failure into a clear ConfigError.

Shared by ``inspector replay`` and ``inspector export`` so that a missing file, a file
that is not a session and a bad ``--filter`` read the same everywhere.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

from inspector.config import ConfigError
from inspector.filters import FilterError, parse

if TYPE_CHECKING:
    from inspector.store import Store


def open_session(path: Path, *, readonly: bool = True, create: bool = False) -> Store:
    """Open the session file at ``path`` (``create``: make it when missing)."""
    from inspector.store import Store, StoreError  # SQLite is loaded only when a file is opened

    path = path.expanduser()
    if path.is_dir():
        raise ConfigError(f"{path} is a directory, not a session file")
    if not create and not path.exists():
        raise ConfigError(f"session file {path} does not exist (record one with `inspector dump`)")
    if create and not path.parent.is_dir():
        raise ConfigError(f"cannot create {path}: directory {path.parent} does not exist")
    try:
        return Store(path, readonly=readonly and not create)
    except StoreError as e:
        message = str(e)
        raise ConfigError(message if str(path) in message else f"{path}: {message}") from None


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
