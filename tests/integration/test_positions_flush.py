"""Walking fixes acknowledged by a real server process are in the database after it stops."""

import requests
import socketio
from sqlalchemy import select

from server.infra.models import Participant
from support.organizer import Organizer
from tests.factories import PARK, future

NS = "/participant"


def _mob(server) -> dict:
    api = f"{server.url}/api"
    org = Organizer(server.url, timeout=5).sign_up(email="walk@example.org", name="Walk")
    headers = org.headers
    body = {"title": "Walk", "action": "Go", "zone": PARK, "go_at": future(), "duration_s": 60}
    mob = requests.post(f"{api}/mobs", json=body, headers=headers, timeout=5).json()
    r = requests.post(
        f"{api}/mobs/{mob['id']}/tasks/generate",
        json={"spacing_m": 40, "kind": "litter"},
        headers=headers,
        timeout=10,
    )
    assert r.status_code == 201
    assert requests.post(f"{api}/mobs/{mob['id']}/publish", headers=headers, timeout=5).ok
    return mob


def test_acknowledged_walking_fixes_survive_a_clean_stop(server, db):
    mob = _mob(server)
    phones = []
    for _ in range(5):
        r = requests.post(f"{server.url}/api/mobs/{mob['id']}/participants", json={}, timeout=5)
        sio = socketio.Client(reconnection=False)
        sio.connect(server.url, namespaces=[NS], auth={"token": r.json()["token"]},
                    transports=["websocket"], wait_timeout=10)  # fmt: skip
        phones.append((r.json()["participant"]["id"], sio))
    last = {}
    for step in range(4):  # a first fix (zone entry, task claim), then a few steps north
        for k, (pid, sio) in enumerate(phones):
            fix = {"lat": 52.5315 + 0.00001 * step + 0.0001 * k, "lon": 13.3995,
                   "accuracy_m": 8, "at": 0}  # fmt: skip
            ack = sio.call("report_location", fix, namespace=NS, timeout=10)
            assert ack["zone"] == "inside" and ack["counted"], ack
            last[pid] = (fix["lat"], fix["lon"])
    for _, sio in phones:
        sio.disconnect()
    server.stop()  # SIGTERM: a graceful stop writes what the buffer still holds

    db.expire_all()
    rows = db.execute(
        select(Participant.id, Participant.lat, Participant.lon).where(
            Participant.id.in_(list(last))
        )
    ).all()
    assert {r.id: (r.lat, r.lon) for r in rows} == last
