"""Several real server processes joined by Redis: one timeline, each phase emitted once.

Every process runs the phase scheduler; the database's compare-and-set decides which one
emits a transition. Clients are real python-socketio clients over WebSocket.
"""

from __future__ import annotations

import os
import signal
import subprocess
import threading
import time
import uuid

import requests
import socketio
from sqlalchemy import text

from support.organizer import Organizer
from support.ports import free_port
from support.server import ServerProcess
from tests.factories import PARK, future

NS = "/participant"
FAST = {"START_NOW_MIN_LEAD_S": "1", "DURATION_MIN_S": "1"}


class Phone:
    """A participant's real Socket.IO client that records events and re-joins on reconnect."""

    def __init__(self, base_url: str, mob_id: str):
        r = requests.post(f"{base_url}/api/mobs/{mob_id}/participants", json={}, timeout=5)
        assert r.status_code == 201, r.text
        self.token = r.json()["token"]
        self.mob_id = mob_id
        self.events: list[tuple[str, dict]] = []
        self.timeline: dict | None = None
        self.last_seq = None
        self.connects = 0
        self.seen: set[int] = set()
        self.lock = threading.Lock()
        self.joined = threading.Event()
        self.sio = socketio.Client(reconnection=True, reconnection_delay=0.2)
        self.sio.on("connect", self._on_connect, namespace=NS)
        for name in ("timeline", "phase", "announcement"):
            self.sio.on(name, self._recorder(name), namespace=NS)
        self.sio.connect(
            base_url, namespaces=[NS], auth={"token": self.token}, transports=["websocket"]
        )
        assert self.joined.wait(10)

    def _on_connect(self):
        self.connects += 1
        self.sio.emit(
            "join_mob", {"mob": self.mob_id, "last_seq": self.last_seq}, NS, self._on_snapshot
        )

    def _on_snapshot(self, snap):
        with self.lock:
            if not any(n == "timeline" for n, _ in self.events):
                self.timeline = snap["timeline"]
        for missed in snap.get("missed") or []:
            self._record(missed["event"], missed["data"])
        with self.lock:
            self.last_seq = max(self.last_seq or 0, snap["seq"])
        self.joined.set()

    def _recorder(self, name):
        return lambda data: self._record(name, data)

    def _record(self, name, data):
        # python-socketio runs each handler in its own thread, so events may be handled out
        # of order here (a browser handles them in order); keep them sorted by seq.
        with self.lock:
            if data["seq"] in self.seen:
                return  # already seen (a replay overlapping a live event)
            self.seen.add(data["seq"])
            self.events.append((name, data))
            self.events.sort(key=lambda e: e[1]["seq"])
            self.last_seq = max(self.last_seq or 0, data["seq"])
            timelines = [d["timeline"] for n, d in self.events if n == "timeline"]
            if timelines:
                self.timeline = timelines[-1]

    def call(self, event: str, data: dict, timeout_s: float = 20) -> dict:
        """Emit with an ack; retry the same payload while the connection is being re-made."""
        deadline = time.monotonic() + timeout_s
        while True:
            try:
                return self.sio.call(event, data, namespace=NS, timeout=2)
            except (socketio.exceptions.TimeoutError, socketio.exceptions.BadNamespaceError):
                if time.monotonic() > deadline:
                    raise
                time.sleep(0.1)

    def phases(self) -> list[str]:
        return [d["phase"] for n, d in self.events if n == "phase"]

    def close(self):
        self.sio.disconnect()


def _mob(base_url: str, duration_s: int = 2) -> tuple[dict, dict]:
    api = f"{base_url}/api"
    headers = Organizer(base_url, timeout=5).sign_up(name="Org").headers
    body = {
        "title": "Two",
        "action": "Go",
        "zone": PARK,
        "go_at": future(),
        "duration_s": duration_s,
    }
    mob = requests.post(f"{api}/mobs", json=body, headers=headers, timeout=5).json()
    r = requests.post(
        f"{api}/mobs/{mob['id']}/tasks/generate",
        json={"spacing_m": 40, "kind": "litter", "capacity": 5},
        headers=headers,
        timeout=10,
    )
    assert r.status_code == 201, r.text
    assert requests.post(f"{api}/mobs/{mob['id']}/publish", headers=headers, timeout=5).ok
    return mob, headers


def _wait(predicate, timeout_s: float) -> bool:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(0.05)
    return predicate()


def test_two_processes_share_one_timeline_and_emit_each_phase_once(database_url, db, redis_env):
    a = ServerProcess(database_url, **redis_env, **FAST).start()
    b = ServerProcess(database_url, **redis_env, **FAST).start()
    phones = []
    try:
        mob, headers = _mob(a.url)
        phones = [Phone(server.url, mob["id"]) for server in (a, b, a, b, a, b)]
        live = socketio.Client()
        watched = []
        live.on("phase", lambda d: watched.append(d["phase"]), namespace="/live")
        live.connect(b.url, namespaces=["/live"], transports=["websocket"])
        assert live.call("watch_mob", {"mob": mob["id"]}, namespace="/live")["phase"] == "published"
        r = requests.post(f"{b.url}/api/mobs/{mob['id']}/start-now", json={"lead_s": 2},
                          headers=headers, timeout=5)  # fmt: skip
        assert r.status_code == 200, r.text
        go_ms = r.json()["timeline"]["go_at_ms"]
        assert _wait(lambda: all("finished" in p.phases() for p in phones), 15)
        for phone in phones:
            assert phone.phases() == ["countdown", "action", "finished"]
            assert phone.timeline["go_at_ms"] == go_ms, phone.events
            assert phone.timeline["version"] == 2
            seqs = [d["seq"] for _, d in phone.events]
            assert seqs == sorted(set(seqs)), seqs
            [action] = [d for n, d in phone.events if n == "phase" and d["phase"] == "action"]
            assert action["at_ms"] == go_ms
        assert watched == ["countdown", "action", "finished"]
        log = requests.get(f"{a.url}/api/mobs/{mob['id']}/events", timeout=5).json()["events"]
        assert [(e["event"], e["data"].get("phase")) for e in log] == [
            ("timeline", None),
            ("phase", "countdown"),
            ("phase", "action"),
            ("phase", "finished"),
        ]
        live.disconnect()
    finally:
        for phone in phones:
            phone.close()
        a.stop()
        b.stop()


def _children(pid: int) -> list[int]:
    out = subprocess.run(["pgrep", "-P", str(pid)], capture_output=True, text=True).stdout
    return [int(x) for x in out.split()]


def test_killing_one_of_two_workers_in_the_countdown_moves_its_phones(database_url, db, redis_env):
    port = free_port()
    server = ServerProcess(database_url, "--workers", "2", port=port, **redis_env, **FAST)
    server.start()
    phones = []
    try:
        assert _wait(lambda: len(_children(server.proc.pid)) == 2, 10)
        workers = _children(server.proc.pid)
        assert len(workers) == 2, workers
        mob, headers = _mob(server.url, duration_s=30)
        phones = [Phone(server.url, mob["id"]) for _ in range(16)]
        r = requests.post(f"{server.url}/api/mobs/{mob['id']}/start-now", json={"lead_s": 6},
                          headers=headers, timeout=5)  # fmt: skip
        go_ms = r.json()["timeline"]["go_at_ms"]
        assert _wait(lambda: all("countdown" in p.phases() for p in phones), 5)
        os.kill(workers[0], signal.SIGKILL)  # mid-countdown, no goodbye
        assert _wait(lambda: all("action" in p.phases() for p in phones), 15)
        moved = [p for p in phones if p.connects > 1]
        assert moved, "no phone was on the killed worker"
        for phone in phones:
            assert phone.timeline["go_at_ms"] == go_ms
            assert phone.phases() == ["countdown", "action"]
            assert phone.sio.connected
    finally:
        for phone in phones:
            phone.close()
        server.stop()


def test_rolling_restart_in_the_countdown_loses_no_phone_and_no_deed(database_url, db, redis_env):
    port = free_port()
    server = ServerProcess(
        database_url, "--workers", "2", port=port, WORKER_BOOT_S="60", **redis_env, **FAST
    )
    server.start(timeout_s=90)  # a busy machine: a worker took 25-30 s to start
    phones = []
    try:
        mob, headers = _mob(server.url, duration_s=60)
        phones = [Phone(server.url, mob["id"]) for _ in range(12)]
        tasks = []
        for phone in phones:
            ack = phone.call("report_location", {"lat": 52.5320, "lon": 13.4000,
                                                 "accuracy_m": 8, "at": 0})  # fmt: skip
            tasks.append(ack["task"])
        r = requests.post(f"{server.url}/api/mobs/{mob['id']}/start-now", json={"lead_s": 4},
                          headers=headers, timeout=5)  # fmt: skip
        go_ms = r.json()["timeline"]["go_at_ms"]
        assert _wait(lambda: all("countdown" in p.phases() for p in phones), 5)
        before = set(_children(server.proc.pid))
        os.kill(server.proc.pid, signal.SIGHUP)  # rolling restart, during the countdown
        assert _wait(lambda: all("action" in p.phases() for p in phones), 15), [
            (p.connects, p.sio.connected, p.phases()) for p in phones
        ]
        acked = {}
        for phone, task in zip(phones, tasks, strict=True):
            # The phone's own task after any re-balance at the countdown.
            task = phone.call("join_mob", {"mob": mob["id"]})["task"] or task
            deed_id = str(uuid.uuid4())
            body = {"deed_id": deed_id, "task": task["id"], "lat": task["lat"],
                    "lon": task["lon"], "accuracy_m": 5}  # fmt: skip
            ack = phone.call("confirm_deed", body)
            assert ack["status"] in ("accepted", "flagged"), ack
            acked[deed_id] = ack["status"]
        assert _wait(lambda: not (before & set(_children(server.proc.pid))), 120)
        # The phones of the last old worker reconnect to a new one (each new worker listens
        # before an old one stops: WORKER_BOOT_S is only the longest wait for that).
        assert _wait(lambda: all(p.sio.connected for p in phones), 15)
        for phone in phones:
            assert phone.sio.connected and phone.phases() == ["countdown", "action"]
            assert phone.timeline["go_at_ms"] == go_ms
        stored = (
            db.execute(
                text("SELECT deed_id FROM deeds d JOIN mobs m ON m.pk = d.mob_pk WHERE m.id = :id"),
                {"id": mob["id"]},
            )
            .scalars()
            .all()
        )
        assert sorted(stored) == sorted(acked)
    finally:
        for phone in phones:
            phone.close()
        server.stop()


def test_a_restarted_server_resumes_the_schedule(database_url, db):
    first = ServerProcess(database_url, **FAST).start()
    mob, headers = _mob(first.url, duration_s=60)
    r = requests.post(f"{first.url}/api/mobs/{mob['id']}/start-now", json={"lead_s": 2},
                      headers=headers, timeout=5)  # fmt: skip
    go_ms = r.json()["timeline"]["go_at_ms"]
    assert _wait(lambda: requests.get(f"{first.url}/api/mobs/{mob['id']}", timeout=5)
                 .json()["status"] == "countdown", 5)  # fmt: skip
    first.stop()
    time.sleep(max(0.0, go_ms / 1000 - time.time()) + 0.5)  # GO passes while nobody runs
    second = ServerProcess(database_url, **FAST).start()
    try:
        url = f"{second.url}/api/mobs/{mob['id']}"
        assert _wait(lambda: requests.get(url, timeout=5).json()["status"] == "action", 5)
        phone = Phone(second.url, mob["id"])
        assert phone.timeline["phase"] == "action" and phone.timeline["go_at_ms"] == go_ms
        log = requests.get(f"{url}/events", timeout=5).json()["events"]
        assert [e["data"].get("phase") for e in log if e["event"] == "phase"] == [
            "countdown",
            "action",
        ]
        phone.close()
    finally:
        second.stop()
