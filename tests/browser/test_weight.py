"""The weight of a participant's first visit to /m/<id> in headless Chromium.

A fresh phone (no cache, no service worker) opens a mob's link; every response that crossed
the network is counted in bytes as transferred (headers + encoded body), the page's own and
the service worker's (its precache): the total stays within the budget of issue 17. Bytes are
deterministic; the first contentful paint on an emulated slow 4G link is printed for the
report, not asserted (timing belongs in bench/: ``python -m bench.weight``).
"""

from __future__ import annotations

from tests.browser.conftest import PARK_CENTER, PHONE_VIEWPORT

BUDGET_BYTES = 250_000
# Chrome DevTools' "slow 4G"-like link of issue 17: 150 ms RTT, 1.6 Mbps down.
SLOW_4G = {
    "offline": False,
    "latency": 150,
    "downloadThroughput": 1_600_000 / 8,
    "uploadThroughput": 750_000 / 8,
}


def first_visit(browser, url: str, path: str, throttle: bool = False) -> dict:
    """Opens ``path`` in a new phone context and waits until the service worker has
    precached; returns ``{"bytes", "requests": [(url, by_worker, bytes)], "fcp_ms"}``."""
    context = browser.new_context(
        viewport=PHONE_VIEWPORT, device_scale_factor=2, is_mobile=True, has_touch=True,
        geolocation={**PARK_CENTER, "accuracy": 8}, permissions=["geolocation"],
        base_url=url, service_workers="allow", locale="en-GB", timezone_id="Europe/Berlin",
    )  # fmt: skip
    seen: list = []
    context.on("requestfinished", lambda request: seen.append(request))
    try:
        page = context.new_page()
        if throttle:
            cdp = context.new_cdp_session(page)
            cdp.send("Network.enable")
            cdp.send("Network.emulateNetworkConditions", SLOW_4G)
        page.goto(path, wait_until="load")
        page.locator("#view-join").wait_for(state="visible", timeout=30_000)
        # The worker controls the page: it installed (its precache done) and activated.
        page.wait_for_function("() => navigator.serviceWorker.controller !== null", timeout=30_000)
        page.wait_for_load_state("networkidle")
        page.wait_for_timeout(500)
        fcp = page.evaluate(
            """() => performance.getEntriesByName("first-contentful-paint")[0]?.startTime ?? null"""
        )
        requests_ = []
        for request in seen:
            response = request.response()
            if response is None or response.from_service_worker:
                continue  # answered by the worker: its own fetch (if any) is counted
            sizes = request.sizes()
            size = sizes["responseHeadersSize"] + sizes["responseBodySize"]
            requests_.append(
                (request.url.removeprefix(url), request.service_worker is not None, size)
            )
        return {"bytes": sum(r[2] for r in requests_), "requests": requests_, "fcp_ms": fcp}
    finally:
        context.close()


def test_a_participants_first_visit_stays_within_the_byte_budget(live_server, rest, browser):
    mob = rest.published_mob()
    visit = first_visit(browser, live_server.url, f"/m/{mob['id']}")
    report = "\n".join(
        f"  {size:>8} {'worker' if worker else 'page  '} {path}"
        for path, worker, size in sorted(visit["requests"], key=lambda r: -r[2])
    )
    print(f"\nfirst visit to /m/<id>: {visit['bytes']} bytes in {len(visit['requests'])} "
          f"responses, FCP {visit['fcp_ms']:.0f} ms (unthrottled)\n{report}")  # fmt: skip
    paths = {path for path, _worker, _size in visit["requests"]}
    # The organizer's drawing library is not part of a participant's visit.
    assert not any("leaflet-geoman" in p or "organize" in p for p in paths), sorted(paths)
    assert any(worker for _p, worker, _s in visit["requests"]), "the worker precached nothing"
    assert visit["bytes"] <= BUDGET_BYTES, report
