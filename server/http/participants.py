"""Joining a mob: a participant and its token (the phone then talks over ``/participant``)."""

from __future__ import annotations

from flask import Blueprint, current_app, jsonify

from server.domain import mobs, participants, reminders
from server.domain.views import mob_json
from server.http import auth
from server.http.common import json_object, settings
from server.http.schemas.bodies import JoinMob
from server.http.schemas.fields import body
from server.infra.db import db_session
from server.infra.errors import ApiError

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


def _me(session, mob_id: str):
    """The participant the bearer token names, in mob ``mob_id`` (401 otherwise)."""
    participant, mob = participants.participant_from_token(
        session,
        auth.bearer_token(),
        current_app.config["SECRET_KEY"],
        settings().participant_token_max_age_s,
    )
    if mob.id != mob_id:
        mobs.get_mob(session, mob_id)  # 404 for a mob that does not exist
        raise ApiError(401, "token_invalid", "The participant token is for another mob.")
    return participant


@blueprint.put("/mobs/<mob_id>/participants/me/push-subscription")
def set_push_subscription(mob_id: str):
    """The joined participant's Web Push subscription: the mob's reminders and notices."""
    session = db_session()
    participant = _me(session, mob_id)
    reminders.set_participant_push(session, participant, json_object(), settings())
    session.commit()
    return "", 204


@blueprint.delete("/mobs/<mob_id>/participants/me/push-subscription")
def clear_push_subscription(mob_id: str):
    session = db_session()
    reminders.clear_participant_push(session, _me(session, mob_id))
    session.commit()
    return "", 204
