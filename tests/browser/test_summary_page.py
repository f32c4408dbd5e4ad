"""The public summary page /s/<mob id> in a real browser (headless Chromium)."""

import pytest
import requests

from tests.growth_support import clean_growth


@pytest.fixture(autouse=True)
def _clean(db):
    clean_growth(db)


def test_the_public_summary_page_shows_counts_pledges_and_sharers(live_server, rest, phone):
    mob = rest.published_mob(spacing_m=40)
    api = f"{live_server.url}/api/mobs/{mob['id']}"
    alice = requests.post(f"{api}/participants", json={"nickname": "Alice"}, timeout=10).json()
    requests.post(f"{api}/participants", json={"ref": alice["participant"]["ref_code"]}, timeout=10)
    requests.post(
        f"{live_server.url}/api/pledges",
        timeout=10,
        json={
            "mob": mob["id"],
            "amount_minor": 250,
            "currency": "EUR",
            "sponsor_name": "Bakery Schulz",
        },
    )

    page = phone().new_page()
    page.goto(f"/s/{mob['id']}")
    # A function, not an expression: the page's CSP forbids eval of a string.
    page.wait_for_function("() => document.getElementById('sum-title').textContent !== 'Loading…'")
    assert page.text_content("#sum-title") == mob["title"]
    assert page.text_content("#c-joined") == "2"
    assert page.text_content("#c-deeds_done") == "0"
    assert "EUR" in page.text_content("#c-pledged")
    assert "Bakery Schulz" not in page.content()  # sponsors stay unnamed in public
    sharers = page.locator("#sum-sharers li").all_text_contents()
    assert len(sharers) == 1 and sharers[0].startswith("Alice: brought 1")
    assert page.locator("#sum-funnel .sum-step").count() == 5
    assert page.locator("#sum-chart svg rect").count() >= 1
    assert page.locator("#sum-map .gm-task").count() == len(
        requests.get(f"{api}/tasks", timeout=10).json()["features"]
    )
    assert page.is_hidden("#sum-error")


def test_an_unknown_mob_says_so(live_server, phone):
    page = phone().new_page()
    page.goto("/s/nosuchmb")
    page.wait_for_selector("#sum-error", state="visible")
    assert page.text_content("#sum-error") == "There is no such mob."


def test_the_summary_says_true_things_without_shares_and_draws_a_chart_with_axes(
    live_server, rest, phone
):
    mob = rest.published_mob(spacing_m=40)  # lasts 2 minutes: two bars, both 0 so far
    api = f"{live_server.url}/api/mobs/{mob['id']}"
    for _ in range(2):  # two people joined, neither through a shared link
        assert requests.post(f"{api}/participants", json={}, timeout=10).status_code == 201
    minutes = requests.get(f"{api}/public-summary", timeout=10).json()["per_minute"]
    assert len(minutes) == 2

    page = phone().new_page()
    page.goto(f"/s/{mob['id']}")
    page.wait_for_function("() => document.getElementById('sum-title').textContent !== 'Loading…'")
    cascade = page.text_content("#sum-cascade-text")
    assert "0 long" not in cascade and "chain" not in cascade, cascade
    assert cascade == "None of the 2 who joined came through a shared link."

    chart = page.locator("#sum-chart svg")
    assert chart.locator("rect.sum-bar-rect").count() == 2
    assert chart.locator("line.sum-axis-x").count() == 1
    assert chart.locator("line.sum-axis-y").count() == 1
    x_ticks = chart.locator(".sum-tick-x text").all_text_contents()
    y_ticks = chart.locator(".sum-tick-y text").all_text_contents()
    assert x_ticks == ["1", "2"], x_ticks
    assert y_ticks[0] == "0" and len(y_ticks) >= 2, y_ticks
    labels = chart.locator("text.sum-axis-title").all_text_contents()
    assert labels == ["minute after GO", "deeds"], labels
    # The chart's text is not stretched: the drawing keeps its aspect ratio.
    assert chart.get_attribute("preserveAspectRatio") != "none"

    # The page has the app's icon, like every other page.
    assert page.locator('head link[rel="icon"]').get_attribute("href") == "/icons/icon.svg"
