"""Phone screenshots of the participant's pages into docs/screenshots/ (Debian Chromium).

Usage: ``.venv/bin/python scripts/screenshots.py [--out docs/screenshots]``

Starts its own server on a temporary SQLite database, creates three mobs around a Berlin
park, a small crowd of simulated participants (real Socket.IO clients, so the counters are
live), and one phone (360×740 at 2×, Europe/Berlin) that discovers, joins (a sponsor pledged
per deed), walks to its spot, counts down, flips at GO and confirms its deed (with a phone
whose location is blocked and one 700 m away, told so at GO); then, on a short second mob,
the closing screen of a phone that slept through the action. No internet is
needed: map tiles point at an unreachable port, so the maps show their plain background (as
they would offline).
"""

from __future__ import annotations

import argparse
import os
import secrets
import sys
import tempfile
import time
from datetime import timedelta
from pathlib import Path

import requests
import socketio

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from support.organizer import Organizer  # noqa: E402
from support.park import PARK  # noqa: E402
from support.server import ServerProcess  # noqa: E402

CHROMIUM = os.environ.get("CHROMIUM", "/usr/bin/chromium")
PHONE = {"width": 360, "height": 740}
# A second and third zone nearby (lon, lat rings).
ROSENTHALER = {
    "type": "Polygon",
    "coordinates": [[[13.4005, 52.5290], [13.4022, 52.5292], [13.4020, 52.5282],
                     [13.4004, 52.5281], [13.4005, 52.5290]]],
}  # fmt: skip
MAUERPARK = {
    "type": "Polygon",
    "coordinates": [[[13.4010, 52.5440], [13.4045, 52.5445], [13.4050, 52.5400],
                     [13.4018, 52.5398], [13.4010, 52.5440]]],
}  # fmt: skip
CROWD = [(52.5318 + 0.0003 * (i % 5), 13.3988 + 0.0006 * (i // 5)) for i in range(14)]


def start_server(db_path: Path) -> ServerProcess:
    """``python -m server`` on a SQLite file (development settings), its output discarded."""
    env = {
        "GOODMOB_ENV": "development",
        "SECRET_KEY": "screenshots-" + "z" * 32,
        "TILE_URL": "http://127.0.0.1:9/{z}/{x}/{y}.png",
        "START_NOW_MIN_LEAD_S": "2",
        "LOCATION_MAX_SPEED_MPS": "1000",
        "LOG_LEVEL": "WARNING",
    }
    return ServerProcess(f"sqlite:///{db_path}", output="devnull", base_env=env).start()


def mob(org: Organizer, zone: dict, go_in: timedelta, spacing_m: float, **fields) -> dict:
    """A published mob over ``zone`` with tasks every ``spacing_m``, GO ``go_in`` from now."""
    fields = {"duration_s": 180, **fields}
    return org.published_mob(zone, spacing_m=spacing_m, go_in=go_in, **fields)


def crowd(url: str, mob_id: str) -> list[tuple[socketio.Client, dict | None]]:
    """Simulated participants: joined, in the zone, matched (the counters move)."""
    clients = []
    for lat, lon in CROWD:
        r = requests.post(f"{url}/api/mobs/{mob_id}/participants", json={}, timeout=10)
        sio = socketio.Client(reconnection=False)
        sio.connect(url, namespaces=["/participant"], auth={"token": r.json()["token"]},
                    transports=["websocket"], wait_timeout=10)  # fmt: skip
        sio.call("join_mob", {"mob": mob_id}, namespace="/participant", timeout=10)
        fix = {"lat": lat, "lon": lon, "accuracy_m": 6, "at": int(time.time() * 1000)}
        ack = sio.call("report_location", fix, namespace="/participant", timeout=10)
        clients.append((sio, ack.get("task")))
    return clients


def crowd_deeds(clients, count: int) -> None:
    """The first ``count`` simulated participants confirm their deed at their task."""
    import uuid

    for sio, task in clients[:count]:
        if task:
            deed = {"deed_id": str(uuid.uuid4()), "task": task["id"], "lat": task["lat"],
                    "lon": task["lon"], "accuracy_m": 5}  # fmt: skip
            sio.call("confirm_deed", deed, namespace="/participant", timeout=10)


def shoot(page, out: Path, name: str) -> None:
    time.sleep(0.4)  # let transitions settle
    page.screenshot(path=str(out / name))
    print(f"wrote {out.relative_to(ROOT) if out.is_relative_to(ROOT) else out}/{name}")


def run(out: Path) -> None:
    from playwright.sync_api import sync_playwright

    out.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory() as tmp:
        server = start_server(Path(tmp) / "screens.sqlite3")
        url = server.url
        clients: list = []
        try:
            org = Organizer(url).sign_up(
                email=f"ada-{secrets.token_hex(3)}@example.org", name="Ada from Weinberg e.V."
            )
            main = mob(
                org,
                PARK,
                timedelta(minutes=40),
                25,
                title="Clean up Weinberg park",
                description="Gloves and bags at the south gate. 30 minutes, then coffee.",
                action="Pick up every piece of litter within 10 steps of your spot",
            )
            mob(org, ROSENTHALER, timedelta(hours=2, minutes=10), 20,
                    title="Soup for Rosenthaler Platz",
                    action="Hand out a warm meal at your table")  # fmt: skip
            mob(org, MAUERPARK, timedelta(days=1, hours=3), 40, title="Water the Mauerpark trees",
                    action="Give your tree two buckets of water")  # fmt: skip
            pledge = {"mob": main["id"], "amount_minor": 50, "currency": "EUR",
                      "sponsor_name": "Weinberg Bakery"}  # fmt: skip
            requests.post(f"{url}/api/pledges", json=pledge, timeout=10).raise_for_status()
            clients = crowd(url, main["id"])
            with sync_playwright() as pw:
                browser = pw.chromium.launch(executable_path=CHROMIUM, args=["--no-sandbox"])
                context = browser.new_context(
                    viewport=PHONE, device_scale_factor=2, is_mobile=True, has_touch=True,
                    geolocation={"latitude": 52.5296, "longitude": 13.3990, "accuracy": 12},
                    permissions=["geolocation"], timezone_id="Europe/Berlin", locale="en-GB",
                    base_url=url,
                )  # fmt: skip
                first = browser.new_context(
                    viewport=PHONE, device_scale_factor=2, is_mobile=True, has_touch=True
                )
                welcome = first.new_page()
                welcome.goto(url, wait_until="domcontentloaded")
                welcome.locator("#locate-btn").wait_for(timeout=15_000)
                shoot(welcome, out, "discover-welcome.png")
                first.close()

                page = context.new_page()
                page.goto("/", wait_until="domcontentloaded")
                page.locator(".mob-card").first.wait_for(timeout=15_000)
                shoot(page, out, "discover.png")

                page.click(f'.mob-card[data-mob="{main["id"]}"]')
                page.locator("#view-join").wait_for(state="visible", timeout=15_000)
                page.fill("#nickname", "Kim")
                page.evaluate("() => window.scrollTo(0, 0)")
                shoot(page, out, "participant-join.png")
                page.click("#join-btn")
                page.locator("#view-main").wait_for(state="visible", timeout=15_000)

                # Into the park, then to the spot's edge (a few metres short of it).
                context.set_geolocation({"latitude": 52.5313, "longitude": 13.3992, "accuracy": 9})
                page.wait_for_function("() => window.__goodmobState().task", timeout=15_000)
                task = page.evaluate("() => window.__goodmobState().task")
                near = {"latitude": task["lat"] - 0.00035, "longitude": task["lon"] - 0.0004}
                context.set_geolocation({**near, "accuracy": 7})
                org.post(f"/mobs/{main['id']}/start-now", {"lead_s": 540})  # gathering, GO in 9 min
                page.wait_for_function(
                    "() => window.__goodmobState().phase === 'gathering'", timeout=15_000
                )
                time.sleep(3)  # the welcome toast goes away
                shoot(page, out, "participant-before-go.png")

                context.set_geolocation(
                    {"latitude": task["lat"], "longitude": task["lon"], "accuracy": 5}
                )
                page.wait_for_function(
                    "() => window.__goodmobState().fix?.accuracy_m === 5", timeout=15_000
                )
                time.sleep(1)  # reported before the pre-GO re-balance

                # A phone whose location is blocked, and one 700 m away: each told the truth.
                blocked_context = browser.new_context(
                    viewport=PHONE, device_scale_factor=2, is_mobile=True, has_touch=True,
                    timezone_id="Europe/Berlin", locale="en-GB", base_url=url,
                )  # fmt: skip
                blocked = blocked_context.new_page()
                blocked.goto(f"/m/{main['id']}", wait_until="domcontentloaded")
                blocked.locator("#view-join").wait_for(state="visible", timeout=15_000)
                blocked.fill("#nickname", "Noor")
                blocked.click("#join-btn")
                blocked.locator("#geo-warning").wait_for(state="visible", timeout=15_000)
                time.sleep(3)  # the welcome toast goes away
                blocked.evaluate("() => window.scrollTo(0, 0)")
                shoot(blocked, out, "participant-location-off.png")
                blocked_context.close()
                far_context = browser.new_context(
                    viewport=PHONE, device_scale_factor=2, is_mobile=True, has_touch=True,
                    geolocation={"latitude": 52.5242, "longitude": 13.4005, "accuracy": 10},
                    permissions=["geolocation"], timezone_id="Europe/Berlin", locale="en-GB",
                    base_url=url,
                )  # fmt: skip
                far = far_context.new_page()
                far.goto(f"/m/{main['id']}", wait_until="domcontentloaded")
                far.locator("#view-join").wait_for(state="visible", timeout=15_000)
                far.fill("#nickname", "Ola")
                far.click("#join-btn")
                far.wait_for_function(
                    "() => window.__goodmobState().zone?.state === 'outside'", timeout=15_000
                )
                org.post(f"/mobs/{main['id']}/start-now", {"lead_s": 14})
                page.wait_for_function(
                    "() => window.__goodmobState().phase === 'countdown'", timeout=15_000
                )
                time.sleep(6.3)
                shoot(page, out, "participant-countdown.png")

                page.wait_for_function("() => window.__goodmob", timeout=20_000)
                time.sleep(1.0)  # after the flash
                crowd_deeds(clients, 6)
                time.sleep(0.8)
                shoot(page, out, "participant-go.png")
                far.wait_for_function("() => window.__goodmob", timeout=20_000)
                shoot(far, out, "participant-go-no-spot.png")
                far_context.close()
                page.click("#done-btn")
                page.wait_for_function(
                    "() => window.__goodmobState().deed?.state === 'settled'", timeout=15_000
                )
                shoot(page, out, "participant-done.png")

                # A short mob the phone joins, then sleeps through (the page is closed).
                short = mob(org, PARK, timedelta(minutes=50), 40, title="Ten seconds of litter",
                                action="Pick up what is at your feet", duration_s=10)  # fmt: skip
                later = context.new_page()
                later.goto(f"/m/{short['id']}", wait_until="domcontentloaded")
                later.locator("#view-join").wait_for(state="visible", timeout=15_000)
                later.click("#join-btn")
                later.locator("#view-main").wait_for(state="visible", timeout=15_000)
                later.close()
                org.post(f"/mobs/{short['id']}/start-now", {"lead_s": 2})
                time.sleep(14)
                later = context.new_page()
                later.goto(f"/m/{short['id']}", wait_until="domcontentloaded")
                later.wait_for_function(
                    "() => window.__goodmobState().phase === 'finished'", timeout=15_000
                )
                later.locator("#go-summary").wait_for(state="visible", timeout=15_000)
                shoot(later, out, "participant-missed.png")
                browser.close()
        finally:
            for sio, _task in clients:
                sio.disconnect()
            server.stop()


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=ROOT / "docs" / "screenshots")
    run(parser.parse_args().out.resolve())
    return 0


if __name__ == "__main__":
    sys.exit(main())
