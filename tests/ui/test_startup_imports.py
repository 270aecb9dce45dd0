"""Start-up stays light: painting the first frame imports neither mlx_lm, transformers, mlx nor huggingface_hub."""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap

HEAVY = ["mlx_lm", "transformers", "mlx", "huggingface_hub", "torch"]


def test_first_frame_imports_no_heavy_modules() -> None:
    script = textwrap.dedent(
        """
        import asyncio, json, sys
        from mlxtui.cli import build_parser, build_context
        from mlxtui.ui.app import MlxtuiApp

        async def main():
            args = build_parser().parse_args(["--endpoint", "http://127.0.0.1:9"])
            ctx, problems = build_context(args)
            app = MlxtuiApp(ctx, startup_notices=problems)
            async with app.run_test(size=(120, 36)) as pilot:
                await pilot.pause()
                for n in "1234567":
                    app.action_show_pane(
                        ["search", "inspect", "convert", "chat", "card", "upload", "library"][int(n) - 1]
                    )
                    await pilot.pause()
            print(json.dumps(sorted({m.split(".")[0] for m in sys.modules})))

        asyncio.run(main())
        """
    )
    result = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr
    loaded = set(json.loads(result.stdout.strip().splitlines()[-1]))
    assert loaded.isdisjoint(HEAVY), f"heavy modules imported at start-up: {sorted(loaded & set(HEAVY))}"
    assert "textual" in loaded  # the check itself saw the app's modules
