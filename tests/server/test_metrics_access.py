"""Who may scrape /metrics, and what a scrape must not list (drafts).

``METRICS_TOKEN`` set: a bearer with it, nobody else. Unset: nobody in production, loopback
clients only in development and tests. The organizer's socket on a draft is counted under
``mob="draft"``, never under the draft's id.
"""

from __future__ import annotations

from contextlib import contextmanager
from dataclasses import replace

from server import socketio
from tests.factories import auth, make_mob, make_organizer, make_published_mob

TOKEN = "scrape-me-" + "s" * 24


@contextmanager
def settings_of(app, **overrides):
    before = app.config["SETTINGS"]
    app.config["SETTINGS"] = replace(before, **overrides)
    try:
        yield
    finally:
        app.config["SETTINGS"] = before


def scrape(client, headers=None, addr="127.0.0.1"):
    return client.get("/metrics", headers=headers or {}, environ_base={"REMOTE_ADDR": addr})


def test_without_a_token_only_loopback_may_scrape_and_production_nobody(app, client):
    r = scrape(client)
    assert r.status_code == 200 and b"goodmob_metrics_database_up" in r.data
    for addr in ("203.0.113.5", "10.0.0.7", "::ffff:203.0.113.5"):
        r = scrape(client, addr=addr)
        assert r.status_code == 404 and r.get_json()["error"]["code"] == "not_found", addr
        assert b"goodmob_" not in r.data
    with settings_of(app, env="production"):
        r = scrape(client)
        assert r.status_code == 404 and b"goodmob_" not in r.data


def test_with_a_token_only_its_bearer_may_scrape(app, client):
    with settings_of(app, metrics_token=TOKEN):
        for headers, code in (
            ({}, "auth_required"),
            (auth("wrong-" + TOKEN), "token_invalid"),
            ({"Authorization": TOKEN}, "token_invalid"),
        ):
            r = scrape(client, headers)  # from loopback too: the token is what counts
            assert r.status_code == 401 and r.get_json()["error"]["code"] == code
            assert b"goodmob_" not in r.data
        r = scrape(client, auth(TOKEN), addr="203.0.113.5")
        assert r.status_code == 200 and b"goodmob_metrics_database_up" in r.data
    with settings_of(app, metrics_token=TOKEN, env="production"):
        assert scrape(client, auth(TOKEN), addr="203.0.113.5").status_code == 200


def test_a_scrape_lists_no_draft_id(app, client):
    token = make_organizer(client)
    draft = make_mob(client, token)
    public = make_published_mob(client, token, spacing_m=40)
    org = socketio.test_client(app, namespace="/organizer", auth={"token": token})
    ack = org.emit("watch_mob", {"mob": draft["id"]}, namespace="/organizer", callback=True)
    assert ack["mob"]["id"] == draft["id"]
    text = scrape(client).get_data(as_text=True)
    assert draft["id"] not in text
    assert 'audience="organizer",mob="draft"' in text
    ack = org.emit("watch_mob", {"mob": public["id"]}, namespace="/organizer", callback=True)
    text = scrape(client).get_data(as_text=True)
    assert f'audience="organizer",mob="{public["id"]}"' in text and draft["id"] not in text
    org.disconnect("/organizer")
