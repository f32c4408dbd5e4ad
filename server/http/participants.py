"""Joining a mob: a participant and its token (the phone then talks over ``/participant``)."""

from __future__ import annotations

from flask import Blueprint, current_app, jsonify

from server.domain import mobs, participants
from server.domain.views import mob_json
from server.http.common import settings
from server.http.schemas.bodies import JoinMob
from server.http.schemas.fields import body
from server.infra.db import db_session

__all__ = ["blueprint"]

blueprint = Blueprint("participants", __name__, url_prefix="/api")


@blueprint.post("/mobs/<mob_id>/participants")
def join_mob(mob_id: str):
    session = db_session()
    mob = mobs.get_mob(session, mob_id)
    joining = body(JoinMob, optional=True)
    participant = participants.join_mob(session, mob, nickname=joining.nickname, ref=joining.ref)
    session.commit()
    token = participants.issue_token(participant, mob, current_app.config["SECRET_KEY"])
    answer = {
        "participant": {
            "id": participant.id,
            "nickname": participant.nickname,
            "ref_code": participant.ref_code,
        },
        "token": token,
        "expires_in_s": settings().participant_token_max_age_s,
        "share_url": f"/m/{mob.id}?ref={participant.ref_code}",
        "mob": mob_json(mob),
    }
    return jsonify(answer), 201
