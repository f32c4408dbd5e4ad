"""Organizer accounts and log-in sessions: sign up, log in, log out, the organizer's mobs."""

from __future__ import annotations

from flask import Blueprint, g, jsonify, request
from sqlalchemy import select

from server.domain import accounts
from server.domain.views import mob_json
from server.http import auth
from server.http.common import settings, task_count
from server.http.validate import get_str, json_body, reject_unknown
from server.infra import ratelimit
from server.infra.db import db_session
from server.infra.errors import ApiError
from server.infra.models import Mob

__all__ = ["blueprint"]

blueprint = Blueprint("organizers", __name__, url_prefix="/api")


def _session_body(session, organizer) -> dict:
    return {
        "organizer": {"id": organizer.id, "email": organizer.email, "name": organizer.name},
        "token": accounts.issue_token(session, organizer),
        "token_type": "Bearer",
        "expires_in_s": settings().organizer_token_max_age_s,
    }


@blueprint.post("/organizers")
def create_organizer():
    data = json_body(request)
    reject_unknown(data, {"email", "password", "name"})
    email = get_str(data, "email", max_len=254)
    password = data.get("password")
    if password is None:
        raise ApiError(
            400, "field_missing", "The field 'password' is required.", {"field": "password"}
        )
    if not isinstance(password, str) or len(password) > 200:
        raise ApiError(
            400,
            "field_wrong_type",
            "The password must be a string of at most 200 characters.",
            {"field": "password"},
        )
    name = get_str(data, "name", max_len=80)
    session = db_session()
    organizer = accounts.sign_up(session, email, password, name)
    body = _session_body(session, organizer)
    session.commit()
    return jsonify(body), 201


@blueprint.post("/sessions")
def create_session():
    data = json_body(request)
    reject_unknown(data, {"email", "password"})
    email = get_str(data, "email", max_len=254)
    password = data.get("password")
    if not isinstance(password, str):
        raise ApiError(
            400, "field_missing", "The field 'password' is required.", {"field": "password"}
        )
    refused = ratelimit.check_log_in(email)  # per account, before any password work
    if refused is not None:
        return refused
    session = db_session()
    organizer = accounts.log_in(session, email, password)
    body = _session_body(session, organizer)
    session.commit()
    return jsonify(body), 201


@blueprint.delete("/sessions/current")
@auth.require_organizer
def delete_current_session():
    """Log out: this token is refused from now on, on every process; other sessions go on."""
    session = db_session()
    accounts.log_out(session, g.organizer_token)
    session.commit()
    return "", 204


@blueprint.delete("/sessions")
@auth.require_organizer
def delete_all_sessions():
    """Log out everywhere: every token of this organizer, this one included, is refused."""
    session = db_session()
    accounts.log_out_everywhere(session, g.organizer)
    session.commit()
    return "", 204


@blueprint.get("/organizers/me/mobs")
@auth.require_organizer
def my_mobs():
    session = db_session()
    rows = session.scalars(
        select(Mob).where(Mob.organizer_id == g.organizer.id).order_by(Mob.go_at.desc())
    ).all()
    return jsonify({"mobs": [mob_json(m, task_count(session, m)) for m in rows]})
