"""The request models (server/http/schemas) refuse every bad body with the error the
hand-written parsing gave: the same status, code, message and ``where`` (issue 18 item 3).

The ``legacy_*`` functions keep the handlers' parsing as it was before the models
(server/http/*.py at eb7f3fc, server/api.py and server/growth.py before), call for call, as
the oracle: hypothesis throws bodies made of each route's fields, unknown ones and awkward
values (null, blanks, long strings, floats, booleans, nested objects) at both and compares
the first error (status, code, message, where), or the parsed values.
"""

from __future__ import annotations

from datetime import timedelta

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from config import load_settings
from server.domain import mobs
from server.http.schemas import bodies as b
from server.http.schemas import queries as q
from server.http.schemas.fields import check_field, check_unknown, parse
from server.http.schemas.queries import parse_query
from server.http.validate import (
    get_bool,
    get_int,
    get_number,
    get_str,
    get_time,
    query_number,
    reject_unknown,
)
from server.infra.errors import ApiError
from tests.factories import PARK

S = load_settings(env="test")
_KIND = __import__("re").compile(r"^[a-z0-9][a-z0-9_-]{0,39}$")


def _kind(data):
    kind = get_str(data, "kind", max_len=40)
    if not _KIND.match(kind):
        raise ApiError(
            400,
            "field_invalid",
            "The field 'kind' must be lower-case letters, digits, '-' or '_' (e.g. 'litter').",
            {"field": "kind"},
        )
    return kind


def _capacity(data):
    return get_int(data, "capacity", lo=1, hi=S.task_capacity_max, required=False, default=1)


# --- the legacy parsing, verbatim but for the database work between the checks -------------


def legacy_sign_up(data):
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
    return {"email": email, "password": password, "name": name}


def legacy_log_in(data):
    reject_unknown(data, {"email", "password"})
    email = get_str(data, "email", max_len=254)
    password = data.get("password")
    if not isinstance(password, str):
        raise ApiError(
            400, "field_missing", "The field 'password' is required.", {"field": "password"}
        )
    return {"email": email, "password": password}


_MOB_FIELDS = {"title", "description", "action", "zone", "go_at", "duration_s", "rehearsal"}


def _mob_changes(data, partial):
    s = S
    req = not partial
    changes = {}
    if not partial or "title" in data:
        changes["title"] = get_str(data, "title", max_len=120)
    if not partial or "description" in data:
        changes["description"] = get_str(
            data, "description", required=False, default="", max_len=5000, min_len=0
        )
    if not partial or "action" in data:
        changes["action"] = get_str(data, "action", max_len=500)
    if not partial or "zone" in data:
        if "zone" not in data or data["zone"] is None:
            raise ApiError(400, "field_missing", "The field 'zone' is required.", {"field": "zone"})
        changes["zone"] = mobs.parse_zone_or_error(data["zone"], s)
    if not partial or "go_at" in data:
        changes["go_at"] = get_time(data, "go_at", required=req)
    if not partial or "duration_s" in data:
        changes["duration_s"] = get_int(
            data, "duration_s", lo=s.duration_min_s, hi=s.duration_max_s, required=req
        )
    if "rehearsal" in data:
        changes["rehearsal"] = get_bool(data, "rehearsal", default=False)
    return changes


def legacy_mob_create(data):
    reject_unknown(data, _MOB_FIELDS)
    return {"rehearsal": False, **_mob_changes(data, partial=False)}


def legacy_mob_patch(data):
    reject_unknown(data, _MOB_FIELDS)
    if not data:
        raise ApiError(
            400, "body_empty", f"Send at least one of: {', '.join(sorted(_MOB_FIELDS))}."
        )
    return _mob_changes(data, partial=True)


def legacy_start_now(data):
    reject_unknown(data, {"lead_s"})
    return {"lead_s": get_int(data, "lead_s", lo=1, hi=24 * 3600, required=False)}


def legacy_postpone(data):
    reject_unknown(data, {"mob", "go_at", "by_s"})
    if ("go_at" in data) == ("by_s" in data):
        raise ApiError(
            400, "field_missing", "Send exactly one of go_at or by_s.", {"field": "go_at"}
        )
    if "by_s" in data:
        return {"by_s": get_int(data, "by_s", lo=1, hi=7 * 24 * 3600)}
    return {"go_at": get_time(data, "go_at")}


def legacy_announcement(data):
    reject_unknown(data, {"mob", "text"})
    return {"text": get_str(data, "text", max_len=S.announcement_max_chars)}


def legacy_generate(data):
    s = S
    reject_unknown(data, {"spacing_m", "kind", "capacity", "grid", "label", "prompt", "replace"})
    spacing_m = get_number(data, "spacing_m", lo=s.task_spacing_min_m, hi=s.task_spacing_max_m)
    grid = get_str(data, "grid", required=False, default="hex", max_len=10)
    if grid not in ("hex", "square"):
        raise ApiError(
            400, "field_invalid", "The field 'grid' must be 'hex' or 'square'.", {"field": "grid"}
        )
    return dict(
        spacing_m=spacing_m,
        grid=grid,
        kind=_kind(data),
        capacity=_capacity(data),
        label=get_str(data, "label", required=False, max_len=100),
        prompt=get_str(data, "prompt", required=False, default="", max_len=500, min_len=0),
        replace=get_bool(data, "replace", default=True),
    )


def legacy_task_create(data):
    reject_unknown(data, {"lat", "lon", "kind", "label", "prompt", "capacity"})
    return dict(
        lat=get_number(data, "lat", lo=-90, hi=90),
        lon=get_number(data, "lon", lo=-180, hi=180),
        kind=_kind(data),
        label=get_str(data, "label", required=False, max_len=120),
        prompt=get_str(data, "prompt", required=False, default="", max_len=500, min_len=0),
        capacity=_capacity(data),
    )


_TASK_UPDATE_FIELDS = {"lat", "lon", "kind", "label", "prompt", "capacity", "status"}


def legacy_task_update(data):
    s = S
    reject_unknown(data, _TASK_UPDATE_FIELDS)
    if not data:
        raise ApiError(
            400, "body_empty", f"Send at least one of: {', '.join(sorted(_TASK_UPDATE_FIELDS))}."
        )
    changes = {}
    if "lat" in data or "lon" in data:
        changes["lat"] = get_number(data, "lat", lo=-90, hi=90)
        changes["lon"] = get_number(data, "lon", lo=-180, hi=180)
    if "kind" in data:
        changes["kind"] = _kind(data)
    if "label" in data:
        changes["label"] = get_str(data, "label", max_len=120)
    if "prompt" in data:
        changes["prompt"] = get_str(data, "prompt", max_len=500, min_len=0)
    if "capacity" in data:
        changes["capacity"] = get_int(data, "capacity", lo=1, hi=s.task_capacity_max)
    if "status" in data:
        changes["status"] = get_str(data, "status", max_len=10)
        if changes["status"] not in ("open", "closed"):
            raise ApiError(
                400, "status_invalid", "status is 'open' or 'closed'.", {"field": "status"}
            )
    return changes


def legacy_join(data):
    reject_unknown(data, {"nickname", "ref"})
    return dict(
        nickname=get_str(data, "nickname", required=False, max_len=100),
        ref=get_str(data, "ref", required=False, max_len=16),
    )


def legacy_review(data):
    reject_unknown(data, {"verdict"})
    return {"verdict": get_str(data, "verdict", max_len=10)}


def _campaign_changes(data, partial):
    changes = {}
    if not partial or "title" in data:
        changes["title"] = get_str(data, "title", max_len=120)
    if not partial or "description" in data:
        changes["description"] = get_str(
            data, "description", required=False, default="", max_len=5000, min_len=0
        )
    if not partial or "go_at" in data:
        changes["go_at"] = get_time(data, "go_at")
    return changes


def legacy_campaign_create(data):
    reject_unknown(data, {"title", "description", "go_at"})
    return _campaign_changes(data, partial=False)


def legacy_campaign_patch(data):
    reject_unknown(data, {"title", "description", "go_at"})
    if not data:
        raise ApiError(400, "body_empty", "Send at least one of: description, go_at, title.")
    return _campaign_changes(data, True)


def _lookup(public_id):
    """The database lookup between two fields: "zzzzzzzz" is no such thing (404)."""
    if public_id == "zzzzzzzz":
        raise ApiError(404, "mob_not_found", "No such mob.")
    return public_id


def legacy_campaign_add_mob(data):
    reject_unknown(data, {"mob", "time_zone"})
    mob = _lookup(get_str(data, "mob", max_len=16))
    time_zone = get_str(data, "time_zone", required=False, max_len=64)
    return {"mob": mob, "time_zone": time_zone}


def legacy_copy(data):
    s = S
    reject_unknown(data, {"zone", "title", "go_at", "time_zone", "campaign", "spacing_m"})
    if data.get("zone") is None:
        raise ApiError(400, "field_missing", "The field 'zone' is required.", {"field": "zone"})
    campaign_id = get_str(data, "campaign", required=False, max_len=16)
    return dict(
        zone=mobs.parse_zone_or_error(data["zone"], s),
        title=get_str(data, "title", required=False, max_len=120),
        go_at=get_time(data, "go_at", required=False),
        time_zone=get_str(data, "time_zone", required=False, max_len=64),
        campaign=_lookup(campaign_id) if campaign_id else None,
        spacing_m=get_number(
            data, "spacing_m", lo=s.task_spacing_min_m, hi=s.task_spacing_max_m, required=False
        ),
    )


def legacy_time_zone(data):
    reject_unknown(data, {"time_zone"})
    return {"time_zone": get_str(data, "time_zone", max_len=64)}


# --- the models, as the handlers use them ------------------------------------------------------


def _all(model, **kw):
    def run(data):
        m = parse(model, data, S, **kw)
        return {name: getattr(m, name) for name in type(m).model_fields}

    return run


def _set(model):
    def run(data):
        return parse(model, data, S).changes()

    return run


def _add_mob(data):  # as server/http/campaigns.py: the mob is looked up before time_zone
    check_unknown(b.CampaignAddMob, data)
    mob = _lookup(check_field(b.CampaignAddMob, data, "mob", S))
    return {"mob": mob, "time_zone": check_field(b.CampaignAddMob, data, "time_zone", S)}


def _copy(data):  # as server/http/campaigns.py: the campaign is looked up before spacing_m
    check_unknown(b.MobCopy, data)
    copy = parse(b.MobCopy, {k: v for k, v in data.items() if k != "spacing_m"}, S)
    return dict(
        zone=copy.zone,
        title=copy.title,
        go_at=copy.go_at,
        time_zone=copy.time_zone,
        campaign=_lookup(copy.campaign) if copy.campaign else None,
        spacing_m=check_field(b.MobCopy, data, "spacing_m", S),
    )


def _postpone(data):
    m = parse(b.Postpone, data, S, also={"mob"})
    return {"by_s": m.by_s} if m.by_s is not None else {"go_at": m.go_at}


CASES = {
    "SignUp": (b.SignUp, legacy_sign_up, _all(b.SignUp)),
    "LogIn": (b.LogIn, legacy_log_in, _all(b.LogIn)),
    "MobCreate": (b.MobCreate, legacy_mob_create, _all(b.MobCreate)),
    "MobPatch": (b.MobPatch, legacy_mob_patch, _set(b.MobPatch)),
    "StartNow": (b.StartNow, legacy_start_now, _all(b.StartNow)),
    "Postpone": (b.Postpone, legacy_postpone, _postpone),
    "Announcement": (b.Announcement, legacy_announcement, _all(b.Announcement, also={"mob"})),
    "GenerateTasks": (b.GenerateTasks, legacy_generate, _all(b.GenerateTasks)),
    "TaskCreate": (b.TaskCreate, legacy_task_create, _all(b.TaskCreate)),
    "TaskUpdate": (b.TaskUpdate, legacy_task_update, _set(b.TaskUpdate)),
    "JoinMob": (b.JoinMob, legacy_join, _all(b.JoinMob)),
    "Review": (b.Review, legacy_review, _all(b.Review)),
    "CampaignCreate": (b.CampaignCreate, legacy_campaign_create, _all(b.CampaignCreate)),
    "CampaignPatch": (b.CampaignPatch, legacy_campaign_patch, _set(b.CampaignPatch)),
    "CampaignAddMob": (b.CampaignAddMob, legacy_campaign_add_mob, _add_mob),
    "MobCopy": (b.MobCopy, legacy_copy, _copy),
    "TimeZone": (b.TimeZone, legacy_time_zone, _all(b.TimeZone)),
}

# --- bodies ------------------------------------------------------------------------------------

_AWKWARD = [
    None,
    True,
    False,
    0,
    1,
    -1,
    5,
    9,
    10,
    60,
    86400,
    86401,
    21600,
    21601,
    604800,
    604801,
    1000,
    1001,
    10**18,
    2.0,
    4.99,
    5.0,
    90.0,
    90.5,
    -180.0,
    13.4,
    52.53,
    1e308,
    float("inf"),
    float("nan"),
    "",
    " ",
    "\t\n",
    "x",
    " x ",
    "hex",
    "square",
    " hex ",
    "open",
    "closed",
    "approve",
    "litter",
    "Litter",
    "-bad",
    "a" * 16,
    "zzzzzzzz",
    "a" * 17,
    "a" * 41,
    "a" * 64,
    "a" * 65,
    "a" * 81,
    "a" * 121,
    " " + "a" * 120 + " ",
    "a" * 201,
    "a" * 281,
    "a" * 501,
    "2026-12-05T14:00:00+01:00",
    "2026-12-05T14:00:00Z",
    "2026-12-05T14:00:00",
    "2026-13-05T14:00:00Z",
    "tomorrow",
    [],
    [1],
    {},
    {"type": "Point", "coordinates": [13.4, 52.5]},
    PARK,
]


def _values():
    return st.one_of(
        st.sampled_from(_AWKWARD),
        st.integers(min_value=-(10**7), max_value=10**7),
        st.floats(),
        st.text(max_size=30),
    )


def _bodies(model):
    names = sorted(model.model_fields) + ["mob", "zzz", "aaa", "Title"]
    return st.dictionaries(st.sampled_from(names), _values(), max_size=8)


def _outcome(run, data):
    try:
        value = run(dict(data))
    except ApiError as exc:
        return ("error", exc.status, exc.code, exc.message, exc.where)
    out = {}
    for key, item in value.items():
        out[key] = item.wkt if hasattr(item, "wkt") else item
    return ("ok", out)


def _same(a, b) -> bool:
    if a == b:
        return True
    # nan != nan: compare the rendering
    return repr(a) == repr(b)


@pytest.mark.parametrize("name", sorted(CASES))
def test_every_body_gets_the_error_it_always_got(name):
    model, legacy, new = CASES[name]

    @settings(
        max_examples=400,
        deadline=None,
        derandomize=True,
        database=None,
        suppress_health_check=list(HealthCheck),
    )
    @given(data=_bodies(model))
    def run(data):
        expected, got = _outcome(legacy, data), _outcome(new, data)
        assert _same(expected, got), (data, expected, got)

    run()


@pytest.mark.parametrize(
    "name, data, code, where",
    [
        ("MobCreate", {"zzz": 1, "aaa": 2, "title": None}, "field_unknown", {"field": "aaa"}),
        ("MobCreate", {"description": "a" * 5001}, "field_missing", {"field": "title"}),
        ("MobCreate", {"title": "t", "description": "a" * 5001}, "field_too_long",
         {"field": "description"}),
        ("MobCreate", {"title": "t", "action": "a", "zone": PARK, "go_at": "2026-12-05T14:00:00",
                       "duration_s": 1}, "time_without_offset", {"field": "go_at"}),
        ("MobCreate", {"title": "t", "action": "a", "zone": PARK,
                       "go_at": "2026-12-05T14:00:00Z", "duration_s": 21601},
         "field_out_of_range", {"field": "duration_s"}),
        ("MobPatch", {}, "body_empty", None),
        ("MobPatch", {"title": None}, "field_missing", {"field": "title"}),
        ("TaskUpdate", {"lon": 13.4}, "field_missing", {"field": "lat"}),
        ("TaskUpdate", {"status": "gone"}, "status_invalid", {"field": "status"}),
        ("GenerateTasks", {"spacing_m": 50, "kind": "Litter"}, "field_invalid", {"field": "kind"}),
        ("Postpone", {"go_at": "2026-12-05T14:00:00Z", "by_s": 5}, "field_missing",
         {"field": "go_at"}),
        ("MobCopy", {"title": "a" * 200}, "field_missing", {"field": "zone"}),
        ("SignUp", {"email": "a@b.c", "password": 5, "name": "n"}, "field_wrong_type",
         {"field": "password"}),
        ("Announcement", {"text": "a" * 281}, "field_too_long", {"field": "text"}),
    ],
)  # fmt: skip
def test_examples(name, data, code, where):
    model, legacy, new = CASES[name]
    expected, got = _outcome(legacy, data), _outcome(new, data)
    assert expected == got
    assert got[2] == code and got[4] == where


def test_limits_are_the_settings_of_the_app():
    from dataclasses import replace

    short = replace(S, duration_max_s=600, announcement_max_chars=10)
    with pytest.raises(ApiError) as exc:
        parse(b.Announcement, {"text": "a" * 11}, short)
    assert exc.value.code == "field_too_long"
    body = {"title": "t", "action": "a", "zone": PARK, "go_at": "2026-12-05T14:00:00Z"}
    with pytest.raises(ApiError) as exc:
        parse(b.MobCreate, {**body, "duration_s": 601}, short)
    assert exc.value.code == "field_out_of_range" and "600" in exc.value.message
    assert parse(b.MobCreate, {**body, "duration_s": 601}, S).duration_s == 601


# --- query parameters ------------------------------------------------------------------------


def legacy_nearby(args):
    s = S
    lat = query_number(args, "lat", lo=-90, hi=90)
    lon = query_number(args, "lon", lo=-180, hi=180)
    radius_m = query_number(
        args, "radius_m", lo=0, hi=s.nearby_max_radius_m, required=False,
        default=s.nearby_default_radius_m,
    )  # fmt: skip
    limit = int(
        query_number(args, "limit", lo=1, hi=s.nearby_limit, required=False, default=s.nearby_limit)
    )
    return {"lat": lat, "lon": lon, "radius_m": radius_m, "limit": limit}


def legacy_events(args):
    return {"after": int(query_number(args, "after", lo=0, hi=2**62, required=False, default=0))}


_PARAMS = st.one_of(
    st.none(),
    st.sampled_from(["", "0", "1", "-1", "52.5", "91", "nan", "inf", "1e3", "x", "100", "101",
                     "50000", "50001", "4611686018427387904", "4611686018427387905"]),
    st.text(max_size=8),
)  # fmt: skip


@pytest.mark.parametrize(
    "model, legacy",
    [(q.NearbyQuery, legacy_nearby), (q.EventsQuery, legacy_events)],
    ids=["nearby", "events"],
)
def test_query_parameters_get_the_errors_they_always_got(model, legacy):
    @settings(max_examples=300, deadline=None, derandomize=True, database=None)
    @given(args=st.fixed_dictionaries({}, optional={n: _PARAMS for n in model.model_fields}))
    def run(args):
        args = {k: v for k, v in args.items() if v is not None}

        def new(a):
            m = parse_query(model, a, S)
            return {n: getattr(m, n) for n in model.model_fields}

        expected, got = _outcome(legacy, args), _outcome(new, args)
        assert _same(expected, got), (args, expected, got)

    run()


def test_a_postpone_by_seconds_is_a_timedelta_away():
    m = parse(b.Postpone, {"by_s": 90}, S)
    assert timedelta(seconds=m.by_s) == timedelta(minutes=1.5)
