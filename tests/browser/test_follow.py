"""Following from the pages, and the service worker's notifications (issue 19), in headless
Chromium.

No automation can tap a system notification in headless Chromium: the test opens it through
the worker's `open-notification` message, which runs the code of `notificationclick`
(pwa/sw.js). A push is delivered through the DevTools protocol
(`ServiceWorker.deliverPushMessage`): headless Chromium has no push service to subscribe to,
so the page's `pushManager.subscribe` fails there and the page says notifications could not
be set up (the server's sending side is tested in tests/integration).
"""

from __future__ import annotations

import json

import pytest
import requests
from sqlalchemy import select

from server.domain import follows
from server.infra.models import Mob
from tests.growth_support import clean_growth

NOTE = "[data-follow-note]"


@pytest.fixture(autouse=True)
def _clean(db):
    clean_growth(db)


def follows_of(live_server, page) -> dict:
    """What the server holds for this browser's follower (its token from localStorage)."""
    saved = page.evaluate("() => JSON.parse(localStorage.getItem('goodmob:follower'))")
    r = requests.get(
        f"{live_server.url}/api/followers/me",
        headers={"Authorization": f"Bearer {saved['token']}"},
        timeout=10,
    )
    assert r.status_code == 200, r.text
    return r.json()


def registration_id(cdp, page) -> str:
    found: list = []
    cdp.on("ServiceWorker.workerRegistrationUpdated", lambda e: found.extend(e["registrations"]))
    cdp.send("ServiceWorker.enable")
    for _ in range(50):
        live = [r for r in found if not r["isDeleted"]]
        if live:
            return live[-1]["registrationId"]
        page.wait_for_timeout(100)
    raise AssertionError("no service worker registration reported")


def notifications(page) -> list[dict]:
    return page.evaluate(
        """async () => (await (await navigator.serviceWorker.ready).getNotifications())
             .map((n) => ({title: n.title, body: n.body, tag: n.tag, icon: n.icon,
                           data: n.data}))"""
    )


def wait_for_note(page, selector: str, pattern: str) -> str:
    """Waits until the follow note at ``selector`` matches the regular expression."""
    page.wait_for_function(
        "([sel, re]) => new RegExp(re).test(document.querySelector(sel)?.textContent ?? '')",
        arg=[selector, pattern],
    )
    return page.text_content(selector)


def test_follow_from_the_mob_page_then_a_push_shows_and_its_click_opens_the_mob(
    live_server, rest, phone, db
):
    mob = rest.published_mob()
    context = phone(permissions=("geolocation", "notifications"))
    page = context.new_page()
    page.goto(f"/m/{mob['id']}")
    button = page.locator("#view-join [data-follow]")
    button.wait_for(state="visible")
    assert page.evaluate("() => Notification.permission") == "granted"
    page.wait_for_function("() => navigator.serviceWorker.controller !== null", timeout=30_000)
    button.click()
    wait_for_note(page, f"#view-join {NOTE}", "Notifications|tell you")
    assert button.text_content() == "Following Ada" and button.is_disabled()
    assert "What I follow" in page.text_content(f"#view-join {NOTE}")
    follower = follows_of(live_server, page)
    assert [(f["type"], f["organizer"]["name"]) for f in follower["follows"]] == [
        ("organizer", "Ada")
    ]

    # The server's own push body for this mob (follows.push_payload, _notification), twice:
    # the later one replaces the first (one tag per mob).
    payload = follows.push_payload(db.scalar(select(Mob).where(Mob.id == mob["id"])))
    cdp = context.new_cdp_session(page)
    rid = registration_id(cdp, page)
    for body in (payload, {**payload, "mob": {**payload["mob"], "title": "Moved"}}):
        data = follows._notification(body, ["organizer"])
        sent = json.loads(data)
        assert set(sent) == {"type", "title", "body", "url", "mob", "reasons"}
        # Public facts about the mob only (lat/lon: a point of its zone): no token, no one's fix.
        assert set(sent["mob"]) == {"id", "title", "organizer", "go_at_ms", "url", "lat", "lon"}
        cdp.send(
            "ServiceWorker.deliverPushMessage",
            {"origin": live_server.url, "registrationId": rid, "data": data},
        )
    for _ in range(50):  # wait_for_function cannot await
        shown = notifications(page)
        if any(n["title"].endswith("Moved") for n in shown):
            break
        page.wait_for_timeout(100)
    [note] = shown
    assert note["title"] == "New Good Mob: Moved"
    assert note["body"] == "By Ada, near an organizer you follow."
    assert note["tag"] == f"mob-{mob['id']}"
    assert note["icon"].endswith("/icons/icon-192.png")
    assert note["data"]["url"] == f"/m/{mob['id']}"

    # Tap it from another page: the worker runs the click's code and the mob page opens.
    page.goto("/")
    page.wait_for_function("() => navigator.serviceWorker.controller !== null", timeout=30_000)
    page.evaluate(
        "(tag) => navigator.serviceWorker.controller.postMessage({type: 'open-notification', tag})",
        note["tag"],
    )
    page.wait_for_url(f"**/m/{mob['id']}")
    page.locator("#view-join").wait_for(state="visible")
    for _ in range(50):
        if notifications(page) == []:  # the tapped notification is closed
            break
        page.wait_for_timeout(100)
    assert notifications(page) == []


def test_a_refused_permission_still_follows_in_the_app(live_server, rest, phone):
    mob = rest.published_mob()
    context = phone()
    # Never asked before, and the person says no when asked (headless Chromium has no
    # prompt to answer).
    context.add_init_script(
        "Object.defineProperty(Notification, 'permission',"
        " {get: () => window.__answer ?? 'default'});"
        "Notification.requestPermission = () => { window.__asked = (window.__asked || 0) + 1;"
        " window.__answer = 'denied'; return Promise.resolve('denied'); };"
    )
    page = context.new_page()
    page.goto(f"/m/{mob['id']}")
    button = page.locator("#view-join [data-follow]")
    button.wait_for(state="visible")
    page.wait_for_timeout(300)
    assert page.evaluate("() => window.__asked ?? 0") == 0  # never asked on load
    button.click()
    wait_for_note(page, f"#view-join {NOTE}", "^Notifications are off")
    assert page.evaluate("() => window.__asked") == 1
    assert button.text_content() == "Following Ada"
    assert [f["type"] for f in follows_of(live_server, page)["follows"]] == ["organizer"]
    page.reload()
    button.wait_for(state="visible")
    assert button.text_content() == "Following the organizer" and button.is_disabled()


def test_follow_from_the_summary_page(live_server, rest, phone):
    mob = rest.published_mob()
    page = phone().new_page()
    page.goto(f"/s/{mob['id']}")
    button = page.locator("[data-follow]")
    button.wait_for(state="visible")
    button.click()
    wait_for_note(page, NOTE, "Notifications")
    assert button.text_content() == "Following Ada"
    assert [f["label"] for f in follows_of(live_server, page)["follows"]] == ["Ada"]


def test_follow_a_place_from_the_discover_page_and_unfollow_on_the_following_page(
    live_server, rest, phone
):
    mob = rest.published_mob()
    page = phone().new_page()
    page.goto("/")
    page.locator(".mob-card").first.wait_for()  # located and searched
    page.select_option("#follow-radius", "20000")
    page.click("#follow-place-btn")
    note = wait_for_note(page, "#follow-place-note", "^Following")
    assert note.startswith("Following: Mobs within 20 km of 52.5")
    assert "Notifications are off" in note
    page.goto(f"/m/{mob['id']}")
    page.click("#view-join [data-follow]")
    wait_for_note(page, f"#view-join {NOTE}", "Notifications")

    page.goto("/following")
    items = page.locator("#follows li")
    items.first.wait_for()
    assert sorted(items.all_text_contents()) == [
        "Mobs by AdaUnfollow",
        "Mobs within 20 km of 52.532, 13.400Unfollow",
    ]
    assert "Notifications are off" in page.text_content("#notify-state")
    page.locator("#follows li", has_text="Mobs by Ada").get_by_role("button").click()
    page.wait_for_function("() => document.querySelectorAll('#follows li').length === 1")
    assert [f["type"] for f in follows_of(live_server, page)["follows"]] == ["place"]
    # Without notifications the open app is told: a mob published in the place shows up.
    page.wait_for_timeout(500)  # the /follow socket connects
    fresh = rest.published_mob(title="Plant the bulbs")
    page.locator("#new-list li").wait_for()
    assert page.text_content("#new-list li") == "Plant the bulbs by Ada"
    assert page.get_attribute("#new-list a", "href") == f"/m/{fresh['id']}"
    page.goto(f"/m/{mob['id']}")  # the mob page knows it is no longer followed
    button = page.locator("#view-join [data-follow]")
    button.wait_for(state="visible")
    assert button.text_content() == "Follow the organizer" and button.is_enabled()
