"""`inspector export SESSION --format har|curl|raw|pytest [--filter EXPR] [--redact] [-o FILE]`."""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
from pathlib import Path

from inspector.config import ConfigError
from inspector.export.curl import curl_command, needs_body_file
from inspector.export.har import har_document
from inspector.export.pytest_module import pytest_module, unusable_reason
from inspector.export.raw import raw_exchange
from inspector.export.redact import redact_flow
from inspector.flow import Flow
from inspector.sessions import check_filter, open_session


def main(args: argparse.Namespace) -> int:
    """Write the selected exchanges of a session in the chosen format; exit 2 on bad input."""
    check_filter(args.filter)
    output: Path | None = args.output
    if output is not None and not output.expanduser().parent.is_dir():
        raise ConfigError(f"cannot write {output}: directory {output.parent} does not exist")
    store = open_session(args.session, readonly=True)
    try:
        flows = list(store.iter_flows(args.filter))
        data = render(args.format, flows, redact=args.redact, output=output)
    finally:
        store.close()
    if output is None:
        try:
            sys.stdout.buffer.write(data)
            sys.stdout.flush()
        except BrokenPipeError:  # `| head`: the reader has all it wanted
            os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
            return 1
    else:
        _write_atomically(output.expanduser(), data)
        print(f"inspector: exported {_summary(args.format, flows)} to {output}", file=sys.stderr)
    return 0


def _summary(fmt: str, flows: list[Flow]) -> str:
    """How many exchanges the file holds; a pytest module leaves some out, and says why."""
    left_out = sum(1 for f in flows if unusable_reason(f)) if fmt == "pytest" else 0
    exported = len(flows) - left_out
    text = f"{exported} exchange{'' if exported == 1 else 's'}"
    return text + (f" ({left_out} left out, listed at the top of the file)" if left_out else "")


def render(fmt: str, flows: list[Flow], *, redact: bool, output: Path | None) -> bytes:
    """The export of ``flows`` in format ``fmt`` as bytes."""
    if fmt == "har":
        doc = har_document(flows, redact=redact)
        return (json.dumps(doc, indent=2, ensure_ascii=False) + "\n").encode("utf-8")
    if fmt == "raw":
        return b"\n".join(raw_exchange(f, redact=redact) for f in flows)
    if fmt == "pytest":
        return pytest_module(flows, redact=redact).encode("utf-8")
    if fmt == "curl":
        return _curl_script(flows, redact=redact, output=output).encode("utf-8")
    raise ConfigError(f"unknown export format {fmt!r}: use har, curl, raw or pytest")


def _curl_script(flows: list[Flow], *, redact: bool, output: Path | None) -> str:
    lines = ["#!/bin/sh", "# curl commands exported by http-inspector, one per exchange", ""]
    for number, flow in enumerate(flows, 1):
        if redact:
            flow = redact_flow(flow)
        req = flow.request
        lines.append(f"# {number}: {req.method} {req.url}")
        if req.method.upper() == "CONNECT":
            lines += ["# (a CONNECT tunnel: nothing to send)", ""]
            continue
        if req.body.truncated:
            lines.append("# note: the body was cut at capture; this sends the recorded part only")
        body_file = None
        if output is not None and req.body.data and needs_body_file(req.body.data):
            body_file = _write_body_file(req.body.data, number, output.expanduser().resolve())
        lines += [curl_command(flow, body_file=body_file), ""]
    return "\n".join(lines)


def _write_body_file(body: bytes, number: int, output: Path) -> str:
    """Write a large or binary request body next to the output, for ``--data-binary @FILE``.

    Without an output file (stdout, the clipboard) bodies stay inline in the command.
    """
    path = output.parent / f"{output.stem}.body-{number}.bin"
    path.write_bytes(body)
    return str(path)


def _write_atomically(path: Path, data: bytes) -> None:
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(data)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
