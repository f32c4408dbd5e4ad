"""A campaign's world live map (/live/c/<campaign id>) in headless Chromium.

Three mobs in Berlin, New York and Tokyo share one GO instant: the page shows each zone on
one world map, the GO in each city's local time, per-mob and global counters and the
campaign's pledges, refreshed from GET /api/campaigns/<id> every few seconds.
"""

from __future__ import annotations

import requests
import socketio
from playwright.sync_api import expect

from tests.factories import future
from tests.growth_support import CITIES, square


def city_mob(rest, time_zone: str) -> dict:
    lon, lat = CITIES[time_zone]
    body = {
        "title": f"Clean-up {time_zone.split('/')[-1].replace('_', ' ')}",
        "action": "Pick up the litter around your spot",
        "zone": square(lon, lat),
        "go_at": future(120),
        "duration_s": 10,
    }
    mob = rest.call("POST", "/mobs", 201, json=body)
    rest.call("POST", f"/mobs/{mob['id']}/tasks/generate", 201,
              json={"spacing_m": 40, "kind": "litter"})  # fmt: skip
    return mob


def arrive(url: str, mob_id: str, lon: float, lat: float) -> socketio.Client:
    """A participant who joins and stands inside the zone (a real Socket.IO client)."""
    joined = requests.post(f"{url}/api/mobs/{mob_id}/participants", json={}, timeout=10).json()
    sio = socketio.Client(reconnection=False)
    sio.connect(url, namespaces=["/participant"], auth={"token": joined["token"]},
                transports=["websocket"])  # fmt: skip
    sio.call("join_mob", {"mob": mob_id}, namespace="/participant", timeout=10)
    fix = {"lat": lat + 0.00011, "lon": lon + 0.00013, "accuracy_m": 6}
    ack = sio.call("report_location", fix, namespace="/participant", timeout=10)
    assert ack.get("zone") == "inside", ack
    return sio


def test_the_world_live_map_of_a_campaign(live_server, rest, phone):
    url = live_server.url
    campaign = rest.call("POST", "/campaigns", 201,
                         json={"title": "World clean-up", "go_at": future(90)})  # fmt: skip
    cid = campaign["id"]
    mobs = {}
    for time_zone in CITIES:
        mob = city_mob(rest, time_zone)
        rest.call("POST", f"/campaigns/{cid}/mobs", 201,
                  json={"mob": mob["id"], "time_zone": time_zone})  # fmt: skip
        mobs[time_zone] = mob
    body = rest.call("POST", f"/campaigns/{cid}/publish", 200)
    local = {m["id"]: m["go_local"]["local_time"] for m in body["mobs"]}
    assert len(set(local.values())) == 3  # one instant, three local clocks
    pledge = {"campaign": cid, "amount_minor": 25, "currency": "EUR", "sponsor_name": "Co-op"}
    assert requests.post(f"{url}/api/pledges", json=pledge, timeout=10).status_code == 201
    berlin = mobs["Europe/Berlin"]["id"]
    clients = [arrive(url, berlin, *CITIES["Europe/Berlin"])]
    try:
        page = phone().new_page()
        page.goto(f"/live/c/{cid}")
        expect(page.locator("#camp-title")).to_have_text("World clean-up")
        items = page.locator(".camp-mob")
        expect(items).to_have_count(3)
        for mob in body["mobs"]:
            item = page.locator(f'.camp-mob[data-mob="{mob["id"]}"]')
            expect(item.locator(".camp-mob-time")).to_contain_text(f"GO {local[mob['id']]}")
            expect(item.locator(".camp-mob-title")).to_have_attribute("href", f"/live/{mob['id']}")
        berlin_item = page.locator(f'.camp-mob[data-mob="{berlin}"]')
        expect(berlin_item.locator(".camp-mob-counts")).to_contain_text("1 joined")
        expect(page.locator("#camp-count")).to_have_text("3 mobs · 3 cities")
        expect(page.locator("#camp-cd-label")).to_have_text("GO everywhere in")
        expect(page.locator("#camp-cd-sub")).to_contain_text("in Berlin")
        expect(page.locator("#camp-cd-sub")).to_contain_text("in New York")
        expect(page.locator("#g-joined")).to_have_text("1")
        expect(page.locator("#g-in_zone")).to_have_text("1")
        expect(page.locator("#camp-pledges-text")).to_have_text("Sponsors give €0.25 per good deed")
        # Each zone on the world map, with a pin per city.
        expect(page.locator("#camp-map path")).to_have_count(3)
        expect(page.locator(".camp-pin")).to_have_count(3)
        expect(page.locator(".camp-pin").filter(has_text="Tokyo")).to_have_count(1)

        # Someone arrives in Tokyo: the global counter follows within a refresh.
        clients.append(arrive(url, mobs["Asia/Tokyo"]["id"], *CITIES["Asia/Tokyo"]))
        expect(page.locator("#g-joined")).to_have_text("2", timeout=10_000)
        tokyo_item = page.locator(f'.camp-mob[data-mob="{mobs["Asia/Tokyo"]["id"]}"]')
        expect(tokyo_item.locator(".camp-mob-counts")).to_contain_text("1 joined")

        # The organizer starts every mob at once: the whole campaign goes.
        rest.call("POST", f"/campaigns/{cid}/start-now", 200, json={"lead_s": 3})
        expect(page.locator("#camp-countdown")).to_have_attribute(
            "data-phase", "action", timeout=15_000
        )
        expect(page.locator("#camp-phase")).to_have_text("GO!")
    finally:
        for sio in clients:
            sio.disconnect()


def test_a_campaign_link_to_nothing_says_so(live_server, phone):
    page = phone().new_page()
    page.goto("/live/c/nosuchcampaign")
    expect(page.locator("#camp-error")).to_be_visible()
    expect(page.locator("#camp-error")).to_contain_text("No such campaign")
