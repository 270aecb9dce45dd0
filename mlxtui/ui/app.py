"""The App: settings, themes, keymap, the pane switcher and routing between panes."""

from __future__ import annotations

import asyncio
from collections.abc import Iterable
from pathlib import Path
from typing import TYPE_CHECKING, cast

from textual import events, on, work
from textual.app import App, ComposeResult, SystemCommand
from textual.containers import Horizontal
from textual.geometry import Size
from textual.reactive import reactive
from textual.screen import Screen
from textual.theme import Theme
from textual.widget import Widget
from textual.widgets import Static
from textual.worker import Worker, WorkerState

from mlxtui import paths
from mlxtui.format import printable
from mlxtui.services import Context
from mlxtui.services.errors import MlxtuiError
from mlxtui.services.workflow import ModelInWork
from mlxtui.settings import save_settings
from mlxtui.ui.keys import PANES, SHORT_TITLES, app_bindings
from mlxtui.ui.messages import (
    ChatWithModel,
    ConversionFinished,
    ConvertModel,
    EditCard,
    HubChanged,
    ShowModel,
    TargetChosen,
    UploadFolder,
)
from mlxtui.ui.panes import load_pane_class
from mlxtui.ui.switcher import PaneBox, PaneSwitcher, TabBar
from mlxtui.ui.widgets.keybar import KeyBar
from mlxtui.ui.themes import DEFAULT_THEME, THEME_VARIABLE_DEFAULTS, load_themes

if TYPE_CHECKING:
    from textual.notifications import SeverityLevel
    from mlxtui.ui.panes.card import CardPane
    from mlxtui.ui.panes.chat import ChatPane
    from mlxtui.ui.panes.convert import ConvertPane
    from mlxtui.ui.panes.inspect import InspectPane
    from mlxtui.ui.panes.search import SearchPane
    from mlxtui.ui.panes.upload import UploadPane

__all__ = ["MlxtuiApp"]


_HERE = Path(__file__).parent
#: below this the layout stops being usable; a notice says so instead of a garbled screen
MIN_WIDTH, MIN_HEIGHT = 60, 18


class EndpointBar(Horizontal):
    """Top line: app name, the Hub in use, a DEMO badge, online/offline."""

    online: reactive[bool | None] = reactive(None)

    def __init__(self, ctx: Context) -> None:
        super().__init__(id="endpoint-bar")
        self.ctx = ctx

    def compose(self) -> ComposeResult:
        yield Static("mlxtui", id="app-name")
        yield Static(id="demo-badge")
        yield Static(id="work")
        yield Static(id="endpoint")
        yield Static(id="online")

    def show_work(self, work: ModelInWork) -> None:
        """The model in work, shortened from the left when the line is too narrow (the end matters most)."""
        text = work.describe()
        label = self.query_one("#work", Static)
        label.display = bool(text)
        label.update(text)
        label.tooltip = text or None

    def on_mount(self) -> None:
        self.refresh_endpoint()

    def refresh_endpoint(self) -> None:
        self.query_one("#endpoint", Static).update(f"Hub: {self.ctx.endpoint.split('://', 1)[-1]}")
        badge = self.query_one("#demo-badge", Static)
        badge.update(" DEMO " if self.ctx.demo else "")
        badge.display = self.ctx.demo

    def watch_online(self, online: bool | None) -> None:
        label = self.query_one("#online", Static)
        label.set_class(online is False, "offline")
        label.update({None: "checking…", True: "● online", False: "● offline"}[online])


class MlxtuiApp(App[int]):
    """mlxtui: Search → Inspect → Convert → Chat → Card → Upload."""

    TITLE = "mlxtui"
    AUTO_FOCUS = None  # on_mount focuses the search box, not the tab bar
    CSS_PATH = _HERE / "app.tcss"  # each pane brings its own stylesheet as DEFAULT_CSS
    BINDINGS = app_bindings()  # defined beside the pane list, so the keys doc needs no App import

    def __init__(
        self,
        ctx: Context,
        *,
        settings_path: Path | None = None,
        startup_notices: Iterable[str] = (),
        probe: bool = True,
        chat_model: str | None = None,
    ) -> None:
        super().__init__()
        from mlxtui.ui.escdigits import read_esc_digit_as_escape_then_digit

        read_esc_digit_as_escape_then_digit()  # alt+digit and quick Escape-digit in tmux: leave the field, switch
        self.ctx = ctx
        #: `mlxtui chat MODEL --tui`: open on Chat with this model loading (a folder, repo id or endpoint URL)
        self._chat_model = chat_model
        self.settings_path = settings_path
        self._startup_notices = list(startup_notices)
        self._probe = probe
        self._settings_warned = False
        #: the model carried from step to step (source → folder → target), shown in the top bar
        self.work = ModelInWork()
        #: pane id -> the widget that had focus when the user left that pane
        self._last_focus: dict[str, Widget] = {}
        #: the first pane shown at start-up: its empty search box takes typing at once
        self._first_arrival = True
        themes, problems = load_themes(paths.themes_dirs())
        for theme in themes:
            self.register_theme(theme)
        if problems:
            self._startup_notices.append("Some theme files were skipped: " + "; ".join(problems))
        wanted = ctx.settings.theme
        if wanted not in self.available_themes:
            if wanted != DEFAULT_THEME:
                self._startup_notices.append(f"Theme {wanted!r} was not found; using {DEFAULT_THEME}.")
            wanted = DEFAULT_THEME
        self.theme = wanted

    def notify(
        self,
        message: str,
        *,
        title: str = "",
        severity: SeverityLevel = "information",
        timeout: float | None = None,
        markup: bool = True,
    ) -> None:
        """Every notification, from any pane, is plain text (one policy, whatever the caller passed): messages
        carry file names, repo ids, server and model replies, whose brackets Rich would read as markup (an
        OpenAI error's "[DONE]" vanished) or as a style to apply, and whose control characters could move
        the cursor."""
        super().notify(printable(message), title=printable(title, newlines=False), severity=severity,
                       timeout=timeout, markup=False)

    def get_theme_variable_defaults(self) -> dict[str, str]:
        return dict(THEME_VARIABLE_DEFAULTS)

    def compose(self) -> ComposeResult:
        yield EndpointBar(self.ctx)
        titles = [(pane, title, SHORT_TITLES[pane]) for pane, title in PANES]
        with PaneSwitcher(titles, initial=PANES[0][0], id="panes"):
            for n, (pane, _) in enumerate(PANES, start=1):
                with PaneBox(id=pane):
                    # The first pane (Search) is in the first frame, so its box takes typing at once; the others
                    # are imported after it, one per frame. Headless runs (tests, screenshots) build all now.
                    if self.is_headless or n == 1:
                        yield load_pane_class(pane)(id=f"{pane}-pane")
        yield Static(id="too-small")
        yield KeyBar(id="keys")  # every pane's keys fit in 80 columns

    def on_mount(self) -> None:
        if self.ctx.settings.keymap:
            self.set_keymap(self.ctx.settings.keymap)
        for notice in self._startup_notices:
            self.notify(notice, severity="warning", timeout=10)
        self.theme_changed_signal.subscribe(self, self._remember_theme)
        self._check_size()
        self.action_show_pane(PANES[0][0])  # typing goes to the search box at once
        self.call_after_refresh(self._mount_panes)
        if self._chat_model:  # `mlxtui chat MODEL --tui`
            self.post_message(ChatWithModel(self._chat_model))
        if self._probe:
            self.call_after_refresh(self.probe_hub)  # never delay the first frame

    # -- panes ------------------------------------------------------------------------------------

    @work(group="panes", exit_on_error=True)
    async def _mount_panes(self) -> None:
        """After the first frame: the panes other than Search, one per frame.

        A worker, not a handler: awaiting in a handler would hold the app's message queue, and with it
        every frame, until all panes had loaded.
        """
        for box in list(self.query(PaneBox)):
            if not box.children:
                await box.mount(load_pane_class(box.id or "")(id=f"{box.id}-pane"))
                await asyncio.sleep(0.02)  # time for a frame between panes: keys are answered while they load

    def action_show_pane(self, pane: str) -> None:
        """Show `pane` and focus its home widget (never a text field with text: see mlxtui/ui/focus.py)."""
        switcher = self.query_one("#panes", PaneSwitcher)
        already_shown = switcher.active == pane
        if not already_shown and self.focused is not None and switcher.active:
            self._last_focus[switcher.active] = self.focused  # a table keeps its row when the user comes back
        switcher.active = pane
        found = self.query(f"#{pane}-pane")
        if not found or found.first().has_focus_within:
            return
        if already_shown:
            self._focus_first(found.first())
        else:
            # A widget in a hidden pane cannot take focus: leave the old pane now, focus the new one once shown.
            self.set_focus(None)
            self.call_after_refresh(self._focus_first, found.first())

    @on(TabBar.Clicked)
    def _tab_clicked(self, event: TabBar.Clicked) -> None:
        """A tab clicked is an arrival too: focus goes home."""
        if self.screen_stack and self.screen is self.screen_stack[0]:
            self.action_show_pane(event.pane)

    def focus_pane_home(self, pane: Widget) -> None:
        """Focus went to a pane not on screen (PaneSwitcher gives it back): to the home of `pane`, on screen."""
        self._focus_first(pane)

    def _focus_first(self, pane: Widget) -> None:
        """Focus the pane's home widget (or the widget the user left, unless it is a text field), unless the
        user has moved on meanwhile.

        On the first screen an empty Search box takes the cursor, so typing searches at once.
        """
        from mlxtui.ui.focus import holds_text, home_widget, is_text_field

        tab = pane.parent
        if tab is None or self.query_one("#panes", PaneSwitcher).active != tab.id:
            return
        if pane.has_focus_within:
            return
        last = self._last_focus.pop(tab.id or "", None)
        if self._first_arrival:
            self._first_arrival = False
            box = pane.query("#search-query")
            if box and not holds_text(box.first()):
                box.first().focus()
                return
        if last is not None and last.is_attached and pane in last.ancestors and last.focusable \
                and not is_text_field(last):
            self.set_focus(last, scroll_visible=False)
        else:
            # not .focus(), which some panes override to pick a field; no scrolling: a pane opens at its top
            self.set_focus(home_widget(pane), scroll_visible=False)

    def _active_pane(self) -> Widget | None:
        # no DOM query: the footer asks (through check_action) for every key it draws
        switchers = self.screen_stack[0].children if self.screen_stack else ()
        switcher = next((w for w in switchers if isinstance(w, PaneSwitcher)), None)
        return switcher.pane(switcher.active) if switcher is not None and switcher.active else None

    def check_action(self, action: str, parameters: tuple[object, ...]) -> bool | None:
        """The focus keys act on the main screen only: Escape's field binding in a text field; digits and `/`
        outside one (there they are text), `/` only where the pane has a field.

        Digits and `/` are priority bindings, so they act as each key arrives: keys that come in the same read
        (over SSH, or pasted) then find focus where the key before them put it.
        """
        from mlxtui.ui.focus import edit_widget, is_text_field

        if action == "show_pane":
            return bool(self.screen_stack) and self.screen is self.screen_stack[0] and not is_text_field(self.focused)
        if action in ("leave_field", "edit"):
            if not self.screen_stack or self.screen is not self.screen_stack[0]:
                return False  # a dialog uses its own Escape
            pane = self._active_pane()
            if pane is None:
                return False
            if action == "leave_field":
                if getattr(pane, "takes_escape", lambda: False)():
                    return False  # the pane has something to stop (Chat: a reply or a load): its Escape acts
                return is_text_field(self.focused) and pane in self.focused.ancestors  # type: ignore[union-attr]
            return not is_text_field(self.focused) and edit_widget(pane) is not None
        return True

    def action_leave_field(self) -> None:
        """Escape in a text field (and a pane's Escape with nothing to cancel): back to the pane's home widget,
        where digits switch panes and the pane's letter keys work."""
        from mlxtui.ui.focus import home_widget

        pane = self._active_pane()
        if pane is not None:
            self.set_focus(home_widget(pane))  # not .focus(): some panes override it to pick a field

    def action_home(self) -> None:
        """Escape anywhere else in a pane (a button, a checkbox, the tab bar): to the pane's home widget."""
        self.action_leave_field()

    def action_edit(self) -> None:
        """`/`: start editing the pane's main field; a one-line field has its text selected, so typing replaces it."""
        from mlxtui.ui.focus import edit_widget

        pane = self._active_pane()
        field = edit_widget(pane) if pane is not None else None
        if field is None:
            return
        # Now, not .focus() (which runs after the keys already queued): over SSH "/" and the text typed after it
        # arrive in one read, and each of those keys must find the field focused. A one-line field selects its
        # text as it takes focus (Input.select_on_focus).
        self.set_focus(field)

    def action_help(self) -> None:
        from mlxtui.ui.screens.help import HelpScreen  # not needed for the first frame

        self.push_screen(HelpScreen())

    async def _pane(self, pane: str) -> Widget:
        """The pane, waiting for it to mount: panes other than the first mount after the first frame."""
        for _ in range(500):
            found = self.query(f"#{pane}-pane")
            if found and found.first().is_mounted:  # mounted: its own children are composed too
                return found.first()
            await asyncio.sleep(0.01)
        return self.query_one(f"#{pane}-pane")

    @on(ShowModel)
    async def _show_model(self, message: ShowModel) -> None:
        self.set_work(self.work.with_source(message.repo_id))
        self.action_show_pane("inspect")
        cast("InspectPane", await self._pane("inspect")).show_model(message.repo_id, message.revision)

    @on(ConvertModel)
    async def _convert_model(self, message: ConvertModel) -> None:
        self.set_work(self.work.with_source(message.source))
        self.action_show_pane("convert")
        cast("ConvertPane", await self._pane("convert")).prefill(message.source, message.revision, message.report)

    @on(ChatWithModel)
    async def _chat_with_model(self, message: ChatWithModel) -> None:
        if Path(message.path).expanduser().is_dir():
            self.set_work(self.work.with_folder(str(Path(message.path).expanduser())))
        self.action_show_pane("chat")
        cast("ChatPane", await self._pane("chat")).open_model(message.path)

    @on(EditCard)
    async def _edit_card(self, message: EditCard) -> None:
        self.set_work(self.work.with_folder(message.path, message.source))
        self._expect_folder("card")
        self.action_show_pane("card")
        cast("CardPane", await self._pane("card")).open_folder(message.path, message.source)

    @on(UploadFolder)
    async def _upload_folder(self, message: UploadFolder) -> None:
        self.set_work(self.work.with_folder(message.path))
        self._expect_folder("upload")
        self.action_show_pane("upload")
        cast("UploadPane", await self._pane("upload")).open_folder(message.path)

    @on(ConversionFinished)
    def _conversion_finished(self, message: ConversionFinished) -> None:
        self.set_work(self.work.with_folder(message.path, message.source))

    @on(TargetChosen)
    async def _target_chosen(self, message: TargetChosen) -> None:
        self.set_work(self.work.with_target(message.repo_id))
        if self.work.folder:  # the card of the model in work follows its target (title, usage snippet)
            cast("CardPane", await self._pane("card")).follow_target(self.work.folder, message.repo_id)

    @on(HubChanged)
    async def _hub_changed(self, message: HubChanged) -> None:
        """An upload changed the Hub that Search shows: search again, so the new repo is listed."""
        search = cast("SearchPane", await self._pane("search"))
        if getattr(search, "_searched_once", False):
            search.start_search()

    def _expect_folder(self, pane: str) -> None:
        """A folder is on its way to `pane`: it must not open the newest conversion on being shown."""
        for found in self.query(f"#{pane}-pane"):
            expect = getattr(found, "expect_folder", None)
            if expect is not None:
                expect()

    def set_work(self, work: ModelInWork) -> None:
        """The model in work changed: the top bar shows it (when there still is one: a late message at exit)."""
        self.work = work
        for bar in self.query(EndpointBar):
            bar.show_work(work)

    # -- palette ----------------------------------------------------------------------------------

    def get_system_commands(self, screen: Screen) -> Iterable[SystemCommand]:
        yield from super().get_system_commands(screen)
        for n, (pane, title) in enumerate(PANES, start=1):
            yield SystemCommand(f"Go to {title}", f"Switch to the {title} pane (key {n})", lambda p=pane: self.action_show_pane(p))
        yield SystemCommand("Help", "Every key, by pane", self.action_help)
        if not self.ctx.demo:
            yield SystemCommand(
                "Start demo Hub",
                "Serve generated demo models on 127.0.0.1 and use them (for trying mlxtui offline)",
                self.start_demo,
            )

    # -- hub status and demo -----------------------------------------------------------------------

    @work(exclusive=True, group="probe", exit_on_error=False)
    async def probe_hub(self) -> None:
        from mlxtui.services.status import probe_endpoint

        bar = self.query_one(EndpointBar)
        online = await probe_endpoint(self.ctx.endpoint)
        bar.online = online
        if online:
            self._clear_offline_notice()  # the Hub answers now (the demo started, the network came back)
        else:
            self.notify(
                f"Can't reach {self.ctx.endpoint}: working offline. Local folders can still be inspected, "
                "converted and chatted with. To try everything, open the palette (ctrl+p) → Start demo Hub.",
                title="Offline",
                severity="warning",
                timeout=15,
            )

    @work(exclusive=True, group="demo", thread=True, exit_on_error=False)
    def start_demo(self) -> None:
        from mlxtui.services.demo import launch_demo_hub

        self.call_from_thread(self.notify, "Preparing the demo Hub…")
        try:
            hub = launch_demo_hub()
        except (MlxtuiError, OSError) as error:
            self.call_from_thread(self.notify, f"The demo Hub did not start: {error}", severity="error")
            return
        # The endpoint changes on the main thread, between workers, never from this one.
        self.call_from_thread(self._demo_started, hub)

    def _clear_offline_notice(self) -> None:
        """Take down the "Offline" toast: its cause is gone, and a stale warning misleads."""
        for notification in list(self._notifications):
            if notification.title == "Offline":
                self._unnotify(notification)

    def _demo_started(self, hub: object) -> None:
        from mlxtui.services.demo import use_demo_hub

        self._clear_offline_notice()
        use_demo_hub(self.ctx, hub)
        self.query_one(EndpointBar).refresh_endpoint()
        self.probe_hub()
        self.notify(f"Demo Hub running at {self.ctx.endpoint}.", title="Demo")

    # -- failures ---------------------------------------------------------------------------------

    def on_worker_state_changed(self, event: Worker.StateChanged) -> None:
        """The app's own workers (probe, demo, pane mounting) follow the same policy as the panes'."""
        if event.state is WorkerState.ERROR:
            self.worker_failed(event.worker, self)

    def worker_failed(self, worker: Worker, owner: object) -> None:
        """The one handler for a worker that died: a notification, the traceback in the log, the owner told.

        An MlxtuiError is already a sentence for people; anything else is a bug, shown with the log's path.
        """
        from mlxtui.errorlog import log_failure, one_line

        error = worker.error
        if error is None:
            return
        log = log_failure(error, f"worker {worker.name or worker.group} of {type(owner).__name__}")
        if isinstance(error, MlxtuiError):
            message = one_line(error)
        else:
            message = f"Something went wrong: {one_line(error)}" + (f" (details in {log})" if log else "")
        self.notify(message, title="Failed", severity="error", timeout=15)
        reset = getattr(owner, "worker_failed", None)
        if reset is not None and owner is not self:
            try:
                reset(worker, message)
            except Exception as reset_error:  # noqa: BLE001 - the notice above is already out
                log_failure(reset_error, f"{type(owner).__name__}.worker_failed")

    def _fatal_error(self) -> None:
        """A crash ends the app with one line and the log's path, not Textual's traceback with locals
        (locals can hold a token; the log masks tokens)."""
        import sys

        from rich.text import Text

        from mlxtui.errorlog import log_failure, one_line

        error = sys.exc_info()[1] or self._exception
        if error is None or "debug" in self.features:
            super()._fatal_error()
            return
        log = log_failure(error, "the app")
        self._return_code = 70
        self.bell()
        where = f" (details in {log})" if log else ""
        self._exit_renderables.append(Text(f"mlxtui: unexpected error: {one_line(error)}{where}"))
        self._close_messages_no_wait()

    # -- settings ---------------------------------------------------------------------------------

    def _remember_theme(self, theme: Theme) -> None:
        if self.ctx.settings.theme != theme.name:
            self.ctx.settings.theme = theme.name
            self.save_settings()

    def save_settings(self) -> None:
        """Write settings atomically; a failure is one notice (not one per keystroke), never a crash."""
        try:
            save_settings(self.ctx.settings, self.settings_path)
        except OSError as error:
            if not self._settings_warned:
                self._settings_warned = True
                self.notify(f"Settings were not saved: {error}", severity="error", timeout=10)
        else:
            self._settings_warned = False

    # -- size -------------------------------------------------------------------------------------

    def on_resize(self, event: events.Resize) -> None:
        self._check_size(event.size)

    def _back_from_too_small(self) -> None:
        """The panes are shown again: repaint all of the screen (no stale cells of the notice or of another
        pane), and focus comes back to the pane's home (it fell to nothing while the panes were hidden)."""
        self.screen.refresh(repaint=True, layout=True)
        pane = self._active_pane()
        if pane is not None and (self.focused is None or pane not in (self.focused, *self.focused.ancestors)):
            self._focus_first(pane)

    def _check_size(self, size: Size | None = None) -> None:
        size = size or self.size
        small = size.width < MIN_WIDTH or size.height < MIN_HEIGHT
        notice = self.query_one("#too-small", Static)
        notice.update(
            f"The terminal is {size.width}x{size.height}; mlxtui needs at least "
            f"{MIN_WIDTH}x{MIN_HEIGHT}. Enlarge the window (ctrl+q quits)."
        )
        was_small = self.has_class("-too-small")
        self.set_class(small, "-too-small")
        if was_small and not small:
            self.call_after_refresh(self._back_from_too_small)
        # Below 100 columns panes use their narrow layouts (app.tcss); the tab bar fits its labels to the width.
        self.set_class(size.width < 100, "-narrow")
        keys = self.query_one(KeyBar)
        keys.show_palette = size.width >= 100  # below that, the palette's key is in Help
        keys.refresh()
        self.set_class(size.width < 70, "-very-narrow")
        self.set_class(size.height < 30, "-short")
