"""Publishing lab variants from the Lab pane: choose the owner and the visibility, see every repo id, confirm.

Each variant goes to its own repo named the mlx-community way (`<owner>/<variant folder>`); nothing is sent
before the answer, and every preflight runs before the first byte (services/lab_publish.py).
"""

from __future__ import annotations

from pathlib import Path

from textual import on
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal, Vertical
from textual.screen import ModalScreen
from textual.widgets import Button, Checkbox, Input, Static

from mlxtui.format import printable

__all__ = ["PublishAnswer", "PublishDialog"]

#: (owner, private) when confirmed
PublishAnswer = tuple[str, bool]


class PublishDialog(ModalScreen[PublishAnswer | None]):
    """Ask where the chosen variants go. Escape (or Cancel) publishes nothing."""

    DEFAULT_CSS = """
    PublishDialog { align: center middle; }
    PublishDialog > #publish-box {
        width: 72; max-width: 95%; height: auto; max-height: 95%;
        background: $surface; border: thick $warning; padding: 0 1;
    }
    PublishDialog #publish-title { text-style: bold; }
    PublishDialog #publish-repos { margin: 1 0; height: auto; max-height: 10; }
    PublishDialog #publish-owner { width: 1fr; }
    PublishDialog #publish-buttons { height: auto; align-horizontal: right; }
    PublishDialog #publish-buttons Button { margin-left: 2; }
    """

    BINDINGS = [Binding("escape", "cancel", "Cancel", id="publish.cancel")]

    def __init__(self, folders: dict[str, str], owners: tuple[str, ...]) -> None:
        super().__init__()
        self.folders = folders  # variant name -> its folder
        self.owners = owners

    def compose(self) -> ComposeResult:
        count = len(self.folders)
        with Vertical(id="publish-box"):
            yield Static(f"Publish {count} variants, each to its own repo" if count != 1 else
                         "Publish 1 variant to its own repo", id="publish-title")
            hint = f"you may write to: {', '.join(self.owners)}" if self.owners else "owner (user or org)"
            yield Input(self.owners[0] if self.owners else "", placeholder=hint, id="publish-owner")
            yield Static("", id="publish-repos", markup=False)
            yield Checkbox("Private", id="publish-private")
            with Horizontal(id="publish-buttons"):
                yield Button("Cancel", id="publish-cancel")
                yield Button("Publish", id="publish-ok", variant="warning")

    def on_mount(self) -> None:
        self._show_repos()
        self.query_one("#publish-cancel", Button).focus()  # the safe answer first; Tab reaches the owner

    def owner(self) -> str:
        return self.query_one("#publish-owner", Input).value.strip().strip("/")

    @on(Input.Changed, "#publish-owner")
    def _show_repos(self) -> None:
        owner = self.owner() or "OWNER"
        lines = [f"{printable(name, newlines=False)} → {printable(owner, newlines=False)}/"
                 f"{printable(Path(folder).name, newlines=False)}" for name, folder in self.folders.items()]
        self.query_one("#publish-repos", Static).update("\n".join(lines) + "\nCards link each other; "
                                                        "every check runs before the first byte is sent.")

    @on(Input.Submitted, "#publish-owner")
    @on(Button.Pressed, "#publish-ok")
    def _ok(self) -> None:
        from mlxtui.services.modelfolder import is_repo_id

        owner = self.owner()
        if not owner or not is_repo_id(f"{owner}/x"):
            self.notify("Name the owner: your user name or an organisation.", severity="warning")
            return
        self.dismiss((owner, self.query_one("#publish-private", Checkbox).value))

    @on(Button.Pressed, "#publish-cancel")
    def action_cancel(self) -> None:
        self.dismiss(None)
