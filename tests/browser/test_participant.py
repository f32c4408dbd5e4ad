"""The participant's journey in headless Chromium against a real server process.

Three phones (separate contexts: own storage, time zone, wall-clock offset, emulated GPS)
find a published mob, join, walk into the zone, get tasks, see the countdown and flip to GO
together on the true clock; one taps Done offline and the deed counts once when it is back.
"""

from __future__ import annotations

import json
import os
import signal
import time

import pytest
import requests
from playwright.sync_api import TimeoutError as PlaywrightTimeout

# Phones 60 m south of the park (outside the zone, too far to be matched to a task), each
# with its own time zone and a wrong wall clock; then they walk into the park.
PHONES = [
    {"lat": 52.53000, "lon": 13.3995, "timezone_id": "Europe/Berlin", "clock_offset_ms": 0},
    {
        "lat": 52.53012,
        "lon": 13.4005,
        "timezone_id": "America/New_York",
        "clock_offset_ms": 45_000,
    },  # fmt: skip
    {"lat": 52.53018, "lon": 13.4010, "timezone_id": "Asia/Tokyo", "clock_offset_ms": -120_000},
]
IN_THE_PARK = [(52.5320, 13.4000), (52.5315, 13.3990), (52.5325, 13.4012)]
NICKNAMES = ["Kim", "Ola", "Ren"]
GO_SKEW_MAX_MS = 100


def state(page) -> dict:
    return page.evaluate("() => window.__goodmobState()")


def wait_state(page, condition: str, timeout_ms: int = 15_000):
    """Waits until ``condition`` (JS, with ``s`` = window.__goodmobState()) holds."""
    try:
        page.wait_for_function(
            f"() => {{ const s = window.__goodmobState?.(); return Boolean(s && ({condition})); }}",
            timeout=timeout_ms,
        )
    except PlaywrightTimeout:
        pytest.fail(f"waited {timeout_ms} ms for {condition}; the page: {state(page)}")
    return state(page)


def discover_and_open(page, mob_id: str) -> None:
    """From the discover page (location already allowed) to the mob's page."""
    page.goto("/", wait_until="domcontentloaded")
    card = page.locator(f'.mob-card[data-mob="{mob_id}"]')
    card.wait_for(timeout=15_000)
    text = card.inner_text()
    assert "away" in text or "in the zone" in text, text  # the distance
    assert "GO in" in text or "GO\u00a0in" in text or "go in" in text.lower(), text
    card.click()
    page.wait_for_url(f"**/m/{mob_id}")


def join(page, nickname: str) -> None:
    page.locator("#view-join").wait_for(state="visible", timeout=15_000)
    page.fill("#nickname", nickname)
    page.click("#join-btn")
    page.locator("#view-main").wait_for(state="visible", timeout=15_000)


@pytest.fixture()
def mob(rest):
    return rest.published_mob()


def test_three_phones_find_join_walk_in_go_together_and_count_an_offline_deed_once(
    live_server, rest, mob, phone
):
    mob_id = mob["id"]
    contexts = [phone(**p) for p in PHONES]
    pages = [c.new_page() for c in contexts]
    urls: list[str] = []
    for page in pages:
        page.on("request", lambda r: urls.append(r.url))
        page.on("websocket", lambda ws: urls.append(ws.url))

    # Two phones find the mob nearby; the third opens the first one's shared link.
    for page, nickname in zip(pages[:2], NICKNAMES, strict=False):
        discover_and_open(page, mob_id)
        join(page, nickname)
    share_url = wait_state(pages[0], "s.shareUrl")["shareUrl"]
    ref = state(pages[0])["refCode"]
    assert share_url.endswith(f"/m/{mob_id}?ref={ref}")
    pages[2].goto(share_url, wait_until="domcontentloaded")
    pages[2].locator("#invited").wait_for(state="visible", timeout=10_000)
    with pages[2].expect_request(lambda r: r.url.endswith("/participants")) as joined:
        join(pages[2], NICKNAMES[2])
    assert json.loads(joined.value.post_data)["ref"] == ref

    # The token is kept per mob in localStorage, never in a URL (pages, API, WebSocket).
    for page in pages:
        saved = json.loads(page.evaluate(f"() => localStorage.getItem('goodmob:mob:{mob_id}')"))
        assert saved["token"] and all(saved["token"] not in url for url in urls)

    # Outside the zone, each phone is shown the way to it; inside, it gets a task; then it
    # walks to the task.
    for page in pages:
        s = wait_state(page, "s.zone?.state === 'outside'")
        assert s["task"] is None and "to the zone" in page.locator("#guide-sub").inner_text()
    for context, (lat, lon) in zip(contexts, IN_THE_PARK, strict=True):
        context.set_geolocation({"latitude": lat, "longitude": lon, "accuracy": 8})
    for context, page in zip(contexts, pages, strict=True):
        task = wait_state(page, "s.task && s.zone?.state === 'inside'")["task"]
        context.set_geolocation({"latitude": task["lat"], "longitude": task["lon"], "accuracy": 4})
    for page in pages:
        wait_state(page, "s.zone?.state === 'inside' && s.fix?.accuracy_m === 4")
        assert "at your spot" in page.locator("#guide-main").inner_text()
    assert len({state(p)["task"]["id"] for p in pages}) == 3
    assert rest.mob(mob_id)["counters"]["in_zone"] == 3

    # A message from the organizer reaches every phone.
    rest.call("POST", f"/mobs/{mob_id}/announcements", 201, json={"text": "Bags at the gate!"})
    for page in pages:
        banner = page.locator("#announcement")
        banner.wait_for(state="visible", timeout=5_000)
        assert "Bags at the gate!" in banner.inner_text()

    # The organizer starts the mob; every phone shows the countdown, then GO.
    rest.start_now(mob_id, lead_s=5)
    for page in pages:
        wait_state(page, "s.phase === 'countdown'", 5_000)
        assert page.locator("body.phase-countdown #main-clock .clock-value").is_visible()
    fired, timers = [], []
    for page in pages:
        page.wait_for_function("() => window.__goodmob && window.__goodmobClock", timeout=15_000)
        fired.append(page.evaluate("() => window.__goodmob"))
        timers.append(page.evaluate("() => window.__goodmobClock"))
        assert page.locator("#go-screen").is_visible()
        assert "Pick up the litter" in page.locator("#go-action").inner_text()
    # Each phone's own timer fired at the same instant (on the true clock), wrong wall clocks
    # and all; GO was shown then, or by the server's push if that got there a moment earlier
    # (a busy browser's timer runs late by more than the push takes on this machine).
    instants = [t["firedAtMs"] for t in timers]
    assert max(instants) - min(instants) < GO_SKEW_MAX_MS, timers
    shown = [f["firedAtMs"] for f in fired]
    assert max(shown) - min(shown) < GO_SKEW_MAX_MS, fired
    # The wrong wall clocks were seen and corrected by the clock sync.
    offsets = [state(p)["clock"]["offsetMs"] for p in pages]
    assert abs(offsets[1] + 45_000) < 1000 and abs(offsets[2] - 120_000) < 1000, offsets

    # Two phones confirm online.
    for page in pages[:2]:
        page.click("#done-btn")
        s = wait_state(page, "s.deed?.state === 'settled'")
        assert s["deed"]["answer"]["accepted"], s["deed"]
    assert rest.mob(mob_id)["counters"]["deeds_done"] == 2

    # The third phone loses the network, taps Done: kept on the phone, nothing sent.
    contexts[2].set_offline(True)
    wait_state(pages[2], "s.connection === 'offline'", 5_000)
    pages[2].click("#done-btn")
    s = wait_state(pages[2], "s.deed?.state === 'pending'")
    assert "Saved on your phone" in pages[2].locator("#done-state").inner_text()
    assert len(rest.deeds(mob_id)) == 2

    # Back online: delivered, counted once, the counters on the phones follow.
    contexts[2].set_offline(False)
    s = wait_state(pages[2], "s.deed?.state === 'settled'", 15_000)
    assert s["deed"]["answer"]["accepted"], s["deed"]
    deeds = rest.deeds(mob_id)
    assert len(deeds) == 3 and sum(d["deed_id"] == s["deed"]["deed_id"] for d in deeds) == 1
    assert rest.mob(mob_id)["counters"]["deeds_done"] == 3
    # (on its next location ack, or pushed once STATS_PARTICIPANTS_INTERVAL_S has passed
    # since its last counters: the first phone stands still, so within about 6 s)
    wait_state(pages[0], "s.counters?.deeds_done === 3", 10_000)

    # A reload keeps the deed (IndexedDB) and never sends it again.
    pages[2].reload(wait_until="domcontentloaded")
    wait_state(pages[2], "s.connection === 'joined' && s.deed?.state === 'settled'")
    assert pages[2].locator("#done-btn").is_hidden()
    assert len(rest.deeds(mob_id)) == 3

    # A late joiner lands straight on the action prompt, told how late it is.
    late = phone(lat=52.5320, lon=13.4000, timezone_id="Australia/Sydney").new_page()
    late.goto(f"/m/{mob_id}", wait_until="domcontentloaded")
    join(late, "Lou")
    late.locator("#go-screen").wait_for(state="visible", timeout=10_000)
    told = late.locator("#go-late").inner_text()
    assert "started" in told and "ago" in told and "left" in told, told
    assert late.evaluate("() => window.__goodmob.lateMs") > 1000


def test_discover_explains_before_asking_for_the_location(live_server, mob, phone):
    context = phone(permissions=())
    page = context.new_page()
    page.goto("/", wait_until="domcontentloaded")
    assert "Nobody else ever sees where you are" in page.locator("#locate").inner_text()
    assert page.locator("#results").is_hidden()  # nothing asked, nothing shown yet
    context.grant_permissions(["geolocation"])
    page.click("#locate-btn")
    card = page.locator(f'.mob-card[data-mob="{mob["id"]}"]')
    card.wait_for(timeout=10_000)
    assert "You're in the zone" in card.inner_text()  # the phone is in the park


def test_a_wrong_link_says_so(live_server, phone):
    page = phone().new_page()
    page.goto("/m/nosuchmob", wait_until="domcontentloaded")
    page.locator("#view-error").wait_for(state="visible", timeout=10_000)
    assert "couldn't find this mob" in page.locator("#error-text").inner_text()


def test_an_unknown_or_expired_place_asks_to_join_again(live_server, mob, phone):
    context = phone()
    context.add_init_script(
        f"if (location.pathname.startsWith('/m/')) localStorage.setItem('goodmob:mob:{mob['id']}', "
        "JSON.stringify({token: 'forged.token', participant: {nickname: 'Old'}}))"
    )
    page = context.new_page()
    page.goto(f"/m/{mob['id']}", wait_until="domcontentloaded")
    page.locator("#view-join").wait_for(state="visible", timeout=10_000)
    assert "Join again" in page.locator("#join-error").inner_text()
    assert page.evaluate(f"() => localStorage.getItem('goodmob:mob:{mob['id']}')") is None
    join(page, "New")
    assert state(page)["nickname"] == "New"


def test_a_view_is_counted_per_page_load_and_the_pledges_are_shown(live_server, rest, mob, phone):
    mob_id = mob["id"]
    funnel = f"{live_server.url}/api/mobs/{mob_id}/funnel"
    pledge = {"mob": mob_id, "amount_minor": 50, "currency": "EUR", "sponsor_name": "Bakery"}
    assert requests.post(f"{live_server.url}/api/pledges", json=pledge, timeout=10).ok
    page = phone().new_page()
    beacons: list[dict] = []
    page.on("request", lambda r: beacons.append(json.loads(r.post_data or "{}"))
            if r.url.endswith("/views") else None)  # fmt: skip
    page.goto(f"/m/{mob_id}", wait_until="domcontentloaded")
    page.locator("#join-pledges").wait_for(state="visible", timeout=10_000)
    assert "Sponsors give €0.50 per good deed" in page.locator("#join-pledges").inner_text()
    page.wait_for_function("() => performance.getEntriesByType('resource')"
                           ".some((e) => e.name.endsWith('/views'))")  # fmt: skip
    assert len(beacons) == 1 and len(beacons[0]["client_id"]) >= 8
    assert requests.get(funnel, timeout=10).json()["viewed"] == 1
    # A reload sends the beacon again with the same id: the server counts the phone once a day.
    page.reload(wait_until="domcontentloaded")
    page.locator("#join-pledges").wait_for(state="visible", timeout=10_000)
    page.wait_for_function("() => performance.getEntriesByType('resource')"
                           ".some((e) => e.name.endsWith('/views'))")  # fmt: skip
    assert len(beacons) == 2 and beacons[1]["client_id"] == beacons[0]["client_id"]
    assert requests.get(funnel, timeout=10).json()["viewed"] == 1
    join(page, "Pat")
    assert page.locator("#pledges").is_visible()
    share = wait_state(page, "s.shareUrl")["shareUrl"]
    assert share.endswith(f"/m/{mob_id}?ref={state(page)['refCode']}")


def test_a_phone_asleep_through_the_action_sees_the_end_after_a_phase_jump(
    live_server, rest, phone
):
    """The server misses the action (stopped): its scheduler jumps countdown → finished with
    one event. A phone awake all along fired GO on its own clock and ends with "That's a
    wrap!"; a phone asleep (its JavaScript paused in the debugger: no timer, no event runs)
    wakes up after the end: no GO flash, a closing screen that says it missed the action."""
    mob = rest.published_mob(duration_s=10)
    mob_id = mob["id"]
    contexts = [phone(), phone()]
    pages = [c.new_page() for c in contexts]
    for page, nickname in zip(pages, ("Awake", "Sleepy"), strict=True):
        page.goto(f"/m/{mob_id}", wait_until="domcontentloaded")
        join(page, nickname)
        wait_state(page, "s.connection === 'joined' && s.clock?.synced")
    started = rest.start_now(mob_id, 4)
    for page in pages:
        wait_state(page, "s.serverPhase === 'countdown'", 10_000)
    end_ms = started["timeline"]["end_at_ms"]
    sleeper = contexts[1].new_cdp_session(pages[1])
    sleeper.send("Debugger.enable")
    sleeper.send("Debugger.pause")  # at the next statement: the next timer (≤ 1 s)
    os.kill(live_server.proc.pid, signal.SIGSTOP)
    try:
        time.sleep(max(0.0, end_ms / 1000 - time.time()) + 1.5)
    finally:
        os.kill(live_server.proc.pid, signal.SIGCONT)

    awake = wait_state(pages[0], "s.serverPhase === 'finished'")
    assert awake["go"]["via"] == "clock"
    assert pages[0].locator("#go-word").inner_text() == "That's a wrap!"
    assert "Thank you for being part of it" in pages[0].locator("#go-action").inner_text()
    events = rest.call("GET", f"/mobs/{mob_id}/events?after=0", 200)["events"]
    phases = [e["data"]["phase"] for e in events if e["event"] == "phase"]
    assert phases[-2:] == ["countdown", "finished"], phases  # one jump over the action

    sleeper.send("Debugger.resume")
    sleeper.send("Debugger.disable")
    woke = wait_state(pages[1], "s.serverPhase === 'finished' && s.phase === 'finished'")
    assert woke["go"] is None and pages[1].evaluate("() => window.__goodmob") is None
    assert pages[1].locator("#go-screen").is_visible()
    assert pages[1].locator("#go-word").inner_text() == "That's a wrap!"
    assert "missed the action" in pages[1].locator("#go-action").inner_text()
    assert pages[1].locator("#done-btn").is_hidden() and pages[1].locator("#go-late").is_hidden()
    summary = pages[1].locator("#go-summary")
    assert summary.is_visible() and summary.get_attribute("href") == f"/s/{mob_id}"
