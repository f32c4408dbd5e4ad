"""The live map (/live/<id>) in headless Chromium against a real server process.

Spectators see the zone, the tasks by state, crowd cells and counters, and never an
individual's position: every WebSocket frame and API response the page receives is recorded
and searched for the positions that participants (real Socket.IO clients) reported. Tasks
change state on the map from the server's `tasks` push (the page never polls them); a
review moves the counters; the funnel starts at the page views; the cascade names only
chosen nicknames; pledge totals follow the deeds.
"""

from __future__ import annotations

import json
import re
import time
import uuid

import h3
import requests
import shapely
import socketio
from playwright.sync_api import expect
from shapely.geometry import shape

from tests.factories import PARK

# How far (m, roughly) a received coordinate pair may be from a participant's fix.
NEAR_M = 5.0
M_PER_DEG_LAT = 111_320.0


def near_m(a: tuple[float, float], b: tuple[float, float]) -> float:
    """Approximate distance in metres between two (lon, lat) points a few hundred m apart."""
    dx = (a[0] - b[0]) * M_PER_DEG_LAT * 0.6087  # cos(52.5°)
    dy = (a[1] - b[1]) * M_PER_DEG_LAT
    return (dx * dx + dy * dy) ** 0.5


def crowd_positions(tasks: list[dict], count: int) -> list[tuple[float, float]]:
    """``count`` (lon, lat) fixes inside the park, all in one H3 cell (so a density cell shows)
    and each at least 10 m from every task spot (so a public task is never mistaken for one).
    Spread by a few metres."""
    zone = shape(PARK)
    inner = zone.buffer(-0.0003)  # 20 m and more from the edge: "inside", never "uncertain"
    task_points = [tuple(t["geometry"]["coordinates"]) for t in tasks]
    minx, miny, maxx, maxy = zone.bounds
    for i in range(40):
        for j in range(40):
            # Seven decimals, the last never 0 (the text search needs the whole number).
            lon = round(minx + (maxx - minx) * (i + 0.5) / 40, 5) + 0.0000037
            lat = round(miny + (maxy - miny) * (j + 0.5) / 40, 5) + 0.0000043
            fixes = [
                (round(lon + 0.0000122 * k, 7), round(lat + 0.0000111 * ((k * 3) % 5), 7))
                for k in range(count)
            ]
            cells = {h3.latlng_to_cell(la, lo, 10) for lo, la in fixes}
            if len(cells) != 1 or not all(inner.contains(shapely.Point(f)) for f in fixes):
                continue
            if all(near_m(f, t) > 10 for f in fixes for t in task_points):
                return fixes
    raise AssertionError("no spot in the park is 10 m from every task")


class Phone:
    """A participant: joined through REST, reporting fixes over the real /participant socket."""

    def __init__(self, url: str, mob_id: str, **body):
        joined = requests.post(f"{url}/api/mobs/{mob_id}/participants", json=body, timeout=10)
        assert joined.status_code == 201, joined.text
        self.participant = joined.json()["participant"]
        self.task: dict | None = None
        self.sio = socketio.Client(reconnection=False)
        self.sio.connect(
            url,
            namespaces=["/participant"],
            auth={"token": joined.json()["token"]},
            transports=["websocket"],
        )
        ack = self.sio.call("join_mob", {"mob": mob_id}, namespace="/participant", timeout=10)
        assert "error" not in ack, ack

    def report(self, lon: float, lat: float) -> dict:
        fix = {"lat": lat, "lon": lon, "accuracy_m": 6, "at": int(time.time() * 1000)}
        ack = self.sio.call("report_location", fix, namespace="/participant", timeout=10)
        assert ack.get("zone") == "inside" and ack.get("counted"), ack
        self.task = ack.get("task") or self.task
        return ack

    def deed(self, far: bool = False) -> dict:
        """Confirms the deed at the task's spot (``far``: 60 m north of it, to be flagged)."""
        task = self.task
        body = {"deed_id": str(uuid.uuid4()), "task": task["id"], "accuracy_m": 5,
                "lat": task["lat"] + (0.00055 if far else 0), "lon": task["lon"]}  # fmt: skip
        return self.sio.call("confirm_deed", body, namespace="/participant", timeout=10)

    def close(self) -> None:
        self.sio.disconnect()


def coordinate_pairs(value) -> list[tuple[float, float]]:
    """Every (lon, lat) a JSON value holds: [lon, lat] arrays and {lat, lon} objects."""
    found = []
    if isinstance(value, dict):
        if isinstance(value.get("lat"), int | float) and isinstance(value.get("lon"), int | float):
            found.append((value["lon"], value["lat"]))
        for item in value.values():
            found += coordinate_pairs(item)
    elif isinstance(value, list):
        if len(value) in (2, 3) and all(
            isinstance(v, int | float) and not isinstance(v, bool) for v in value
        ):
            found.append((value[0], value[1]))
        else:
            for item in value:
                found += coordinate_pairs(item)
    return found


def frame_json(frame: str):
    """The JSON in a Socket.IO text frame (``42/live,["stats",{…}]``, ``43/live,0[…]``)."""
    match = re.match(r"^\d+(?:/[^,]*,)?\d*(.*)$", frame, re.S)
    body = match.group(1) if match else ""
    try:
        return json.loads(body) if body else None
    except ValueError:
        return None


def test_the_live_map_shows_counters_and_crowd_cells_but_no_ones_position(live_server, rest, phone):
    mob = rest.published_mob(spacing_m=40)
    tasks = requests.get(f"{live_server.url}/api/mobs/{mob['id']}/tasks", timeout=10).json()
    fixes = crowd_positions(tasks["features"], 6)
    phones = [Phone(live_server.url, mob["id"]) for _ in fixes]
    try:
        for p, (lon, lat) in zip(phones[:5], fixes[:5], strict=True):
            p.report(lon, lat)

        context = phone()
        page = context.new_page()
        frames: list[str] = []
        bodies: list[str] = []

        def on_frame(payload):
            frames.append(
                payload if isinstance(payload, str) else payload.decode("utf-8", "replace")
            )

        def on_socket(ws):
            ws.on("framereceived", on_frame)

        def on_response(response):
            if response.url.startswith(live_server.url) and "/api/" in response.url:
                bodies.append(response.text())

        page.on("websocket", on_socket)
        page.on("response", on_response)
        page.goto(f"/live/{mob['id']}")

        expect(page.locator("#live-title")).to_have_text("Clean the Weinberg park")
        expect(page.locator("#c-joined")).to_have_text("6")
        expect(page.locator("#c-in_zone")).to_have_text("5")
        expect(page.locator("#c-matched")).to_have_text("5")
        expect(page.locator("#live-phase")).to_have_text("Upcoming")
        expect(page.locator("#cd-label")).to_have_text("GO in")
        expect(page.locator("#live-map .gm-task")).not_to_have_count(0)
        # Five people in one cell: a crowd cell, drawn from the server's outline.
        expect(page.locator("path.gm-density")).to_have_count(1)
        # Nobody can tell which tasks the five hold (issue 15 §1): no task shows as taken.
        expect(page.locator("#live-map .gm-task--full")).to_have_count(0)
        expect(page.locator("#live-tasks-summary")).to_contain_text("0 done · 0 closed")

        # A sixth arrives while the page watches: the counters move live.
        phones[5].report(*fixes[5])
        expect(page.locator("#c-in_zone")).to_have_text("6")
        expect(page.locator("#c-matched")).to_have_text("6")
        expect(page.locator("#live-map .gm-task--full")).to_have_count(0)
    finally:
        for p in phones:
            p.close()

    received = frames + bodies
    assert any('"joined"' in f for f in frames), frames[:5]
    assert any('"stats"' in f for f in frames), "no live stats frame"
    # No reported fix appears, in any form: not as text, nor as a coordinate pair near it.
    for lon, lat in fixes:
        for text in received:
            assert f"{lat:.7f}" not in text and f"{lon:.7f}" not in text
    pairs = []
    for text in frames:
        pairs += coordinate_pairs(frame_json(text))
    for text in bodies:
        pairs += coordinate_pairs(json.loads(text)) if text.startswith(("{", "[")) else []
    assert pairs, "the page received no coordinates at all (zone, tasks): the check saw nothing"
    for fix in fixes:
        closest = min(near_m(fix, pair) for pair in pairs)
        assert closest > NEAR_M, f"a position {closest:.1f} m from a participant's fix was sent"
    # Nor does the page show one.
    html = page.content()
    for lon, lat in fixes:
        assert f"{lat:.7f}" not in html and f"{lon:.7f}" not in html


def test_big_screen_mode_and_go_on_the_live_map(live_server, rest, browser):
    mob = rest.published_mob()
    context = browser.new_context(viewport={"width": 1280, "height": 720}, base_url=live_server.url)
    page = context.new_page()
    errors = []
    page.on("pageerror", lambda exc: errors.append(str(exc)))
    page.goto(f"/live/{mob['id']}?big=1")
    expect(page.locator("body")).to_have_class(re.compile(r"\blive--big\b"))
    expect(page.locator("#big-toggle")).to_have_attribute("aria-pressed", "true")
    expect(page.locator("#c-joined")).to_have_text("0")

    page.click("#big-toggle")
    expect(page.locator("body")).not_to_have_class(re.compile(r"\blive--big\b"))
    assert "big=1" not in page.url

    # The organizer starts now: the countdown runs out and the page flips to the action.
    rest.start_now(mob["id"], 2)
    expect(page.locator("#countdown")).to_have_attribute("data-phase", "action", timeout=15_000)
    expect(page.locator("#live-action")).to_be_visible()
    expect(page.locator("#live-action-text")).to_have_text("Pick up the litter around your spot")
    expect(page.locator("#live-phase")).to_have_text("GO!")
    context.close()
    assert not errors, errors


def test_a_live_link_to_no_mob_says_so(live_server, phone):
    page = phone().new_page()
    page.goto("/live/nosuchmob")
    expect(page.locator("#live-error")).to_be_visible()
    expect(page.locator("#live-error")).to_contain_text("No such mob")


def wait_for_status(rest, mob_id: str, status: str, timeout_s: float = 15) -> None:
    deadline = time.monotonic() + timeout_s
    while rest.mob(mob_id)["status"] != status:
        assert time.monotonic() < deadline, f"the mob never reached {status}"
        time.sleep(0.1)


def test_tasks_reviews_pledges_funnel_and_cascade_follow_on_the_live_map(live_server, rest, phone):
    url = live_server.url
    mob = rest.published_mob(spacing_m=40)
    mob_id = mob["id"]
    tasks = requests.get(f"{url}/api/mobs/{mob_id}/tasks", timeout=10).json()
    # Five phones looked at the mob's page (each counted once).
    for i in range(5):
        view = requests.post(
            f"{url}/api/mobs/{mob_id}/views", json={"client_id": f"viewer-{i:04d}"}, timeout=10
        )
        assert view.json()["counted"] is True
    # Kim joins and shares; a friend joins through Kim's link without a nickname and shares on;
    # Ola joins through the friend's link.
    kim = Phone(url, mob_id, nickname="Kim")
    friend = Phone(url, mob_id, ref=kim.participant["ref_code"])
    ola = Phone(url, mob_id, nickname="Ola", ref=friend.participant["ref_code"])
    phones = [kim, friend, ola]
    made_up = friend.participant["nickname"]  # the friend chose none: never shown
    # A sponsor gives 50 cents per verified deed.
    pledge = {"mob": mob_id, "amount_minor": 50, "currency": "EUR", "sponsor_name": "Bakery"}
    assert requests.post(f"{url}/api/pledges", json=pledge, timeout=10).status_code == 201
    try:
        rest.start_now(mob_id, 2)
        wait_for_status(rest, mob_id, "action")
        for p, fix in zip(phones, crowd_positions(tasks["features"], 3), strict=True):
            p.report(*fix)
            assert p.task, "no task in the action phase"

        context = phone()
        page = context.new_page()
        polled: list[str] = []
        page.on("request", lambda r: polled.append(r.url) if "/tasks" in r.url else None)
        page.goto(f"/live/{mob_id}")
        expect(page.locator("#c-joined")).to_have_text("3")
        expect(page.locator("#c-viewed")).to_have_text("5")
        expect(page.locator("#c-matched")).to_have_text("3")
        expect(page.locator("#live-map .gm-task--full")).to_have_count(0)  # held: not shown
        expect(page.locator("#live-pledges-text")).to_have_text("Sponsors give €0.50 per good deed")
        expect(page.locator("#live-cascade-text")).to_contain_text(
            "2 of 3 came through a shared link · chains 2 deep"
        )
        expect(page.locator(".live-sharer-name")).to_have_text(["Kim", "Someone"])
        first_sharer = page.locator(".live-sharer-what").first
        expect(first_sharer).to_contain_text("brought 1 (+1 through them)")

        # Two deeds at their spots, one 60 m off (flagged): the tasks turn done on the map
        # from the server's push, the counters and the pledge total follow.
        assert kim.deed()["status"] == "accepted"
        assert ola.deed()["status"] == "accepted"
        assert friend.deed(far=True)["status"] == "flagged"
        expect(page.locator("#live-map .gm-task--done")).to_have_count(2)
        expect(page.locator("#c-deeds_done")).to_have_text("2")
        expect(page.locator("#live-pledges-text")).to_have_text("€1.00 pledged so far")
        expect(page.locator("#live-pledges-sub")).to_have_text("each deed adds €0.50")

        # The organizer approves the flagged deed: everything moves without a reload.
        flagged = rest.call("GET", f"/mobs/{mob_id}/deeds?status=flagged", 200)["deeds"]
        assert len(flagged) == 1
        rest.call("POST", f"/mobs/{mob_id}/deeds/{flagged[0]['id']}/review", 200,
                  json={"verdict": "approve"})  # fmt: skip
        expect(page.locator("#c-deeds_done")).to_have_text("3")
        expect(page.locator("#live-map .gm-task--done")).to_have_count(3)
        expect(page.locator("#live-pledges-text")).to_have_text("€1.50 pledged so far")
        # The friend's and Ola's deeds came through shares (the cascade is re-read every 10 s).
        expect(page.locator("#live-cascade-text")).to_contain_text(
            "2 deeds thanks to shares", timeout=15_000
        )
        assert not polled, f"the page polled the tasks: {polled}"
        assert made_up not in page.content()
    finally:
        for p in phones:
            p.close()


DESKTOP = {"width": 1920, "height": 1080}


def map_height(page, selector: str) -> float:
    box = page.locator(selector).bounding_box()
    assert box, f"{selector} is not laid out"
    return box["height"]


def test_the_live_map_fills_a_desktop_screen(live_server, rest, browser):
    mob = rest.published_mob()
    campaign = rest.call("POST", "/campaigns", 201,
                         json={"title": "World clean-up", "go_at": mob["go_at"]})  # fmt: skip
    context = browser.new_context(viewport=DESKTOP, base_url=live_server.url)
    try:
        page = context.new_page()
        page.goto(f"/live/{mob['id']}")
        expect(page.locator("#live-title")).to_have_text("Clean the Weinberg park")
        top = page.locator(".live-bar").bounding_box()["height"]
        # Below the top bar the map takes the whole height (the panel sits beside it).
        assert map_height(page, "#live-map") >= DESKTOP["height"] - top - 2
        assert page.locator("#live-map").bounding_box()["width"] >= 1920 - 600
        page.goto(f"/live/c/{campaign['id']}")
        expect(page.locator("#camp-title")).to_have_text("World clean-up")
        assert map_height(page, "#camp-map") >= DESKTOP["height"] - top - 2
    finally:
        context.close()


def test_crowd_cell_counts_are_drawn_on_the_map_without_hovering(live_server, rest, phone):
    mob = rest.published_mob(spacing_m=40)
    tasks = requests.get(f"{live_server.url}/api/mobs/{mob['id']}/tasks", timeout=10).json()
    fixes = crowd_positions(tasks["features"], 5)
    phones = [Phone(live_server.url, mob["id"]) for _ in fixes]
    try:
        for p, (lon, lat) in zip(phones, fixes, strict=True):
            p.report(lon, lat)
        page = phone(viewport=DESKTOP).new_page()
        page.goto(f"/live/{mob['id']}?big=1")
        expect(page.locator("path.gm-density")).to_have_count(1)
        # A projector gets no hover: the count is written on the cell, always shown.
        label = page.locator("#live-map .gm-density-label")
        expect(label).to_have_count(1)
        expect(label).to_be_visible()
        expect(label).to_have_text("5")
    finally:
        for p in phones:
            p.close()


def test_a_live_link_to_no_mob_shows_only_that(live_server, phone):
    page = phone().new_page()
    page.goto("/live/nosuchmob")
    expect(page.locator("#live-error")).to_contain_text("No such mob")
    expect(page.locator("#live-title")).to_have_text("Mob not found")
    # Nothing behind it pretends to be a live mob: no counters, countdown, map or
    # connection state ("Reconnecting…"), not even after the socket has closed.
    page.wait_for_timeout(1500)
    for selector in (".live-main", "#live-conn", "#big-toggle"):
        expect(page.locator(selector)).to_be_hidden()
    assert "Reconnecting" not in page.locator("body").inner_text()
