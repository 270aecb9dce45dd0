"""Make SVG screenshots of every pane from the real app on the demo Hub (`make screenshots`).

Seeds a demo Hub in a temporary home folder (so paths read `~/…`, as a user sees them), converts the
demo's trained tiny Llama with `mlxtui convert` (its replies read as text; the random-weight demo models'
would not), writes its card with `mlxtui card`, then drives the app headless at 120x36 and saves one SVG
per pane into screenshots/.
"""

from __future__ import annotations

import asyncio
import os
import re
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
OUT = ROOT / "screenshots"
SOURCE = "h2oai/h2o-danube2-tiny-chat"  # searched and inspected: a chat model with a template


def main() -> None:
    with tempfile.TemporaryDirectory() as tmp:
        home = Path(tmp)
        os.environ["HOME"] = str(home)  # every folder under ~, at its default place
        for var in ("XDG_CONFIG_HOME", "XDG_DATA_HOME", "XDG_STATE_HOME", "XDG_CACHE_HOME", "HF_HOME", "HF_TOKEN"):
            os.environ.pop(var, None)
        os.environ["HF_HUB_DISABLE_PROGRESS_BARS"] = "1"
        from mlxtui.devhub.demo import DEMO_WRITE_TOKEN, seed_demo
        from mlxtui.devhub.server import DevHub
        from mlxtui.devhub.trained import TRAINED_DEMO_REPO
        from mlxtui.paths import models_dir

        seed_demo(home / "hub")
        hub = DevHub(home / "hub", port=0).start()
        try:
            env = {**os.environ, "HF_TOKEN": DEMO_WRITE_TOKEN}
            mlxtui = [sys.executable, "-m", "mlxtui", "--endpoint", hub.url]
            folder = models_dir() / "tiny-trained-llama-8bit"
            subprocess.run([*mlxtui, "convert", "--hf-path", TRAINED_DEMO_REPO, "-q", "--q-bits", "8",
                            "--mlx-path", str(folder)], check=True, env=env, capture_output=True)
            # the card for the repo the Upload screenshot names, so its preflight is clean
            subprocess.run([*mlxtui, "card", str(folder), "--from", TRAINED_DEMO_REPO, "--repo",
                            f"alice/{folder.name}"], check=True, env=env, capture_output=True)
            asyncio.run(shoot(hub.url, DEMO_WRITE_TOKEN, folder, TRAINED_DEMO_REPO))
        finally:
            hub.stop()


async def shoot(endpoint: str, token: str, folder: Path, trained: str) -> None:
    from mlxtui.services import Context
    from mlxtui.ui.app import MlxtuiApp
    from textual.widgets import Input

    from mlxtui.ui.messages import ChatWithModel, ConvertModel, EditCard, ShowModel, UploadFolder

    OUT.mkdir(exist_ok=True)
    ctx = Context(endpoint=endpoint, token=token, demo=True)
    ctx.use_endpoint(endpoint, demo=True, token=token)
    app = MlxtuiApp(ctx, probe=True)
    async with app.run_test(size=(120, 36)) as pilot:

        async def settle(seconds: float = 1.0) -> None:
            await pilot.pause(seconds)
            try:
                await app.workers.wait_for_complete()
            except Exception:  # noqa: BLE001 - a replaced exclusive worker counts as done
                pass
            await pilot.pause(0.3)

        def save(name: str) -> None:
            path = Path(app.save_screenshot(f"{name}.svg", str(OUT)))
            # a tiny random model can emit control characters, which XML (and so SVG) does not allow
            path.write_text(re.sub(r"[\x00-\x08\x0b\x0c\x0e-\x1f]", "", path.read_text()))
            print(f"screenshots/{name}.svg")

        await settle()
        await pilot.press(*"danube")
        await settle()
        save("search")
        app.post_message(ShowModel(SOURCE))
        await settle(1.5)
        save("inspect")
        app.post_message(ConvertModel(SOURCE))
        await settle()
        save("convert")
        app.post_message(ChatWithModel(str(folder)))
        await settle(3)
        chat = app.query_one("#chat-pane")
        chat.query_one("#chat-set-max_tokens", Input).value = "48"  # a tiny model's text stays coherent this long
        chat.send("In the morning the baker")  # type: ignore[attr-defined]  # completion: it continues the text
        await settle(3)
        save("chat")
        app.post_message(EditCard(str(folder), trained))
        await settle(1.5)
        save("card")
        app.post_message(UploadFolder(str(folder)))
        await settle(2)
        save("upload")
        app.action_show_pane("library")
        await settle(1.5)
        save("library")
        app.action_show_pane("lab")
        await settle()
        app.query_one("#lab-source", Input).value = trained
        await settle()
        save("lab")
        app.action_show_pane("cluster")
        await settle(1.5)
        save("hosts")


if __name__ == "__main__":
    main()
