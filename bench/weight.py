"""The weight and first paint of a participant's first visit to /m/<id> (issue 17).

Usage: ``.venv/bin/python -m bench.weight [--runs 5] [--write]``

Starts ``python -m server`` (production settings, SQLite), publishes a mob, and opens its
link in fresh headless Chromium contexts (a phone: 360×740, no cache, no service worker):

- bytes transferred, unthrottled: every response that crossed the network, the page's and
  the service worker's precache (headers + encoded body; answers from the worker not counted
  twice), as in ``tests/browser/test_weight.py``, which asserts the budget of 250 KB;
- first contentful paint on an emulated slow 4G link (Chrome DevTools Protocol
  ``Network.emulateNetworkConditions``: 150 ms RTT, 1.6 Mbps down, 750 kbps up), ``--runs``
  times, median and worst. Timing is reported here, never asserted in tests.

``--write`` replaces the ``weight`` section of docs/BENCHMARKS.md.
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys

from bench.common import git_revision, machine, write_section
from bench.harness import Server, database, seed_mob
from tests.browser.test_weight import BUDGET_BYTES, first_visit

CHROMIUM = os.environ.get("CHROMIUM", "/usr/bin/chromium")


def run(runs: int) -> dict:
    from playwright.sync_api import sync_playwright

    db = database("sqlite")
    server = Server(db.url, TILE_URL="http://127.0.0.1:9/{z}/{x}/{y}.png")
    try:
        server.migrate()
        server.start()
        mob = seed_mob(server, side_m=300, spacing_m=30, capacity=1)
        path = f"/m/{mob['id']}"
        with sync_playwright() as pw:
            browser = pw.chromium.launch(executable_path=CHROMIUM, args=["--no-sandbox"])
            plain = first_visit(browser, server.url, path)
            fcps = []
            for i in range(runs):
                visit = first_visit(browser, server.url, path, throttle=True)
                fcps.append(visit["fcp_ms"])
                print(f"run {i + 1}: FCP {visit['fcp_ms']:.0f} ms on slow 4G", file=sys.stderr)
            browser.close()
    finally:
        server.stop()
        db.drop()
    page = sum(size for _p, worker, size in plain["requests"] if not worker)
    return {
        "bytes": plain["bytes"],
        "page_bytes": page,
        "worker_bytes": plain["bytes"] - page,
        "responses": len(plain["requests"]),
        "largest": sorted(plain["requests"], key=lambda r: -r[2])[:5],
        "fcp_ms": fcps,
    }


def kb(n: float) -> str:
    return f"{n / 1000:.1f} KB"


def markdown(result: dict, runs: int) -> str:
    fcp = result["fcp_ms"]
    largest = ", ".join(f"`{p}` {s / 1000:.1f} KB" for p, _w, s in result["largest"])
    return f"""## A participant's first visit (weight and first paint)

`.venv/bin/python -m bench.weight --runs {runs} --write` — a fresh phone context (360×740, no
cache, no service worker) opens `/m/<id>` of a published mob on `python -m server`
(production settings, SQLite). Bytes are everything that crossed the network until the
service worker is active: the page's requests and the worker's precache, headers + encoded
body (the budget, 250 KB, is asserted by `tests/browser/test_weight.py`). First contentful
paint: Chrome's `first-contentful-paint` entry with `Network.emulateNetworkConditions`
(150 ms RTT, 1.6 Mbps down, 750 kbps up) on the page, {runs} runs. Target: ≤ 250 KB, FCP ≤ 2 s.

Machine: {machine()}, shared with other helpers' work at the time. Commit {git_revision()}.

| | value |
|---|---|
| transferred, first visit | **{kb(result["bytes"])}** in {result["responses"]} responses |
| of it the page / the worker | {kb(result["page_bytes"])} / {kb(result["worker_bytes"])} |
| budget | {kb(BUDGET_BYTES)} |
| FCP on slow 4G, median | **{statistics.median(fcp):.0f} ms** |
| FCP on slow 4G, worst of {runs} | {max(fcp):.0f} ms |

Largest responses: {largest}.

Before this change (commit 52c5778: files sent uncompressed, the worker precaching all 44
shell files, the organizer's Geoman among them), the same measurement in
`tests/browser/test_weight.py` counted 956.2 KB in 65 responses for the same first visit.
"""


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--write", action="store_true")
    args = parser.parse_args()
    result = run(args.runs)
    text = markdown(result, args.runs)
    print(text)
    if args.write:
        write_section("weight", text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
