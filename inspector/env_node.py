"""Node's part of the environment: a preload that sends fetch and http/https through the proxy.

Node before 22.21 and 24 ignores ``HTTP(S)_PROXY`` (and from there reads them only with
``NODE_USE_ENV_PROXY=1``), so ``inspector run`` and ``inspector env`` also set
``NODE_OPTIONS=--require CONFDIR/node-proxy.cjs`` (after what ``NODE_OPTIONS`` already
held) and ``NODE_USE_ENV_PROXY=1``. The preload (node_proxy.cjs, written once into the
confdir, like the CA bundle) does nothing where Node reads the variables itself.
"""

from __future__ import annotations

import os
import tempfile
from pathlib import Path

PRELOAD_NAME = "node-proxy.cjs"
_SOURCE = Path(__file__).with_name("node_proxy.cjs")


def ensure_preload(confdir: Path) -> Path:
    """The preload's path in ``confdir``, written there when missing or out of date."""
    path = confdir / PRELOAD_NAME
    code = _SOURCE.read_bytes()
    try:
        if path.read_bytes() == code:
            return path
    except OSError:
        pass  # missing (or unreadable: rewritten)
    fd, tmp = tempfile.mkstemp(prefix=f".{PRELOAD_NAME}.", dir=confdir)
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(code)
        os.chmod(tmp, 0o644)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return path


def require_option(preload: Path) -> str:
    """``--require "PATH"`` as NODE_OPTIONS reads it: double quotes, backslash escapes."""
    quoted = str(preload).replace("\\", "\\\\").replace('"', '\\"')
    return f'--require "{quoted}"'


def node_options(existing: str, preload: Path) -> str:
    """``existing`` NODE_OPTIONS with the preload's ``--require`` after it (once)."""
    option = require_option(preload)
    existing = existing.strip()
    if option in existing:
        return existing
    return f"{existing} {option}" if existing else option
