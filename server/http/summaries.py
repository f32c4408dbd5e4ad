"""A mob's summary after the action: for its organizer (JSON, GeoJSON, CSV) and in public."""

from __future__ import annotations

import json

from flask import Blueprint, jsonify, request

from server.domain import mobs, summary
from server.http import auth
from server.http.common import download, owned_mob
from server.http.schemas.queries import SummaryTableQuery, parse_query
from server.infra.db import db_session

__all__ = ["blueprint"]

blueprint = Blueprint("summaries", __name__, url_prefix="/api")


@blueprint.get("/mobs/<mob_id>/summary")
@auth.require_organizer
def organizer_summary(mob_id: str):
    session = db_session()
    return jsonify(summary.organizer_summary(session, owned_mob(session, mob_id)))


@blueprint.get("/mobs/<mob_id>/summary.geojson")
@auth.require_organizer
def summary_geojson(mob_id: str):
    session = db_session()
    mob = owned_mob(session, mob_id)

    body = json.dumps(summary.export_geojson(session, mob), ensure_ascii=False)
    return download(body, "application/geo+json", f"goodmob-{mob.id}.geojson")


@blueprint.get("/mobs/<mob_id>/summary.csv")
@auth.require_organizer
def summary_csv(mob_id: str):
    session = db_session()
    mob = owned_mob(session, mob_id)
    table = parse_query(SummaryTableQuery, request.args).table
    body = summary.export_csv(session, mob, table)
    return download(body, "text/csv", f"goodmob-{mob.id}-{table}.csv")


@blueprint.get("/mobs/<mob_id>/public-summary")
def public_summary(mob_id: str):
    session = db_session()
    mob = mobs.get_mob(session, mob_id)  # drafts have no public summary
    return jsonify(summary.public_summary(session, mob))
