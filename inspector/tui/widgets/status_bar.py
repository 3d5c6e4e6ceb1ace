"""The header bar (where the proxy listens, the session, counts) and the status line."""

from __future__ import annotations

from dataclasses import dataclass, field

from rich.text import Text
from textual.reactive import reactive
from textual.widget import Widget

from inspector.tui.state import Counts


@dataclass(frozen=True, slots=True)
class SourceInfo:
    """What the UI is showing: a live proxy or a saved session."""

    session: str
    address: str | None = None  # "http://127.0.0.1:8080" when live
    mode: str = "regular"
    insecure: bool = False
    readonly: bool = False
    ca_path: str | None = None
    warnings: tuple[str, ...] = field(default=())


class HeaderBar(Widget):
    """Top line: product, listen address and mode (or the session file), counts."""

    DEFAULT_CSS = """
    HeaderBar { height: 1; background: $primary; color: $text; }
    """

    counts: reactive[Counts] = reactive(Counts, layout=False)

    def __init__(self, source: SourceInfo, *, id: str | None = None) -> None:
        super().__init__(id=id)
        self.source = source

    def render(self) -> Text:
        src = self.source
        text = Text(" http-inspector ", style="bold reverse")
        if src.address is not None:
            text.append(f"  ⇄ {src.address}", style="bold")
            text.append(f"  {src.mode}")
        else:
            text.append("  session (read-only)" if src.readonly else "  session")
        text.append(f"  {src.session}", style="italic")
        c = self.counts
        text.append("   ")
        shown = f"{c.shown}/{c.exchanges}" if c.shown != c.exchanges else str(c.exchanges)
        text.append(f"{shown} exchanges", style="bold")
        text.append("  ")
        text.append(f"{c.errors} errors", style="bold red" if c.errors else "")
        if c.modified:
            text.append(f"  ✎ {c.modified} modified", style="bold cyan")
        if src.address is not None or c.held:
            text.append("  ")
            text.append(f"⏸ {c.held} held", style="bold yellow" if c.held else "")
        return text


class StatusLine(Widget):
    """Bottom line above the footer: filter, intercept, follow, sort and warnings."""

    DEFAULT_CSS = """
    StatusLine { height: 1; background: $panel; color: $text-muted; }
    """

    filter_expr: reactive[str | None] = reactive(None)
    filter_off: reactive[bool] = reactive(False)
    intercept_expr: reactive[str | None] = reactive(None)
    follow: reactive[bool] = reactive(True)
    sort: reactive[str | None] = reactive(None)
    only_marked: reactive[bool] = reactive(False)
    message: reactive[str] = reactive("")

    def __init__(self, source: SourceInfo, *, id: str | None = None) -> None:
        super().__init__(id=id)
        self.source = source

    def render(self) -> Text:
        text = Text(" ")
        for warning in self.source.warnings:
            text.append(f"⚠ {warning}", style="bold black on yellow")
            text.append("  ")
        if self.filter_expr:
            if self.filter_off:
                text.append(f"filter off ({self.filter_expr})", style="dim")
            else:
                text.append("filter ", style="bold")
                text.append(self.filter_expr, style="bold cyan")
            text.append("  ")
        if self.intercept_expr:
            text.append("intercept ", style="bold")
            text.append(self.intercept_expr, style="bold yellow")
            text.append("  ")
        if self.only_marked:
            text.append("marked only (M)  ", style="bold magenta")
        if self.sort:
            text.append(f"sort {self.sort}  ")
        text.append(
            "follow" if self.follow else "follow off (F)", style="green" if self.follow else ""
        )
        if self.message:
            text.append(f"  {self.message}", style="italic")
        return text
