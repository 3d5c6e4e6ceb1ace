"""``inspector replay SESSION``: replay a session in capture order and report differences.

Every replay is recorded (into the session, or ``--into`` another); one line per flow,
its diff with ``--diff``, a summary; exit 0 all match, 1 differences, 2 errors,
130 interrupted.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from typing import TYPE_CHECKING, TextIO

from inspector.config import ConfigError, Endpoint
from inspector.diff import ResponseDiff, compare
from inspector.export.progress import Counter, progress, stdout_closed
from inspector.flow import Flow
from inspector.render import flow_line, status_text
from inspector.replay.engine import Outcome, ReplayOptions, run_replays
from inspector.sessions import open_session, selected_ids

if TYPE_CHECKING:
    from inspector.store import Store


@dataclass(slots=True)
class Tally:
    total: int = 0
    match: int = 0
    differ: int = 0
    errors: int = 0
    skipped: int = 0
    interrupted: bool = False

    @property
    def replayed(self) -> int:
        return self.match + self.differ + self.errors

    def summary(self) -> str:
        text = (
            f"replayed {self.replayed} of {self.total}: {self.match} match, "
            f"{self.differ} differ, {self.errors} errors"
        )
        if self.skipped:
            text += f", {self.skipped} skipped"
        return text + ("; interrupted" if self.interrupted else "")

    def exit_code(self) -> int:
        if self.interrupted:
            return 130
        if self.errors:
            return 2
        return 1 if self.differ else 0


class Reporter:
    """Prints one line per flow (and its diff) and counts outcomes (on ``counter``'s bar)."""

    def __init__(
        self,
        tally: Tally,
        *,
        show_diff: bool,
        ignore: list[str],
        out: TextIO | None = None,
        counter: Counter | None = None,
    ) -> None:
        self.tally = tally
        self.show_diff = show_diff
        self.ignore = ignore
        self.out = out or sys.stdout
        self.counter = counter or Counter()

    def report(self, outcome: Outcome) -> None:
        flow = outcome.original
        label = f"{flow.request.method} {flow.request.url}"
        if outcome.skipped is not None:
            self.tally.skipped += 1
            self._print(f"{label} -> skipped: {outcome.skipped}")
        elif outcome.refused is not None:
            self.tally.errors += 1
            self._print(f"{label} -> ERROR cannot replay: {outcome.refused}")
        else:
            assert outcome.new is not None
            self._report_replay(flow, outcome.new)
        self.counter()

    def _report_replay(self, original: Flow, new: Flow) -> None:
        line = flow_line(new)
        if new.request.http_version == "HTTP/2":
            line += "  (over HTTP/2)"
        if new.error is not None:
            self.tally.errors += 1
            self._print(line)
            return
        diff = compare(original.response, new.response, self.ignore)
        if diff.status is not None:
            line += f"  (recorded {_recorded_status(original)})"
        if diff.same:
            self.tally.match += 1
        else:
            self.tally.differ += 1
            if not self.show_diff:
                line += f"  [differs: {', '.join(diff.parts)}]"
        self._print(line)
        if self.show_diff and not diff.same:
            self._print_diff(diff)

    def _print_diff(self, diff: ResponseDiff) -> None:
        for text in diff.lines():
            self._print(f"    {text}")

    def _print(self, text: str) -> None:
        self.counter.line(text, self.out)

    def finish(self) -> None:
        print(self.tally.summary(), file=self.out, flush=True)


def _recorded_status(flow: Flow) -> str:
    if flow.response is None:
        return f"ERROR {flow.error.exc_class}" if flow.error else "no response"
    return status_text(flow.response.status_code, flow.response.reason)


def parse_target(url: str) -> Endpoint:
    """``--target``: scheme://host[:port] only; the recorded paths are kept."""
    return Endpoint.parse(url, "--target")


def options_from_args(args: argparse.Namespace) -> ReplayOptions:
    if args.concurrency < 1:
        raise ConfigError(f"bad --concurrency {args.concurrency}: use 1 or more")
    return ReplayOptions(
        target=parse_target(args.target) if args.target else None,
        keep_host=args.keep_host,
        timeout=args.timeout,
        insecure=args.insecure,
        upstream_ca=args.upstream_ca,  # checked as a CA bundle by the option's type
    )


def main(args: argparse.Namespace) -> int:
    """``inspector replay``: exit 0 all match, 1 differences, 2 errors, 130 interrupted."""
    try:
        return _main(args)
    except BrokenPipeError:  # the reader went away (`| head`): it has what it wanted
        return stdout_closed()


def _main(args: argparse.Namespace) -> int:
    options = options_from_args(args)
    source = open_session(args.session, readonly=args.into is not None)
    try:
        ids = selected_ids(source, args.filter, skip_replays=True)
        sink = source if args.into is None else open_session(args.into, create=True)
        try:
            tally = _replay_session(source, sink, ids, options, args)
        finally:
            if sink is not source:
                sink.close()
    finally:
        source.close()
    return tally.exit_code()


def _replay_session(
    source: Store, sink: Store, ids: list[str], options: ReplayOptions, args: argparse.Namespace
) -> Tally:
    tally = Tally(total=len(ids))
    reporter = Reporter(tally, show_diff=args.diff, ignore=args.ignore_header or [])

    def flows() -> Iterator[Flow]:
        for flow_id in ids:
            flow = source.get(flow_id)
            if flow is not None:
                yield flow

    def on_outcome(outcome: Outcome) -> None:
        if outcome.new is not None:
            sink.put(outcome.new)
        reporter.report(outcome)

    with progress(len(ids), "replaying") as counter:  # a bar on stderr when it is a terminal
        reporter.counter = counter
        finished = run_replays(
            flows(), options, concurrency=args.concurrency, rate=args.rate, on_outcome=on_outcome
        )
        tally.interrupted = not finished
        sink.flush()
    reporter.finish()
    return tally
