"""Small helpers the REST handlers share: the settings, the JSON body, the mob or campaign a
request names (owned by the organizer, or public), and file downloads."""

from __future__ import annotations

from flask import Response, current_app, g, request
from sqlalchemy import func, select

from server.domain import campaigns, mobs
from server.http import auth
from server.http.validate import json_body
from server.infra.models import Campaign, Mob, Task

__all__ = [
    "settings",
    "json_object",
    "owned_mob",
    "public_mob",
    "owned_campaign",
    "task_count",
    "download",
]


def settings():
    return current_app.config["SETTINGS"]


def json_object() -> dict:
    """The request body as a JSON object (``json_body``'s specific errors otherwise)."""
    return json_body(request)


def owned_mob(session, mob_id: str) -> Mob:
    """The mob ``mob_id`` of the logged-in organizer (404 or 403 otherwise)."""
    return mobs.get_owned_mob(session, mob_id, g.organizer)


def public_mob(session, mob_id: str) -> Mob:
    """The mob ``mob_id`` as the caller may see it (a draft only for its organizer)."""
    return mobs.get_mob(session, mob_id, auth.optional_organizer(session))


def owned_campaign(session, campaign_id: str) -> Campaign:
    campaign = campaigns.get_campaign(session, campaign_id)
    campaigns.require_owner(campaign, g.organizer)
    return campaign


def task_count(session, mob: Mob) -> int:
    return session.scalar(select(func.count()).where(Task.mob_pk == mob.pk))


def download(body: str, mimetype: str, filename: str) -> Response:
    response = Response(body, mimetype=mimetype)
    response.headers["Content-Disposition"] = f'attachment; filename="{filename}"'
    response.headers["Cache-Control"] = "no-store"
    return response
