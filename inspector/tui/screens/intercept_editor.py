"""Edit a held request or response: in a TextArea screen, or in $EDITOR when it is set."""

from __future__ import annotations

import os
import shlex
import subprocess
import tempfile
from pathlib import Path
from typing import TYPE_CHECKING

from textual.app import ComposeResult, SuspendNotSupported
from textual.screen import Screen
from textual.widgets import Footer, Static, TextArea

from inspector.tui import keys
from inspector.tui.editing import EditError, message_text

if TYPE_CHECKING:
    from inspector.flow import Flow
    from inspector.tui.app import InspectorApp


def open_editor(app: InspectorApp, flow: Flow, stage: str, *, held: bool) -> None:
    """Edit ``stage`` (request or response) of ``flow`` with $EDITOR if set, else in the
    built-in editor screen; the app records the change (``flow_edited``). A ``held``
    flow's edit applies only while it is still held."""
    editor = os.environ.get("VISUAL") or os.environ.get("EDITOR")
    if not editor or not _edit_externally(app, flow, stage, editor):
        app.push_screen(InterceptEditorScreen(flow, stage, held=held))


def _edit_externally(app: InspectorApp, flow: Flow, stage: str, editor: str) -> bool:
    """Edit in ``editor`` with the app suspended; False when the terminal cannot be handed over."""
    fd, name = tempfile.mkstemp(prefix="inspector-edit-", suffix=".http")
    path = Path(name)
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as f:
            f.write(message_text(flow, stage))
        try:
            with app.suspend():
                result = subprocess.run([*shlex.split(editor), str(path)], check=False)
        except SuspendNotSupported:  # headless or web driver: use the built-in editor
            return False
        if result.returncode != 0:
            app.notify(
                f"{editor} exited with {result.returncode}: nothing changed", severity="warning"
            )
            return True
        changed = app.state.apply_edit(flow, path.read_text(encoding="utf-8"), stage)
    except EditError as e:
        app.notify(f"not applied: {e}", title="Edit", severity="error", timeout=10)
    except OSError as e:
        app.notify(f"cannot run {editor!r}: {e}", title="Edit", severity="error", timeout=10)
    else:
        app.flow_edited(flow, stage, changed=changed)
    finally:
        path.unlink(missing_ok=True)
    return True


class InterceptEditorScreen(Screen):
    """A held or recorded message as HTTP text; ctrl+s applies, esc discards."""

    BINDINGS = keys.EDITOR_KEYS

    app: InspectorApp

    def __init__(self, flow: Flow, stage: str, *, held: bool = True) -> None:
        super().__init__()
        self.flow = flow
        self.stage = stage
        self.held = held

    def compose(self) -> ComposeResult:
        stage = self.stage
        yield Static(
            f"Editing the {'held' if self.held else 'recorded'} {stage} of "
            f"{self.flow.request.method} {self.flow.request.url}: "
            "start line, headers, a blank line, then the body.",
            id="editor-title",
        )
        yield TextArea(
            message_text(self.flow, self.stage),
            id="editor",
            show_line_numbers=True,
            tab_behavior="indent",
        )
        yield Static("", id="editor-error")
        yield Footer()

    def on_mount(self) -> None:
        self.query_one(TextArea).focus()

    def _apply(self) -> bool | None:
        """True: applied, False: nothing changed, None: not applied (the error is shown)."""
        if self.held and self.app.session.held_flow(self.flow.id) is None:
            self._error("this flow is no longer held: nothing to apply")
            return None
        try:
            return self.app.state.apply_edit(self.flow, self.query_one(TextArea).text, self.stage)
        except EditError as e:
            self._error(f"not applied: {e}")
            return None

    def _error(self, message: str) -> None:
        self.query_one("#editor-error", Static).update(message)

    def action_save(self) -> None:
        changed = self._apply()
        if changed is not None:
            self.app.pop_screen()
            self.app.flow_edited(self.flow, self.stage, changed=changed)

    def action_save_resume(self) -> None:
        changed = self._apply()
        if changed is not None:
            self.app.pop_screen()
            self.app.flow_edited(self.flow, self.stage, changed=changed)
            if self.held:
                self.app.resume([self.flow.id])
