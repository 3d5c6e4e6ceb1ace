"""The store's one error, and how its background thread reports what no caller waits for."""

from __future__ import annotations

import sys


class StoreError(Exception):
    """The session file cannot be used; the message names the file and what to do."""


def report(message: str) -> None:
    """Print a line on stderr, even when stderr is gone (at interpreter exit)."""
    try:
        print(message, file=sys.stderr, flush=True)
    except (OSError, ValueError):
        pass
