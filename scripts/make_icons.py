"""Render the app icons (pwa/icons/*.png) from the SVGs in pwa/icons/ with Debian Chromium.

Usage: ``.venv/bin/python scripts/make_icons.py`` (needs /usr/bin/chromium and playwright).
The PNGs are committed; run this again only after changing icon.svg or maskable.svg.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

ICONS = Path(__file__).resolve().parents[1] / "pwa" / "icons"
CHROMIUM = os.environ.get("CHROMIUM", "/usr/bin/chromium")
# (source svg, output png, size in px, transparent corners)
RENDERS = [
    ("icon.svg", "icon-192.png", 192, True),
    ("icon.svg", "icon-512.png", 512, True),
    ("maskable.svg", "maskable-512.png", 512, False),
    ("maskable.svg", "apple-touch-icon.png", 180, False),
]


def main() -> int:
    from playwright.sync_api import sync_playwright

    with sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=CHROMIUM, args=["--no-sandbox"])
        for source, output, size, transparent in RENDERS:
            page = browser.new_page(viewport={"width": size, "height": size})
            svg = (ICONS / source).read_text()
            page.set_content(
                "<style>html,body{margin:0;background:transparent}"
                f"svg{{display:block;width:{size}px;height:{size}px}}</style>{svg}"
            )
            page.screenshot(path=str(ICONS / output), omit_background=transparent)
            page.close()
            print(f"wrote pwa/icons/{output} ({size}×{size})")
        browser.close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
