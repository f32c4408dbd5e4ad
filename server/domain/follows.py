"""Follow an organizer or a place without an account, and be told when a matching mob is published.

A follower is a public id and a secret: the client keeps the token ``flw.<id>.<secret>``; the
server stores only a SHA-256 hash of the secret. A follower follows organizers (named through one
of their mobs) and places (a circle of ``radius_m`` around a lon/lat point).

When a mob is published, :func:`on_published` (called after the publish commit) claims the mob's
notice once in the database, whichever process gets there first, then:

* tells the followers connected on the Socket.IO namespace ``/follow`` at once, through the
  notifier (``server.realtime.follow``: event ``mob_published`` to the room ``follower:<id>``;
  through Redis when several processes run);
* sends a Web Push to the followers with a subscription, in a background task: a real HTTP
  request to the push service named by the subscription, signed with VAPID (RFC 8292) and
  encrypted (RFC 8291, ``aes128gcm``) by pywebpush.

VAPID keys come from the settings (``vapid_private_key``) or, outside production, are generated
on first use and kept in ``instance/vapid_private_key.pem``.

Push endpoints are URLs chosen by a client, so the server would POST to any address it is given:
only the hosts of the known push services are accepted (``push_allowed_hosts``), plus plain
``http`` on the loopback interface outside production (for development and the tests).
"""

from __future__ import annotations

import contextlib
import hashlib
import hmac
import ipaddress
import json
import logging
import os
import secrets
import string
import tempfile
from datetime import datetime
from urllib.parse import urlsplit

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec
from geoalchemy2.shape import to_shape
from py_vapid import Vapid
from py_vapid.utils import b64urldecode, b64urlencode
from sqlalchemy import and_, delete, func, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

import geo
from config import REPO_ROOT, Settings
from server.domain import mobs, ports, timeline
from server.domain.fields import get_number, get_str, reject_unknown
from server.infra.errors import ApiError
from server.infra.models import (
    CLOSED_STATUSES,
    Follow,
    Follower,
    Mob,
    PublishNotice,
    PushSubscription,
    utcnow,
)

__all__ = [
    "NAMESPACE",
    "issue_secret_token",
    "check_secret_token",
    "create_follower",
    "follower_from_token",
    "follower_json",
    "follow_json",
    "add_follow",
    "remove_follow",
    "set_push_subscription",
    "parse_push_subscription",
    "clear_push_subscription",
    "vapid_key",
    "vapid_public_key",
    "matching_followers",
    "on_published",
    "push_payload",
    "send_push",
]

log = logging.getLogger("goodmob.follows")

NAMESPACE = "/follow"
TOKEN_PREFIX = "flw"
FOLLOWS_MAX = 50
PLACE_RADIUS_MIN_M = 100.0
# Push services of the browsers (Chrome/Edge via FCM, Firefox, Safari, Windows); suffix match.
DEFAULT_PUSH_HOSTS = (
    "fcm.googleapis.com,android.googleapis.com,push.services.mozilla.com,push.apple.com,"
    "notify.windows.com"
)
VAPID_SUBJECT_DEFAULT = "mailto:admin@goodmob.invalid"
PUSH_TIMEOUT_S = 10.0
PUSH_TTL_MAX_S = 7 * 24 * 3600
_ID_ALPHABET = string.ascii_lowercase + string.digits
_LOOPBACK_NAMES = ("localhost",)


# --- account-free identities: an id and a hashed secret --------------------------------------


def _hash(secret: str) -> str:
    return hashlib.sha256(secret.encode()).hexdigest()


def issue_secret_token(prefix: str) -> tuple[str, str, str]:
    """``(public_id, secret_hash, token)`` for a new account-free identity.

    >>> public_id, digest, token = issue_secret_token("flw")
    >>> token.startswith("flw." + public_id + ".") and len(digest) == 64
    True
    """
    public_id = "".join(secrets.choice(_ID_ALPHABET) for _ in range(12))
    secret = secrets.token_urlsafe(24)
    return public_id, _hash(secret), f"{prefix}.{public_id}.{secret}"


def check_secret_token(token: object, prefix: str) -> tuple[str, str] | None:
    """``(public_id, secret_hash)`` named by a well-formed token of ``prefix``, else None."""
    if not isinstance(token, str) or len(token) > 200:
        return None
    parts = token.split(".")
    if len(parts) != 3 or parts[0] != prefix or not parts[1] or not parts[2]:
        return None
    return parts[1], _hash(parts[2])


def _matches(stored_hash: str, given_hash: str) -> bool:
    return hmac.compare_digest(stored_hash, given_hash)


# --- followers and their follows ---


def create_follower(session: Session) -> tuple[Follower, str]:
    """A new follower and its token (shown once; only the secret's hash is stored)."""
    public_id, digest, token = issue_secret_token(TOKEN_PREFIX)
    follower = Follower(public_id=public_id, secret_hash=digest)
    session.add(follower)
    session.flush()
    return follower, token


def follower_from_token(session: Session, token: object) -> Follower:
    """The follower a token names, or a 401 ApiError."""
    if token is None or token == "":
        raise ApiError(
            401, "auth_required", "Send the follower token: 'Authorization: Bearer <token>'."
        )
    parsed = check_secret_token(token, TOKEN_PREFIX)
    follower = None
    if parsed is not None:
        follower = session.scalar(select(Follower).where(Follower.public_id == parsed[0]))
    if follower is None or not _matches(follower.secret_hash, parsed[1]):
        raise ApiError(401, "token_invalid", "The follower token is not valid.")
    return follower


def follow_json(follow: Follow) -> dict:
    data = {"id": follow.id, "type": follow.kind, "label": follow.label}
    if follow.kind == "organizer":
        data["organizer"] = {"name": follow.organizer.name if follow.organizer else None}
    else:
        data.update(lat=follow.lat, lon=follow.lon, radius_m=follow.radius_m)
    return data


def follower_json(session: Session, follower: Follower) -> dict:
    has_push = session.scalar(
        select(func.count()).where(PushSubscription.follower_id == follower.id)
    )
    return {
        "id": follower.public_id,
        "follows": [follow_json(f) for f in follower.follows],
        "push": bool(has_push),
    }


def add_follow(
    session: Session, follower: Follower, data: dict, settings: Settings
) -> tuple[Follow, bool]:
    """Follow an organizer (``{type: organizer, mob}``: the organizer of that mob) or a place
    (``{type: place, lat, lon, radius_m, label?}``). Returns ``(follow, created)``; following
    the same organizer or place again returns the existing follow."""
    kind = get_str(data, "type", max_len=12)
    if kind == "organizer":
        reject_unknown(data, {"type", "mob", "label"})
        mob = mobs.get_mob(session, get_str(data, "mob", max_len=16))
        existing = session.scalar(
            select(Follow).where(
                Follow.follower_id == follower.id,
                Follow.kind == "organizer",
                Follow.organizer_id == mob.organizer_id,
            )
        )
        if existing is not None:
            return existing, False
        follow = Follow(kind="organizer", organizer_id=mob.organizer_id)
        follow.label = get_str(data, "label", required=False, max_len=80) or mob.organizer.name
    elif kind == "place":
        reject_unknown(data, {"type", "lat", "lon", "radius_m", "label"})
        lat = get_number(data, "lat", lo=-90, hi=90)
        lon = get_number(data, "lon", lo=-180, hi=180)
        radius_m = get_number(
            data, "radius_m", lo=PLACE_RADIUS_MIN_M, hi=settings.nearby_max_radius_m
        )
        existing = session.scalar(
            select(Follow).where(
                Follow.follower_id == follower.id,
                Follow.kind == "place",
                Follow.lat == lat,
                Follow.lon == lon,
                Follow.radius_m == radius_m,
            )
        )
        if existing is not None:
            return existing, False
        follow = Follow(kind="place", lat=lat, lon=lon, radius_m=radius_m)
        follow.label = get_str(data, "label", required=False, max_len=80) or ""
    else:
        raise ApiError(
            400, "field_invalid", "type must be 'organizer' or 'place'.", {"field": "type"}
        )
    count = session.scalar(select(func.count()).where(Follow.follower_id == follower.id))
    if count >= FOLLOWS_MAX:
        raise ApiError(
            422, "too_many_follows", f"A follower follows at most {FOLLOWS_MAX} organizers/places."
        )
    follow.follower_id = follower.id
    session.add(follow)
    session.flush()
    session.expire(follower, ["follows"])
    return follow, True


def remove_follow(session: Session, follower: Follower, follow_id: int) -> None:
    deleted = session.execute(
        delete(Follow).where(Follow.id == follow_id, Follow.follower_id == follower.id)
    ).rowcount
    if not deleted:
        raise ApiError(404, "follow_not_found", f"You have no follow {follow_id}.")
    session.expire(follower, ["follows"])


# --- Web Push subscriptions ---


def _is_loopback(host: str) -> bool:
    if host in _LOOPBACK_NAMES:
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def _allowed_hosts(settings: Settings) -> list[str]:
    raw = settings.push_allowed_hosts
    return [h.strip().lower().lstrip(".") for h in raw.split(",") if h.strip()]


def _check_endpoint(endpoint: str, settings: Settings) -> None:
    """Refuse push endpoints that are not a known push service (the server POSTs to them)."""
    parts = urlsplit(endpoint)
    host = (parts.hostname or "").lower()
    if parts.scheme == "http" and settings.env != "production" and _is_loopback(host):
        return  # a local stand-in push service (development, tests)
    allowed = _allowed_hosts(settings)
    known = any(host == h or host.endswith("." + h) for h in allowed)
    if parts.scheme != "https" or not known or parts.username or parts.password:
        raise ApiError(
            422,
            "push_endpoint_refused",
            "The push endpoint must be an https URL of a browser push service "
            f"({', '.join(allowed)}).",
            {"field": "endpoint"},
        )


def _key_bytes(value: object, name: str, length: int) -> bytes:
    where = {"field": f"keys.{name}"}
    if not isinstance(value, str) or len(value) > 200:
        raise ApiError(400, "field_wrong_type", f"keys.{name} must be a base64url string.", where)
    try:
        raw = b64urldecode(value.encode())
    except ValueError:
        raw = b""
    if len(raw) != length:
        raise ApiError(
            422, "push_key_invalid", f"keys.{name} must decode to {length} bytes.", where
        )
    return raw


def set_push_subscription(
    session: Session, follower: Follower, data: dict, settings: Settings
) -> PushSubscription:
    """Store the browser's PushSubscription (``{endpoint, keys: {p256dh, auth}}``), replacing
    the follower's previous one."""
    endpoint, p256dh, auth = parse_push_subscription(data, settings)
    session.execute(delete(PushSubscription).where(PushSubscription.follower_id == follower.id))
    subscription = PushSubscription(
        follower_id=follower.id, endpoint=endpoint, p256dh=p256dh, auth=auth, failures=0
    )
    session.add(subscription)
    session.flush()
    return subscription


def parse_push_subscription(data: dict, settings: Settings) -> tuple[str, str, str]:
    """``(endpoint, p256dh, auth)`` of a browser's PushSubscription, checked (specific errors)."""
    reject_unknown(data, {"endpoint", "keys", "expirationTime"})
    endpoint = get_str(data, "endpoint", max_len=1024)
    _check_endpoint(endpoint, settings)
    keys = data.get("keys")
    if not isinstance(keys, dict):
        raise ApiError(400, "field_missing", "keys {p256dh, auth} is required.", {"field": "keys"})
    p256dh = _key_bytes(keys.get("p256dh"), "p256dh", 65)
    try:
        ec.EllipticCurvePublicKey.from_encoded_point(ec.SECP256R1(), p256dh)
    except ValueError:
        raise ApiError(
            422,
            "push_key_invalid",
            "keys.p256dh is not a P-256 public key.",
            {"field": "keys.p256dh"},
        ) from None
    auth = _key_bytes(keys.get("auth"), "auth", 16)
    return endpoint, b64urlencode(p256dh), b64urlencode(auth)


def clear_push_subscription(session: Session, follower: Follower) -> None:
    session.execute(delete(PushSubscription).where(PushSubscription.follower_id == follower.id))


# --- VAPID ---

_vapid_cache: dict[str, Vapid] = {}


def _instance_key_file() -> str:
    return str(REPO_ROOT / "instance" / "vapid_private_key.pem")


def _load_or_create(path: str) -> Vapid:
    """The key in ``path``; created atomically on first use (concurrent processes agree)."""
    if not os.path.exists(path):
        os.makedirs(os.path.dirname(path), exist_ok=True)
        fresh = Vapid()
        fresh.generate_keys()
        fd, tmp = tempfile.mkstemp(dir=os.path.dirname(path), prefix=".vapid-")
        try:
            os.write(fd, fresh.private_pem())
            os.close(fd)
            os.chmod(tmp, 0o600)
            # Fails if another process created it first: then everyone uses theirs.
            with contextlib.suppress(FileExistsError):
                os.link(tmp, path)
        finally:
            os.unlink(tmp)
    with open(path, "rb") as f:
        key = serialization.load_pem_private_key(f.read(), password=None)
    return Vapid(key)


def vapid_key(settings: Settings) -> Vapid:
    """This server's VAPID key: from ``vapid_private_key`` (raw or DER, base64url) or else from
    instance/vapid_private_key.pem, generated on first use (every process of one host shares
    it; several hosts must share VAPID_PRIVATE_KEY instead)."""
    configured = settings.vapid_private_key
    cache_key = configured or _instance_key_file()
    if cache_key not in _vapid_cache:
        if configured:
            _vapid_cache[cache_key] = Vapid.from_string(configured)
        else:
            if settings.env == "production":
                log.warning(
                    "VAPID_PRIVATE_KEY is not set: using the key in %s (generated if missing); "
                    "set VAPID_PRIVATE_KEY when several hosts serve",
                    cache_key,
                )
            _vapid_cache[cache_key] = _load_or_create(cache_key)
    return _vapid_cache[cache_key]


def vapid_public_key(settings: Settings) -> str:
    """The application server key for ``pushManager.subscribe`` (base64url, uncompressed)."""
    public = vapid_key(settings).public_key.public_bytes(
        serialization.Encoding.X962, serialization.PublicFormat.UncompressedPoint
    )
    return b64urlencode(public)


def _vapid_subject(settings: Settings) -> str:
    return settings.vapid_subject or VAPID_SUBJECT_DEFAULT


# --- who is told, and telling them ---


def _reach_box(zone, radius_m: float) -> tuple[float, float, float, float]:
    """A lon/lat box holding every point within ``radius_m`` of the zone."""
    min_lon, min_lat, max_lon, max_lat = zone.bounds
    boxes = [
        geo.bbox_around(lon, lat, radius_m)
        for lon in (min_lon, max_lon)
        for lat in (min_lat, max_lat)
    ]
    return (
        min(b[0] for b in boxes),
        min(b[1] for b in boxes),
        max(b[2] for b in boxes),
        max(b[3] for b in boxes),
    )


def matching_followers(session: Session, mob: Mob, settings: Settings) -> dict[int, list[str]]:
    """Follower id → why they are told (``organizer``, ``place``) for a published ``mob``.

    Places are pre-filtered by an indexed lon/lat box around the zone (padded by the largest
    radius a follow may have), then measured exactly: the circle must reach the zone.
    """
    found: dict[int, list[str]] = {}
    for follower_id in session.scalars(
        select(Follow.follower_id).where(
            Follow.kind == "organizer", Follow.organizer_id == mob.organizer_id
        )
    ):
        found.setdefault(follower_id, []).append("organizer")
    zone = to_shape(mob.zone)
    min_lon, min_lat, max_lon, max_lat = _reach_box(zone, settings.nearby_max_radius_m)
    rows = session.execute(
        select(Follow.follower_id, Follow.lon, Follow.lat, Follow.radius_m).where(
            Follow.kind == "place",
            and_(Follow.lat >= min_lat, Follow.lat <= max_lat),
            and_(Follow.lon >= min_lon, Follow.lon <= max_lon),
        )
    )
    for follower_id, lon, lat, radius_m in rows:
        reasons = found.setdefault(follower_id, [])
        if "place" not in reasons and geo.distance_to_zone_m(zone, lon, lat) <= radius_m:
            reasons.append("place")
    return {fid: reasons for fid, reasons in found.items() if reasons}


def push_payload(mob: Mob) -> dict:
    """What a follower is told about a published mob (no one's position; public facts)."""
    centroid = to_shape(mob.zone).representative_point()
    return {
        "mob": {
            "id": mob.id,
            "title": mob.title,
            "organizer": {"name": mob.organizer.name},
            "go_at_ms": timeline.ms(mob.go_at),
            "url": f"/m/{mob.id}",
            "lat": round(centroid.y, 6),
            "lon": round(centroid.x, 6),
        },
    }


def _chunks(items: list, size: int = 500):
    for i in range(0, len(items), size):
        yield items[i : i + size]


def on_published(session: Session, mob: Mob) -> int:
    """Tell the followers of ``mob``'s organizer and of the places it lies in; call it after the
    publish commit. Idempotent across processes and repeated publishes (the notice is claimed
    once in the database). Commits its own claim. Returns how many followers were told.

    A failure here is logged, never raised: the publish it follows has already succeeded."""
    if mob.status == "draft" or mob.status in CLOSED_STATUSES:
        return 0
    try:
        return _notify(session, mob)
    except Exception:
        session.rollback()
        log.exception("mob %s: telling followers failed", mob.id)
        return 0


def _notify(session: Session, mob: Mob) -> int:
    settings = ports.host().app().config["SETTINGS"]
    try:
        with session.begin_nested():
            session.add(PublishNotice(mob_pk=mob.pk, followers=0, notified_at=utcnow()))
            session.flush()
    except IntegrityError:
        return 0  # already told (another process, or a second publish)
    matches = matching_followers(session, mob, settings)
    session.execute(
        update(PublishNotice).where(PublishNotice.mob_pk == mob.pk).values(followers=len(matches))
    )
    subscriptions = []
    for chunk in _chunks(sorted(matches)):
        subscriptions += [
            {
                "id": s.id,
                "follower_id": s.follower_id,
                "endpoint": s.endpoint,
                "keys": {"p256dh": s.p256dh, "auth": s.auth},
            }
            for s in session.scalars(
                select(PushSubscription).where(PushSubscription.follower_id.in_(chunk))
            )
        ]
    session.commit()
    payload = push_payload(mob)
    ports.notifier().mob_published(matches, payload)  # followers with an open app
    if subscriptions:
        _start_pushes(subscriptions, matches, payload, mob.go_at, settings)
    log.info("mob %s published: %d followers told", mob.id, len(matches))
    return len(matches)


def _start_pushes(subscriptions, matches, payload, go_at: datetime, settings: Settings) -> None:
    try:
        key = vapid_key(settings)
    except ApiError as exc:
        log.warning("Web Push skipped: %s", exc.message)
        return
    ttl_s = int(min(PUSH_TTL_MAX_S, max(60, (go_at - utcnow()).total_seconds())))
    sessions = ports.host().app().extensions["goodmob.sessions"]
    subject = _vapid_subject(settings)
    ports.host().spawn(_push_all, sessions, subscriptions, matches, payload, key, subject, ttl_s)


def _notification(payload: dict, reasons: list[str]) -> str:
    mob = payload["mob"]
    why = "an organizer you follow" if "organizer" in reasons else "a place you follow"
    return json.dumps(
        {
            "type": "mob_published",
            "title": f"New Good Mob: {mob['title']}",
            "body": f"By {mob['organizer']['name']}, near {why}.",
            "url": mob["url"],
            **payload,
            "reasons": reasons,
        }
    )


def send_push(subscription: dict, data: str, key: Vapid, subject: str, ttl_s: int):
    """One Web Push request (encrypted, VAPID-signed); returns the HTTP response."""
    from pywebpush import webpush  # heavy (requests, http_ece): loaded when a push is sent

    return webpush(
        subscription_info={"endpoint": subscription["endpoint"], "keys": subscription["keys"]},
        data=data,
        vapid_private_key=key,
        vapid_claims={"sub": subject},  # a fresh dict: pywebpush adds this endpoint's aud
        ttl=ttl_s,
        timeout=PUSH_TIMEOUT_S,
        headers={"Urgency": "high"},
    )


def _push_all(sessions, subscriptions, matches, payload, key, subject, ttl_s) -> None:
    """Send every push; forget subscriptions the push service says are gone (404/410)."""
    from pywebpush import WebPushException  # heavy: loaded when a push is sent

    gone, failed = [], []
    for sub in subscriptions:
        data = _notification(payload, matches.get(sub["follower_id"], []))
        try:
            send_push(sub, data, key, subject, ttl_s)
        except WebPushException as exc:
            (gone if exc.status_code in (404, 410) else failed).append(sub["id"])
            log.warning("push to subscription %s failed: %s", sub["id"], exc.status_code)
        except Exception:  # network errors: count them, keep the subscription for now
            failed.append(sub["id"])
            log.warning("push to subscription %s failed", sub["id"], exc_info=True)
    if not (gone or failed):
        return
    session = sessions()
    try:
        if gone:
            session.execute(delete(PushSubscription).where(PushSubscription.id.in_(gone)))
        if failed:
            session.execute(
                update(PushSubscription)
                .where(PushSubscription.id.in_(failed))
                .values(failures=PushSubscription.failures + 1)
            )
        session.commit()
    finally:
        session.close()
