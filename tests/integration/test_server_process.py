"""The README walk-through against a real `python -m server` process, over HTTP."""

import requests

from tests.factories import PARK, auth, future, organizer_token


def test_run_command_serves_the_app_and_the_openapi_document(server):
    assert server.first_line == f"Good Mob is running: open http://localhost:{server.port}/"
    r = requests.get(f"{server.url}/api/openapi.json", timeout=5)
    assert r.status_code == 200 and r.json()["openapi"].startswith("3.")
    page = requests.get(f"{server.url}/", timeout=5)
    assert page.status_code == 200 and "Good Mob" in page.text


def test_organizer_walk_through(server):
    api = f"{server.url}/api"
    headers = auth(organizer_token(api, email="walk@example.org", name="Walker"))
    r = requests.post(
        f"{api}/mobs",
        json={
            "title": "Weinberg clean-up",
            "action": "Pick up litter",
            "zone": PARK,
            "go_at": future(90),
            "duration_s": 60,
        },
        headers=headers,
        timeout=5,
    )
    assert r.status_code == 201
    mob = r.json()
    r = requests.post(
        f"{api}/mobs/{mob['id']}/tasks/generate",
        json={"spacing_m": 25, "kind": "litter"},
        headers=headers,
        timeout=10,
    )
    assert r.status_code == 201 and r.json()["count"] > 20
    r = requests.post(f"{api}/mobs/{mob['id']}/publish", headers=headers, timeout=5)
    assert r.status_code == 200 and r.json()["status"] == "published"
    r = requests.get(
        f"{api}/mobs", params={"lat": 52.5233, "lon": 13.3995, "radius_m": 1000}, timeout=5
    )
    found = r.json()["mobs"]
    assert [m["id"] for m in found] == [mob["id"]]
    assert 750 < found[0]["distance_m"] < 850
