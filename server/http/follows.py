"""Followers (no account: a ``flw.…`` token), their follows and their Web Push subscription."""

from __future__ import annotations

from flask import Blueprint, jsonify

from server.domain import follows, mobs, reminders
from server.http import auth
from server.http.common import json_object, settings
from server.infra.db import db_session
from server.infra.errors import ApiError

__all__ = ["blueprint"]

blueprint = Blueprint("follows", __name__, url_prefix="/api")


def _follower(session):
    return follows.follower_from_token(session, auth.bearer_token())


@blueprint.post("/followers")
def create_follower():
    session = db_session()
    follower, token = follows.create_follower(session)
    session.commit()
    body = {"follower": follows.follower_json(session, follower), "follower_token": token}
    try:
        body["vapid_public_key"] = follows.vapid_public_key(settings())
    except ApiError:
        body["vapid_public_key"] = None
    return jsonify(body), 201


@blueprint.get("/followers/me")
def get_follower():
    session = db_session()
    return jsonify(follows.follower_json(session, _follower(session)))


@blueprint.delete("/followers/me")
def delete_follower():
    session = db_session()
    follower = _follower(session)
    session.delete(follower)
    session.commit()
    return "", 204


@blueprint.post("/followers/me/follows")
def add_follow():
    session = db_session()
    follower = _follower(session)
    follow, created = follows.add_follow(session, follower, json_object(), settings())
    session.commit()
    return jsonify(follows.follow_json(follow)), 201 if created else 200


@blueprint.delete("/followers/me/follows/<int:follow_id>")
def remove_follow(follow_id: int):
    session = db_session()
    follows.remove_follow(session, _follower(session), follow_id)
    session.commit()
    return "", 204


@blueprint.put("/followers/me/push-subscription")
def set_push_subscription():
    session = db_session()
    follower = _follower(session)
    follows.set_push_subscription(session, follower, json_object(), settings())
    session.commit()
    return jsonify(follows.follower_json(session, follower))


@blueprint.delete("/followers/me/push-subscription")
def clear_push_subscription():
    session = db_session()
    follows.clear_push_subscription(session, _follower(session))
    session.commit()
    return "", 204


@blueprint.put("/followers/me/reminders/<mob_id>")
def opt_in_reminders(mob_id: str):
    """Remind me of this mob (and tell me if it moves or is called off) by Web Push."""
    session = db_session()
    follower = _follower(session)
    reminders.opt_in(session, follower, mobs.get_mob(session, mob_id))
    session.commit()
    return "", 204


@blueprint.delete("/followers/me/reminders/<mob_id>")
def opt_out_reminders(mob_id: str):
    session = db_session()
    follower = _follower(session)
    reminders.opt_out(session, follower, mobs.get_mob(session, mob_id))
    session.commit()
    return "", 204


@blueprint.get("/push/public-key")
def push_public_key():
    return jsonify({"public_key": follows.vapid_public_key(settings())})
