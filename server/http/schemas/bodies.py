"""The request bodies of the REST API, once: they check what a handler receives (``parse``) and
make the OpenAPI document's request schemas.

Fields are declared in the order the handlers checked them, so a body with several faults
gets the error it always got (the first field's). Models marked "checked by the domain" only
describe a body whose fields the domain module still checks (with lookups in between); their
handler takes the allowed field names from them.
"""

from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, RootModel, model_validator

from server.domain import follows, mobs, pledges
from server.http import validate
from server.http.schemas.fields import (
    Bool,
    Choice,
    Int,
    Number,
    Raw,
    Setting,
    Slug,
    Text,
    Time,
)
from server.infra.errors import ApiError

__all__ = [
    "SignUp",
    "LogIn",
    "MobCreate",
    "MobPatch",
    "StartNow",
    "Postpone",
    "Announcement",
    "GenerateTasks",
    "TaskCreate",
    "TaskUpdate",
    "JoinMob",
    "Review",
    "ViewBeacon",
    "FollowCreate",
    "PushSubscription",
    "PledgeCreate",
    "CampaignCreate",
    "CampaignPatch",
    "CampaignAddMob",
    "MobCopy",
    "TimeZone",
    "REQUEST_MODELS",
]


class Body(BaseModel):
    """A JSON object body: no other fields (``field_unknown``)."""

    model_config = ConfigDict(extra="forbid", arbitrary_types_allowed=True)

    def values(self) -> dict:
        """Every field with its parsed value (or its default)."""
        return {name: getattr(self, name) for name in type(self).model_fields}

    def changes(self) -> dict:
        """The fields the client sent (a PATCH), with their parsed values."""
        return {name: getattr(self, name) for name in self.model_fields_set}


def _not_empty(data: Any, names) -> None:
    if isinstance(data, dict) and not data:
        raise ApiError(400, "body_empty", f"Send at least one of: {', '.join(sorted(names))}.")


def _exactly_one(data: Any, a: str, b: str) -> None:
    if isinstance(data, dict) and (a in data) == (b in data):
        raise ApiError(400, "field_missing", f"Send exactly one of {a} or {b}.", {"field": a})


_KIND_RE = r"^[a-z0-9][a-z0-9_-]{0,39}$"
_KIND_MESSAGE = "The field 'kind' must be lower-case letters, digits, '-' or '_' (e.g. 'litter')."
_GO_AT = "ISO 8601 with a UTC offset, in the future."


def _zone_check(value, name, settings):
    if value is None:
        raise ApiError(400, "field_missing", f"The field {name!r} is required.", {"field": name})
    return mobs.parse_zone_or_error(value, settings)


_ZONE_REF = {"x-ref": "Zone"}  # a $ref to the Zone component, made by the generator
Zone = Raw(_ZONE_REF, _zone_check)


# --- organizers -------------------------------------------------------------------------------


def _sign_up_password(value, name, settings):
    if value is None:
        raise ApiError(400, "field_missing", "The field 'password' is required.", {"field": name})
    if not isinstance(value, str) or len(value) > 200:
        raise ApiError(
            400,
            "field_wrong_type",
            "The password must be a string of at most 200 characters.",
            {"field": name},
        )
    return value


def _log_in_password(value, name, settings):
    if not isinstance(value, str):
        raise ApiError(400, "field_missing", "The field 'password' is required.", {"field": name})
    return value


class SignUp(Body):
    email: Text(254, fmt="email")
    password: Raw(lambda s: {"type": "string", "minLength": 8, "maxLength": 200}, _sign_up_password)
    name: Text(80)


class LogIn(Body):
    email: Text(254)
    password: Raw({"type": "string"}, _log_in_password)


# --- mobs -------------------------------------------------------------------------------------

_MOB_FIELDS = ("title", "description", "action", "zone", "go_at", "duration_s", "rehearsal")
_REHEARSAL = "Run the whole timeline without counting deeds (set before live)."
_DURATION = Int(Setting("duration_min_s"), Setting("duration_max_s"))


class MobCreate(Body):
    title: Text(120)
    description: Text(5000, min_len=0, default="") = ""
    action: Text(500, description="The prompt shown at GO.")
    zone: Zone
    go_at: Time(description=_GO_AT)
    duration_s: _DURATION
    rehearsal: Bool(default=False, description=_REHEARSAL) = False


class MobPatch(Body):
    """Any of the create fields (at least one); the zone only until the mob is live."""

    model_config = ConfigDict(json_schema_extra={"minProperties": 1})

    title: Text(120) = None
    description: Text(5000, min_len=0, default="") = None
    action: Text(500, description="The prompt shown at GO.") = None
    zone: Zone = None
    go_at: Time(default=None, description=_GO_AT) = None
    duration_s: Int(Setting("duration_min_s"), Setting("duration_max_s"), default=None) = None
    rehearsal: Bool(default=False, description=_REHEARSAL) = None

    @model_validator(mode="before")
    @classmethod
    def _some(cls, data):
        _not_empty(data, _MOB_FIELDS)
        return data


class StartNow(Body):
    lead_s: Int(
        1,
        24 * 3600,
        default=None,
        description="Seconds from now to GO (default START_NOW_LEAD_S, at least "
        "START_NOW_MIN_LEAD_S).",
    ) = None


class Postpone(Body):
    """Exactly one of go_at (later than the current) or by_s."""

    model_config = ConfigDict(
        json_schema_extra={"oneOf": [{"required": ["go_at"]}, {"required": ["by_s"]}]}
    )

    go_at: Time() = None  # the one sent is required: null is missing
    by_s: Int(1, 7 * 24 * 3600) = None

    @model_validator(mode="before")
    @classmethod
    def _one(cls, data):
        _exactly_one(data, "go_at", "by_s")
        return data


class Announcement(Body):
    text: Text(Setting("announcement_max_chars"))


# --- tasks ------------------------------------------------------------------------------------

_CAPACITY_MAX = Setting("task_capacity_max")


class GenerateTasks(Body):
    spacing_m: Number(Setting("task_spacing_min_m"), Setting("task_spacing_max_m"))
    grid: Choice(
        ("hex", "square"), message="The field 'grid' must be 'hex' or 'square'.", default="hex"
    ) = "hex"
    kind: Slug(40, _KIND_RE, _KIND_MESSAGE)
    capacity: Int(1, _CAPACITY_MAX, default=1) = 1
    label: Text(100, default=None, description="Label prefix.") = None
    prompt: Text(500, min_len=0, default="") = ""
    replace: Bool(default=True, description="Delete the existing tasks first.") = True


class TaskCreate(Body):
    lat: Number(-90, 90)
    lon: Number(-180, 180)
    kind: Slug(40, _KIND_RE, _KIND_MESSAGE)
    label: Text(120, default=None) = None
    prompt: Text(500, min_len=0, default="") = ""
    capacity: Int(1, _CAPACITY_MAX, default=1) = 1


_TASK_UPDATE_FIELDS = ("lat", "lon", "kind", "label", "prompt", "capacity", "status")


class TaskUpdate(Body):
    """lat and lon go together (a move must stay inside the zone)."""

    model_config = ConfigDict(
        json_schema_extra={
            "minProperties": 1,
            "dependentRequired": {"lat": ["lon"], "lon": ["lat"]},
        }
    )

    lat: Number(-90, 90) = None
    lon: Number(-180, 180) = None
    kind: Slug(40, _KIND_RE, _KIND_MESSAGE) = None
    label: Text(120) = None
    prompt: Text(500, min_len=0) = None
    capacity: Int(1, _CAPACITY_MAX) = None
    status: Choice(
        ("open", "closed"), code="status_invalid", message="status is 'open' or 'closed'."
    ) = None

    @model_validator(mode="before")
    @classmethod
    def _move(cls, data):
        _not_empty(data, _TASK_UPDATE_FIELDS)
        if isinstance(data, dict) and ("lat" in data or "lon" in data):
            # a move needs both: the absent one is missing (lat is checked first)
            data = {**data, "lat": data.get("lat"), "lon": data.get("lon")}
        return data


# --- participants and deeds ------------------------------------------------------------------


class JoinMob(Body):
    nickname: Text(
        100,
        default=None,
        pattern=r"^[\w.'-][\w .'-]{0,22}[\w.'-]$",
        description="2 to 24 letters, digits, spaces, dots, dashes or apostrophes; friendly "
        "words only (nickname_refused).",
    ) = None
    ref: Text(16, default=None, description="Referral code from a link.") = None


class Review(Body):
    verdict: Raw(
        {"enum": ["approve", "reject"]},
        lambda value, name, s: validate.get_str({name: value}, name, max_len=10),
    )


# --- growth: views, follows, push, pledges (checked by the domain) --------------------------


def _client_id_schema(settings) -> dict:
    return {
        "type": "string",
        "pattern": "^[A-Za-z0-9_-]{8,64}$",
        "description": "A random id the page made (kept for a day).",
    }


class ViewBeacon(Body):
    # client_id is checked by server.cascade.count_view (field_invalid, even when absent)

    model_config = ConfigDict(json_schema_extra={"required": ["client_id"]})

    client_id: Raw(_client_id_schema) = None


_LABEL = Text(80, default=None)


class FollowOrganizer(Body):
    type: Literal["organizer"]
    mob: Text(16, description="follow the organizer of this mob")
    label: _LABEL = None


def _place_radius(settings) -> dict:
    return {
        "type": "number",
        "minimum": follows.PLACE_RADIUS_MIN_M,
        "maximum": settings.nearby_max_radius_m,
    }


class FollowPlace(Body):
    type: Literal["place"]
    lat: Number(-90, 90)
    lon: Number(-180, 180)
    radius_m: Raw(_place_radius)
    label: _LABEL = None


class FollowCreate(
    RootModel[Annotated[FollowOrganizer | FollowPlace, Field(discriminator="type")]]
):
    # checked by server.domain.follows.add_follow
    pass


class PushKeys(Body):
    p256dh: Raw({"type": "string"})
    auth: Raw({"type": "string"})


class PushSubscription(Body):
    # checked by server.domain.follows.set_push_subscription

    endpoint: Text(1024, fmt="uri")
    keys: PushKeys
    expirationTime: Raw({"type": ["number", "null"]}) = None  # noqa: N815 - the browser's name


def _pledge_limit(name: str, description: str | None = None):
    def schema(settings) -> dict:
        out = {"type": "integer", "minimum": 1, "maximum": getattr(pledges, name)}
        if description:
            out["description"] = description
        return out

    return Raw(schema)


class PledgeCreate(Body):
    # checked by server.domain.pledges.create_pledge (exactly one of mob or campaign)

    mob: Text(16, default=None) = None
    campaign: Text(16, default=None) = None
    amount_minor: _pledge_limit("AMOUNT_MAX_MINOR", "per deed")
    currency: Raw({"type": "string", "pattern": "^[A-Z]{3}$", "description": "ISO 4217"})
    cap_minor: _pledge_limit("CAP_MAX_MINOR") = None
    threshold_deeds: _pledge_limit("THRESHOLD_MAX", "paid only if the target reaches this") = None
    sponsor_name: Text(80, default=None, description="required without a sponsor token") = None


# --- campaigns, copies, time zones -----------------------------------------------------------

_CAMPAIGN_FIELDS = ("title", "description", "go_at")


class CampaignCreate(Body):
    title: Text(120)
    description: Text(5000, min_len=0, default="") = ""
    go_at: Time()


class CampaignPatch(Body):
    model_config = ConfigDict(json_schema_extra={"minProperties": 1})

    title: Text(120) = None
    description: Text(5000, min_len=0, default="") = None
    go_at: Time() = None

    @model_validator(mode="before")
    @classmethod
    def _some(cls, data):
        _not_empty(data, _CAMPAIGN_FIELDS)
        return data


_TIME_ZONE = "IANA, e.g. Asia/Tokyo"


class CampaignAddMob(Body):
    mob: Text(16)
    time_zone: Text(64, default=None, description=_TIME_ZONE) = None


class MobCopy(Body):
    campaign: Text(16, default=None) = None
    zone: Zone
    title: Text(120, default=None) = None
    go_at: Time(default=None) = None
    time_zone: Text(64, default=None, description=_TIME_ZONE) = None
    spacing_m: Number(
        Setting("task_spacing_min_m"), Setting("task_spacing_max_m"), default=None
    ) = None

    @model_validator(mode="before")
    @classmethod
    def _zone_first(cls, data):
        if isinstance(data, dict) and data.get("zone") is None:  # before any other field
            raise ApiError(400, "field_missing", "The field 'zone' is required.", {"field": "zone"})
        return data


class TimeZone(Body):
    time_zone: Text(64, description=_TIME_ZONE)


REQUEST_MODELS: tuple[type[BaseModel], ...] = (
    SignUp,
    LogIn,
    MobCreate,
    MobPatch,
    StartNow,
    Postpone,
    Announcement,
    GenerateTasks,
    TaskCreate,
    TaskUpdate,
    JoinMob,
    Review,
    ViewBeacon,
    FollowCreate,
    PushSubscription,
    PledgeCreate,
    CampaignCreate,
    CampaignPatch,
    CampaignAddMob,
    MobCopy,
    TimeZone,
)
