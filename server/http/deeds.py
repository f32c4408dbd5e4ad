"""A mob's deeds for its organizer: the list, and the review of a flagged deed."""

from __future__ import annotations

from datetime import UTC, datetime

from flask import Blueprint, jsonify, request
from sqlalchemy import select

from server.domain import participants, ports
from server.domain.views import iso
from server.http import auth
from server.http.common import owned_mob
from server.http.schemas.bodies import Review
from server.http.schemas.fields import body
from server.http.schemas.queries import DeedsQuery, parse_query
from server.infra.db import db_session
from server.infra.models import Deed

__all__ = ["blueprint"]

blueprint = Blueprint("deeds", __name__, url_prefix="/api")


def _deed_json(deed: Deed) -> dict:
    return {
        "id": deed.id,
        "deed_id": deed.deed_id,
        "task": deed.task_id,
        "status": deed.status,
        "reason": deed.reason,
        "distance_m": deed.distance_m,
        "accuracy_m": deed.accuracy_m,
        "created_at": iso(deed.created_at),
        "reviewed_at": iso(deed.reviewed_at),
    }


@blueprint.get("/mobs/<mob_id>/deeds")
@auth.require_organizer
def list_deeds(mob_id: str):
    session = db_session()
    mob = owned_mob(session, mob_id)
    query = select(Deed).where(Deed.mob_pk == mob.pk).order_by(Deed.id)
    status = parse_query(DeedsQuery, request.args).status
    if status is not None:
        query = query.where(Deed.status == status)
    return jsonify({"deeds": [_deed_json(d) for d in session.scalars(query)]})


@blueprint.post("/mobs/<mob_id>/deeds/<int:deed_id>/review")
@auth.require_organizer
def review_deed(mob_id: str, deed_id: int):
    session = db_session()
    mob = owned_mob(session, mob_id)
    verdict = body(Review).verdict
    deed = participants.review_deed(session, mob, deed_id, verdict, datetime.now(UTC))
    session.commit()
    notifier = ports.notifier()
    notifier.deed_reviewed(mob, deed)  # the deed's owner sees the verdict on their phone
    notifier.stats_changed(mob)  # the counters (and pledge totals) moved: live pages update
    notifier.tasks_changed(mob)  # an approved deed counts for its task
    return jsonify(_deed_json(deed))
