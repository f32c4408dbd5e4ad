"""The organizer's page (/organize) in headless Chromium against a real server process.

An organizer signs up, draws the zone with the mouse in Leaflet-Geoman's draw mode, generates
task spots, publishes (checked through the REST API: the drawn zone, the tasks); a
self-intersecting zone is refused by the server and its error is pinned on the map where the
edges cross; during a mob the organizer postpones, announces and reviews a flagged deed.
"""

from __future__ import annotations

import secrets
import time
import uuid

import pytest
import requests
import shapely
import socketio
from playwright.sync_api import TimeoutError as PlaywrightTimeout
from playwright.sync_api import expect
from shapely.geometry import shape

from tests.browser.conftest import PARK_CENTER
from tests.factories import PARK, organizer_token

PASSWORD = "correct horse"
# A pentagon, as fractions of the map's width and height.
PENTAGON = [(0.22, 0.25), (0.75, 0.18), (0.85, 0.65), (0.5, 0.85), (0.15, 0.6)]
# A bow tie: the edges 1→2 and 3→4 cross in the middle of the map.
BOW_TIE = [(0.25, 0.25), (0.75, 0.75), (0.75, 0.25), (0.25, 0.75)]


def sign_up(url: str) -> tuple[str, str]:
    """An organizer made through the API (sign-up, then log-in); returns (email, token)."""
    email = f"org-{secrets.token_hex(4)}@example.org"
    return email, organizer_token(f"{url}/api", email=email, name="Grace", password=PASSWORD)


def api(url: str, token: str, method: str, path: str, expect_status: int, **kwargs):
    r = requests.request(
        method,
        f"{url}/api{path}",
        headers={"Authorization": f"Bearer {token}"},
        timeout=10,
        **kwargs,
    )
    assert r.status_code == expect_status, f"{method} {path} → {r.status_code} {r.text}"
    return r.json() if r.content else None


def log_in(page, email: str) -> None:
    page.goto("/organize")
    page.fill("#auth-email", email)
    page.fill("#auth-password", PASSWORD)
    page.click("#auth-submit")
    page.locator("#view-list").wait_for(state="visible")


def wait_map_at_park(page) -> None:
    """The page centres an empty map on the (granted) position: wait for it to settle there."""
    page.wait_for_function(
        """([lat, lon]) => {
            const c = window.goodmobOrganize?.map?.getCenter();
            return c && Math.abs(c.lat - lat) < 1e-4 && Math.abs(c.lng - lon) < 1e-4;
        }""",
        arg=[PARK_CENTER["latitude"], PARK_CENTER["longitude"]],
    )


def new_mob_details(page, title: str) -> None:
    page.click("#new-mob")
    page.locator("#details-form").wait_for(state="visible")
    page.fill("#f-title", title)
    page.fill("#f-action", "Pick up the litter around your spot")
    page.click("#details-next")
    page.locator("#tool-draw").wait_for(state="visible")


def draw(page, fractions, close: str) -> list[tuple[float, float]]:
    """Click the map at each point in Geoman's draw mode; returns the expected (lon, lat)s."""
    page.click("#tool-draw")
    box = page.locator("#org-map").bounding_box()
    points = [(box["width"] * fx, box["height"] * fy) for fx, fy in fractions]
    expected = page.evaluate(
        """(points) => points.map(([x, y]) => {
            const ll = window.goodmobOrganize.map.containerPointToLatLng([x, y]);
            return [ll.lng, ll.lat];
        })""",
        [list(p) for p in points],
    )
    for x, y in points:
        page.mouse.click(box["x"] + x, box["y"] + y)
    if close == "first-corner":
        page.mouse.click(box["x"] + points[0][0], box["y"] + points[0][1])
    else:
        page.click("#draw-finish")
    expect(page.locator("#drawbar")).to_be_hidden()
    return expected


def sign_up_on_the_page(page, email: str, password: str) -> None:
    page.goto("/organize")
    page.click("#auth-mode-signup")
    page.fill("#auth-name", "Mallory")
    page.fill("#auth-email", email)
    page.fill("#auth-password", password)
    page.click("#auth-submit")


def test_sign_up_on_the_page_logs_in_and_an_existing_email_needs_its_own_password(
    live_server, phone
):
    """Issue 15 §9: the sign-up answer is the same for every email, so the page logs in
    after it; with an existing email and another password that log-in is refused, and the
    page says so and stays signed out."""
    email = f"new-{secrets.token_hex(4)}@example.org"
    page = phone().new_page()
    sign_up_on_the_page(page, email, PASSWORD)
    page.locator("#view-list").wait_for(state="visible")
    expect(page.locator("#list-empty")).to_be_visible()
    token = page.evaluate("() => JSON.parse(localStorage.getItem('goodmob.organizer')).token")
    r = requests.get(
        f"{live_server.url}/api/organizers/me/mobs",
        headers={"Authorization": f"Bearer {token}"},
        timeout=10,
    )
    assert r.status_code == 200 and r.json() == {"mobs": []}

    stranger = phone().new_page()  # another browser, no session
    sign_up_on_the_page(stranger, email, "not the owner's password")
    error = stranger.locator("#auth-error")
    expect(error).to_be_visible()
    expect(error).to_have_text("If this email already has an account, sign in with its password.")
    expect(stranger.locator("#view-list")).to_be_hidden()
    assert stranger.evaluate("() => localStorage.getItem('goodmob.organizer')") is None
    # The owner's password still logs in; the attempted one does not.
    body = {"email": email, "password": "not the owner's password"}
    r = requests.post(f"{live_server.url}/api/sessions", json=body, timeout=10)
    assert r.status_code == 401
    log_in(stranger, email)


def test_organizer_draws_a_zone_generates_tasks_and_publishes(live_server, phone):
    page = phone().new_page()
    page.goto("/organize")

    # Sign up on the page; the token is kept in localStorage, never in the URL.
    page.click("#auth-mode-signup")
    page.fill("#auth-name", "Ada Lovelace")
    email = f"ada-{secrets.token_hex(4)}@example.org"
    page.fill("#auth-email", email)
    page.fill("#auth-password", PASSWORD)
    page.click("#auth-submit")
    page.locator("#view-list").wait_for(state="visible")
    expect(page.locator("#list-empty")).to_be_visible()
    token = page.evaluate("() => JSON.parse(localStorage.getItem('goodmob.organizer')).token")
    assert token and token not in page.url

    new_mob_details(page, "Clean up the Weinberg park")
    wait_map_at_park(page)
    drawn = draw(page, PENTAGON, close="first-corner")
    expect(page.locator("#zone-stats")).to_contain_text("5 corners")

    page.click("#zone-save")
    page.locator("#t-generate").wait_for(state="visible")
    mob_id = page.evaluate("() => window.goodmobOrganize.mob.id")
    assert f"#/mob/{mob_id}/tasks" in page.url

    page.locator("#t-spacing").evaluate(
        "(el) => { el.value = '40'; el.dispatchEvent(new Event('input', { bubbles: true })); }"
    )
    page.fill("#t-prompt", "Fill one bag within 10 m of the spot")
    page.click("#t-generate")
    expect(page.locator("#task-count")).not_to_have_text("0")
    shown = int(page.locator("#task-count").inner_text())
    expect(page.locator(".gm-task--draft")).to_have_count(shown)

    page.click("#tasks-next")
    expect(page.locator("#checklist li.is-ok")).to_have_count(4)
    page.click("#publish")
    page.locator("#run-phase").wait_for(state="visible")
    expect(page.locator("#share-url")).to_have_value(f"{live_server.url}/m/{mob_id}")

    # The server has the drawn zone, the generated tasks, and the mob is published.
    mob = api(live_server.url, token, "GET", f"/mobs/{mob_id}", 200)
    assert mob["status"] == "published"
    assert mob["title"] == "Clean up the Weinberg park"
    assert mob["zone"]["type"] == "Polygon"
    ring = mob["zone"]["coordinates"][0]
    assert len(ring) == len(PENTAGON) + 1 and ring[0] == ring[-1]
    # Each corner is where the mouse clicked (within a pixel, about 1.5 m at this zoom).
    for lon, lat in drawn:
        assert min(abs(lon - x) + abs(lat - y) for x, y in ring[:-1]) < 3e-5, (lon, lat, ring)
    tasks = api(live_server.url, token, "GET", f"/mobs/{mob_id}/tasks", 200)["features"]
    assert len(tasks) == shown > 0
    zone = shape(mob["zone"])
    assert all(zone.covers(shapely.Point(t["geometry"]["coordinates"])) for t in tasks)
    assert {t["properties"]["prompt"] for t in tasks} == {"Fill one bag within 10 m of the spot"}

    # The list shows it as published.
    page.click(".org-back")
    expect(page.locator(".org-mob-card")).to_contain_text("Published")


def test_a_self_intersecting_zone_is_refused_and_shown_where_it_crosses(live_server, phone):
    email, token = sign_up(live_server.url)
    page = phone().new_page()
    log_in(page, email)
    new_mob_details(page, "Bow tie")
    wait_map_at_park(page)
    drawn = draw(page, BOW_TIE, close="finish")
    page.click("#zone-save")

    error = page.locator("#zone-error")
    expect(error).to_be_visible()
    expect(error).to_contain_text("cross")
    pin = page.locator(".gm-error-pin")
    expect(pin).to_be_visible()
    expect(page.locator(".gm-error-popup")).to_contain_text("cross")

    # The pin sits where the edges of the zone that was sent cross (the bow tie's middle).
    sent = page.evaluate("() => window.goodmobOrganize.lastSentZone.coordinates[0]")
    assert len(sent) == 5
    for lon, lat in drawn:
        assert min(abs(lon - x) + abs(lat - y) for x, y in sent) < 3e-5
    crossing = shapely.LineString(sent[0:2]).intersection(shapely.LineString(sent[2:4]))
    at = page.evaluate(
        """() => {
            const ll = window.goodmobOrganize.errorGroup.getLayers()[0].getLatLng();
            return [ll.lng, ll.lat];
        }"""
    )
    assert abs(at[0] - crossing.x) < 1e-6 and abs(at[1] - crossing.y) < 1e-6, (at, crossing)
    # On screen, the pin is drawn at that point, inside the map (polled: the map may still be
    # panning to it).
    page.wait_for_function(
        """([lon, lat]) => {
            const map = window.goodmobOrganize.map;
            const box = map.getContainer().getBoundingClientRect();
            const pin = document.querySelector(".gm-error-pin").getBoundingClientRect();
            const p = map.latLngToContainerPoint([lat, lon]);
            const dx = box.left + p.x - (pin.left + pin.width / 2);
            const dy = box.top + p.y - (pin.top + pin.height / 2);
            return Math.hypot(dx, dy) < 1.5 && p.x > 0 && p.y > 0 && p.x < box.width
                && p.y < box.height;
        }""",
        arg=at,
    )
    # Nothing was saved.
    assert api(live_server.url, token, "GET", "/organizers/me/mobs", 200)["mobs"] == []


def flagged_deed(url: str, mob_id: str) -> dict:
    """A participant confirms a deed far from its task during the action: it is flagged.
    Returns the task (``{id, lat, lon, …}``) the deed was for."""
    joined = requests.post(f"{url}/api/mobs/{mob_id}/participants", json={}, timeout=10).json()
    sio = socketio.Client(reconnection=False)
    sio.connect(
        url, namespaces=["/participant"], auth={"token": joined["token"]}, transports=["websocket"]
    )
    try:
        sio.call("join_mob", {"mob": mob_id}, namespace="/participant", timeout=10)
        fix = {"lat": PARK_CENTER["latitude"], "lon": PARK_CENTER["longitude"]}
        ack = sio.call(
            "report_location",
            {**fix, "accuracy_m": 5, "at": int(time.time() * 1000)},
            namespace="/participant",
            timeout=10,
        )
        task = ack["task"]["id"]
        deadline = time.monotonic() + 30
        while True:  # until GO (a few seconds away): then the deed is taken
            answer = sio.call(
                "confirm_deed",
                {
                    "deed_id": str(uuid.uuid4()),
                    "task": task,
                    "lat": 52.5300,
                    "lon": 13.4030,
                    "accuracy_m": 5,
                },  # fmt: skip
                namespace="/participant",
                timeout=10,
            )
            if answer.get("status"):
                assert answer["status"] == "flagged", answer
                return ack["task"]
            assert answer.get("reason") == "not_action_phase", answer
            assert time.monotonic() < deadline, "GO never came"
            time.sleep(0.3)
    finally:
        sio.disconnect()


def test_during_the_mob_postpone_announce_and_review_a_flagged_deed(live_server, phone):
    email, token = sign_up(live_server.url)
    mob = api(
        live_server.url,
        token,
        "POST",
        "/mobs",
        201,
        json={
            "title": "Weinberg clean-up",
            "action": "Pick up the litter around your spot",
            "zone": PARK,
            "go_at": "2099-01-01T12:00:00+01:00",
            "duration_s": 600,
        },
    )
    mob_id = mob["id"]
    api(live_server.url, token, "POST", f"/mobs/{mob_id}/tasks/generate", 201,
        json={"spacing_m": 30, "kind": "litter"})  # fmt: skip
    api(live_server.url, token, "POST", f"/mobs/{mob_id}/publish", 200)

    page = phone().new_page()
    log_in(page, email)
    page.click(f'.org-mob-card[href="#/mob/{mob_id}"]')
    page.locator("#run-phase").wait_for(state="visible")
    expect(page.locator("#run-chip")).to_have_text("Published")

    # Postpone by 15 minutes.
    go_before = api(live_server.url, token, "GET", f"/mobs/{mob_id}", 200)["timeline"]["go_at_ms"]
    page.click('.org-postpone [data-by="900"]')
    expect(page.locator("#toast")).to_contain_text("later")
    go_after = api(live_server.url, token, "GET", f"/mobs/{mob_id}", 200)["timeline"]["go_at_ms"]
    assert go_after - go_before == 900_000

    # Announce.
    page.fill("#announce-text", "Bags are at the north gate!")
    page.click("#announce-send")
    expect(page.locator("#announcements li")).to_have_count(1)
    expect(page.locator("#announcements")).to_contain_text("Bags are at the north gate!")
    events = requests.get(f"{live_server.url}/api/mobs/{mob_id}/events", timeout=10).json()
    assert any(e["event"] == "announcement" and e["data"]["text"] == "Bags are at the north gate!"
               for e in events["events"])  # fmt: skip

    # GO in 2 s; a deed confirmed far from its spot is flagged and appears for review.
    api(live_server.url, token, "POST", f"/mobs/{mob_id}/start-now", 200, json={"lead_s": 2})
    flagged_deed(live_server.url, mob_id)
    item = page.locator(".org-review-item")
    try:
        item.wait_for(state="visible", timeout=15_000)
    except PlaywrightTimeout:
        pytest.fail(f"no review item; counters: {page.locator('.org-counters').inner_text()}")
    expect(page.locator("#rc-deeds_flagged")).to_have_text("1")
    item.locator('[data-verdict="approve"]').click()
    expect(page.locator(".org-review-item")).to_have_count(0)
    deeds = api(live_server.url, token, "GET", f"/mobs/{mob_id}/deeds", 200)["deeds"]
    assert [d["status"] for d in deeds] == ["approved"]
    expect(page.locator("#rc-deeds_done")).to_have_text("1")


def test_place_drag_and_remove_task_spots_by_hand(live_server, phone):
    email, token = sign_up(live_server.url)
    mob = api(
        live_server.url,
        token,
        "POST",
        "/mobs",
        201,
        json={
            "title": "By hand",
            "action": "Pick up the litter around your spot",
            "zone": PARK,
            "go_at": "2099-01-01T12:00:00+01:00",
            "duration_s": 60,
        },
    )
    page = phone().new_page()
    log_in(page, email)
    page.goto(f"/organize#/mob/{mob['id']}/tasks")
    page.locator("#t-place").wait_for(state="visible")
    page.fill("#t-prompt", "Water the tree")
    page.click("#t-place")
    expect(page.locator("#t-place")).to_have_attribute("aria-pressed", "true")

    def at(lon: float, lat: float) -> tuple[float, float]:
        box = page.locator("#org-map").bounding_box()
        x, y = page.evaluate(
            "([lon, lat]) => { const p = window.goodmobOrganize.map.latLngToContainerPoint("
            "[lat, lon]); return [p.x, p.y]; }",
            [lon, lat],
        )
        return box["x"] + x, box["y"] + y

    zone = shape(PARK)
    inside = zone.representative_point()
    page.mouse.click(*at(inside.x, inside.y))
    expect(page.locator("#task-count")).to_have_text("1")
    page.mouse.click(*at(inside.x + 0.0006, inside.y + 0.0003))
    expect(page.locator("#task-count")).to_have_text("2")
    # Outside the zone: refused by the server, said in a toast, nothing added.
    minx, miny, _, _ = zone.bounds
    corner = (minx + 0.0002, miny + 0.0001)  # on the map, outside the park's outline
    assert not zone.covers(shapely.Point(corner))
    page.mouse.click(*at(*corner))
    expect(page.locator("#toast")).to_contain_text("outside")
    expect(page.locator("#task-count")).to_have_text("2")

    tasks = api(live_server.url, token, "GET", f"/mobs/{mob['id']}/tasks", 200)["features"]
    assert len(tasks) == 2
    assert {t["properties"]["prompt"] for t in tasks} == {"Water the tree"}
    first = tasks[0]

    # Drag the first spot 40 px east: it is saved at its new place.
    page.click("#t-place")  # placing off: a tap now opens a spot
    start = at(*first["geometry"]["coordinates"])
    page.mouse.move(*start)
    page.mouse.down()
    for step in range(1, 9):
        page.mouse.move(start[0] + 5 * step, start[1])
    page.mouse.up()
    expect(page.locator("#toast")).to_contain_text("moved")
    moved = api(live_server.url, token, "GET", f"/mobs/{mob['id']}/tasks", 200)["features"]
    assert len(moved) == 2 and first["id"] not in {t["id"] for t in moved}
    new = next(t for t in moved if t["id"] != tasks[1]["id"])
    assert new["geometry"]["coordinates"][0] > first["geometry"]["coordinates"][0] + 0.0002
    assert abs(new["geometry"]["coordinates"][1] - first["geometry"]["coordinates"][1]) < 2e-5
    assert new["properties"]["prompt"] == "Water the tree"

    # Tap a spot, remove it.
    page.mouse.click(*at(*tasks[1]["geometry"]["coordinates"]))
    page.locator('.org-task-form [data-act="remove"]').click()
    expect(page.locator("#task-count")).to_have_text("1")
    left = api(live_server.url, token, "GET", f"/mobs/{mob['id']}/tasks", 200)["features"]
    assert [t["id"] for t in left] == [new["id"]]


def test_the_review_shows_the_deeds_spot_and_a_finished_run_shows_its_summary(live_server, phone):
    email, token = sign_up(live_server.url)
    body = {"title": "Short clean-up", "action": "Pick up the litter around your spot",
            "zone": PARK, "go_at": "2099-01-01T12:00:00+01:00", "duration_s": 10}  # fmt: skip
    mob_id = api(live_server.url, token, "POST", "/mobs", 201, json=body)["id"]
    api(live_server.url, token, "POST", f"/mobs/{mob_id}/tasks/generate", 201,
        json={"spacing_m": 30, "kind": "litter"})  # fmt: skip
    api(live_server.url, token, "POST", f"/mobs/{mob_id}/publish", 200)

    page = phone().new_page()
    log_in(page, email)
    page.click(f'.org-mob-card[href="#/mob/{mob_id}"]')
    page.locator("#run-phase").wait_for(state="visible")
    api(live_server.url, token, "POST", f"/mobs/{mob_id}/start-now", 200, json={"lead_s": 2})
    task = flagged_deed(live_server.url, mob_id)
    expect(page.locator(".org-review-item")).to_have_count(1, timeout=15_000)
    expect(page.locator("#rc-deeds_flagged")).to_have_text("1")

    # "1 to review" takes the organizer to the list (below the fold on a phone).
    review = page.locator("#review-section")
    expect(review).not_to_be_in_viewport()
    page.click("#review-jump")
    expect(review).to_be_in_viewport()

    # The deed's spot is its task's position: marked on the map and shown on request.
    expect(page.locator("#org-map .gm-task.is-review")).to_have_count(1)
    page.locator(".org-review-item").get_by_role("button", name="Show on map").click()
    page.wait_for_function(
        """([lat, lon]) => {
            const c = window.goodmobOrganize.map.getCenter();
            return Math.abs(c.lat - lat) < 1e-5 && Math.abs(c.lng - lon) < 1e-5;
        }""",
        arg=[task["lat"], task["lon"]],
    )

    # The run finishes: a finished state with the summary link, no dead controls.
    expect(page.locator("#run-phase")).to_have_attribute("data-phase", "finished", timeout=20_000)
    expect(page.locator("#run-chip")).to_have_text("Finished")
    assert page.locator("#run-label").inner_text().lower() != "finished"
    expect(page.locator("#run-finished")).to_be_visible()
    expect(page.locator("#summary-link")).to_have_attribute("href", f"/s/{mob_id}")
    expect(page.locator("#controls")).to_be_hidden()
    dead = page.locator('[data-pane="run"] :is(button, input, select, textarea):disabled:visible')
    expect(dead).to_have_count(0)
    # The flagged deed can still be reviewed after the end.
    expect(page.locator(".org-review-item [data-verdict]")).to_have_count(2)
