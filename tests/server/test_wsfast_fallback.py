"""server/realtime/wsfast.py and server/realtime/rooms.py on library versions other than those
they were tested with: the app falls back to the libraries' stock path (stock client manager,
python-socketio's own binary check), says so in one warning and in ``goodmob_wsfast_enabled``
on /metrics, and still serves sockets: a phone joins, an organizer's announcement reaches it
through the room, an unreadable packet is still refused with ``invalid_json``. Only the version
lookup is faked."""

import logging

import socketio as python_socketio

from server import create_app, socketio
from server.realtime import wsfast
from server.realtime.rooms import IndexedManager
from tests.factories import auth, make_organizer, make_published_mob

P, LIVE = "/participant", "/live"


def _stock_app(settings, monkeypatch):
    newer = {**wsfast.TESTED_WITH, "python-socketio": "5.99.0"}
    monkeypatch.setattr(wsfast, "installed_versions", lambda: dict(newer))
    return create_app(settings)


def test_other_library_versions_fall_back_to_the_stock_path_and_still_serve(
    settings, db, monkeypatch, caplog
):
    saved = socketio.server, socketio.sockio_mw, socketio.async_mode
    with caplog.at_level(logging.WARNING, logger="goodmob.wsfast"):
        app = _stock_app(settings, monkeypatch)
    try:
        warned = [r.getMessage() for r in caplog.records if r.name == "goodmob.wsfast"]
        assert len(warned) == 1, warned
        assert "stock path for sockets" in warned[0]
        assert "python-socketio 5.99.0" in warned[0] and "python-socketio 5.18.1" in warned[0]
        assert app.extensions["goodmob.wsfast"] == wsfast.Fast(sockets=False, frames=True)
        server = socketio.server
        assert type(server.manager) is python_socketio.Manager  # not IndexedManager
        assert not isinstance(server.manager, IndexedManager)
        assert server.packet_class is wsfast.SocketPacket
        assert server.packet_class.json is wsfast.SocketJSON

        client = app.test_client()
        scraped = client.get("/metrics").get_data(as_text=True)
        assert 'goodmob_wsfast_enabled{part="sockets"} 0.0' in scraped
        assert 'goodmob_wsfast_enabled{part="frames"} 1.0' in scraped

        token = make_organizer(client)
        mob = make_published_mob(client, token, spacing_m=40)
        phone_token = client.post(f"/api/mobs/{mob['id']}/participants", json={}).get_json()
        phone = socketio.test_client(app, namespace=P, auth={"token": phone_token["token"]})
        assert phone.is_connected(P)
        snap = phone.emit("join_mob", {"mob": mob["id"]}, namespace=P, callback=True)
        assert "error" not in snap, snap
        phone.get_received(P)
        r = client.post(
            f"/api/mobs/{mob['id']}/announcements",
            json={"text": "Bring water"},
            headers=auth(token),
        )
        assert r.status_code == 201, r.get_json()
        got = [e["args"][0] for e in phone.get_received(P) if e["name"] == "announcement"]
        assert [a["seq"] for a in got] == [r.get_json()["seq"]], got

        live = socketio.test_client(app, namespace=LIVE)
        server._handle_eio_message(live.eio_sid, '2/live,7["watch_mob",' + "[" * 1000)
        (body,) = live.acks["args"]
        assert body["error"]["code"] == "invalid_json"
        phone.disconnect(namespace=P)
        live.disconnect(namespace=LIVE)
        assert P not in server.manager.rooms or not server.manager.rooms[P].get(f"mob:{mob['id']}")
    finally:
        app.extensions["goodmob.engine"].dispose()
        socketio.server, socketio.sockio_mw, socketio.async_mode = saved
        monkeypatch.undo()
        assert wsfast.check() == wsfast.Fast()  # the gauge back to 1 for the tests after
