"""Search the Hub: type-ahead with a debounce, sort and filters, a paged results table; Enter opens Inspect.

Each search gets a generation number. A newer query cancels the worker in flight (exclusive group) and any
page that still arrives for an older generation is dropped, so old results never replace newer ones.
"""

from __future__ import annotations

from contextlib import aclosing
from typing import TYPE_CHECKING

from rich.text import Text
from textual import on, work
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal, Vertical
from textual.timer import Timer
from textual.widgets import DataTable, Input, Select, Static

from mlxtui.ui.failures import ReportsFailures
from mlxtui.ui.focus import PaneFocus
from mlxtui.format import elide_middle, human_count, printable
from mlxtui.services.errors import MlxtuiError, OfflineError
from mlxtui.ui.messages import ShowModel
from mlxtui.ui.panes import pane_css

if TYPE_CHECKING:
    from mlxtui.services.events import Notice, SearchHit, SearchPage
    from mlxtui.services.hub import SearchCursor, SearchQuery

__all__ = ["SearchPane", "DEBOUNCE_S", "LOAD_MORE_MARGIN"]

#: wait this long after the last keystroke before searching
DEBOUNCE_S = 0.25
#: load the next page when the cursor is this close to the last row
LOAD_MORE_MARGIN = 10
SORT_OPTIONS = [("Downloads", "downloads"), ("Likes", "likes"), ("Trending", "trending"), ("Updated", "updated")]
LIBRARY_OPTIONS = [("mlx", "mlx"), ("transformers", "transformers")]
PIPELINE_OPTIONS = [
    ("text-generation", "text-generation"),
    ("image-text-to-text", "image-text-to-text"),
    ("text2text-generation", "text2text-generation"),
    ("feature-extraction", "feature-extraction"),
]
# Badges sit next to the repo id so they stay visible on an 80-column terminal.
COLUMNS = [("Repo", "repo"), ("MLX", "mlx"), ("🔒", "lock"), ("Downloads", "downloads"), ("Likes", "likes"),
           ("Params", "params"), ("Updated", "updated")]
#: cells each column other than Repo takes (content and padding); Repo gets the rest, cut in the middle
COLUMN_CELLS = {"mlx": 5, "lock": 4, "downloads": 11, "likes": 7, "params": 8, "updated": 12}
#: columns left out, in this order, while Repo would get fewer cells than REPO_MIN (a 60-column terminal)
DROP_ORDER = ["likes", "params", "lock"]  # without its column, 🔒 goes in front of the repo id
REPO_MIN = 28


def fit_columns(width: int) -> tuple[list[str], int]:
    """The columns shown at `width` cells and the Repo column's width (the table's scrollbar and padding kept)."""
    keys = [key for _, key in COLUMNS]
    room = lambda: width - 4 - sum(COLUMN_CELLS[k] for k in keys if k != "repo")  # noqa: E731
    for key in DROP_ORDER:
        if room() >= REPO_MIN:
            break
        keys.remove(key)
    return keys, max(room(), 12)


def _count(n: int | None) -> str:
    return human_count(n, digits=1, missing="–")


class SearchPane(ReportsFailures, PaneFocus, Vertical):
    """Search the Hub for models; Enter on a row opens it in Inspect."""

    HOME = "#search-results"
    EDIT = "#search-query"

    DEFAULT_CSS = pane_css(__file__)
    SCOPED_CSS = False  # the stylesheet names the pane in its own selectors

    BINDINGS = [
        Binding("f", "focus_filters", "Filters", id="search.filters"),
        Binding("s", "cycle_sort", "Sort", id="search.sort"),
        Binding("ctrl+r", "refresh", "Refresh", id="search.refresh"),
        Binding("i", "open", "Inspect", id="search.open", show=False),  # Enter on a row does the same
        Binding("escape", "focus_results", "Results", id="search.results", show=False),
    ]

    #: rows asked for per page (the Hub's own page may be larger; it is read lazily)
    PAGE_SIZE = 50
    #: mount all but the search box after the first frame (None: unless headless, i.e. tests and screenshots)
    BUILD_LATER: bool | None = None

    def __init__(self, *, id: str | None = None, classes: str | None = None) -> None:  # noqa: A002
        super().__init__(id=id, classes=classes)
        self.generation = 0
        #: search requests started (the bench and tests read it)
        self.searches_started = 0
        self.cursor: SearchCursor | None = None
        self.shown_query: SearchQuery | None = None
        self._debounce: Timer | None = None
        self._loading_more = False
        self._restoring = True
        self._searched_once = False
        #: the rows shown, to rebuild the table when the width changes its columns
        self._hits: list[SearchHit] = []
        self._fit: tuple[list[str], int] = ([key for _, key in COLUMNS], 60)
        self._later: tuple[Select, Vertical] | None = None  # built, mounted after the first frame
        self._search_when_ready = False

    def compose(self) -> ComposeResult:
        # Widgets start with the remembered query and filters, so restoring fires no change events. Only
        # the search box is in the app's first frame: the rest is mounted right after it (bench/startup.py);
        # headless runs (tests, screenshots) get everything at once.
        settings = self.app.ctx.settings.search  # type: ignore[attr-defined]
        sorts = [v for _, v in SORT_OPTIONS]
        sort = Select(SORT_OPTIONS, value=settings.sort if settings.sort in sorts else "downloads",
                      allow_blank=False, id="search-sort")
        table: DataTable = DataTable(id="search-results", cursor_type="row", zebra_stripes=True)
        for label, key in COLUMNS:
            table.add_column(label, key=key)
        below = Vertical(
            Horizontal(
                Input(settings.author, placeholder="author or org", id="search-author"),
                Select(LIBRARY_OPTIONS, prompt="any library", id="search-library",
                       value=settings.library if settings.library in (v for _, v in LIBRARY_OPTIONS) else Select.NULL),
                Select(PIPELINE_OPTIONS, prompt="any task", id="search-pipeline",
                       value=settings.pipeline_tag if settings.pipeline_tag in (v for _, v in PIPELINE_OPTIONS)
                       else Select.NULL),
                id="search-filters",
            ),
            Static("Type to search the Hub.", id="search-status"),
            table,
            id="search-below",
        )
        later = self.BUILD_LATER if self.BUILD_LATER is not None else not self.app.is_headless
        self._later = (sort, below) if later else None
        with Horizontal(id="search-row"):
            yield Input(settings.query, placeholder="Search models (e.g. danube, llama 3)…", id="search-query")
            if not later:
                yield sort
        if not later:
            yield below

    async def _mount_later(self) -> None:
        """After the first frame: the sort box, the filters, the status line and the table."""
        if self._later is not None:
            sort, below = self._later
            await self.query_one("#search-row").mount(sort)
            await self.mount(below)
            self._later = None
        self.set_timer(0.05, self._restored)  # change events from mounting arrive before this
        self._fit_columns()
        if self._search_when_ready:
            self._search_when_ready = False
            self.start_search()

    def ready(self) -> bool:
        """Everything is mounted (a key pressed in the first frame's instant finds no table yet)."""
        return self._later is None

    def on_resize(self) -> None:
        """Columns fit the width: Repo ids are cut in the middle, and on a very narrow terminal Likes and
        Params step aside, so Updated is never cut off."""
        self.call_after_refresh(self._fit_columns)

    def _fit_columns(self) -> None:
        # A table rebuilt while hidden (the "too small" notice) measures its columns by their headers only.
        if not self.size.width or self.app.has_class("-too-small") or not self.ready():
            return
        keys, repo_width = fit_columns(self.size.width)
        if (keys, repo_width) == self._fit:
            return
        self._fit = (keys, repo_width)
        table = self.query_one("#search-results", DataTable)
        row = table.cursor_row
        table.clear(columns=True)
        for label, key in COLUMNS:
            if key in keys:
                table.add_column(label, key=key)
        for hit in self._hits:
            self._add_row(table, hit, keep=False)
        if table.row_count:
            table.move_cursor(row=min(row, table.row_count - 1))

    def on_mount(self) -> None:
        self.call_after_refresh(self._mount_later)
        # Search on its own only once the app knows the Hub answers; offline start-up stays quiet and light.
        try:
            from mlxtui.ui.app import EndpointBar

            self.watch(self.app.query_one(EndpointBar), "online", self._hub_online, init=True)
        except Exception:  # noqa: BLE001 - hosted outside the main app (bench, tests): wait for typing
            pass

    def _restored(self) -> None:
        self._restoring = False
        # Typed while the pane was being built and not searched for yet (a search remembers its query):
        settings = self.app.ctx.settings.search  # type: ignore[attr-defined]
        typed = (self.query_one("#search-query", Input).value, self.query_one("#search-author", Input).value)
        if typed != (settings.query, settings.author):
            self._typed()

    def check_action(self, action: str, parameters: tuple[object, ...]) -> bool | None:
        """The pane's keys wait for its table and filters (mounted right after the first frame)."""
        return self.ready() or action not in ("focus_filters", "focus_results", "cycle_sort", "open")

    def _hub_online(self, online: bool | None) -> None:
        if online and not self._searched_once:
            self.start_search()

    # -- the query --------------------------------------------------------------------------------

    def current_query(self) -> SearchQuery:
        """The query the widgets describe now."""
        from mlxtui.services.hub import SearchQuery

        library = self.query_one("#search-library", Select).value
        pipeline = self.query_one("#search-pipeline", Select).value
        return SearchQuery(
            text=self.query_one("#search-query", Input).value.strip(),
            author=self.query_one("#search-author", Input).value.strip(),
            library=library if isinstance(library, str) else "",
            pipeline_tag=pipeline if isinstance(pipeline, str) else "",
            sort=str(self.query_one("#search-sort", Select).value),
        )

    @on(Input.Changed, "#search-query, #search-author")
    def _typed(self) -> None:
        if self._restoring:
            return
        if self._debounce is not None:
            self._debounce.stop()
        self._debounce = self.set_timer(DEBOUNCE_S, self.start_search)

    @on(Select.Changed)
    def _select_changed(self) -> None:
        if not self._restoring:
            self.start_search()

    @on(Input.Submitted, "#search-query, #search-author")
    def _submitted(self) -> None:
        if not self.ready():
            self.start_search()
            return
        if self.shown_query != self.current_query() or self._debounce is not None:
            self.start_search()
        self.query_one("#search-results", DataTable).focus()

    def start_search(self) -> None:
        """Search now with what the widgets say; a newer call supersedes this one."""
        if not self.ready():
            self._search_when_ready = True  # the filters are not mounted yet: once they are
            return
        if self._debounce is not None:
            self._debounce.stop()
            self._debounce = None
        query = self.current_query()
        self._remember(query)
        self.generation += 1
        self.searches_started += 1
        self._searched_once = True
        self._loading_more = False
        self.query_one("#search-status", Static).update(Text(f"Searching {printable(self._describe(query))}…"))
        self._run_search(self.generation, query)

    def _remember(self, query: SearchQuery) -> None:
        settings = self.app.ctx.settings.search  # type: ignore[attr-defined]
        new = (query.text, query.sort, query.author, query.library, query.pipeline_tag)
        if new != (settings.query, settings.sort, settings.author, settings.library, settings.pipeline_tag):
            settings.query, settings.sort, settings.author, settings.library, settings.pipeline_tag = new
            save = getattr(self.app, "save_settings", None)
            if save is not None:
                save()

    @staticmethod
    def _describe(query: SearchQuery) -> str:
        parts = [f"“{query.text}”" if query.text else "all models"]
        if query.author:
            parts.append(f"by {query.author}")
        if query.library:
            parts.append(f"library {query.library}")
        if query.pipeline_tag:
            parts.append(query.pipeline_tag)
        return " ".join(parts)

    # -- workers ----------------------------------------------------------------------------------

    @work(exclusive=True, group="search", exit_on_error=False)
    async def _run_search(self, generation: int, query: SearchQuery) -> None:
        from mlxtui.services.hub import HubService

        try:
            cursor = HubService(self.app.ctx).search(query, self.PAGE_SIZE)  # type: ignore[attr-defined]
            async with aclosing(cursor.next_page()) as events:
                async for event in events:
                    if generation != self.generation:
                        return  # a newer query owns the table now
                    self._handle(event, generation, cursor, query, first=True)
        except MlxtuiError as error:
            if generation == self.generation:
                self._failed(error)

    @work(exclusive=True, group="search-more", exit_on_error=False)
    async def _load_more(self, generation: int, cursor: SearchCursor) -> None:
        try:
            async with aclosing(cursor.next_page()) as events:
                async for event in events:
                    if generation != self.generation:
                        return
                    self._handle(event, generation, cursor, self.shown_query, first=False)
        except MlxtuiError as error:
            if generation == self.generation:
                self._failed(error)
        finally:
            self._loading_more = False

    def _handle(self, event: Notice | SearchPage, generation: int, cursor: SearchCursor,
                query: SearchQuery | None, *, first: bool) -> None:
        from mlxtui.services.events import Notice  # imported by the first search, after the first frame

        if isinstance(event, Notice):
            text = printable(event.text)
            self.notify(text, severity="warning" if event.severity == "warning" else "information")
            self.query_one("#search-status", Static).update(Text(text))
            return
        table = self.query_one("#search-results", DataTable)
        if first:
            table.clear()
            self._hits = []
            self.cursor = cursor
            self.shown_query = query
        for hit in event.hits:
            self._add_row(table, hit)
        more = "" if event.done else " · more load as you scroll"
        what = self._describe(query) if query else ""
        self.query_one("#search-status", Static).update(
            f"{table.row_count} result{'s' if table.row_count != 1 else ''} for {what} · "
            f"sorted by {cursor.query.sort}{more}" if table.row_count else f"No models found for {what}."
        )

    def _add_row(self, table: DataTable, hit: SearchHit, *, keep: bool = True) -> None:
        if hit.repo_id in table.rows:
            return
        if keep:
            self._hits.append(hit)
        keys, repo_width = self._fit
        lock = "🔒" if "lock" not in keys and (hit.gated or hit.private) else ""  # its column stepped aside
        mlx_colour = self.app.get_css_variables().get("mlx-badge", "orange")
        cells = {
            # a name from the Hub: plain text, escapes shown; cut in the middle so org and suffix stay
            "repo": Text(lock + elide_middle(printable(hit.repo_id, newlines=False), repo_width - 2 * len(lock))),
            "mlx": Text("MLX", style=f"bold {mlx_colour}") if hit.mlx else "",
            "lock": "🔒" if (hit.gated or hit.private) else "",
            "downloads": Text(_count(hit.downloads), justify="right"),
            "likes": Text(_count(hit.likes), justify="right"),
            "params": Text(_count(hit.parameters), justify="right"),
            "updated": Text(printable((hit.last_modified or "–")[:10], newlines=False)),
        }
        table.add_row(*(cells[key] for key in keys), key=hit.repo_id)

    def worker_failed(self, worker: object, message: str) -> None:
        """The app's failure handler: the status says what happened instead of "Searching…" forever."""
        self.query_one("#search-status", Static).update(Text(printable(message)))

    def _failed(self, error: MlxtuiError) -> None:
        self.query_one("#search-status", Static).update(Text(printable(str(error))))
        if not isinstance(error, OfflineError):  # the app already says it is offline
            self.notify(str(error), severity="error")

    # -- results ----------------------------------------------------------------------------------

    @on(DataTable.RowHighlighted, "#search-results")
    def _near_end(self, event: DataTable.RowHighlighted) -> None:
        table = event.data_table
        cursor = self.cursor
        if cursor is None or cursor.done or self._loading_more:
            return
        if event.cursor_row >= table.row_count - LOAD_MORE_MARGIN:
            self._loading_more = True
            self._load_more(self.generation, cursor)

    @on(DataTable.RowSelected, "#search-results")
    def _selected(self, event: DataTable.RowSelected) -> None:
        event.stop()
        if event.row_key.value:
            self.post_message(ShowModel(event.row_key.value))

    # -- actions ----------------------------------------------------------------------------------

    def action_focus_filters(self) -> None:
        self.query_one("#search-author", Input).focus()

    def action_focus_results(self) -> None:
        self.query_one("#search-results", DataTable).focus()

    def action_cycle_sort(self) -> None:
        select = self.query_one("#search-sort", Select)
        values = [v for _, v in SORT_OPTIONS]
        select.value = values[(values.index(str(select.value)) + 1) % len(values)]

    def action_refresh(self) -> None:
        self.start_search()

    def action_open(self) -> None:
        table = self.query_one("#search-results", DataTable)
        if table.row_count:
            row_key, _ = table.coordinate_to_cell_key(table.cursor_coordinate)
            if row_key.value:
                self.post_message(ShowModel(row_key.value))

    def selected_repo(self) -> str | None:
        """The repo id under the table cursor."""
        if not self.ready():
            return None
        table = self.query_one("#search-results", DataTable)
        if not table.row_count:
            return None
        return table.coordinate_to_cell_key(table.cursor_coordinate)[0].value
