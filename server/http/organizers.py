"""Organizer accounts and log-in sessions: sign up, log in, log out, the organizer's mobs."""

from __future__ import annotations

from flask import Blueprint, g, jsonify
from sqlalchemy import select

from server.domain import accounts
from server.domain.views import mob_json
from server.http import auth
from server.http.common import settings, task_count
from server.http.schemas.bodies import LogIn, SignUp
from server.http.schemas.fields import body
from server.infra import ratelimit
from server.infra.db import db_session
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


# The one answer to every well-formed sign-up, whether or not the email had an account
# (issue 15 §9): no token, no id. The client logs in next with the same email and password.
SIGN_UP_ACCEPTED = {
    "status": "accepted",
    "next": "POST /api/sessions",
    "message": "Log in with this email and password. If the email already had an account, "
    "its own password still applies.",
}


@blueprint.post("/organizers")
def create_organizer():
    new = body(SignUp)
    session = db_session()
    accounts.sign_up(session, new.email, new.password, new.name)  # created or not: one answer
    session.commit()
    return jsonify(SIGN_UP_ACCEPTED), 202


@blueprint.post("/sessions")
def create_session():
    credentials = body(LogIn)
    refused = ratelimit.check_log_in(credentials.email)  # per account, before password work
    if refused is not None:
        return refused
    session = db_session()
    organizer = accounts.log_in(session, credentials.email, credentials.password)
    answer = _session_body(session, organizer)
    session.commit()
    return jsonify(answer), 201


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
