"""Sponsors (a ``spn.…`` token) and their pledges; a mob's pledges for its organizer; totals."""

from __future__ import annotations

from flask import Blueprint, jsonify

from server.domain import pledges, summary
from server.http import auth
from server.http.common import download, json_object, owned_mob, public_mob
from server.http.schemas.bodies import PledgeCreate
from server.http.schemas.fields import check_unknown
from server.http.validate import get_str
from server.infra.db import db_session

__all__ = ["blueprint"]

blueprint = Blueprint("pledges", __name__, url_prefix="/api")


@blueprint.post("/pledges")
def create_pledge():
    """A pledge; without a sponsor token a new sponsor is made (``sponsor_name`` required)."""
    session = db_session()
    data = json_object()
    check_unknown(PledgeCreate, data)  # the fields: server.domain.pledges.create_pledge
    token = auth.bearer_token()
    if token is not None:
        sponsor = pledges.sponsor_from_token(session, token)
    else:
        sponsor, token = pledges.create_sponsor(session, get_str(data, "sponsor_name", max_len=80))
    pledge = pledges.create_pledge(session, sponsor, data)
    session.commit()
    return jsonify(
        {
            "pledge": pledges.pledge_json(session, pledge),
            "sponsor": {"id": sponsor.public_id, "name": sponsor.name},
            "sponsor_token": token,
        }
    ), 201


@blueprint.delete("/pledges/<int:pledge_id>")
def withdraw_pledge(pledge_id: int):
    session = db_session()
    sponsor = pledges.sponsor_from_token(session, auth.bearer_token())
    pledges.withdraw_pledge(session, sponsor, pledge_id)
    session.commit()
    return "", 204


@blueprint.get("/sponsors/me")
def get_sponsor():
    session = db_session()
    sponsor = pledges.sponsor_from_token(session, auth.bearer_token())
    cache: dict = {}
    return jsonify(
        {
            "sponsor": {"id": sponsor.public_id, "name": sponsor.name},
            "pledges": [
                pledges.pledge_json(session, p, cache)
                for p in pledges.sponsor_pledges(session, sponsor)
            ],
        }
    )


@blueprint.get("/sponsors/me/statement.csv")
def sponsor_statement():
    session = db_session()
    sponsor = pledges.sponsor_from_token(session, auth.bearer_token())
    body = pledges.statement_csv(session, sponsor)
    return download(body, "text/csv", f"goodmob-pledges-{sponsor.public_id}.csv")


@blueprint.get("/mobs/<mob_id>/pledges")
@auth.require_organizer
def mob_pledges(mob_id: str):
    """The organizer's view: every pledge on the mob (and its campaign) with sponsor names."""
    session = db_session()
    mob = owned_mob(session, mob_id)
    return jsonify(
        {
            "totals": pledges.pledge_totals(session, mob),
            "pledges": summary.pledge_rows(session, mob),
        }
    )


@blueprint.delete("/mobs/<mob_id>/pledges/<int:pledge_id>")
@auth.require_organizer
def decline_pledge(mob_id: str, pledge_id: int):
    """The organizer removes a pledge on their mob (or its campaign)."""
    session = db_session()
    mob = owned_mob(session, mob_id)
    pledges.decline_pledge(session, mob, pledge_id)
    session.commit()
    return "", 204


@blueprint.get("/mobs/<mob_id>/pledges/totals")
def pledge_totals(mob_id: str):
    session = db_session()
    return jsonify(pledges.pledge_totals(session, public_mob(session, mob_id)))
