"""What the commands that walk a whole session share: a progress bar on stderr when it is a
terminal (rich, which Textual brings), and a quiet end when stdout's reader goes away."""

from __future__ import annotations

import os
import sys
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from typing import TypeVar

T = TypeVar("T")
Advance = Callable[[], None]


@contextmanager
def progress(total: int | None, what: str) -> Iterator[Advance]:
    """A bar counting to ``total`` on stderr while the block runs; nothing unless stderr is a
    terminal (a pipe or a file gets no control codes). Yields the function to count one."""
    if not _is_terminal(sys.stderr):
        yield _nothing
        return
    from rich.console import Console
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

    columns = (TextColumn(what), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn())
    with Progress(*columns, console=Console(stderr=True), transient=True) as bar:
        task = bar.add_task(what, total=total)
        yield lambda: bar.advance(task)


def _is_terminal(stream: object) -> bool:
    isatty = getattr(stream, "isatty", None)
    try:
        return bool(isatty and isatty())
    except ValueError:  # a closed stream
        return False


def _nothing() -> None:
    pass


def counted(items: Iterable[T], advance: Advance) -> Iterator[T]:
    """``items``, calling ``advance`` as each one is taken."""
    for item in items:
        yield item
        advance()


def stdout_closed() -> int:
    """After a BrokenPipeError on stdout (`| head` has what it wanted): point stdout at
    /dev/null so that the interpreter's final flush does not complain, and succeed."""
    devnull = os.open(os.devnull, os.O_WRONLY)
    os.dup2(devnull, sys.stdout.fileno())
    os.close(devnull)
    return 0
