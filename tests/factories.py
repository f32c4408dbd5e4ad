"""Factories that build test data through the real API (so it is validated like user data)."""

from __future__ import annotations

import secrets
from datetime import UTC, datetime, timedelta

from support.organizer import Organizer
from support.park import PARK  # noqa: F401  (the test park, used by many tests)


def future(minutes: float = 60) -> str:
    return (datetime.now(UTC) + timedelta(minutes=minutes)).isoformat()


def auth(token: str) -> dict:
    return {"Authorization": f"Bearer {token}"}


PASSWORD = "correct horse"


def make_organizer(
    client, email: str | None = None, name: str = "Ada", password: str = PASSWORD
) -> str:
    """Sign up an organizer through the API (Flask test client), then log in as a client
    must (the sign-up answer has no token); return the bearer token."""
    email = email or f"org-{secrets.token_hex(4)}@example.org"
    r = client.post("/api/organizers", json={"email": email, "password": password, "name": name})
    assert r.status_code == 202, r.get_json()
    r = client.post("/api/sessions", json={"email": email, "password": password})
    assert r.status_code == 201, r.get_json()
    return r.get_json()["token"]


def organizer_token(
    api: str,
    email: str | None = None,
    name: str = "Ada",
    password: str = PASSWORD,
    timeout: float = 10,
) -> str:
    """``make_organizer`` over HTTP against a running server whose API is at ``api`` (e.g.
    ``http://127.0.0.1:5000/api``): sign up, log in (support/organizer.py); the token."""
    org = Organizer(api.removesuffix("/api"), timeout=timeout)
    return org.sign_up(email=email, password=password, name=name, statuses=(202,)).token


def make_mob(client, token: str, **overrides) -> dict:
    """Create a draft mob over PARK through the API; return its JSON."""
    body = {
        "title": "Clean the Weinberg park",
        "description": "Bring gloves.",
        "action": "Pick up the litter around your spot",
        "zone": PARK,
        "go_at": future(),
        "duration_s": 60,
        **overrides,
    }
    r = client.post("/api/mobs", json=body, headers=auth(token))
    assert r.status_code == 201, r.get_json()
    return r.get_json()


def make_published_mob(client, token: str, spacing_m: float = 25, **overrides) -> dict:
    mob = make_mob(client, token, **overrides)
    r = client.post(
        f"/api/mobs/{mob['id']}/tasks/generate",
        json={"spacing_m": spacing_m, "kind": "litter"},
        headers=auth(token),
    )
    assert r.status_code == 201, r.get_json()
    r = client.post(f"/api/mobs/{mob['id']}/publish", headers=auth(token))
    assert r.status_code == 200, r.get_json()
    return r.get_json()


def star_zone(
    vertices: int = 2000,
    outer_m: float = 1000.0,
    inner_m: float = 350.0,
    lon0: float = 13.40,
    lat0: float = 52.52,
) -> dict:
    """A hostile but valid zone: a GeoJSON star of ``vertices`` corners (alternately
    ``outer_m`` and ``inner_m`` from its centre), by default the 2,000-vertex, ~1.1 km² star
    of the December 2026 attack (issue 15, finding 3): 1,000 spikes about 2 m wide at their
    base, so a grid's cells between the radii are almost all clipped by many edges. Used by
    tests and by bench/ to reproduce the heavy task generation."""
    import math

    m_per_deg_lat = 111_320.0
    m_per_deg_lon = m_per_deg_lat * math.cos(math.radians(lat0))
    ring = []
    for i in range(vertices):
        angle = 2 * math.pi * i / vertices
        r = outer_m if i % 2 == 0 else inner_m
        ring.append(
            [
                round(lon0 + r * math.cos(angle) / m_per_deg_lon, 7),
                round(lat0 + r * math.sin(angle) / m_per_deg_lat, 7),
            ]
        )
    ring.append(ring[0])
    return {"type": "Polygon", "coordinates": [ring]}
