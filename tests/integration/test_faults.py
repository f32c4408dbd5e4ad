"""Faults survived: a killed worker, a Redis outage, a PostgreSQL outage, a whole restart.

Real ``python -m server`` processes, PostGIS and Redis; real python-socketio clients over
WebSocket. Outages are made with a TCP proxy between the server and the service
(``faultproxy.FaultProxy``), never by touching the machine's services. Each test asserts
behaviour (what every phone holds, what the database holds), never speed.

The test phone follows the protocol's catch-up rule: it holds the mob's numbered events
(``timeline``, ``phase``, ``announcement``) by sequence number, and whenever an event (a
numbered one, or ``stats``, which carries the mob's latest ``seq``) shows a number above the
last one it holds without a gap, it asks for the missed ones with ``join_mob {mob, last_seq}``
(as it also does on every reconnect). A deed is retried with the same ``deed_id`` until it is
acknowledged.
"""

from __future__ import annotations

import os
import signal
import threading
import time
import uuid
from collections import Counter
from functools import partial
from urllib.parse import urlparse

import pytest
import requests
import socketio
from sqlalchemy import text
from sqlalchemy.engine import make_url

from support.ports import free_port
from support.server import ServerProcess
from tests.integration.faultproxy import FaultProxy
from tests.integration.test_multiprocess import FAST, _children, _mob, _wait

NS = "/participant"
NUMBERED = ("timeline", "phase", "announcement")
INSIDE = {"lat": 52.5320, "lon": 13.4000, "accuracy_m": 8, "at": 0}
ALL_PHASES = ["countdown", "action", "finished"]
DEED_OK = ("accepted", "flagged")  # stored and counted (flagged: counted after review)


class Phone:
    """A participant's real client that holds the mob's numbered events without gaps."""

    def __init__(self, base_url: str, mob_id: str):
        r = requests.post(f"{base_url}/api/mobs/{mob_id}/participants", json={}, timeout=10)
        assert r.status_code == 201, r.text
        self.token = r.json()["token"]
        self.mob_id = mob_id
        self.events: dict[int, tuple[str, dict]] = {}  # seq → (event, data)
        self.live = Counter()  # seq → times it arrived as a live event
        self.replayed: set[int] = set()  # seqs first obtained from a catch-up
        self.upto: int | None = None  # every event up to this seq is held
        self.timeline: dict | None = None
        self.task: dict | None = None
        self.connects = 0
        self.catch_ups = 0  # join_mob calls with last_seq
        self.fresh_snapshots = 0  # a catch-up that could not be replayed (should not happen)
        self.lock = threading.Lock()
        self.joined = threading.Event()
        self._want = threading.Event()
        self._closed = False
        self.sio = socketio.Client(
            reconnection=True, reconnection_delay=0.2, reconnection_delay_max=1
        )
        self.sio.on("connect", self._on_connect, namespace=NS)
        for name in NUMBERED:
            self.sio.on(name, partial(self._on_numbered, name), namespace=NS)
        self.sio.on("stats", self._on_stats, namespace=NS)
        self.sio.on("task_assigned", self._on_task, namespace=NS)
        threading.Thread(target=self._catch_up_loop, daemon=True).start()
        self.sio.connect(
            base_url, namespaces=[NS], auth={"token": self.token}, transports=["websocket"]
        )
        assert self.joined.wait(15), "join_mob got no answer"

    # --- events -----------------------------------------------------------------------------

    def _on_connect(self):
        self.connects += 1
        self._want.set()  # (re)join, with last_seq once we hold some

    def _on_task(self, data):
        with self.lock:
            self.task = data.get("task")

    def _on_numbered(self, name, data):
        with self.lock:
            self.live[data["seq"]] += 1
            self._store(name, data)
            gap = self.upto is not None and data["seq"] > self.upto
        if gap:
            self._want.set()

    def _on_stats(self, data):
        with self.lock:
            gap = self.upto is not None and data["seq"] > self.upto
        if gap:
            self._want.set()

    def _store(self, name, data, replayed=False):
        seq = data["seq"]
        if seq not in self.events:
            self.events[seq] = (name, data)
            if replayed:
                self.replayed.add(seq)
            if name == "timeline" and data["timeline"]["version"] >= self._version():
                self.timeline = data["timeline"]
        self._advance()

    def _advance(self):
        if self.upto is not None:
            while self.upto + 1 in self.events:
                self.upto += 1

    def _version(self) -> int:
        return self.timeline["version"] if self.timeline else -1

    def _catch_up_loop(self):
        while not self._closed:
            if not self._want.wait(0.5):
                continue
            self._want.clear()
            with self.lock:
                last = self.upto
            try:
                snap = self.sio.call(
                    "join_mob", {"mob": self.mob_id, "last_seq": last}, namespace=NS, timeout=10
                )
            except socketio.exceptions.SocketIOError:
                snap = None  # not connected (yet) or no answer: ask again
            if not snap or "error" in snap:
                time.sleep(0.2)
                self._want.set()
                continue
            self._apply(snap, last)

    def _apply(self, snap, last):
        with self.lock:
            if last is not None:
                self.catch_ups += 1
            if snap["missed"] is None and last is not None:
                self.fresh_snapshots += 1
            for missed in snap["missed"] or ():
                self._store(missed["event"], missed["data"], replayed=True)
            if snap["timeline"]["version"] >= self._version():
                self.timeline = snap["timeline"]
            self.task = snap["task"]
            # missed covered (last, snap.seq]; a fresh snapshot starts the count here
            self.upto = max(self.upto or 0, snap["seq"])
            self._advance()  # over live events that came meanwhile
            gap = bool(self.events) and max(self.events) > self.upto
        self.joined.set()
        if gap:
            self._want.set()

    # --- actions ----------------------------------------------------------------------------

    def call(self, event: str, data: dict, timeout_s: float = 30) -> dict:
        """Emit with an ack; retry the same payload while the connection is being re-made."""
        deadline = time.monotonic() + timeout_s
        while True:
            try:
                return self.sio.call(event, data, namespace=NS, timeout=10)
            except socketio.exceptions.SocketIOError:
                if time.monotonic() > deadline:
                    raise
                time.sleep(0.1)

    def report_inside(self) -> dict:
        ack = self.call("report_location", INSIDE)
        assert "error" not in ack, ack
        if "stats" in ack:  # counters ride on the ack when they changed (as in socket.js)
            self._on_stats(ack["stats"])
        return ack

    def my_task(self) -> dict:
        """The task the server holds for this phone now (after any re-balance)."""
        snap = self.call("join_mob", {"mob": self.mob_id})
        assert snap.get("task"), snap
        with self.lock:
            self.task = snap["task"]
        return snap["task"]

    def confirm(self, deadline_s: float = 45) -> tuple[str, dict | None, list[tuple]]:
        """Confirm a deed on the phone's task with a new deed_id; retry the same deed_id
        until a success ack. Returns (deed_id, ack or None, [(monotonic, error code)])."""
        task = self.task
        deed_id = str(uuid.uuid4())
        body = {"deed_id": deed_id, "task": task["id"], "lat": task["lat"],
                "lon": task["lon"], "accuracy_m": 5}  # fmt: skip
        errors = []
        deadline = time.monotonic() + deadline_s
        while time.monotonic() < deadline:
            try:
                ack = self.sio.call("confirm_deed", body, namespace=NS, timeout=3)
            except socketio.exceptions.SocketIOError as exc:
                errors.append((time.monotonic(), type(exc).__name__))
                time.sleep(0.2)
                continue
            if "error" in ack:
                errors.append((time.monotonic(), ack["error"]["code"]))
                time.sleep(0.2)
                continue
            return deed_id, ack, errors
        return deed_id, None, errors

    # --- what the phone holds ----------------------------------------------------------------

    def phases(self) -> list[str]:
        with self.lock:
            return [d["phase"] for _, (n, d) in sorted(self.events.items()) if n == "phase"]

    def holds(self, seq: int) -> bool:
        with self.lock:
            return self.upto is not None and self.upto >= seq

    def doubled(self) -> list[int]:
        """Sequence numbers delivered live more than once."""
        with self.lock:
            return [seq for seq, n in self.live.items() if n > 1]

    def close(self):
        self._closed = True
        self.sio.disconnect()


class DeedLoop:
    """Every phone confirms deed after deed (each retried until acknowledged) in a thread."""

    def __init__(self, phones: list[Phone]):
        self.phones = phones
        self.acked: dict[str, tuple[float, dict]] = {}  # deed_id → (monotonic, ack)
        self.unacked: list[str] = []
        self.errors: list[tuple[float, str]] = []
        self.per_phone = Counter()
        self.lock = threading.Lock()
        self.stop = threading.Event()
        self.threads = [threading.Thread(target=self._run, args=(p,)) for p in phones]

    def __enter__(self) -> DeedLoop:
        for thread in self.threads:
            thread.start()
        return self

    def __exit__(self, *_exc) -> None:
        self.stop.set()
        for thread in self.threads:
            thread.join(60)

    def _run(self, phone: Phone):
        while not self.stop.is_set():
            deed_id, ack, errors = phone.confirm()
            with self.lock:
                self.errors += errors
                if ack is None:
                    self.unacked.append(deed_id)
                else:
                    self.acked[deed_id] = (time.monotonic(), ack)
                    self.per_phone[id(phone)] += 1
            time.sleep(0.05)

    def count(self) -> int:
        with self.lock:
            return len(self.acked)

    def each_phone_has(self, n: int) -> bool:
        with self.lock:
            return all(self.per_phone[id(p)] >= n for p in self.phones)

    def stored_ok(self) -> set[str]:
        """Deed ids acknowledged as stored (accepted or flagged)."""
        with self.lock:
            return {d for d, (_, ack) in self.acked.items() if ack["status"] in DEED_OK}


def _stored_deeds(db, mob_id: str) -> Counter:
    rows = db.execute(
        text("SELECT d.deed_id FROM deeds d JOIN mobs m ON m.pk = d.mob_pk WHERE m.id = :id"),
        {"id": mob_id},
    ).scalars()
    counts = Counter(rows)
    db.rollback()  # end the read transaction
    return counts


def _start_now(url: str, mob_id: str, headers: dict, lead_s: int) -> dict:
    r = requests.post(f"{url}/api/mobs/{mob_id}/start-now", json={"lead_s": lead_s},
                      headers=headers, timeout=10)  # fmt: skip
    assert r.status_code == 200, r.text
    return r.json()["timeline"]


def _event_log(url: str, mob_id: str) -> list[dict]:
    r = requests.get(f"{url}/api/mobs/{mob_id}/events", timeout=10)
    assert r.status_code == 200, r.text
    return r.json()["events"]


def _phase_log(url: str, mob_id: str) -> list[str]:
    return [e["data"]["phase"] for e in _event_log(url, mob_id) if e["event"] == "phase"]


def _ready_phones(url: str, mob_id: str, n: int) -> list[Phone]:
    phones = [Phone(url, mob_id) for _ in range(n)]
    for phone in phones:
        phone.report_inside()
    return phones


def _states(phones: list[Phone]) -> list[tuple]:
    """What each phone holds, for failure messages."""
    return [(p.connects, p.catch_ups, p.upto, p.phases(), sorted(p.events)) for p in phones]


def _close(phones: list[Phone]) -> None:
    for phone in phones:
        phone.close()


# --- 1. a worker dies in the action ---------------------------------------------------------


@pytest.mark.postgis_only  # several processes: the production setup
def test_killing_a_worker_mid_action_loses_no_acknowledged_deed(database_url, db, redis_env):
    server = ServerProcess(
        database_url, "--workers", "2", **redis_env, **FAST, output="drain"
    ).start()
    phones: list[Phone] = []
    try:
        assert _wait(lambda: len(_children(server.proc.pid)) == 2, 15)
        workers = _children(server.proc.pid)
        mob, headers = _mob(server.url, duration_s=120)
        phones = _ready_phones(server.url, mob["id"], 12)
        _start_now(server.url, mob["id"], headers, lead_s=2)
        assert _wait(lambda: all("action" in p.phases() for p in phones), 15)
        for phone in phones:
            phone.my_task()
        with DeedLoop(phones) as deeds:
            assert _wait(lambda: deeds.each_phone_has(2), 30)  # some deeds confirmed
            before = deeds.stored_ok()
            connects = {id(p): p.connects for p in phones}
            os.kill(workers[0], signal.SIGKILL)  # deeds in flight, no goodbye
            moved = lambda: [p for p in phones if p.connects > connects[id(p)]]  # noqa: E731
            assert _wait(lambda: moved(), 15), "no phone was on the killed worker"
            after = deeds.count()
            assert _wait(lambda: deeds.count() >= after + 2 * len(phones), 40)
        assert not deeds.unacked, deeds.unacked
        stored = _stored_deeds(db, mob["id"])
        assert [d for d, n in stored.items() if n > 1] == []  # no duplicates
        assert before <= set(stored)  # nothing acknowledged before the kill was lost
        assert set(stored) == deeds.stored_ok()  # exactly the acknowledged deeds
        print(f"killed worker: {len(moved())} of {len(phones)} phones moved; "
              f"{len(stored)} deeds stored, {len(before)} before the kill; "
              f"{Counter(code for _, code in deeds.errors)} retried")  # fmt: skip
        for phone in moved():
            assert phone.sio.connected
        for phone in phones:
            assert phone.phases() == ["countdown", "action"]
            assert phone.doubled() == []
    finally:
        _close(phones)
        server.stop()


# --- 2. Redis goes away for 5 s --------------------------------------------------------------


class Watcher:
    """A spectator on /live that records announcements as they arrive (no catch-up)."""

    def __init__(self, url: str, mob_id: str):
        self.texts: list[str] = []
        self.sio = socketio.Client(reconnection=True, reconnection_delay=0.2)
        self.sio.on("announcement", lambda d: self.texts.append(d["text"]), namespace="/live")
        self.sio.connect(url, namespaces=["/live"], transports=["websocket"])
        ack = self.sio.call("watch_mob", {"mob": mob_id}, namespace="/live", timeout=10)
        assert "error" not in ack, ack


def _announce(url: str, mob_id: str, headers: dict, words: str) -> int:
    r = requests.post(f"{url}/api/mobs/{mob_id}/announcements", json={"text": words},
                      headers=headers, timeout=30)  # fmt: skip
    return r.status_code


def _bus_carries(sender: str, watcher: Watcher, mob_id: str, headers: dict, timeout_s: float):
    """Announce on ``sender`` until ``watcher`` (on the other process) hears one live."""
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        words = f"probe {uuid.uuid4().hex[:8]}"
        assert _announce(sender, mob_id, headers, words) in (200, 201)
        if _wait(partial(watcher.texts.__contains__, words), 1):
            return True
    return False


@pytest.mark.postgis_only  # several processes: the production setup
def test_a_redis_outage_mid_action_loses_and_doubles_no_event(database_url, db, redis_env):
    real = urlparse(redis_env["REDIS_URL"])
    with FaultProxy(real.hostname, real.port or 6379) as redis:
        env = {
            **FAST,
            "REDIS_URL": f"redis://127.0.0.1:{redis.port}{real.path or '/0'}",
            "REDIS_CHANNEL": redis_env["REDIS_CHANNEL"],
        }
        a = ServerProcess(database_url, **env, output="drain").start()
        b = ServerProcess(database_url, **env, output="drain").start()
        phones: list[Phone] = []
        watchers: list[Watcher] = []
        try:
            mob, headers = _mob(a.url, duration_s=4)
            probe, probe_headers = _mob(a.url)  # a second mob, to probe the bus afterwards
            watchers = [Watcher(a.url, probe["id"]), Watcher(b.url, probe["id"])]
            assert _bus_carries(a.url, watchers[1], probe["id"], probe_headers, 10)
            phones = _ready_phones(a.url, mob["id"], 4) + _ready_phones(b.url, mob["id"], 4)
            for phone in phones:
                phone.my_task()
            _start_now(a.url, mob["id"], headers, lead_s=2)
            assert _wait(lambda: all("action" in p.phases() for p in phones), 15)

            redis.cut()  # mid-action; the action ends during the outage
            cut_at = time.monotonic()
            said = []
            speakers = [
                threading.Thread(target=lambda u=u: said.append(
                    _announce(u, mob["id"], headers, f"from {u}, Redis down")))
                for u in (a.url, b.url)
            ]  # fmt: skip
            for speaker in speakers:
                speaker.start()
            with DeedLoop(phones[::2]) as deeds:  # deeds go on: they need the database only
                time.sleep(max(0.0, cut_at + 5 - time.monotonic()))
                redis.restore()
                assert _wait(lambda: deeds.count() >= 4, 20)
            for speaker in speakers:
                speaker.join(30)
            assert said == [201, 201]
            assert _phase_log(a.url, mob["id"]) == ALL_PHASES

            # Both processes publish and receive on the queue again, by themselves.
            assert _bus_carries(a.url, watchers[1], probe["id"], probe_headers, 40)
            assert _bus_carries(b.url, watchers[0], probe["id"], probe_headers, 20)
            rejoined_s = time.monotonic() - cut_at - 5
            # A location report makes each process push stats (with the latest seq).
            last = _event_log(a.url, mob["id"])[-1]["data"]["seq"]
            for phone in phones:
                phone.report_inside()
            assert _wait(lambda: all(p.holds(last) for p in phones), 20), [
                (p.upto, p.phases()) for p in phones
            ]
        finally:
            _close(phones)
            for watcher in watchers:
                watcher.sio.disconnect()
            a.stop()
            b.stop()

    log = _event_log_db(db, mob["id"])
    assert [d.get("phase") for e, d in log if e == "phase"] == ALL_PHASES
    for phone in phones:
        assert phone.phases() == ALL_PHASES  # each phase once, in order
        assert phone.fresh_snapshots == 0 and phone.doubled() == []
        with phone.lock:
            assert sorted(phone.events) == list(range(1, last + 1))
    # The events emitted during the outage reached the other process's phones by catch-up.
    complaints = sum("redis" in line.lower() for line in a.lines + b.lines)
    print(f"Redis outage: queue re-joined {rejoined_s:.1f} s after the restore; replayed "
          f"{[sorted(p.replayed) for p in phones]} of {last} events; "
          f"{complaints} log lines about Redis")  # fmt: skip
    assert any(phone.replayed for phone in phones)
    stored = _stored_deeds(db, mob["id"])
    assert set(stored) == deeds.stored_ok() and max(stored.values()) == 1


def _event_log_db(db, mob_id: str) -> list[tuple[str, dict]]:
    rows = db.execute(
        text(
            "SELECT e.event, e.payload FROM mob_events e JOIN mobs m ON m.pk = e.mob_pk "
            "WHERE m.id = :id ORDER BY e.seq"
        ),
        {"id": mob_id},
    ).all()
    db.rollback()
    return [(event, payload) for event, payload in rows]


# --- 3. PostgreSQL goes away for 10 s --------------------------------------------------------


@pytest.mark.postgis_only  # a PostgreSQL outage needs PostgreSQL
def test_a_database_outage_acknowledges_only_committed_deeds(database_url, db):
    real = make_url(database_url)
    with FaultProxy(real.host or "127.0.0.1", real.port or 5432) as pg:
        proxied = real.set(host="127.0.0.1", port=pg.port).render_as_string(hide_password=False)
        server = ServerProcess(proxied, **FAST, output="drain").start()
        phones: list[Phone] = []
        try:
            mob, headers = _mob(server.url, duration_s=120)
            phones = _ready_phones(server.url, mob["id"], 8)
            _start_now(server.url, mob["id"], headers, lead_s=2)
            assert _wait(lambda: all("action" in p.phases() for p in phones), 15)
            for phone in phones:
                phone.my_task()
            with DeedLoop(phones) as deeds:
                assert _wait(lambda: deeds.each_phone_has(2), 20)
                pg.cut()
                cut_at = time.monotonic()
                time.sleep(10)
                restored_at = time.monotonic()
                pg.restore()
                after = deeds.count()
                assert _wait(lambda: deeds.count() >= after + 2 * len(phones), 40)
            # The phase scheduler survived the outage: a new mob runs through its phases.
            again, again_headers = _mob(server.url, duration_s=1)
            _start_now(server.url, again["id"], again_headers, lead_s=1)
            assert _wait(lambda: _phase_log(server.url, again["id"]) == ALL_PHASES, 15)
        finally:
            _close(phones)
            server.stop()

    # Acks received while the database was unreachable were errors, never a success
    # (a grace of 1 s for acks of commits made just before the cut).
    during = [(t, ack) for t, ack in deeds.acked.values() if cut_at + 1 < t < restored_at]
    assert during == []
    codes = Counter(code for t, code in deeds.errors if cut_at <= t <= restored_at + 5)
    assert codes, "no deed was refused during the outage"
    assert set(codes) <= {"internal_error", "database_unavailable", "TimeoutError"}, codes
    assert not deeds.unacked, deeds.unacked
    stored = _stored_deeds(db, mob["id"])
    first_ok = min((t for t, _ in deeds.acked.values() if t > restored_at), default=None)
    print(f"database outage: {len(stored)} deeds stored, {dict(codes)} refused meanwhile, "
          f"first ack {first_ok - restored_at:.1f} s after the restore")  # fmt: skip
    assert [d for d, n in stored.items() if n > 1] == []
    assert set(stored) == deeds.stored_ok()  # exactly the acknowledged deeds


# --- 4. the whole server restarts mid-mob ----------------------------------------------------


def test_connected_phones_resync_through_a_whole_server_restart(database_url, db):
    port = free_port()
    first = ServerProcess(database_url, port=port, **FAST, output="drain").start()
    second = None
    phones: list[Phone] = []
    try:
        mob, headers = _mob(first.url, duration_s=12)
        phones = _ready_phones(first.url, mob["id"], 6)
        timeline = _start_now(first.url, mob["id"], headers, lead_s=2)
        assert _wait(lambda: all("action" in p.phases() for p in phones), 10), _states(phones)
        for phone in phones:
            phone.my_task()
        with DeedLoop(phones) as deeds:
            assert _wait(lambda: deeds.each_phone_has(1), 20)  # deeds before the restart
            connects = [p.connects for p in phones]
            tasks = [p.task["id"] for p in phones]
            first.stop()  # SIGTERM mid-action: graceful; the phones keep reconnecting
            second = ServerProcess(database_url, port=port, **FAST, output="drain").start()
            moved = lambda: all(p.connects > c for p, c in zip(phones, connects, strict=True))  # noqa: E731
            assert _wait(moved, 20), _states(phones)
            for phone, task_id in zip(phones, tasks, strict=True):
                ack = phone.call("time_sync", {"t0": time.time() * 1000})
                assert ack["t1"] <= ack["t2"]  # the clock can be re-synchronized
                assert phone.timeline["go_at_ms"] == timeline["go_at_ms"]
                assert phone.my_task()["id"] == task_id  # the assignment survived
            after = deeds.count()
            assert _wait(lambda: deeds.count() >= after + len(phones), 20)  # and after it
        # The new process carries the schedule on: the action ends on time, for everyone.
        assert _wait(lambda: all("finished" in p.phases() for p in phones), 20), _states(phones)
        log = _event_log(second.url, mob["id"])
    finally:
        _close(phones)
        first.stop()
        if second is not None:
            second.stop()
    print(f"restart: replayed {[sorted(p.replayed) for p in phones]} of {len(log)} events")
    assert [e["data"].get("phase") for e in log if e["event"] == "phase"] == ALL_PHASES
    for phone in phones:
        assert phone.phases() == ALL_PHASES
        assert phone.catch_ups >= 1  # re-joined with last_seq after the restart
        assert phone.fresh_snapshots == 0 and phone.doubled() == []
        with phone.lock:
            assert sorted(phone.events) == [e["data"]["seq"] for e in log]
    stored = _stored_deeds(db, mob["id"])
    assert set(stored) == deeds.stored_ok() and max(stored.values()) == 1
