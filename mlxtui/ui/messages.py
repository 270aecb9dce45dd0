"""Messages panes post to ask the app to move the workflow on; they carry only the facts the next pane needs."""

from __future__ import annotations

from typing import Any

from textual.message import Message

__all__ = [
    "ShowModel", "ConvertModel", "ChatWithModel", "EditCard", "UploadFolder", "ConversionFinished", "TargetChosen",
    "HubChanged",
]


class ShowModel(Message):
    """Open a repo id (or local folder) in Inspect."""

    def __init__(self, repo_id: str, revision: str | None = None) -> None:
        super().__init__()
        self.repo_id = repo_id
        self.revision = revision


class ConvertModel(Message):
    """Open Convert with this source filled in; `report` is Inspect's verdict as a dict, when there is one."""

    def __init__(self, source: str, revision: str | None = None, report: dict[str, Any] | None = None) -> None:
        super().__init__()
        self.source = source
        self.revision = revision
        self.report = report


class ChatWithModel(Message):
    """Load an MLX folder (or repo id) in Chat."""

    def __init__(self, path: str) -> None:
        super().__init__()
        self.path = path


class EditCard(Message):
    """Open the model card of an MLX folder; `source` is the original repo when known."""

    def __init__(self, path: str, source: str | None = None) -> None:
        super().__init__()
        self.path = path
        self.source = source


class UploadFolder(Message):
    """Prepare an upload of an MLX folder."""

    def __init__(self, path: str) -> None:
        super().__init__()
        self.path = path


class ConversionFinished(Message):
    """A conversion wrote `path` (from `source`): it becomes the model in work, offered to Chat, Card, Upload."""

    def __init__(self, path: str, source: str | None = None) -> None:
        super().__init__()
        self.path = path
        self.source = source


class TargetChosen(Message):
    """The repo id the model in work will be published to (Card's usage snippet and Upload follow it)."""

    def __init__(self, repo_id: str) -> None:
        super().__init__()
        self.repo_id = repo_id


class HubChanged(Message):
    """Something was written to the Hub in use (an upload to `repo_id`): views of the Hub (Search) refresh."""

    def __init__(self, repo_id: str) -> None:
        super().__init__()
        self.repo_id = repo_id
