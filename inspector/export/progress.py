"""What the commands that walk a whole session share: a progress bar on stderr when it is a
terminal (rich, which Textual brings), and a quiet end when stdout's reader goes away."""

from __future__ import annotations

import os
import sys
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from typing import TYPE_CHECKING, TextIO, TypeVar

if TYPE_CHECKING:
    from rich.progress import Progress, TaskID

T = TypeVar("T")


class Counter:
    """What ``progress`` yields: call it to count (``counter()`` one, ``counter(n)`` n), and
    ``line`` to print a line of output that shows above the bar."""

    def __init__(self, bar: Progress | None = None, task: TaskID | None = None) -> None:
        self._bar = bar
        self._task = task

    def __call__(self, n: int = 1) -> None:
        if self._bar is not None and self._task is not None:
            self._bar.advance(self._task, n)

    def line(self, text: str, out: TextIO) -> None:
        """Print ``text`` on ``out``: above the bar when ``out`` is the bar's terminal (the
        bar redraws below it), else plainly (a pipe or a file gets the line alone)."""
        if self._bar is not None and _same_terminal(out, sys.stderr):
            console = self._bar.console
            console.print(text, markup=False, highlight=False, emoji=False, soft_wrap=True)
        else:
            print(text, file=out, flush=True)


Advance = Callable[[], None]  # a Counter, or any function counting one


@contextmanager
def progress(total: int | None, what: str, unit: str = "items") -> Iterator[Counter]:
    """A bar counting to ``total`` (items, or bytes with ``unit="bytes"``) on stderr while
    the block runs; nothing unless stderr is a terminal (a pipe or a file gets no control
    codes). Yields the Counter that counts and prints lines above the bar.

    Output written to stdout directly is left alone (it may be a pipe: rich's redirection
    would move it to stderr); ``Counter.line`` puts a line above the bar when that is where
    stdout shows.
    """
    if not _is_terminal(sys.stderr):
        yield Counter()
        return
    from rich.console import Console
    from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn

    columns = (TextColumn(what), BarColumn(), _count_column(unit), TimeElapsedColumn())
    console = Console(stderr=True)
    with Progress(*columns, console=console, transient=True, redirect_stdout=False) as bar:
        yield Counter(bar, bar.add_task(what, total=total))


def _count_column(unit: str) -> object:
    from rich.progress import DownloadColumn, MofNCompleteColumn

    return DownloadColumn() if unit == "bytes" else MofNCompleteColumn()


def _same_terminal(a: object, b: object) -> bool:
    """Whether two streams write to the same terminal."""
    if not (_is_terminal(a) and _is_terminal(b)):
        return False
    try:
        return os.path.sameopenfile(a.fileno(), b.fileno())  # type: ignore[attr-defined]
    except (OSError, ValueError, AttributeError):
        return False


def _is_terminal(stream: object) -> bool:
    isatty = getattr(stream, "isatty", None)
    try:
        return bool(isatty and isatty())
    except ValueError:  # a closed stream
        return False


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
