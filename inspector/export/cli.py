"""`inspector export SESSION --format har|curl|raw|pytest [--filter EXPR] [--redact] [-o FILE]`.

Exports stream: flows are read from the session a page at a time and written as they
come, so memory stays flat whatever the session holds (a 100,000-flow session exports in
the memory of one flow). A progress bar shows on stderr when it is a terminal; a reader
that stops early (`| head`) ends the export quietly, with status 0.
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import BinaryIO

from inspector.config import ConfigError
from inspector.export.curl import curl_command, needs_body_file
from inspector.export.har import har_chunks
from inspector.export.progress import counted, progress, stdout_closed
from inspector.export.pytest_module import ModuleTally, pytest_chunks
from inspector.export.raw import raw_exchange
from inspector.export.redact import redact_flow
from inspector.flow import Flow
from inspector.sessions import check_filter, open_session


def main(args: argparse.Namespace) -> int:
    """Write the selected exchanges of a session in the chosen format; exit 2 on bad input."""
    check_filter(args.filter)
    output: Path | None = args.output.expanduser() if args.output else None
    if output is not None and not output.parent.is_dir():
        raise ConfigError(f"cannot write {output}: directory {output.parent} does not exist")
    if output is not None and output.is_dir():
        raise ConfigError(f"cannot write {output}: it is a directory; give a file name")
    store = open_session(args.session, readonly=True)
    tally = ModuleTally()
    try:
        with progress(store.count(args.filter), "exporting") as advance:
            flows = counted(store.iter_flows(args.filter), advance)
            chunks = export_chunks(
                args.format, flows, redact=args.redact, output=output, tally=tally
            )
            if output is None:
                return _to_stdout(chunks)
            _write_file(output, chunks)
    finally:
        store.close()
    print(f"inspector: exported {_summary(tally)} to {args.output}", file=sys.stderr)
    return 0


def _to_stdout(chunks: Iterable[bytes]) -> int:
    try:
        out = sys.stdout.buffer
        for chunk in chunks:
            out.write(chunk)
        out.flush()
    except BrokenPipeError:
        return stdout_closed()
    return 0


def _summary(tally: ModuleTally) -> str:
    """How many exchanges the file holds; a pytest module leaves some out, and says why."""
    n = tally.exported
    text = f"{n} exchange{'' if n == 1 else 's'}"
    return text + (f" ({tally.left_out} left out, listed in the file)" if tally.left_out else "")


def render(fmt: str, flows: list[Flow], *, redact: bool, output: Path | None) -> bytes:
    """The export of ``flows`` in format ``fmt`` as bytes (for the UI's export screen)."""
    return b"".join(export_chunks(fmt, flows, redact=redact, output=output, tally=ModuleTally()))


def export_chunks(
    fmt: str, flows: Iterable[Flow], *, redact: bool, output: Path | None, tally: ModuleTally
) -> Iterator[bytes]:
    """The export of ``flows`` in format ``fmt``, a piece at a time; ``tally`` counts."""
    if fmt == "pytest":  # the module counts what it keeps and what it leaves out
        for text in pytest_chunks(flows, redact, tally):
            yield text.encode("utf-8")
        return
    flows = _tallied(flows, tally)
    if fmt == "har":
        for text in har_chunks(flows, redact=redact):
            yield text.encode("utf-8")
    elif fmt == "raw":
        for number, flow in enumerate(flows):
            yield (b"\n" if number else b"") + raw_exchange(flow, redact=redact)
    elif fmt == "curl":
        for text in _curl_script(flows, redact=redact, output=output):
            yield text.encode("utf-8")
    else:
        raise ConfigError(f"unknown export format {fmt!r}: use har, curl, raw or pytest")


def _tallied(flows: Iterable[Flow], tally: ModuleTally) -> Iterator[Flow]:
    for flow in flows:
        tally.exported += 1
        yield flow


def _curl_script(flows: Iterable[Flow], *, redact: bool, output: Path | None) -> Iterator[str]:
    yield "#!/bin/sh\n# curl commands exported by http-inspector, one per exchange\n\n"
    for number, flow in enumerate(flows, 1):
        if redact:
            flow = redact_flow(flow)
        req = flow.request
        lines = [f"# {number}: {req.method} {req.url}"]
        if req.method.upper() == "CONNECT":
            yield "\n".join([*lines, "# (a CONNECT tunnel: nothing to send)", "", ""])
            continue
        if req.body.truncated:
            lines.append("# note: the body was cut at capture; this sends the recorded part only")
        body_file = None
        if output is not None and req.body.data and needs_body_file(req.body.data):
            body_file = _write_body_file(req.body.data, number, output.resolve())
        yield "\n".join([*lines, curl_command(flow, body_file=body_file), "", ""])


def _write_body_file(body: bytes, number: int, output: Path) -> str:
    """Write a large or binary request body next to the output, for ``--data-binary @FILE``.

    Without an output file (stdout, the clipboard) bodies stay inline in the command.
    """
    path = output.parent / f"{output.stem}.body-{number}.bin"
    path.write_bytes(body)
    return str(path)


def _write_file(path: Path, chunks: Iterable[bytes]) -> None:
    try:
        _write_atomically(path, chunks)
    except OSError as e:  # a directory we may not write to, a full disk...
        raise ConfigError(f"cannot write {path}: {e.strerror or e}") from None


def _write_atomically(path: Path, chunks: Iterable[bytes]) -> None:
    """Write to a temporary file beside ``path``, renamed over it only when complete."""
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as f:
            _write_all(f, chunks)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def _write_all(f: BinaryIO, chunks: Iterable[bytes]) -> None:
    for chunk in chunks:
        f.write(chunk)
