"""Prometheus metrics of real server processes during a simulated mob.

Real python-socketio clients join, report locations and confirm a deed while the scheduler
moves the mob to its action; /metrics must show every series and each must move. A second
test runs two processes that share one PROMETHEUS_MULTIPROC_DIR (what ``--workers`` sets up):
whichever process is scraped, the counts cover both.
"""

from __future__ import annotations

import secrets
import subprocess
import threading
import time
import uuid

import requests
import socketio
from prometheus_client.parser import text_string_to_metric_families

from support.organizer import Organizer
from support.server import ServerProcess
from tests.factories import PARK, future

NS = "/participant"
INSIDE = {"lat": 52.5320, "lon": 13.4000, "accuracy_m": 8, "at": 0}
# Start-now with a 1 s lead; any jump to a task counts as plausible (the test walks fast).
# Scrapes carry METRICS_TOKEN, as Prometheus does in production.
METRICS_TOKEN = "integration-scrape-" + secrets.token_hex(8)
FAST = {"START_NOW_MIN_LEAD_S": "1", "DURATION_MIN_S": "1", "LOCATION_MAX_SPEED_MPS": "100000",
        "SHUTDOWN_TIMEOUT_S": "2", "METRICS_TOKEN": METRICS_TOKEN}  # fmt: skip


def scrape(base_url: str) -> list:
    r = requests.get(f"{base_url}/metrics", timeout=10)  # without the token: refused
    assert r.status_code == 401 and "goodmob_" not in r.text
    headers = {"Authorization": f"Bearer {METRICS_TOKEN}"}
    r = requests.get(f"{base_url}/metrics", headers=headers, timeout=10)
    assert r.status_code == 200 and r.headers["Content-Type"].startswith("text/plain")
    return [s for family in text_string_to_metric_families(r.text) for s in family.samples]


def value(samples, name: str, **labels) -> float:
    """The sum of the samples called ``name`` whose labels include ``labels``."""
    return sum(
        s.value
        for s in samples
        if s.name == name and all(s.labels.get(k) == v for k, v in labels.items())
    )


def has(samples, name: str) -> bool:
    return any(s.name == name for s in samples)


def _wait(predicate, timeout_s: float) -> bool:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(0.05)
    return predicate()


class Phone:
    def __init__(self, base_url: str, mob_id: str):
        r = requests.post(f"{base_url}/api/mobs/{mob_id}/participants", json={}, timeout=5)
        assert r.status_code == 201, r.text
        self.phases: list[str] = []
        self.sio = socketio.Client(reconnection=False)
        self.sio.on("phase", lambda d: self.phases.append(d["phase"]), namespace=NS)
        self.sio.connect(base_url, namespaces=[NS], auth={"token": r.json()["token"]},
                         transports=["websocket"], wait_timeout=10)  # fmt: skip
        self.mob_id = mob_id
        self.call("join_mob", {"mob": mob_id})

    def call(self, event: str, data: dict) -> dict:
        return self.sio.call(event, data, namespace=NS, timeout=15)

    def close(self):
        self.sio.disconnect()


def _published_mob(base_url: str) -> tuple[dict, dict]:
    api = f"{base_url}/api"
    headers = Organizer(base_url, timeout=5).sign_up(name="Org").headers
    body = {"title": "Metrics", "action": "Go", "zone": PARK, "go_at": future(), "duration_s": 60}
    mob = requests.post(f"{api}/mobs", json=body, headers=headers, timeout=5).json()
    r = requests.post(f"{api}/mobs/{mob['id']}/tasks/generate", headers=headers, timeout=10,
                      json={"spacing_m": 40, "kind": "litter", "capacity": 5})  # fmt: skip
    assert r.status_code == 201, r.text
    assert requests.post(f"{api}/mobs/{mob['id']}/publish", headers=headers, timeout=5).ok
    return mob, headers


def test_metrics_move_during_a_simulated_mob(database_url, db):
    server = ServerProcess(database_url, **FAST)
    phones: list[Phone] = []
    try:
        server.start()
        before = scrape(server.url)
        for name in ("goodmob_scheduler_lag_seconds_count", "goodmob_db_pool_checked_out",
                     "goodmob_db_pool_size", "goodmob_scheduler_last_tick_timestamp_seconds",
                     "goodmob_http_requests_total"):  # fmt: skip
            assert has(before, name), name
        assert value(before, "goodmob_metrics_database_up") == 1
        assert value(before, "goodmob_db_pool_size") >= 1

        mob, headers = _published_mob(server.url)
        phones = [Phone(server.url, mob["id"]) for _ in range(3)]
        tasks = [p.call("report_location", INSIDE)["task"] for p in phones]
        assert all(tasks), tasks
        spectator = socketio.Client(reconnection=False)
        spectator.connect(server.url, namespaces=["/live"], transports=["websocket"])
        spectator.call("watch_mob", {"mob": mob["id"]}, namespace="/live", timeout=10)
        during = scrape(server.url)
        sockets = {"audience": "participant", "mob": mob["id"]}
        assert value(during, "goodmob_connected_sockets", **sockets) == 3
        assert value(during, "goodmob_connected_sockets", audience="live", mob=mob["id"]) == 1
        received = "goodmob_socket_events_received_total"
        assert value(during, received, event="report_location") == 3
        assert value(during, received, event="join_mob") == 3
        acks = "goodmob_socket_ack_seconds_count"
        assert value(during, acks, event="report_location") == 3
        assert value(during, "goodmob_socket_ack_seconds_bucket",
                     event="report_location", le="+Inf") == 3  # fmt: skip
        assert value(during, "goodmob_socket_ack_seconds_sum", event="report_location") > 0
        assert value(during, "goodmob_mob_participants", mob=mob["id"], zone="inside") == 3
        assert value(during, "goodmob_mobs", phase="published") == 1
        assert value(during, "goodmob_http_requests_total", method="POST") >= 6

        r = requests.post(f"{server.url}/api/mobs/{mob['id']}/start-now", json={"lead_s": 1},
                          headers=headers, timeout=5)  # fmt: skip
        assert r.status_code == 200, r.text
        assert _wait(lambda: all("action" in p.phases for p in phones), 15)
        phone = phones[0]
        task = phone.call("join_mob", {"mob": mob["id"]})["task"]  # after any re-balance
        deed = {"deed_id": str(uuid.uuid4()), "task": task["id"], "lat": task["lat"],
                "lon": task["lon"], "accuracy_m": 5}  # fmt: skip
        assert phone.call("confirm_deed", deed)["status"] == "accepted"

        after = scrape(server.url)
        assert value(after, acks, event="confirm_deed") == 1
        assert value(after, received, event="confirm_deed") == 1
        assert value(after, "goodmob_scheduler_lag_seconds_count") >= 2  # countdown, action
        assert value(after, "goodmob_phase_changes_total", phase="action") == 1
        emitted = "goodmob_socket_events_emitted_total"
        assert value(after, emitted, event="phase") >= 2 * 3  # two phases, three audiences
        assert value(after, emitted, event="timeline") >= 3
        assert value(after, emitted, event="stats") > value(during, emitted, event="stats")
        assert value(after, "goodmob_deeds", status="accepted", rehearsal="false") == 1
        assert value(after, "goodmob_mob_deeds", mob=mob["id"], status="accepted") == 1
        assert value(after, "goodmob_mobs", phase="action") == 1
        assert value(after, "goodmob_scheduler_last_tick_timestamp_seconds") > 0
        for name in (received, acks):
            assert value(after, name) > value(during, name) > value(before, name)

        for p in phones:
            p.close()
        phones = []
        spectator.disconnect()
        assert _wait(lambda: value(scrape(server.url), "goodmob_connected_sockets",
                                   mob=mob["id"]) == 0, 10)  # fmt: skip
    finally:
        for p in phones:
            p.close()
        server.stop()


def test_two_processes_sharing_a_metrics_directory_report_the_sum(database_url, db, tmp_path):
    shared = {"PROMETHEUS_MULTIPROC_DIR": str(tmp_path), **FAST}
    a, b = ServerProcess(database_url, **shared), ServerProcess(database_url, **shared)
    phones: list[Phone] = []
    try:
        a.start()
        b.start()
        mob, _ = _published_mob(a.url)
        phones = [Phone(s.url, mob["id"]) for s in (a, a, b, b, b)]
        threads = [threading.Thread(target=p.call, args=("report_location", INSIDE))
                   for p in phones]  # fmt: skip
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        for server in (a, b):
            samples = scrape(server.url)
            connected = [s for s in samples if s.name == "goodmob_connected_sockets"
                         and s.labels.get("mob") == mob["id"]]  # fmt: skip
            by_pid = {s.labels["pid"]: s.value for s in connected}
            assert sorted(by_pid.values()) == [2, 3], by_pid  # per process, and in sum 5
            assert value(samples, "goodmob_socket_events_received_total",
                         event="report_location") == 5  # fmt: skip
            assert value(samples, "goodmob_socket_ack_seconds_count", event="report_location") == 5
            assert value(samples, "goodmob_mob_participants", mob=mob["id"]) == 5
    finally:
        for p in phones:
            p.close()
        a.stop()
        b.stop()


def _children(pid: int) -> set[str]:
    out = subprocess.run(["pgrep", "-P", str(pid)], capture_output=True, text=True).stdout
    return set(out.split())


def test_workers_on_one_port_serve_the_metrics_of_all(database_url, db, redis_env):
    """``--workers 2``: the supervisor gives its workers one metrics directory, so whichever
    worker a scrape reaches, it counts the phones and events of both."""
    server = ServerProcess(database_url, "--workers", "2", **redis_env, **FAST)
    phones: list[Phone] = []
    try:
        server.start()
        assert _wait(lambda: len(_children(server.proc.pid)) == 2, 10)
        workers = _children(server.proc.pid)
        mob, _ = _published_mob(server.url)
        phones = [Phone(server.url, mob["id"]) for _ in range(6)]
        for phone in phones:
            phone.call("report_location", INSIDE)
        for _ in range(8):  # the kernel spreads these scrapes over the workers
            samples = scrape(server.url)
            connected = [s for s in samples if s.name == "goodmob_connected_sockets"
                         and s.labels.get("mob") == mob["id"]]  # fmt: skip
            assert sum(s.value for s in connected) == 6
            assert {s.labels["pid"] for s in connected} <= workers
            assert value(samples, "goodmob_socket_events_received_total",
                         event="report_location") == 6  # fmt: skip
    finally:
        for p in phones:
            p.close()
        server.stop()
