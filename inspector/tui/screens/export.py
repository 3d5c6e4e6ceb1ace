"""Export the selected flows as curl, raw HTTP or HAR, to a file or the clipboard."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

from textual import on
from textual.app import ComposeResult
from textual.containers import Horizontal, Vertical
from textual.screen import ModalScreen
from textual.widgets import Button, Checkbox, Input, RadioButton, RadioSet, Static

from inspector.config import ConfigError
from inspector.export.cli import render
from inspector.tui import keys

if TYPE_CHECKING:
    from inspector.flow import Flow
    from inspector.tui.app import InspectorApp

FORMATS = {"curl": ("curl command", ".sh"), "raw": ("raw HTTP", ".http"), "har": ("HAR", ".har")}


class ExportScreen(ModalScreen[None]):
    """Pick a format and where to put it."""

    BINDINGS = keys.EXPORT_KEYS

    app: InspectorApp

    def __init__(self, ids: list[str]) -> None:
        super().__init__()
        self.ids = ids

    def compose(self) -> ComposeResult:
        n = len(self.ids)
        with Vertical(classes="dialog", id="export-dialog"):
            yield Static(f"Export {n} flow{'s' if n != 1 else ''}", classes="question")
            with RadioSet(id="format"):
                for i, (key, (title, _)) in enumerate(FORMATS.items()):
                    yield RadioButton(title, value=i == 0, name=key)
            yield Checkbox("mask credentials (cookies, tokens, passwords)", id="redact")
            yield Input(self._default_path("curl"), id="path", placeholder="file to write")
            yield Static("", id="export-error")
            with Horizontal(classes="buttons"):
                yield Button("Save (ctrl+s)", variant="primary", id="save")
                yield Button("Copy (ctrl+y)", id="copy")
                yield Button("Cancel", id="cancel")

    def _default_path(self, fmt: str) -> str:
        return str(Path.cwd() / f"inspector-export{FORMATS[fmt][1]}")

    @property
    def fmt(self) -> str:
        pressed = self.query_one(RadioSet).pressed_button
        return pressed.name if pressed is not None and pressed.name else "curl"

    @on(RadioSet.Changed)
    def _format_changed(self) -> None:
        path = self.query_one("#path", Input)
        stem = Path(path.value).with_suffix("")
        path.value = str(stem) + FORMATS[self.fmt][1]

    def _flows(self) -> list[Flow]:
        flows = [self.app.state.load_flow(i) for i in self.ids]
        return [f for f in flows if f is not None]

    def _export_bytes(self, output: Path | None) -> bytes | None:
        try:
            return render(
                self.fmt, self._flows(), redact=self.query_one(Checkbox).value, output=output
            )
        except (ConfigError, OSError, ValueError) as e:
            self.query_one("#export-error", Static).update(f"cannot export: {e}")
            return None

    def action_save(self) -> None:
        text = self.query_one("#path", Input).value.strip()
        if not text:
            self.query_one("#export-error", Static).update("give a file name to write to")
            return
        path = Path(text).expanduser()
        if not path.parent.is_dir():
            self.query_one("#export-error", Static).update(
                f"directory {path.parent} does not exist"
            )
            return
        data = self._export_bytes(path)
        if data is None:
            return
        try:
            path.write_bytes(data)
        except OSError as e:
            self.query_one("#export-error", Static).update(f"cannot write {path}: {e}")
            return
        self.dismiss(None)
        self.app.notify(f"wrote {path}", title="Export")

    def _error(self, message: str) -> None:
        self.query_one("#export-error", Static).update(message)

    def action_copy(self) -> None:
        data = self._export_bytes(None)
        if data is None:
            return
        self.dismiss(None)
        self.app.copy_text(data.decode("utf-8", errors="replace"), FORMATS[self.fmt][0])

    def action_dismiss_export(self) -> None:
        self.dismiss(None)

    def on_button_pressed(self, event: Button.Pressed) -> None:
        {"save": self.action_save, "copy": self.action_copy}.get(
            event.button.id or "", self.action_dismiss_export
        )()
