"""Heavy geometry runs off the event loop of a real `python -m server` process (issue 15,
finding 3): while a task grid over the 2,000-vertex star zone is computed, the same process
keeps answering `/healthz`, and the heavy request still answers correctly."""

from __future__ import annotations

import re
import threading

import pytest
import requests

from support.organizer import Organizer
from support.server import ServerProcess
from tests.factories import future, star_zone


def _organizer(api: str) -> dict:
    org = Organizer(api.removesuffix("/api")).sign_up(email="star@example.org", name="Star")
    return org.headers


def _star_mob(api: str, headers: dict) -> str:
    r = requests.post(
        f"{api}/mobs",
        json={
            "title": "Star",
            "action": "Stand on a spike",
            "zone": star_zone(),
            "go_at": future(90),
            "duration_s": 60,
        },
        headers=headers,
        timeout=10,
    )
    assert r.status_code == 201, r.text  # the hostile zone is a valid one
    return r.json()["id"]


@pytest.fixture()
def server(database_url, db):
    """A real server process that runs one heavy computation at a time (COMPUTE_MAX_PENDING=1),
    so a second heavy request answering 503 ``server_busy`` proves the first is under way."""
    process = ServerProcess(database_url, COMPUTE_MAX_PENDING="1").start()
    yield process
    process.stop()


def _while_running(server, call, probe) -> tuple[requests.Response, list[int]]:
    """Run ``call()`` (one heavy request) in a thread; meanwhile, each time ``probe()`` (a
    second heavy request) answers 503 ``server_busy`` (so the first one's computation is under
    way), ask `/healthz`. Returns the heavy response and the statuses of the `/healthz`
    answers that came back while the heavy request was computing and still open."""
    done = threading.Event()
    result: dict = {}

    def heavy():
        try:
            result["response"] = call()
        finally:
            done.set()

    thread = threading.Thread(target=heavy)
    thread.start()
    answered = []
    done.wait(0.5)  # let the heavy request take the one computing slot before probing
    while not done.is_set():
        busy = probe()
        if busy.status_code != 503:
            done.wait(0.02)
            continue
        assert busy.json()["error"]["code"] == "server_busy"
        r = requests.get(f"{server.url}/healthz", timeout=60)
        if not done.is_set():
            answered.append(r.status_code)
        done.wait(0.05)
    thread.join()
    return result["response"], answered


def test_healthz_answers_while_a_star_zone_grid_is_refused_then_generated(server):
    api = f"{server.url}/api"
    headers = _organizer(api)
    mob = _star_mob(api, headers)
    other = _star_mob(api, headers)
    generate = f"{api}/mobs/{mob}/tasks/generate"

    def probe():  # a second heavy request, on another mob
        return requests.post(
            f"{api}/mobs/{other}/tasks/generate",
            json={"spacing_m": 5, "kind": "litter"},
            headers=headers,
            timeout=300,
        )

    # 30 m over the star: thousands of clipped spike cells, refused with the spacing that fits.
    response, answered = _while_running(
        server,
        lambda: requests.post(
            generate, json={"spacing_m": 30, "kind": "litter"}, headers=headers, timeout=300
        ),
        probe,
    )
    assert response.status_code == 422, response.text
    error = response.json()["error"]
    assert error["code"] == "too_many_tasks"
    assert answered and set(answered) == {200}
    fits = int(re.search(r"smallest spacing that fits is (\d+) m", error["message"])[1])

    response, answered = _while_running(
        server,
        lambda: requests.post(
            generate, json={"spacing_m": fits, "kind": "litter"}, headers=headers, timeout=300
        ),
        probe,
    )
    assert response.status_code == 201, response.text
    assert 1500 < response.json()["count"] <= 2000
    assert set(answered) <= {200}


def test_a_5_m_refusal_on_the_star_zone_names_a_spacing_that_fits(server):
    api = f"{server.url}/api"
    headers = _organizer(api)
    mob = _star_mob(api, headers)
    generate = f"{api}/mobs/{mob}/tasks/generate"
    r = requests.post(generate, json={"spacing_m": 5, "kind": "litter"}, headers=headers)
    assert r.status_code == 422
    error = r.json()["error"]
    assert error["code"] == "too_many_tasks" and "about" in error["message"]
    fits = int(re.search(r"smallest spacing that fits is (\d+) m", error["message"])[1])
    r = requests.post(generate, json={"spacing_m": fits, "kind": "litter"}, headers=headers)
    assert r.status_code == 201 and r.json()["count"] <= 2000
    r = requests.post(generate, json={"spacing_m": fits - 1, "kind": "litter"}, headers=headers)
    assert r.status_code == 422 and r.json()["error"]["code"] == "too_many_tasks"
