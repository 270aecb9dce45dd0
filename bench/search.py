"""Type-ahead search under a fast typist: how many searches reach the Hub, and are only the final results shown?

Starts a local devhub seeded with the generated demo models, drives the real app's Search pane headless
(App.run_test), types a 20-character query at one key every 30 ms, then prints the number of search
requests the Hub received (goal: at most 3) and whether the table holds only the final query's results.

    .venv/bin/python bench/search.py [--interval 0.03] [--query h2o-danube2-tiny-cha]
"""

from __future__ import annotations

import argparse
import asyncio
import os
import sys
import tempfile
import time
from pathlib import Path

QUERY = "h2o-danube2-tiny-cha"  # 20 characters


async def drive(url: str, token: str, query: str, interval: float, settings_path: Path) -> dict:
    from textual import events
    from textual.keys import _character_to_key
    from textual.widgets import DataTable

    from mlxtui.services import Context
    from mlxtui.ui.app import MlxtuiApp
    from mlxtui.ui.panes.search import DEBOUNCE_S, SearchPane

    app = MlxtuiApp(Context(endpoint=url, token=token), probe=False, settings_path=settings_path)
    async with app.run_test(size=(120, 36)) as pilot:
        app.action_show_pane("search")
        await pilot.pause()
        pane = app.query_one(SearchPane)
        start = time.perf_counter()
        for n, key in enumerate(query):
            # keep to the schedule: one key every `interval` seconds of wall-clock time
            delay = start + n * interval - time.perf_counter()
            if delay > 0:
                await asyncio.sleep(delay)
            # Post the key to the focused input without waiting for the screen to settle (pilot.press waits
            # ~90 ms per key, which would make the typist slower than the 30 ms asked for).
            app.focused.post_message(events.Key(_character_to_key(key), key))
        typed = time.perf_counter()
        await pilot.pause(DEBOUNCE_S + 0.05)
        await app.workers.wait_for_complete()
        await pilot.pause()
        shown = time.perf_counter()
        table = app.query_one("#search-results", DataTable)
        rows = [str(table.get_row_at(i)[0]) for i in range(table.row_count)]
        return {
            "typing_s": typed - start,
            "results_after_last_key_s": shown - typed,
            "searches_started": pane.searches_started,
            "shown_query": pane.shown_query.text if pane.shown_query else None,
            "rows": rows,
        }


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--interval", type=float, default=0.03, help="seconds between keys (default 0.03)")
    parser.add_argument("--query", default=QUERY, help="what to type (default: a 20-character query)")
    args = parser.parse_args()

    with tempfile.TemporaryDirectory(prefix="mlxtui-bench-search-") as tmp:
        root = Path(tmp)
        for var, sub in (("HF_HOME", "hf"), ("XDG_CONFIG_HOME", "config"), ("XDG_DATA_HOME", "data")):
            (root / sub).mkdir()
            os.environ[var] = str(root / sub)
        os.environ["HF_HUB_DISABLE_PROGRESS_BARS"] = "1"
        from mlxtui.devhub.demo import DEMO_WRITE_TOKEN, seed_demo
        from mlxtui.devhub.server import DevHub
        from mlxtui.services import configure_hub_environment

        seed_demo(root / "hub", conversions=True)
        hub = DevHub(root / "hub").start()
        try:
            configure_hub_environment(hub.url)
            hub.clear_requests()
            result = asyncio.run(drive(hub.url, DEMO_WRITE_TOKEN, args.query, args.interval, root / "config.toml"))
            requests = sum(1 for r in hub.requests if r.method == "GET" and r.path == "/api/models")
        finally:
            hub.stop()

    rows = result["rows"]
    only_final = bool(rows) and result["shown_query"] == args.query and all(args.query in r for r in rows)
    print(f"typed {len(args.query)} characters ({args.query!r}) at one key every {args.interval * 1000:.0f} ms "
          f"in {result['typing_s']:.2f} s")
    print(f"search requests that reached the Hub: {requests} (goal: at most 3); searches started by the pane: "
          f"{result['searches_started']}")
    print(f"results shown {result['results_after_last_key_s'] * 1000:.0f} ms after the last key "
          f"(debounce included): {len(rows)} rows: {', '.join(rows)}")
    print(f"only the final query's results are shown: {'yes' if only_final else 'NO'}")
    ok = requests <= 3 and only_final
    print("PASS" if ok else "FAIL")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
