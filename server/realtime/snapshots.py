"""What a socket gets when it joins or watches a mob: the participant's view (own task,
counters, deeds) or the spectator's (tasks by state, counters, density; no one's
position), with the numbered events it missed."""

from __future__ import annotations

import time

from server.domain import density, participants, timeline
from server.domain.views import mob_json, tasks_feature_collection
from server.infra.db import db_session
from server.infra.models import Mob, Participant, Task
from server.realtime.broadcast import recent_counters
from server.realtime.common import (
    settings,
)

__all__ = ["snapshot", "spectator_snapshot"]


def snapshot(participant: Participant, mob: Mob, last_seq=None) -> dict:
    """A participant's view of the mob: timeline, own task and counters (never others)."""
    session = db_session()
    task = session.get(Task, participant.task_id) if participant.task_id else None
    return {
        "mob": mob_json(mob),
        "timeline": timeline.timeline_json(mob),
        "phase": mob.status,
        "seq": mob.event_seq,
        "server_time_ms": int(time.time() * 1000),
        "me": {
            "nickname": participant.nickname,
            "ref_code": participant.ref_code,
            "zone": participant.zone_state,
        },
        "task": participants.task_json(task, participant) if task else None,
        "counters": recent_counters(mob) or participants.counters(session, mob),
        "deeds": participants.deeds_of(session, participant),
        "announcements": timeline.recent_announcements(session, mob),
        "missed": timeline.missed_events(session, mob, last_seq),
    }


def spectator_snapshot(mob: Mob, last_seq=None) -> dict:
    """What a spectator sees: the mob, tasks by state, counters, density; no one's position."""
    session = db_session()
    s = settings()
    return {
        "mob": mob_json(mob),
        "timeline": timeline.timeline_json(mob),
        "phase": mob.status,
        "seq": mob.event_seq,
        "server_time_ms": int(time.time() * 1000),
        "tasks": tasks_feature_collection(session, mob),
        "counters": participants.counters(session, mob),
        "density": density.density_json(session, mob, s),
        "announcements": timeline.recent_announcements(session, mob),
        "missed": timeline.missed_events(session, mob, last_seq),
    }
