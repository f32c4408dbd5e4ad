"""What the REST API answers: the schemas of the response bodies in the OpenAPI document.

These describe the serializers' output (``mob_json``, ``campaign_json`` …) and are checked
against real answers by schemathesis (tests/fuzz); every field is optional in the document
(a client must not rely on one the schema does not promise) and objects stay open to new
fields.
"""

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

__all__ = ["RESPONSE_MODELS", "ZONE_CODES"]

ZONE_CODES = [
    "zone_malformed",
    "zone_wrong_type",
    "position_invalid",
    "coordinate_not_numeric",
    "coordinate_out_of_range",
    "ring_not_closed",
    "ring_too_few_positions",
    "zone_crosses_antimeridian",
    "zone_too_many_vertices",
    "zone_self_intersects",
    "zone_hole_outside_shell",
    "zone_nested_rings",
    "zone_interior_disconnected",
    "zone_duplicate_rings",
    "zone_invalid",
    "zone_too_large",
    "zone_too_small",
]


class Answer(BaseModel):
    """Open: an answer may carry more fields than its schema lists."""

    model_config = ConfigDict(extra="allow")


_TIME = {"format": "date-time"}


# --- errors -----------------------------------------------------------------------------------


class ErrorDetail(BaseModel):
    code: str = Field(json_schema_extra={"examples": ZONE_CODES})
    message: str
    where: dict[str, Any] = Field(None, description="field, JSON path, or lon/lat of the problem")


class Error(BaseModel):
    error: ErrorDetail


class RateLimitedDetail(BaseModel):
    code: Literal["rate_limited"]
    message: str
    retry_after_s: float = Field(description="Seconds until one more is allowed.")


class RateLimited(BaseModel):
    """Over a rate limit (the Retry-After header says the same in whole seconds)."""

    error: RateLimitedDetail


# --- geometry ---------------------------------------------------------------------------------


class Zone(BaseModel):
    """A GeoJSON Polygon or MultiPolygon (RFC 7946): closed rings of at least 4 positions,
    valid, within ±180/±90, not crossing the antimeridian, at most ZONE_MAX_VERTICES vertices
    and between ZONE_MIN_AREA_M2 and ZONE_MAX_AREA_M2 in area. Never repaired: refusals carry
    one of the codes listed in Error.code examples."""

    type: Literal["Polygon", "MultiPolygon"]
    coordinates: list


class TaskFeature(Answer):
    type: Literal["Feature"] = None
    id: int = None
    geometry: dict = None
    properties: dict = None


class TaskCollection(Answer):
    type: Literal["FeatureCollection"] = None
    features: list[TaskFeature] = None
    count: int = None


class FeatureCollection(Answer):
    """GeoJSON FeatureCollection (RFC 7946)"""

    type: Literal["FeatureCollection"]
    features: list


# --- organizers and mobs ----------------------------------------------------------------------


class SignUpAccepted(Answer):
    """The one answer to every well-formed sign-up, whether or not the email already has an
    account: no token, no id. Log in next with POST /api/sessions."""

    status: Literal["accepted"]
    next: Literal["POST /api/sessions"]
    message: str


class Session(Answer):
    organizer: dict = None
    token: str = None
    token_type: Literal["Bearer"] = None
    expires_in_s: int = None


class Timeline(Answer):
    """The phases in epoch milliseconds of server time, the current phase and the texts shown;
    version grows with every change."""

    version: int = None
    phase: str = None
    gather_at_ms: int = None
    countdown_at_ms: int = None
    go_at_ms: int = None
    end_at_ms: int = None
    rehearsal: bool = None
    title: str = None
    action: str = None


class MobEvent(Answer):
    """A numbered event (timeline, phase, announcement)."""

    mob: str = None
    seq: int = None


class EventItem(Answer):
    event: str = None
    data: MobEvent = None


class Events(Answer):
    seq: int = None
    events: list[EventItem] = None


class MobOrganizer(Answer):
    name: str = None


MobStatus = Literal[
    "draft", "published", "gathering", "countdown", "action", "finished", "cancelled"
]


class Mob(Answer):
    id: str = None
    title: str = None
    description: str = None
    action: str = None
    status: MobStatus = None
    zone: Zone = None
    gather_at: str = Field(None, json_schema_extra=_TIME)
    countdown_at: str = Field(None, json_schema_extra=_TIME)
    go_at: str = Field(None, json_schema_extra=_TIME)
    end_at: str = Field(None, json_schema_extra=_TIME)
    duration_s: int = None
    rehearsal: bool = None
    timeline: Timeline = None
    organizer: MobOrganizer = None
    url: str = None
    task_count: int = None
    distance_m: float = Field(None, description="Nearby search only: 0 when the point is inside.")


class NearbyMobs(Answer):
    center: dict = None
    radius_m: float = None
    mobs: list[Mob] = None


class MyMobs(Answer):
    mobs: list[Mob] = None


class Deeds(Answer):
    deeds: list[dict] = None


# --- growth -----------------------------------------------------------------------------------


class ShareLink(Answer):
    ref_code: str = None
    url: str = None


class ViewCounted(Answer):
    counted: bool = None


class Funnel(Answer):
    viewed: int = None
    joined: int = None
    in_zone: int = None
    matched: int = None
    done: int = None
    deeds_done: int = None


class Sharer(Answer):
    rank: int = None
    name: str = Field(None, description="chosen nickname, the organizer's name, or 'anonymous'")
    kind: Literal["participant", "organizer"] = None
    brought: int = None
    reach: int = None
    deeds_led_to: int = None


class Cascade(Answer):
    joined: int = None
    referred: int = None
    via_organizer: int = None
    direct: int = None
    deeds_via_shares: int = None
    depth: int = None
    generations: list = None
    sharer_count: int = None
    sharers: list[Sharer] = None
    you: Sharer | None = None


class CurrencyTotal(Answer):
    currency: str = None
    owed_minor: int = None
    owed: str = None
    per_deed_minor: int = None
    pledges: int = None
    waiting_for_threshold: int = None


class CampaignTotals(BaseModel):
    id: str = None
    deeds_counted: int = None
    totals: list[CurrencyTotal] = None


class PledgeTotals(Answer):
    deeds_counted: int = None
    totals: list[CurrencyTotal] = None
    campaign: CampaignTotals | None = None


class LocalTime(Answer):
    time_zone: str | None = None
    local: str = None
    local_date: str = None
    local_time: str = None
    utc_offset: str = None
    zone_abbreviation: str = None


class Growth(Answer):
    mob: str = None
    funnel: Funnel = None
    cascade: Cascade = None
    pledges: PledgeTotals = None
    campaign: dict | None = None
    go_local: LocalTime = None


class Follow(Answer):
    id: int = None
    type: Literal["organizer", "place"] = None
    label: str = None
    organizer: dict = None
    lat: float = None
    lon: float = None
    radius_m: float = None


class Follower(Answer):
    id: str = None
    follows: list[Follow] = None
    push: bool = None


class FollowerCreated(Answer):
    follower: Follower = None
    follower_token: str = None
    vapid_public_key: str | None = None


class PublicKey(Answer):
    public_key: str = None


class Pledge(Answer):
    id: int = None
    target: dict = None
    amount_minor: int = None
    currency: str = None
    cap_minor: int | None = None
    threshold_deeds: int | None = None
    deeds_counted: int = None
    threshold_met: bool = None
    owed_minor: int = None
    owed: str = None
    created_at: str = Field(None, json_schema_extra=_TIME)


class PledgeCreated(Answer):
    pledge: Pledge = None
    sponsor: dict = None
    sponsor_token: str = None


class SponsorPledges(Answer):
    sponsor: dict = None
    pledges: list[Pledge] = None


class MobPledges(Answer):
    totals: PledgeTotals = None
    pledges: list = None


class Campaign(Answer):
    id: str = None
    title: str = None
    description: str = None
    organizer: dict = None
    go_at: str = Field(None, json_schema_extra=_TIME)
    go_at_ms: int = None
    in_sync: bool = None
    mobs: list[dict] = None
    counters: dict = Field(None, description="sum of the mobs' counters")
    pledges: dict = None
    map: FeatureCollection = None
    url: str = None


class MyCampaigns(Answer):
    campaigns: list[Campaign] = None


class Summary(Answer):
    """The organizer's after-action summary."""


class PublicSummary(Answer):
    """Counts only; no one's position."""


RESPONSE_MODELS: tuple[type[BaseModel], ...] = (
    Error,
    RateLimited,
    Zone,
    TaskFeature,
    TaskCollection,
    FeatureCollection,
    SignUpAccepted,
    Session,
    Timeline,
    MobEvent,
    Events,
    Mob,
    NearbyMobs,
    MyMobs,
    Deeds,
    ShareLink,
    ViewCounted,
    Funnel,
    Sharer,
    Cascade,
    CurrencyTotal,
    PledgeTotals,
    LocalTime,
    Growth,
    Follow,
    Follower,
    FollowerCreated,
    PublicKey,
    Pledge,
    PledgeCreated,
    SponsorPledges,
    MobPledges,
    Campaign,
    MyCampaigns,
    Summary,
    PublicSummary,
)
