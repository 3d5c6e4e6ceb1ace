"""One addon script file: load it as a module and find its hooks.

A script's hooks are its module-level functions named after a hook, and the methods of
that name of each object in a module-level ``addons = [...]`` list (mitmproxy's two
shapes). Loading runs the file's code; any exception while doing so (a syntax error, an
import that fails, a bad ``addons``) is a ``ScriptError`` saying where, and the script
has no hooks until it loads cleanly.
"""

from __future__ import annotations

import os
import sys
import traceback
import types
from collections.abc import Callable
from dataclasses import dataclass
from itertools import count
from pathlib import Path

HOOKS = ("request", "response", "error", "websocket_message", "running", "done")
# mitmproxy hooks this proxy does not call: named when a script defines them.
UNSUPPORTED = ("requestheaders", "responseheaders", "load", "configure", "client_connected")
_module_ids = count(1)


class ScriptError(Exception):
    """A script that cannot be loaded; the message says where and why."""


@dataclass(frozen=True, slots=True)
class Hook:
    label: str  # "addon.py:request" or "addon.py:AddHeader.request"
    function: Callable[..., object]


def where_in(path: Path, tb: types.TracebackType | None) -> str:
    """``file.py:LINE`` of the deepest frame in ``path`` (else of the deepest frame at all)."""
    frames = traceback.extract_tb(tb)
    target = str(path)
    inside = [f for f in frames if f.filename == target]
    frame = (inside or frames or [None])[-1]
    if frame is None:
        return path.name
    return f"{Path(frame.filename).name}:{frame.lineno}"


class Script:
    """An addon file; ``load()`` (re)reads it, ``hooks[name]`` lists what to call."""

    def __init__(self, path: Path) -> None:
        self.path = path.expanduser().absolute()
        self.name = self.path.name
        self.module: types.ModuleType | None = None
        self.hooks: dict[str, list[Hook]] = {}
        self.stamp: tuple[int, int, int] | None = None  # what the file was when last read
        self.notes: list[str] = []  # things worth telling the user after a load

    def file_stamp(self) -> tuple[int, int, int] | None:
        try:
            st = os.stat(self.path)
        except OSError:
            return None
        return (st.st_mtime_ns, st.st_size, st.st_ino)

    def unload(self) -> None:
        self.module = None
        self.hooks = {}

    def load(self) -> None:
        """Read and run the file; ScriptError (and no hooks) when it fails."""
        self.unload()
        self.stamp = self.file_stamp()
        try:
            source = self.path.read_bytes()
        except OSError as e:
            raise ScriptError(f"cannot read {self.path}: {e.strerror or e}") from None
        module = types.ModuleType(f"inspector_addon_{next(_module_ids)}_{self.path.stem}")
        module.__file__ = str(self.path)
        folder = str(self.path.parent)
        if folder not in sys.path:  # scripts may import the modules beside them
            sys.path.append(folder)
        sys.modules[module.__name__] = module  # dataclasses and pickle look modules up
        try:
            code = compile(source, str(self.path), "exec")
            exec(code, module.__dict__)
            hooks = self._collect(module)
        except SyntaxError as e:
            sys.modules.pop(module.__name__, None)
            line = f"{self.name}:{e.lineno}" if e.lineno else self.name
            raise ScriptError(f"{line}: SyntaxError: {e.msg}") from None
        except Exception as e:
            sys.modules.pop(module.__name__, None)
            at = where_in(self.path, e.__traceback__)
            raise ScriptError(f"{at}: {type(e).__name__}: {e}") from None
        self.module, self.hooks = module, hooks

    def _collect(self, module: types.ModuleType) -> dict[str, list[Hook]]:
        hooks: dict[str, list[Hook]] = {name: [] for name in HOOKS}
        owners: list[tuple[str, object]] = [("", module)]
        extra = module.__dict__.get("addons", [])
        if not isinstance(extra, list | tuple):
            raise TypeError("`addons` must be a list of addon objects")
        owners += [(f"{type(obj).__name__}.", obj) for obj in extra]
        self.notes = []
        for prefix, owner in owners:
            for name in HOOKS:
                function = getattr(owner, name, None)
                if callable(function):
                    hooks[name].append(Hook(f"{self.name}:{prefix}{name}", function))
            for name in UNSUPPORTED:
                if callable(getattr(owner, name, None)):
                    self.notes.append(f"{self.name}:{prefix}{name} is not called by this proxy")
        return {name: found for name, found in hooks.items() if found}
