"""Helpers of the growth tests (issue 6): zones in three cities, participants, deeds, a time
shift into the action phase, an RFC 7946 GeoJSON validator, and a stand-in Web Push service."""

from __future__ import annotations

import json
import math
import threading
import time
import uuid
from datetime import UTC, datetime, timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

from sqlalchemy import select, text, update

from server.infra.models import Deed, Mob, Participant, Task
from tests.factories import auth

GROWTH_TABLES = (
    "pledges",
    "sponsors",
    "push_subscriptions",
    "follows",
    "followers",
    "publish_notices",
    "mob_views",
    "organizer_referrals",
    "mob_growth",
    "campaigns",
)
# Inside the Weinberg park (tests.factories.PARK), away from every task spot of a 40 m grid.
INSIDE = {"lat": 52.5320, "lon": 13.4000, "accuracy_m": 8, "at": 0}
CITIES = {
    "Europe/Berlin": (13.4000, 52.5320),
    "America/New_York": (-73.9680, 40.7812),
    "Asia/Tokyo": (139.6949, 35.6717),
}


def clean_growth(db) -> None:
    """Empty the growth tables (the shared ``db`` fixture empties the older ones)."""
    for table in GROWTH_TABLES:
        db.execute(text(f"DELETE FROM {table}"))
    db.commit()


def square(lon: float, lat: float, half_m: float = 120.0) -> dict:
    """A GeoJSON square of 2 × ``half_m`` metres around a point (counter-clockwise)."""
    dlat = half_m / 111_320.0
    dlon = dlat / math.cos(math.radians(lat))
    ring = [
        [lon - dlon, lat - dlat],
        [lon + dlon, lat - dlat],
        [lon + dlon, lat + dlat],
        [lon - dlon, lat + dlat],
        [lon - dlon, lat - dlat],
    ]
    return {"type": "Polygon", "coordinates": [ring]}


def join(client, mob_id: str, **body) -> dict:
    r = client.post(f"/api/mobs/{mob_id}/participants", json=body)
    assert r.status_code == 201, r.get_json()
    return r.get_json()


def mob_row(db, mob_id: str) -> Mob:
    db.expire_all()
    return db.scalar(select(Mob).where(Mob.id == mob_id))


def first_task(db, mob_id: str) -> Task:
    mob = mob_row(db, mob_id)
    return db.scalar(select(Task).where(Task.mob_pk == mob.pk).order_by(Task.id))


def add_deed(
    db,
    mob_id: str,
    participant_id: int,
    status: str = "accepted",
    minute: float = 0.5,
    task_id: int | None = None,
) -> Deed:
    """A deed written straight to the database, ``minute`` minutes after GO (on the mob's
    first task unless ``task_id`` is given)."""
    mob = mob_row(db, mob_id)
    task = db.get(Task, task_id) if task_id else first_task(db, mob_id)
    deed = Deed(
        deed_id=str(uuid.uuid4()),
        mob_pk=mob.pk,
        participant_id=participant_id,
        task_id=task.id,
        status=status,
        reason="far_from_task" if status == "flagged" else None,
        distance_m=3.0,
        accuracy_m=8.0,
        created_at=mob.go_at + timedelta(minutes=minute),
    )
    db.add(deed)
    db.commit()
    return deed


def set_status(db, mob_id: str, status: str, go_in_s: float | None = None) -> None:
    """Force a mob's status (and optionally move GO to ``go_in_s`` from now)."""
    values: dict = {"status": status}
    if go_in_s is not None:
        go = datetime.now(UTC) + timedelta(seconds=go_in_s)
        mob = mob_row(db, mob_id)
        values.update(
            go_at=go,
            gather_at=go - timedelta(seconds=900),
            countdown_at=go - timedelta(seconds=60),
            end_at=go + timedelta(seconds=mob.duration_s),
        )
    db.execute(update(Mob).where(Mob.id == mob_id).values(**values))
    db.commit()


def participant(db, participant_id: int) -> Participant:
    db.expire_all()
    return db.get(Participant, participant_id)


def approve(client, token: str, mob_id: str, deed_pk: int) -> None:
    r = client.post(
        f"/api/mobs/{mob_id}/deeds/{deed_pk}/review",
        json={"verdict": "approve"},
        headers=auth(token),
    )
    assert r.status_code == 200, r.get_json()


# --- RFC 7946 ---


def _positions_ok(coords, depth: int, errors: list, where: str) -> None:
    if depth == 0:
        if not (isinstance(coords, list) and len(coords) in (2, 3)):
            errors.append(f"{where}: a position is [lon, lat]")
            return
        lon, lat = coords[0], coords[1]
        if not all(isinstance(v, (int, float)) and not isinstance(v, bool) for v in coords):
            errors.append(f"{where}: non-numeric position")
        elif not (-180 <= lon <= 180 and -90 <= lat <= 90):
            errors.append(f"{where}: {coords} is not lon/lat in range")
        return
    if not isinstance(coords, list) or not coords:
        errors.append(f"{where}: empty coordinates")
        return
    for i, c in enumerate(coords):
        _positions_ok(c, depth - 1, errors, f"{where}[{i}]")


def _ring_area(ring) -> float:
    """Shoelace area; positive for a counter-clockwise ring."""
    return (
        sum(x1 * y2 - x2 * y1 for (x1, y1, *_), (x2, y2, *_) in zip(ring, ring[1:], strict=False))
        / 2
    )


def _polygon_ok(rings, errors: list, where: str) -> None:
    for i, ring in enumerate(rings):
        if len(ring) < 4:
            errors.append(f"{where}[{i}]: a linear ring has at least 4 positions")
        elif ring[0] != ring[-1]:
            errors.append(f"{where}[{i}]: ring not closed")
        elif (_ring_area(ring) > 0) != (i == 0):
            errors.append(f"{where}[{i}]: right-hand rule (exterior CCW, holes CW) broken")


_DEPTH = {
    "Point": 0,
    "MultiPoint": 1,
    "LineString": 1,
    "MultiLineString": 2,
    "Polygon": 2,
    "MultiPolygon": 3,
}


def geojson_errors(doc) -> list[str]:
    """Why ``doc`` is not a valid RFC 7946 FeatureCollection (empty list: valid)."""
    errors: list[str] = []
    if not isinstance(doc, dict) or doc.get("type") != "FeatureCollection":
        return ["not a FeatureCollection"]
    if "crs" in doc:
        errors.append("RFC 7946 has no crs member")
    if not isinstance(doc.get("features"), list):
        return [*errors, "features is not an array"]
    for n, feature in enumerate(doc["features"]):
        where = f"features[{n}]"
        if feature.get("type") != "Feature" or "properties" not in feature:
            errors.append(f"{where}: not a Feature with properties")
            continue
        if "id" in feature and not isinstance(feature["id"], (str, int)):
            errors.append(f"{where}: id must be a string or number")
        geometry = feature.get("geometry")
        kind = geometry.get("type") if isinstance(geometry, dict) else None
        if kind not in _DEPTH:
            errors.append(f"{where}: unknown geometry {kind!r}")
            continue
        _positions_ok(geometry.get("coordinates"), _DEPTH[kind], errors, where)
        if kind == "Polygon":
            _polygon_ok(geometry["coordinates"], errors, where)
        elif kind == "MultiPolygon":
            for i, polygon in enumerate(geometry["coordinates"]):
                _polygon_ok(polygon, errors, f"{where}[{i}]")
    try:
        json.dumps(doc, allow_nan=False)
    except ValueError:
        errors.append("NaN or Infinity in the document")
    return errors


# --- a stand-in Web Push service ---


class PushService:
    """A local HTTP server that records every push request and answers ``status``."""

    def __init__(self, status: int = 201):
        self.requests: list[dict] = []
        self.status = status
        self.arrived = threading.Condition()
        service = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self):
                length = int(self.headers.get("Content-Length", 0))
                body = self.rfile.read(length)
                with service.arrived:
                    service.requests.append(
                        {
                            "path": self.path,
                            "headers": dict(self.headers.items()),
                            "body": body,
                            "at": time.time(),
                        }
                    )
                    service.arrived.notify_all()
                self.send_response(service.status)
                self.send_header("Content-Length", "0")
                self.end_headers()

            def log_message(self, *args):
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    def __enter__(self):
        self.thread.start()
        return self

    def __exit__(self, *exc):
        self.server.shutdown()
        self.server.server_close()

    def wait_for(self, count: int, timeout_s: float = 20) -> list[dict]:
        with self.arrived:
            self.arrived.wait_for(lambda: len(self.requests) >= count, timeout=timeout_s)
            return list(self.requests)


def browser_keys() -> tuple[object, dict]:
    """What a browser's PushSubscription holds: a P-256 key pair and a 16-byte auth secret."""
    import os

    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from py_vapid.utils import b64urlencode

    private = ec.generate_private_key(ec.SECP256R1())
    public = private.public_key().public_bytes(
        serialization.Encoding.X962, serialization.PublicFormat.UncompressedPoint
    )
    secret = os.urandom(16)
    return private, {"p256dh": b64urlencode(public), "auth": b64urlencode(secret)}


def decrypt_push(body: bytes, private_key, keys: dict) -> dict:
    """Decrypt an ``aes128gcm`` Web Push body (RFC 8291) as the browser would."""
    import http_ece
    from py_vapid.utils import b64urldecode

    plain = http_ece.decrypt(
        body,
        private_key=private_key,
        auth_secret=b64urldecode(keys["auth"].encode()),
        version="aes128gcm",
    )
    return json.loads(plain)


def vapid_claims(authorization: str) -> tuple[str, dict]:
    """``(k, claims)`` of a ``vapid t=<jwt>,k=<key>`` header (the signature checked)."""
    import base64

    from py_vapid import Vapid02

    assert Vapid02.verify(authorization), "the VAPID signature does not verify"
    parts = dict(p.split("=", 1) for p in authorization.split(" ", 1)[1].split(","))
    payload = parts["t"].split(".")[1]
    claims = json.loads(base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4)))
    return parts["k"], claims
