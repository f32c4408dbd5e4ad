"""Screenshots of the organizer page and the live map into docs/screenshots/ (Debian Chromium).

Usage: ``.venv/bin/python scripts/screenshots_organize.py [--out docs/screenshots]``

Starts its own server on a temporary SQLite database. An organizer (phone, 360×740 at 2×,
Europe/Berlin) signs up, traces Weinberg park with the mouse in Geoman's draw mode
(organize-drawing.png), fills it with task spots (organize-tasks.png), sees the server refuse
a bow-tie zone where its edges cross (organize-zone-error.png), publishes, and runs the mob
while simulated participants (real Socket.IO clients) join and act (organize-run.png,
organize-run-controls.png: announce, review a flagged deed). The
live map is shot on a phone before GO (live-phone.png) and during the action
(live-go-phone.png), on a 1920×1080 desktop (live-desktop.png) and projector in big-screen
mode (live-big.png); then a campaign of three cities on its world live map
(live-campaign-phone.png); last a 10-second mob run to its end: the organizer's finished run
(organize-finished.png) and its public summary (summary.png). No internet is
needed: tiles point at an unreachable port, so maps show their plain background.
"""

from __future__ import annotations

import argparse
import math
import os
import secrets
import sys
import tempfile
import time
import uuid
from datetime import datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

import requests
import socketio

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from support.park import PARK  # noqa: E402
from support.server import ServerProcess  # noqa: E402

CHROMIUM = os.environ.get("CHROMIUM", "/usr/bin/chromium")
PHONE = {"width": 360, "height": 740}
PROJECTOR = {"width": 1920, "height": 1080}
# Fixes of the simulated crowd (lat, lon): two clusters in the park, so crowd cells show.
CROWD = [(52.53180 + 0.00004 * (i % 4), 13.39940 + 0.00005 * (i // 4)) for i in range(10)] + [
    (52.53250 + 0.00004 * (i % 3), 13.40080 + 0.00005 * (i // 3)) for i in range(8)
]


def start_server(db_path: Path) -> ServerProcess:
    """``python -m server`` on a SQLite file (development settings), its output discarded."""
    env = {
        "GOODMOB_ENV": "development",
        "SECRET_KEY": "screenshots-" + "o" * 32,
        "TILE_URL": "http://127.0.0.1:9/{z}/{x}/{y}.png",
        "START_NOW_MIN_LEAD_S": "2",
        "LOCATION_MAX_SPEED_MPS": "1000",
        "DENSITY_MIN_INTERVAL_S": "0.5",
        "LOG_LEVEL": "WARNING",
    }
    return ServerProcess(f"sqlite:///{db_path}", output="devnull", base_env=env).start()


# Who brings whom in the simulated crowd: index → (nickname or None, index of the sharer).
SHARES = {0: ("Kim", None), 1: ("Ola", 0), 2: (None, 0), 3: ("Ren", 1), 4: (None, 1),
          5: ("Mo", 3), 6: (None, 2), 7: (None, 5), 8: (None, 3)}  # fmt: skip


def crowd(url: str, mob_id: str) -> list[tuple[socketio.Client, dict]]:
    """Simulated participants: joined (some through friends' links, some with a nickname),
    in the zone, matched to a task; with their fixes. Page views and a sponsor come first."""
    for i in range(46):
        requests.post(f"{url}/api/mobs/{mob_id}/views", json={"client_id": f"screen-{i:03d}"},
                      timeout=10)  # fmt: skip
    pledge = {"mob": mob_id, "amount_minor": 50, "currency": "EUR", "sponsor_name": "Bakery"}
    requests.post(f"{url}/api/pledges", json=pledge, timeout=10).raise_for_status()
    clients = []
    codes: list[str] = []
    for i, (lat, lon) in enumerate(CROWD):
        nickname, sharer = SHARES.get(i, (None, None))
        body = {"nickname": nickname} if nickname else {}
        if sharer is not None:
            body["ref"] = codes[sharer]
        r = requests.post(f"{url}/api/mobs/{mob_id}/participants", json=body, timeout=10)
        codes.append(r.json()["participant"]["ref_code"])
        sio = socketio.Client(reconnection=False)
        sio.connect(
            url,
            namespaces=["/participant"],
            auth={"token": r.json()["token"]},
            transports=["websocket"],
            wait_timeout=10,
        )
        sio.call("join_mob", {"mob": mob_id}, namespace="/participant", timeout=10)
        fix = {"lat": lat, "lon": lon, "accuracy_m": 6, "at": int(time.time() * 1000)}
        sio.call("report_location", fix, namespace="/participant", timeout=10)
        clients.append((sio, fix))
    return clients


def deeds(clients, done: int, flagged: int) -> None:
    """``done`` participants confirm at their spot; ``flagged`` more confirm far from it."""
    for i, (sio, fix) in enumerate(clients[: done + flagged]):
        # Tasks are re-balanced before GO: the current one comes with a fresh fix's answer.
        fix = {**fix, "at": int(time.time() * 1000)}
        task = sio.call("report_location", fix, namespace="/participant", timeout=10).get("task")
        if not task:
            continue
        far = i >= done
        deed = {
            "deed_id": str(uuid.uuid4()),
            "task": task["id"],
            "lat": task["lat"] - (0.002 if far else 0),
            "lon": task["lon"],
            "accuracy_m": 5,
        }
        ack = sio.call("confirm_deed", deed, namespace="/participant", timeout=10)
        if not ack.get("status"):
            print("deed refused:", ack)


# Campaign cities: time zone → (lon, lat) of a square zone's centre.
CITIES = {
    "Europe/Berlin": (13.4000, 52.5320),
    "America/New_York": (-73.9680, 40.7812),
    "Asia/Tokyo": (139.6949, 35.6717),
}


def square(lon: float, lat: float, half_m: float = 120.0) -> dict:
    dlat = half_m / 111_320.0
    dlon = dlat / math.cos(math.radians(lat))
    ring = [[lon - dlon, lat - dlat], [lon + dlon, lat - dlat], [lon + dlon, lat + dlat],
            [lon - dlon, lat + dlat], [lon - dlon, lat - dlat]]  # fmt: skip
    return {"type": "Polygon", "coordinates": [ring]}


def campaign(url: str, headers: dict) -> tuple[str, list[socketio.Client]]:
    """Three mobs in three cities sharing one GO, a few people in each; the campaign id."""
    api = f"{url}/api"

    def post(path: str, body: dict) -> dict:
        r = requests.post(f"{api}{path}", json=body, headers=headers, timeout=10)
        r.raise_for_status()
        return r.json()

    go_at = (datetime.now(ZoneInfo("UTC")) + timedelta(minutes=47)).isoformat()
    cid = post("/campaigns", {"title": "World clean-up day", "go_at": go_at})["id"]
    mobs = []
    for time_zone, (lon, lat) in CITIES.items():
        city = time_zone.split("/")[-1].replace("_", " ")
        body = {"title": f"Clean-up {city}", "action": "Pick up the litter",
                "zone": square(lon, lat), "go_at": go_at, "duration_s": 300}  # fmt: skip
        mob = post("/mobs", body)
        post(f"/mobs/{mob['id']}/tasks/generate", {"spacing_m": 30, "kind": "litter"})
        post(f"/campaigns/{cid}/mobs", {"mob": mob["id"], "time_zone": time_zone})
        mobs.append((mob["id"], lon, lat))
    post(f"/campaigns/{cid}/publish", {})
    clients = []
    for n, (mob_id, lon, lat) in zip((7, 4, 5), mobs, strict=True):
        for i in range(n):
            r = requests.post(f"{api}/mobs/{mob_id}/participants", json={}, timeout=10)
            sio = socketio.Client(reconnection=False)
            sio.connect(url, namespaces=["/participant"], auth={"token": r.json()["token"]},
                        transports=["websocket"], wait_timeout=10)  # fmt: skip
            sio.call("join_mob", {"mob": mob_id}, namespace="/participant", timeout=10)
            fix = {"lat": lat + 0.0002 * (i % 3), "lon": lon + 0.0003 * (i // 3), "accuracy_m": 6}
            sio.call("report_location", fix, namespace="/participant", timeout=10)
            clients.append(sio)
    pledge = {"campaign": cid, "amount_minor": 25, "currency": "EUR", "sponsor_name": "Co-op"}
    requests.post(f"{api}/pledges", json=pledge, timeout=10).raise_for_status()
    return cid, clients


def shoot(page, out: Path, name: str) -> None:
    time.sleep(0.5)  # let transitions and map animations settle
    page.screenshot(path=str(out / name))
    print(f"wrote {out.relative_to(ROOT) if out.is_relative_to(ROOT) else out}/{name}")


def map_points(page, ring) -> list[tuple[float, float]]:
    """Page coordinates of (lon, lat) positions on the organizer's map."""
    box = page.locator("#org-map").bounding_box()
    points = page.evaluate(
        """(ring) => ring.map(([lon, lat]) => {
            const p = window.goodmobOrganize.map.latLngToContainerPoint([lat, lon]);
            return [p.x, p.y];
        })""",
        ring,
    )
    return [(box["x"] + x, box["y"] + y) for x, y in points]


def fit_park(page) -> None:
    """Show the whole park on the organizer's map."""
    page.evaluate(
        """(ring) => {
            const map = window.goodmobOrganize.map;
            map.invalidateSize();
            map.fitBounds(ring.map(([lon, lat]) => [lat, lon]), { padding: [24, 24] });
        }""",
        PARK["coordinates"][0],
    )
    time.sleep(0.4)


def new_mob(page, title: str, action: str, go_local: str, duration_s: int) -> None:
    page.evaluate("() => { location.hash = '#/'; }")
    page.click("#new-mob")
    page.locator("#details-form").wait_for(state="visible")
    page.fill("#f-title", title)
    page.fill("#f-action", action)
    page.fill("#f-description", "Gloves and bags at the south gate. Coffee afterwards.")
    page.fill("#f-go", go_local)
    page.select_option("#f-duration", str(duration_s))
    page.click("#details-next")
    page.locator("#tool-draw").wait_for(state="visible")


def organizer_flow(page, out: Path) -> str:
    """Sign up, draw the park, generate tasks, show a refused zone, publish; the mob id."""
    page.goto("/organize")
    page.click("#auth-mode-signup")
    page.fill("#auth-name", "Ada from Weinberg e.V.")
    page.fill("#auth-email", f"ada-{secrets.token_hex(3)}@example.org")
    page.fill("#auth-password", "correct horse")
    page.click("#auth-submit")
    page.locator("#view-list").wait_for(state="visible")

    # A bow tie first: refused, and the error is pinned where the edges cross.
    berlin = ZoneInfo("Europe/Berlin")  # the browser's time zone
    go_local = (datetime.now(berlin) + timedelta(minutes=12)).strftime("%Y-%m-%dT%H:%M")
    new_mob(page, "Bow tie", "Test", go_local, 60)
    page.evaluate("() => window.goodmobOrganize.map.setView([52.5319, 13.3999], 17)")
    time.sleep(0.4)
    box = page.locator("#org-map").bounding_box()
    page.click("#tool-draw")
    for fx, fy in [(0.22, 0.22), (0.78, 0.78), (0.78, 0.22), (0.22, 0.78)]:
        page.mouse.click(box["x"] + box["width"] * fx, box["y"] + box["height"] * fy)
    page.click("#draw-finish")
    page.click("#zone-save")
    page.locator(".gm-error-pin").wait_for(state="visible")
    shoot(page, out, "organize-zone-error.png")

    # The real one: trace the park.
    new_mob(
        page,
        "Clean up Weinberg park",
        "Pick up every piece of litter within 10 steps of your spot",
        go_local,
        300,
    )
    fit_park(page)
    ring = PARK["coordinates"][0][:-1]
    points = map_points(page, ring)
    page.click("#tool-draw")
    for x, y in points[:5]:
        page.mouse.click(x, y)
    page.mouse.move(points[5][0] - 20, points[5][1] + 10)
    shoot(page, out, "organize-drawing.png")
    page.mouse.click(*points[5])
    page.mouse.click(*points[0])
    page.click("#zone-save")
    page.locator("#t-generate").wait_for(state="visible")
    page.locator("#t-spacing").evaluate(
        "(el) => { el.value = '25'; el.dispatchEvent(new Event('input', { bubbles: true })); }"
    )
    page.fill("#t-prompt", "Fill one bag; bags are at the south gate")
    page.click("#t-generate")
    page.wait_for_function("() => document.querySelector('#task-count').textContent !== '0'")
    page.evaluate("() => document.querySelector('#panel').scrollTop = 0")
    fit_park(page)
    page.locator("#toast").wait_for(state="hidden")
    shoot(page, out, "organize-tasks.png")
    page.click("#tasks-next")
    page.click("#publish")
    page.locator("#run-phase").wait_for(state="visible")
    return page.evaluate("() => window.goodmobOrganize.mob.id")


def run(out: Path) -> None:
    from playwright.sync_api import sync_playwright

    out.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory() as tmp:
        server = start_server(Path(tmp) / "screens.sqlite3")
        url = server.url
        clients: list = []
        try:
            with sync_playwright() as pw:
                browser = pw.chromium.launch(executable_path=CHROMIUM, args=["--no-sandbox"])
                phone = dict(
                    viewport=PHONE,
                    device_scale_factor=2,
                    is_mobile=True,
                    has_touch=True,
                    timezone_id="Europe/Berlin",
                    locale="en-GB",
                    base_url=url,
                )
                org_context = browser.new_context(
                    **phone,
                    geolocation={"latitude": 52.5319, "longitude": 13.4000, "accuracy": 10},
                    permissions=["geolocation"],
                )
                org = org_context.new_page()
                mob_id = organizer_flow(org, out)
                token = org.evaluate(
                    "() => JSON.parse(localStorage.getItem('goodmob.organizer')).token"
                )
                headers = {"Authorization": f"Bearer {token}"}
                clients = crowd(url, mob_id)

                live = browser.new_context(**phone).new_page()
                live.goto(f"/live/{mob_id}")
                live.wait_for_function(
                    "() => document.querySelector('#c-joined').textContent !== '0'"
                )
                live.locator("path.gm-density").first.wait_for(timeout=15_000)
                shoot(live, out, "live-phone.png")

                desk = browser.new_context(viewport=PROJECTOR, base_url=url).new_page()
                desk.goto(f"/live/{mob_id}")
                big = browser.new_context(viewport=PROJECTOR, base_url=url).new_page()
                big.goto(f"/live/{mob_id}?big=1")
                big.locator("path.gm-density").first.wait_for(timeout=15_000)

                # GO in a few seconds; the crowd acts; one deed far from its spot is flagged.
                requests.post(
                    f"{url}/api/mobs/{mob_id}/start-now",
                    json={"lead_s": 3},
                    headers=headers,
                    timeout=10,
                ).raise_for_status()
                live.wait_for_function(
                    "() => document.querySelector('#countdown').dataset.phase === 'action'",
                    timeout=20_000,
                )
                time.sleep(1.0)  # GO on the server's clock too
                deeds(clients, done=11, flagged=1)
                requests.post(
                    f"{url}/api/mobs/{mob_id}/announcements",
                    json={"text": "Bags are at the south gate: grab one on your way!"},
                    headers=headers,
                    timeout=10,
                ).raise_for_status()
                for page in (live, big):
                    page.wait_for_function(
                        "() => document.querySelectorAll('#live-map .gm-task--done').length >= 8",
                        timeout=20_000,
                    )
                shoot(live, out, "live-go-phone.png")
                shoot(big, out, "live-big.png")
                desk.wait_for_function(
                    "() => document.querySelectorAll('#live-map .gm-task--done').length >= 8",
                    timeout=20_000,
                )
                shoot(desk, out, "live-desktop.png")

                org.locator(".org-review-item").first.wait_for(timeout=15_000)
                shoot(org, out, "organize-run.png")
                org.fill("#announce-text", "Ten more minutes: keep going!")
                org.locator(".org-review").evaluate("(el) => el.scrollIntoView({block: 'end'})")
                shoot(org, out, "organize-run-controls.png")

                cid, city_clients = campaign(url, headers)
                clients += [(sio, None) for sio in city_clients]
                world = browser.new_context(**phone).new_page()
                world.goto(f"/live/c/{cid}")
                world.locator(".camp-pin").nth(2).wait_for(timeout=15_000)
                world.locator("#camp-pledges").wait_for(state="visible", timeout=15_000)
                shoot(world, out, "live-campaign-phone.png")

                # A 10-second mob run to its end: the finished run and its summary.
                short = requests.post(f"{url}/api/mobs", headers=headers, timeout=10, json={
                    "title": "Ten seconds for the Weinberg", "zone": PARK,
                    "action": "Pick up what is at your feet", "duration_s": 10,
                    "go_at": "2099-01-01T12:00:00+01:00"}).json()  # fmt: skip
                sid = short["id"]
                requests.post(f"{url}/api/mobs/{sid}/tasks/generate", headers=headers,
                              json={"spacing_m": 25, "kind": "litter"}, timeout=10)  # fmt: skip
                requests.post(f"{url}/api/mobs/{sid}/publish", headers=headers, timeout=10)
                short_clients = crowd(url, sid)
                clients += short_clients
                requests.post(f"{url}/api/mobs/{sid}/start-now", json={"lead_s": 2},
                              headers=headers, timeout=10).raise_for_status()  # fmt: skip
                time.sleep(3.5)
                deeds(short_clients, done=7, flagged=1)
                org.goto(f"/organize#/mob/{sid}/run")
                org.wait_for_function(
                    "() => document.querySelector('#run-phase').dataset.phase === 'finished'",
                    timeout=30_000,
                )
                org.locator(".org-review-item").first.wait_for(timeout=15_000)
                time.sleep(3.5)  # the toasts go away
                shoot(org, out, "organize-finished.png")
                summary = browser.new_context(**phone).new_page()
                summary.goto(f"/s/{sid}")
                summary.locator("#sum-chart svg").wait_for(timeout=15_000)
                time.sleep(0.4)
                summary.screenshot(path=str(out / "summary.png"), full_page=True)
                print("wrote summary.png")
                browser.close()
        finally:
            for sio, _fix in clients:
                sio.disconnect()
            server.stop()


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=ROOT / "docs" / "screenshots")
    run(parser.parse_args().out.resolve())
    return 0


if __name__ == "__main__":
    sys.exit(main())
