"""Query parameters, as models: they check ``request.args`` (``parse_query``) and become the
operations' parameters in the OpenAPI document. Unknown parameters are ignored."""

from typing import Any

from pydantic import BaseModel, ConfigDict, ValidationError

from config import Settings
from server.domain.summary import CSV_TABLES
from server.http.schemas.fields import Param, Raw, Setting, current_settings
from server.infra.errors import ApiError

__all__ = [
    "NearbyQuery",
    "EventsQuery",
    "DeedsQuery",
    "RefQuery",
    "SummaryTableQuery",
    "QUERY_MODELS",
    "parse_query",
]


class Query(BaseModel):
    model_config = ConfigDict(extra="ignore")


class NearbyQuery(Query):
    lat: Param(-90, 90)
    lon: Param(-180, 180)
    radius_m: Param(
        0, Setting("nearby_max_radius_m"), default=Setting("nearby_default_radius_m")
    ) = None
    limit: Param(1, Setting("nearby_limit"), default=Setting("nearby_limit"), integer=True) = None


class EventsQuery(Query):
    after: Param(
        0, 2**62, default=0, integer=True, description="The last sequence number the client saw."
    ) = None


DEED_STATUSES = ("accepted", "flagged", "approved", "rejected")


def _deed_status(value, name, settings):
    if value is not None and value not in DEED_STATUSES:
        raise ApiError(
            400,
            "param_out_of_range",
            "status must be accepted, flagged, approved or rejected.",
            {"param": name},
        )
    return value


class DeedsQuery(Query):
    status: Raw({"enum": list(DEED_STATUSES)}, _deed_status) = None


class RefQuery(Query):
    ref: Raw({"type": "string", "description": "your own referral code: adds `you`"}) = None


def _table(value, name, settings):
    if value is None:
        return "tasks"
    if value not in CSV_TABLES:
        raise ApiError(
            400,
            "param_out_of_range",
            f"table must be one of {', '.join(CSV_TABLES)}.",
            {"param": name},
        )
    return value


class SummaryTableQuery(Query):
    table: Raw(lambda s: {"enum": list(CSV_TABLES), "default": "tasks"}, _table) = None


QUERY_MODELS: tuple[type[BaseModel], ...] = (
    NearbyQuery,
    EventsQuery,
    DeedsQuery,
    RefQuery,
    SummaryTableQuery,
)


def parse_query(model: type[BaseModel], args, settings: Settings | None = None) -> Any:
    """``request.args`` as ``model``: every parameter defaults as documented (``validate_default``
    is not used: absent ones are filled in here), the first fault is its ``param_*`` error."""
    data = {name: args.get(name) for name in model.model_fields}
    try:
        return model.model_validate(data, context={"settings": settings or current_settings()})
    except ValidationError as exc:
        error = exc.errors(include_url=False)[0]
        if error["type"] == "api_error":
            raise error["ctx"]["error"] from None
        raise ApiError(400, "param_invalid", str(error["msg"])) from None  # pragma: no cover
