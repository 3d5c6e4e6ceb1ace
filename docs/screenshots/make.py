"""Write an SVG screenshot of each main TUI screen into this directory (for the README).

Run from the repository root:  python docs/screenshots/make.py
The scenes are the snapshot tests' (tests/tui_fixtures.py): fixed data, fixed size.
"""

from __future__ import annotations

import asyncio
import os
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent.parent))

from tests.tui_fixtures import SCENES, SCREEN_SIZE, prepare_scene, scene_app  # noqa: E402


async def shoot(scene, tmp: Path) -> Path:
    app = scene_app(scene, tmp)
    try:
        async with app.run_test(size=SCREEN_SIZE) as pilot:
            await prepare_scene(scene, pilot)
            name = f"{scene.name}.svg"
            app.save_screenshot(filename=name, path=str(HERE))
    finally:
        app.session.close()
    return HERE / name


def main() -> int:
    os.environ["TZ"] = "UTC"  # the fixed data is shown in local time
    time.tzset()
    for scene in SCENES:
        with tempfile.TemporaryDirectory() as tmp:
            print(asyncio.run(shoot(scene, Path(tmp))))
    return 0


if __name__ == "__main__":
    sys.exit(main())
