"""What w and b write: flows into another session file, a body into a file."""

from __future__ import annotations

from pathlib import Path

from inspector.content import ContentError, decode
from inspector.flow import Flow
from inspector.store import Store, StoreError


class SaveError(Exception):
    """Nothing was written; the message says why and what to do."""


def _target(text: str) -> Path:
    path = Path(text.strip()).expanduser()
    if not text.strip():
        raise SaveError("give a file name to write to")
    if path.is_dir():
        raise SaveError(f"{path} is a directory: give a file name")
    if not path.parent.is_dir():
        raise SaveError(f"directory {path.parent} does not exist")
    return path


def save_flows(flows: list[Flow], text: str, current: str) -> Path:
    """Add ``flows`` to the session file ``text`` (made when missing; not ``current``)."""
    path = _target(text)
    if path.exists() and Path(current).exists() and path.samefile(current):
        raise SaveError(f"{path} is the session being shown: give another file")
    try:
        store = Store(path)
    except StoreError as e:
        raise SaveError(str(e)) from None  # it names the file already
    try:
        for flow in flows:
            store.put(flow)
    finally:
        store.close()
    return path


def save_body(flow: Flow, part: str, text: str) -> tuple[Path, str]:
    """Write the body of ``part`` (request or response), Content-Encoding undone.

    Returns the path and a note on what was written."""
    message = flow.request if part == "request" else flow.response
    if message is None:
        raise SaveError("this flow has no response")
    data = message.body.data
    if not data:
        raise SaveError(f"the {part} has no body")
    path = _target(text)
    note = ""
    try:
        data, codings = decode(data, message.header("content-encoding"))
        if codings:
            note = f" ({', '.join(codings)} decoded)"
    except ContentError as e:
        note = f" (raw bytes: {e})"
    if message.body.truncated:
        note += f" (only {len(message.body.data)} of {message.body.size} bytes were recorded)"
    try:
        path.write_bytes(data)
    except OSError as e:
        raise SaveError(f"cannot write {path}: {e.strerror or e}") from None
    return path, note
