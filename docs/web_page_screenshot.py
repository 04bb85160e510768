"""Re-make ``docs/web-page.png``: rank example candidates on a running ``sse-screen serve`` and screenshot the page.

    .venv/bin/sse-screen serve &   # or any running service
    .venv/bin/python docs/web_page_screenshot.py http://127.0.0.1:8000 docs/web-page.png

Needs Debian's chromium at /usr/bin/chromium and the ``playwright`` Python package (no browser download).
"""

from __future__ import annotations

import sys

from playwright.sync_api import sync_playwright

ARGS = [
    "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
    "--disable-background-networking", "--disable-component-update", "--disable-sync",
]  # fmt: skip
FORMULAS = [
    "Li3PS4", "Li6PS5Cl", "Li7La3Zr2O12", "Li3InCl6", "Li3YCl6", "Li10GeP2S12", "LiTi2(PO4)3",
    "Li1.3Al0.3Ti1.7(PO4)3", "Li3N", "LiI", "Li2S", "LiBH4", "Li3OCl", "Li0.33La0.557TiO3", "Li4SiO4",
    "Li5La3Ta2O12", "Li2PbO3", "NaCl", "Xx2O", "Li7P3S11",
]  # fmt: skip


def main(url: str, out: str) -> None:
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path="/usr/bin/chromium", args=ARGS)
        page = browser.new_page(viewport={"width": 1400, "height": 1000})
        page.goto(url)
        page.fill("#formulas", "\n".join(FORMULAS))
        page.click("#rank-button")
        page.wait_for_selector("#ranked tbody tr")
        page.screenshot(path=out, full_page=True)
        browser.close()


if __name__ == "__main__":
    main(*sys.argv[1:3])
