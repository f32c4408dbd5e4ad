"""Who brought whom, the attention-to-action funnel, and page views kept without personal data.

*Cascade.* Every participant has a referral code (``participants.ref_code``; who used it is
``referred_by_id``), and the organizer has one share code per mob (kept in ``mob_growth``; it is
longer than a participant's code, so the two never collide). A participant who joined through
the organizer's link is recorded in ``organizer_referrals``. Generation 0 joined with no link;
the organizer's link and a participant from another mob start a chain at 1; a participant
brought by a participant of generation g is of generation g + 1. Referral codes only exist once
someone joined, so a referrer always has a smaller id than the people they brought: one pass in
id order gives the generations, one pass in reverse order adds up each sharer's reach.

Only nicknames their owner chose are shown; everyone else is "anonymous". No referral code,
participant id or position ever appears in the output.

*Views.* A page sends a beacon with a random id its client made (kept by the client for the
day); the server counts a view per mob and UTC day when it has not seen that (mob, id) pair in
the last 24 h. The pair is remembered only as a hash, in Redis (shared by every process, with a
24 h expiry) or, without Redis, in the process's memory. No address or id is stored in the
database: only the daily count.
"""

from __future__ import annotations

import hashlib
import logging
import re
import secrets
import threading
import time
from collections import OrderedDict
from datetime import datetime

from sqlalchemy import func, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from config import Settings
from server.infra.errors import ApiError
from server.infra.models import (
    COUNTED_DEED_STATUSES,
    Deed,
    Mob,
    MobGrowth,
    MobViewDay,
    OrganizerReferral,
    Participant,
    utcnow,
)

__all__ = [
    "ANONYMOUS",
    "growth_row",
    "share_link",
    "is_organizer_ref",
    "record_organizer_referral",
    "count_view",
    "views",
    "funnel",
    "cascade",
]

log = logging.getLogger("goodmob.cascade")

ANONYMOUS = "anonymous"
SHARE_CODE_BYTES = 8  # token_urlsafe(8): 11 characters (participants' codes have 8)
VIEW_DEDUPE_S = 24 * 3600
_CLIENT_ID = re.compile(r"^[A-Za-z0-9_-]{8,64}$")
_MEMORY_MAX = 200_000


def growth_row(session: Session, mob: Mob, *, create: bool = True) -> MobGrowth | None:
    """The mob's ``mob_growth`` row; created (race-safe) when missing and ``create``."""
    row = session.get(MobGrowth, mob.pk)
    if row is None and create:
        try:
            with session.begin_nested():
                row = MobGrowth(mob_pk=mob.pk)
                session.add(row)
                session.flush()
        except IntegrityError:  # another request created it meanwhile
            row = session.get(MobGrowth, mob.pk, populate_existing=True)
    return row


# --- the organizer's share link -----------------------------------------------------------------


def share_link(session: Session, mob: Mob) -> dict:
    """The organizer's share link for ``mob`` (the same code every time)."""
    row = growth_row(session, mob)
    if row.share_code is None:
        for _attempt in range(5):
            code = secrets.token_urlsafe(SHARE_CODE_BYTES)
            try:
                with session.begin_nested():
                    row.share_code = code
                    session.flush()
                break
            except IntegrityError:
                session.refresh(row)
                if row.share_code is not None:  # a concurrent request set it first
                    break
        else:  # pragma: no cover - five 64-bit collisions
            raise ApiError(503, "id_exhausted", "Could not allocate a share code; try again.")
    return {"ref_code": row.share_code, "url": f"/m/{mob.id}?ref={row.share_code}"}


def is_organizer_ref(session: Session, mob: Mob, ref: str) -> bool:
    """Whether ``ref`` is the organizer's share code of this mob."""
    return bool(
        session.scalar(
            select(func.count()).where(MobGrowth.mob_pk == mob.pk, MobGrowth.share_code == ref)
        )
    )


def record_organizer_referral(session: Session, mob: Mob, participant: Participant) -> None:
    """Note that ``participant`` joined ``mob`` through the organizer's share link."""
    session.add(OrganizerReferral(participant_id=participant.id, mob_pk=mob.pk))
    session.flush()


# --- views ---


class _MemorySeen:
    """(mob, client) hashes seen in the last 24 h, in this process (used without Redis)."""

    def __init__(self):
        self._expiry: OrderedDict[str, float] = OrderedDict()
        self._lock = threading.Lock()

    def first(self, key: str, now: float) -> bool:
        with self._lock:
            while self._expiry and next(iter(self._expiry.values())) <= now:
                self._expiry.popitem(last=False)
            if key in self._expiry:
                return False
            if len(self._expiry) >= _MEMORY_MAX:
                self._expiry.popitem(last=False)
            self._expiry[key] = now + VIEW_DEDUPE_S
            return True


_memory_seen = _MemorySeen()
_redis_clients: dict = {}


def _redis(url: str):
    if url not in _redis_clients:
        import redis  # only when the cascade counters are shared through Redis

        _redis_clients[url] = redis.Redis.from_url(url, socket_timeout=2)
    return _redis_clients[url]


def _first_view(key: str, settings: Settings) -> bool:
    if settings.redis_url:
        try:
            return bool(
                _redis(settings.redis_url).set(f"goodmob:view:{key}", 1, nx=True, ex=VIEW_DEDUPE_S)
            )
        except Exception:  # Redis unreachable: dedupe in this process rather than fail
            log.warning("view dedupe: Redis unavailable, using process memory", exc_info=True)
    return _memory_seen.first(key, time.monotonic())


def count_view(
    session: Session, mob: Mob, client_id: object, settings: Settings, now: datetime | None = None
) -> bool:
    """Count a view of ``mob`` by a client (its random ``client_id``) once a day; whether it
    was counted."""
    if not isinstance(client_id, str) or not _CLIENT_ID.match(client_id):
        raise ApiError(
            400,
            "field_invalid",
            "client_id must be 8 to 64 letters, digits, '-' or '_' (a random id the page made).",
            {"field": "client_id"},
        )
    key = hashlib.sha256(f"{mob.id}:{client_id}".encode()).hexdigest()[:40]
    if not _first_view(key, settings):
        return False
    day = (now or utcnow()).date()
    table = MobViewDay

    def bump() -> int:
        return session.execute(
            update(table)
            .where(table.mob_pk == mob.pk, table.day == day)
            .values(views=table.views + 1)
        ).rowcount

    if not bump():
        try:
            with session.begin_nested():
                session.add(MobViewDay(mob_pk=mob.pk, day=day, views=1))
                session.flush()
        except IntegrityError:  # the day's row appeared meanwhile
            bump()
    return True


def views(session: Session, mob: Mob) -> int:
    return int(
        session.scalar(
            select(func.coalesce(func.sum(MobViewDay.views), 0)).where(MobViewDay.mob_pk == mob.pk)
        )
    )


# --- funnel and cascade ---


def _deeds_by_participant(session: Session, mob: Mob) -> dict[int, int]:
    if mob.rehearsal:  # a rehearsal's deeds are never counted
        return {}
    return dict(
        session.execute(
            select(Deed.participant_id, func.count())
            .where(Deed.mob_pk == mob.pk, Deed.status.in_(COUNTED_DEED_STATUSES))
            .group_by(Deed.participant_id)
        ).all()
    )


def funnel(session: Session, mob: Mob) -> dict:
    """Attention to action, in people: viewed → joined → entered the zone → matched to a task →
    did a verified deed (plus the number of verified deeds)."""
    p = Participant
    joined, in_zone, matched = session.execute(
        select(
            func.count(),
            func.count(p.entered_zone_at),
            func.count(p.task_id),
        ).where(p.mob_pk == mob.pk)
    ).one()
    deeds = _deeds_by_participant(session, mob)
    return {
        "viewed": views(session, mob),
        "joined": joined,
        "in_zone": in_zone,
        "matched": matched,
        "done": len(deeds),
        "deeds_done": sum(deeds.values()),
    }


def _display_name(nickname: str, chosen: bool) -> str:
    return nickname if chosen else ANONYMOUS


class _Node:
    __slots__ = ("key", "name", "kind", "parent", "generation", "brought", "reach", "led_to")

    def __init__(self, key, name: str, kind: str, parent=None):
        self.key, self.name, self.kind, self.parent = key, name, kind, parent
        self.generation = 0
        self.brought = self.reach = self.led_to = 0

    def public(self) -> dict:
        return {
            "name": self.name,
            "kind": self.kind,
            "brought": self.brought,
            "reach": self.reach,
            "deeds_led_to": self.led_to,
        }


def _nodes(session: Session, mob: Mob) -> tuple[dict, list]:
    """Every participant of the mob, plus outside sharers (organizer, other mobs' people)."""
    rows = session.execute(
        select(
            Participant.id,
            Participant.referred_by_id,
            Participant.nickname,
            Participant.nickname_chosen,
            Participant.ref_code,
        )
        .where(Participant.mob_pk == mob.pk)
        .order_by(Participant.id)
    ).all()
    via_organizer = set(
        session.scalars(
            select(OrganizerReferral.participant_id).where(OrganizerReferral.mob_pk == mob.pk)
        )
    )
    nodes: dict = {}
    members = []
    for pid, _ref, nickname, chosen, _code in rows:
        nodes[pid] = _Node(pid, _display_name(nickname, chosen), "participant")
        members.append(pid)
    outside = {ref for _pid, ref, *_ in rows if ref is not None and ref not in nodes}
    if outside:
        for pid, nickname, chosen in session.execute(
            select(Participant.id, Participant.nickname, Participant.nickname_chosen).where(
                Participant.id.in_(outside)
            )
        ):
            nodes[pid] = _Node(pid, _display_name(nickname, chosen), "participant")
    if via_organizer:
        nodes["organizer"] = _Node("organizer", mob.organizer.name, "organizer")
    for pid, ref, *_ in rows:
        if ref is not None and ref in nodes:
            nodes[pid].parent = ref
        elif pid in via_organizer:
            nodes[pid].parent = "organizer"
    return nodes, [(pid, code) for pid, _r, _n, _c, code in rows]


def cascade(session: Session, mob: Mob, ref: str | None = None, top: int = 10) -> dict:
    """Who brought whom: top sharers by the verified deeds their shares led to (directly and
    through the people they brought), the depth of the longest chain, people per generation.
    With ``ref`` (the caller's own referral code) the answer adds ``you``."""
    nodes, members = _nodes(session, mob)
    deeds = _deeds_by_participant(session, mob)
    inside = {pid for pid, _ in members}
    for pid, _code in members:  # in id order: a referrer always comes before who they brought
        node = nodes[pid]
        if node.parent is None:
            node.generation = 0
        elif node.parent in inside:
            node.generation = nodes[node.parent].generation + 1
        else:  # the organizer's link, or someone of another mob
            node.generation = 1
    for pid, _code in reversed(members):  # children before parents: add up the subtrees
        node = nodes[pid]
        if node.parent is None:
            continue
        parent = nodes[node.parent]
        parent.brought += 1
        parent.reach += 1 + node.reach
        parent.led_to += deeds.get(pid, 0) + node.led_to
    sharers = sorted(
        (n for n in nodes.values() if n.brought),
        key=lambda n: (-n.led_to, -n.reach, -n.brought, str(n.key)),
    )
    generations: dict[int, int] = {}
    for pid in inside:
        generations[nodes[pid].generation] = generations.get(nodes[pid].generation, 0) + 1
    referred = [pid for pid in inside if nodes[pid].parent is not None]
    body = {
        "joined": len(inside),
        "referred": len(referred),
        "via_organizer": sum(1 for pid in referred if nodes[pid].parent == "organizer"),
        "direct": len(inside) - len(referred),
        "deeds_via_shares": sum(deeds.get(pid, 0) for pid in referred),
        "depth": max(generations, default=0),
        "generations": [{"generation": g, "people": generations[g]} for g in sorted(generations)],
        "sharer_count": len(sharers),
        "sharers": [{"rank": i + 1, **n.public()} for i, n in enumerate(sharers[:top])],
    }
    if ref is not None:
        body["you"] = _you(nodes, sharers, members, ref)
    return body


def _you(nodes: dict, sharers: list, members: list, ref: str) -> dict | None:
    """The caller's own share (found by their referral code), or None for an unknown code."""
    pid = next((p for p, code in members if code == ref), None)
    if pid is None:
        return None
    node = nodes[pid]
    rank = next((i + 1 for i, n in enumerate(sharers) if n.key == pid), None)
    return {"rank": rank, **node.public()}
