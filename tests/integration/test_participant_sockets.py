"""Real python-socketio clients against a real `python -m server` process."""

import threading
import time
import uuid
from datetime import UTC, datetime, timedelta

import pytest
import requests
import socketio
from sqlalchemy import select, update

from server.infra.models import Mob, Task
from support.organizer import Organizer
from support.server import ServerProcess
from tests.factories import PARK, future

NS = "/participant"
INSIDE = {"lat": 52.5320, "lon": 13.4000, "accuracy_m": 8, "at": 0}


def _organizer_mob(server, capacity: int):
    api = f"{server.url}/api"
    org = Organizer(server.url, timeout=5).sign_up(email="race@example.org", name="Race")
    headers = org.headers
    mob = requests.post(
        f"{api}/mobs",
        json={"title": "Race", "action": "Go", "zone": PARK, "go_at": future(), "duration_s": 60},
        headers=headers,
        timeout=5,
    ).json()
    r = requests.post(
        f"{api}/mobs/{mob['id']}/tasks/generate",
        json={"spacing_m": 40, "kind": "litter", "capacity": capacity},
        headers=headers,
        timeout=10,
    )
    assert r.status_code == 201
    assert requests.post(f"{api}/mobs/{mob['id']}/publish", headers=headers, timeout=5).ok
    return mob, headers


def _client(server, mob_id):
    r = requests.post(f"{server.url}/api/mobs/{mob_id}/participants", json={}, timeout=5)
    assert r.status_code == 201, r.text
    sio = socketio.Client(reconnection=False)
    sio.connect(server.url, namespaces=[NS], auth={"token": r.json()["token"]},
                transports=["websocket"], wait_timeout=10)  # fmt: skip
    return sio, r.json()["token"]


def test_50_clients_race_for_a_task_of_capacity_3(server, db):
    mob, _ = _organizer_mob(server, capacity=3)
    clients = [_client(server, mob["id"])[0] for _ in range(50)]
    barrier = threading.Barrier(len(clients))
    results: list = [None] * len(clients)

    def run(i, sio):
        barrier.wait()
        results[i] = sio.call("report_location", INSIDE, namespace=NS, timeout=30)

    threads = [threading.Thread(target=run, args=(i, c)) for i, c in enumerate(clients)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    for sio in clients:
        sio.disconnect()

    errors = [r for r in results if "zone" not in r]
    assert not errors, errors[:3]
    assert all(r["zone"] == "inside" and r["task"] for r in results), results[:3]
    tasks = [r["task"]["id"] for r in results]
    nearest = min(results, key=lambda r: r["task"]["distance_m"])["task"]["id"]
    assert tasks.count(nearest) == 3
    db.expire_all()
    stored = {t.id: t for t in db.scalars(select(Task))}
    for task_id in set(tasks):
        assert tasks.count(task_id) <= 3
        assert stored[task_id].assigned == tasks.count(task_id)


def test_a_replayed_deed_counts_once_even_after_reconnect(server, db):
    mob, headers = _organizer_mob(server, capacity=2)
    sio, token = _client(server, mob["id"])
    task = sio.call("report_location", INSIDE, namespace=NS, timeout=10)["task"]
    go = datetime.now(UTC) - timedelta(seconds=3)
    db.execute(update(Mob).where(Mob.id == mob["id"]).values(go_at=go, status="action"))
    db.commit()
    deed = {"deed_id": str(uuid.uuid4()), "task": task["id"], "lat": task["lat"],
            "lon": task["lon"], "accuracy_m": 8}  # fmt: skip
    answers = [sio.call("confirm_deed", deed, namespace=NS, timeout=10) for _ in range(5)]
    sio.disconnect()
    again = socketio.Client(reconnection=False)
    again.connect(server.url, namespaces=[NS], auth={"token": token}, transports=["websocket"])
    answers.append(again.call("confirm_deed", deed, namespace=NS, timeout=10))
    again.disconnect()
    assert all(a == answers[0] for a in answers) and answers[0]["accepted"] is True
    r = requests.get(f"{server.url}/api/mobs/{mob['id']}", timeout=5).json()
    assert r["counters"]["deeds_done"] == 1


def test_tokens_are_checked_on_connect(server, db):
    mob, headers = _organizer_mob(server, capacity=1)
    for auth in (None, {"token": "forged"}, {"token": headers["Authorization"][7:]}):
        sio = socketio.Client(reconnection=False)
        try:
            sio.connect(server.url, namespaces=[NS], auth=auth, transports=["websocket"],
                        wait_timeout=5)  # fmt: skip
            connected = sio.connected
        except socketio.exceptions.ConnectionError:
            connected = False
        finally:
            sio.disconnect()
        assert not connected, auth


@pytest.fixture()
def scraped_server(database_url, db):
    """A real server whose /metrics is scraped with METRICS_TOKEN, as in production."""
    from tests.integration.test_metrics import METRICS_TOKEN

    process = ServerProcess(database_url, METRICS_TOKEN=METRICS_TOKEN).start()
    yield process
    process.stop()


def test_room_events_reach_websocket_and_polling_phones_whole_and_in_order(scraped_server, db):
    """A room event is written straight to each idle WebSocket and queued behind whatever
    a connection is still sending (acks here) or for long-polling phones: every phone gets
    every announcement, once, in order, whichever way it went (both ways counted)."""
    from tests.integration.test_metrics import scrape, value

    mob, headers = _organizer_mob(scraped_server, capacity=3)
    transports = ["websocket"] * 6 + ["polling"] * 2
    phones, seen = [], [[] for _ in transports]
    for i, transport in enumerate(transports):
        r = requests.post(
            f"{scraped_server.url}/api/mobs/{mob['id']}/participants", json={}, timeout=5
        )
        sio = socketio.Client(reconnection=False)
        sio.on("announcement", lambda d, i=i: seen[i].append((d["seq"], d["text"])), namespace=NS)
        sio.connect(scraped_server.url, namespaces=[NS], auth={"token": r.json()["token"]},
                    transports=[transport], wait_timeout=10)  # fmt: skip
        sio.call("join_mob", {"mob": mob["id"]}, namespace=NS, timeout=10)
        phones.append(sio)
    frames = "goodmob_socket_frames_sent_total"
    before = scrape(scraped_server.url)
    stop = threading.Event()

    def report(sio):  # acks queued on the same connections while announcements go out
        while not stop.is_set():
            sio.call("report_location", INSIDE, namespace=NS, timeout=10)

    reporters = [threading.Thread(target=report, args=(p,)) for p in phones[:3]]
    for t in reporters:
        t.start()
    sent = []
    try:
        for k in range(30):
            r = requests.post(f"{scraped_server.url}/api/mobs/{mob['id']}/announcements",
                              json={"text": f"note {k}"}, headers=headers, timeout=5)  # fmt: skip
            assert r.status_code == 201, r.text
            sent.append((r.json()["seq"], f"note {k}"))
        deadline = time.monotonic() + 15
        while time.monotonic() < deadline and any(len(s) < len(sent) for s in seen):
            time.sleep(0.05)
    finally:
        stop.set()
        for t in reporters:
            t.join()
        for sio in phones:
            sio.disconnect()
    for i, got in enumerate(seen):
        assert got == sent, (transports[i], got[:5], sent[:5])
    after = scrape(scraped_server.url)
    direct = value(after, frames, path="direct") - value(before, frames, path="direct")
    queued = value(after, frames, path="queued") - value(before, frames, path="queued")
    assert direct >= 30 * 3  # at least the three idle WebSocket phones' frames went straight
    assert queued >= 30 * 2  # the polling phones' frames always go through the queue
    assert direct + queued >= 30 * len(transports)
