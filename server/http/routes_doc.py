"""What each REST operation is, for the OpenAPI document: summary, token, body and query
models, answers. Keyed by ``"METHOD /api/path"`` as the document names it; the generator
(``server.http.openapi_gen``) joins it to the app's route table, adds the path parameters,
the 401/413/429 answers where they apply and the schemas of the models, and refuses a route
without an entry here (or an entry without a route).

A new route: add its entry; its body and answers are models in ``server.http.schemas``.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from pydantic import BaseModel

from server.http.schemas import bodies as b
from server.http.schemas import queries as q
from server.http.schemas import responses as r

__all__ = ["INFO", "ROUTES", "Op", "Reply"]


@dataclass(frozen=True)
class Reply:
    """One documented answer: a model (or an inline JSON schema, or nothing) and its text."""

    description: str
    model: type[BaseModel] | dict | None = None
    media: str = "application/json"


@dataclass(frozen=True)
class Op:
    """One operation: ``responses`` maps a status to a ``Reply`` (or a ``str``: an error
    answer with that description). ``auth`` names the bearer token it takes, if any."""

    summary: str
    responses: dict[int, Reply | str]
    auth: str | None = None
    body: type[BaseModel] | None = None
    body_required: bool = True
    query: type[BaseModel] | None = None
    description: str | None = None
    tags: tuple[str, ...] = field(default_factory=tuple)


INFO = {
    "title": "Good Mob API",
    "version": "0.1.0",
    "description": (
        "Organizers create mobs (an action zone, a schedule, a prompt) and their tasks; "
        "anyone finds published mobs nearby. Every error has the shape "
        '{"error": {"code", "message", "where"?}}. Coordinates are lon/lat (EPSG:4326), '
        "distances in metres."
    ),
}

ORGANIZER = "organizer"
FOLLOWER = "follower (flw.…)"
SPONSOR = "sponsor (spn.…)"
PARTICIPANT = "participant (the token of POST /api/mobs/{mob_id}/participants)"

# Error answers (status → text); the body is always Error.
E400 = "Malformed request: invalid JSON, missing or wrongly typed field (see error.code)."
E403 = "The mob belongs to another organizer (not_owner)."
E404 = "No such mob or task (mob_not_found, task_not_found)."
E409 = "The mob's state forbids this (mob_live, mob_closed, mob_not_draft, ...)."
E422 = "Well-formed but refused: zone or task rules (zone_self_intersects, ...)."
G400 = "Malformed request (see error.code)."
G403 = "Not yours (not_owner)."
G404 = "No such mob, campaign, follow or pledge."
G409 = "The state forbids it (see error.code)."
G422 = "Understood but refused (see error.code)."
DONE = Reply("Done")
GROWTH = ("growth",)


def ok(model, description: str = "OK", media: str = "application/json") -> Reply:
    return Reply(description, model, media)


_CSV = ok({"type": "string"}, "CSV", "text/csv")
_ICS = ok({"type": "string"}, "iCalendar (RFC 5545)", "text/calendar")

ROUTES: dict[str, Op] = {
    "GET /api/openapi.json": Op(
        "This document", {200: ok({"type": "object"}, "The OpenAPI document")}
    ),
    # --- organizers ---
    "POST /api/organizers": Op(
        "Sign up as an organizer, then log in with POST /api/sessions",
        {202: ok(r.SignUpAccepted, "Accepted; log in next"), 400: E400},
        body=b.SignUp,
        description=(
            "Every well-formed sign-up gets the same 202 and body, whether or not the email "
            "already has an account (that account and its password stay as they were), so "
            "the answer tells no one which emails have accounts. It carries no token: log in "
            "next with the same email and password; a 401 there means the email had an "
            "account with another password."
        ),
    ),
    "POST /api/sessions": Op(
        "Log in",
        {201: ok(r.Session, "A new bearer token"), 400: E400,
         401: "Wrong email or password (credentials_invalid)."},
        body=b.LogIn,
    ),
    "DELETE /api/sessions": Op(
        "Log out everywhere: every token of this organizer is refused",
        {204: Reply("Every session ended, this one included")},
        auth=ORGANIZER,
    ),
    "DELETE /api/sessions/current": Op(
        "Log out: this token is refused from now on (other sessions go on)",
        {204: Reply("This session ended")},
        auth=ORGANIZER,
    ),
    "GET /api/organizers/me/mobs": Op(
        "The organizer's own mobs, newest GO first",
        {200: ok(r.MyMobs, "{mobs: [Mob]}")},
        auth=ORGANIZER,
    ),
    # --- mobs ---
    "GET /api/mobs": Op(
        "Published, unfinished mobs near a point, nearest first",
        {200: ok(r.NearbyMobs, "Mobs with distance_m"), 400: E400},
        query=q.NearbyQuery,
    ),
    "GET /api/mobs.ics": Op(
        "A subscribable calendar of the mobs near a place (the nearby search)",
        {200: _ICS, 400: E400},
        query=q.NearbyQuery,
        description=(
            "The mobs GET /api/mobs lists for the same query, rehearsals left out, one VEVENT "
            "each as in GET /api/mobs/{mob_id}.ics."
        ),
    ),
    "POST /api/mobs": Op(
        "Create a draft mob",
        {201: ok(r.Mob, "The new draft"), 400: E400, 422: E422},
        auth=ORGANIZER,
        body=b.MobCreate,
    ),
    "GET /api/mobs/{mob_id}": Op(
        "One mob (drafts only for their organizer)", {200: ok(r.Mob, "The mob"), 404: E404}
    ),
    "GET /api/mobs/{mob_id}.ics": Op(
        "The mob as a calendar entry (RFC 5545)",
        {200: _ICS, 404: E404},
        description=(
            "One VEVENT: UID stable per mob, DTSTART = go_at (UTC), SEQUENCE raised by each "
            "postpone (and start now, cancel), STATUS:CANCELLED once cancelled, URL of the "
            "mob's page; no organizer e-mail, no position."
        ),
    ),
    "GET /api/mobs/{mob_id}/organizer/mobs.ics": Op(
        "A subscribable calendar of the upcoming mobs of this mob's organizer",
        {200: _ICS, 404: E404},
        description=(
            "The organizer's published mobs that have not ended (a day's grace) and the "
            "cancelled ones among them, rehearsals left out; at most 200."
        ),
    ),
    "PATCH /api/mobs/{mob_id}": Op(
        "Change a mob; the zone only before it is live",
        {200: ok(r.Mob, "The changed mob"), 400: E400, 403: E403, 404: E404, 409: E409,
         422: E422},
        auth=ORGANIZER,
        body=b.MobPatch,
    ),
    "POST /api/mobs/{mob_id}/publish": Op(
        "Publish a draft (needs a future go_at and at least one task)",
        {200: ok(r.Mob, "Published"), 403: E403, 404: E404, 409: E409, 422: E422},
        auth=ORGANIZER,
    ),
    "POST /api/mobs/{mob_id}/cancel": Op(
        "Cancel a mob before it is finished",
        {200: ok(r.Mob, "Cancelled"), 403: E403, 404: E404, 409: E409},
        auth=ORGANIZER,
    ),
    "POST /api/mobs/{mob_id}/start-now": Op(
        "GO in lead_s seconds (a new timeline version, broadcast)",
        {200: ok(r.Mob, "Rescheduled"), 400: E400, 403: E403, 404: E404, 409: E409,
         422: E422},
        auth=ORGANIZER,
        body=b.StartNow,
    ),
    "POST /api/mobs/{mob_id}/postpone": Op(
        "Move GO later (a new timeline version, broadcast)",
        {200: ok(r.Mob, "Rescheduled"), 400: E400, 403: E403, 404: E404, 409: E409,
         422: E422},
        auth=ORGANIZER,
        body=b.Postpone,
    ),
    "POST /api/mobs/{mob_id}/announcements": Op(
        "Send a message to everyone of the mob (an announcement event)",
        {201: ok(r.MobEvent, "Sent"), 400: E400, 403: E403, 404: E404, 409: E409},
        auth=ORGANIZER,
        body=b.Announcement,
    ),
    "GET /api/mobs/{mob_id}/events": Op(
        "The mob's numbered events after a sequence number",
        {200: ok(r.Events, "Events in order"), 404: E404,
         410: "Some were trimmed: reload the mob (events_gone)."},
        query=q.EventsQuery,
    ),
    # --- tasks ---
    "GET /api/mobs/{mob_id}/tasks": Op(
        "The mob's tasks as a GeoJSON FeatureCollection",
        {200: ok(r.TaskCollection, "Tasks"), 404: E404},
        description="Each task's id, kind, label, prompt, capacity, status and deeds_done; "
        "never how many hold it (the same for every caller).",
    ),
    "POST /api/mobs/{mob_id}/tasks": Op(
        "Place one task; it must lie inside the zone",
        {201: ok(r.TaskFeature, "The task"), 400: E400, 403: E403, 404: E404, 409: E409,
         422: E422},
        auth=ORGANIZER,
        body=b.TaskCreate,
    ),
    "POST /api/mobs/{mob_id}/tasks/generate": Op(
        "Fill the zone with a hex or square grid of tasks",
        {201: ok(r.TaskCollection, "The generated tasks"), 400: E400, 403: E403, 404: E404,
         409: E409, 422: E422},
        auth=ORGANIZER,
        body=b.GenerateTasks,
    ),
    "PATCH /api/mobs/{mob_id}/tasks/{task_id}": Op(
        "Move, relabel, resize, close or reopen a task; people who lose it (closed, or "
        "capacity below its holders) are matched again",
        {200: ok(r.TaskFeature, "The task"), 400: E400, 403: E403, 404: E404, 409: E409,
         422: E422},
        auth=ORGANIZER,
        body=b.TaskUpdate,
    ),
    "DELETE /api/mobs/{mob_id}/tasks/{task_id}": Op(
        "Remove a task",
        {204: Reply("Removed"), 403: E403, 404: E404, 409: E409},
        auth=ORGANIZER,
    ),
    # --- participants and deeds ---
    "POST /api/mobs/{mob_id}/participants": Op(
        "Join a published mob without an account",
        {201: Reply("{participant, token, expires_in_s, share_url, mob}"),
         400: "nickname_invalid, nickname_refused, field_unknown, ...", 404: E404,
         409: "The mob is closed or full (mob_closed, mob_full).",
         422: "The referral code is unknown (ref_unknown)."},
        body=b.JoinMob,
        body_required=False,
        description="Body (optional): {nickname?, ref?}. Returns a participant token (use it "
        "in the Socket.IO auth payload of the /participant namespace), the participant's "
        "referral code and share_url. A nickname is generated when none is given.",
    ),
    "GET /api/mobs/{mob_id}/deeds": Op(
        "The mob's deeds, e.g. ?status=flagged for the review queue",
        {200: ok(r.Deeds, "{deeds: [...]}"), 403: E403, 404: E404},
        auth=ORGANIZER,
        query=q.DeedsQuery,
    ),
    "POST /api/mobs/{mob_id}/deeds/{deed_id}/review": Op(
        "Approve or reject a flagged deed",
        {200: Reply("The reviewed deed"), 400: E400, 403: E403,
         404: "No such deed (deed_not_found).",
         409: "The deed is not flagged (deed_not_flagged)."},
        auth=ORGANIZER,
        body=b.Review,
    ),
    # --- cascade and funnel ---
    "POST /api/mobs/{mob_id}/share-link": Op(
        "The organizer's share link with its referral code",
        {200: ok(r.ShareLink), 403: G403, 404: G404},
        auth=ORGANIZER,
        tags=GROWTH,
    ),
    "POST /api/mobs/{mob_id}/views": Op(
        "Count a page view (once per client id and day; nothing personal is stored)",
        {200: ok(r.ViewCounted), 400: G400, 404: G404},
        body=b.ViewBeacon,
        tags=GROWTH,
    ),
    "GET /api/mobs/{mob_id}/funnel": Op(
        "viewed → joined → in zone → matched → deed done",
        {200: ok(r.Funnel), 404: G404},
        tags=GROWTH,
    ),
    "GET /api/mobs/{mob_id}/cascade": Op(
        "Who brought whom: top sharers, depth, generations",
        {200: ok(r.Cascade), 404: G404},
        query=q.RefQuery,
        tags=GROWTH,
    ),
    "GET /api/mobs/{mob_id}/growth": Op(
        "Funnel, cascade, pledge totals, campaign and local time in one call",
        {200: ok(r.Growth), 404: G404},
        query=q.RefQuery,
        tags=GROWTH,
    ),
    # --- follows ---
    "POST /api/followers": Op(
        "Become a follower (no account): returns the follower token once",
        {201: ok(r.FollowerCreated)},
        tags=GROWTH,
    ),
    "GET /api/followers/me": Op(
        "Your follows", {200: ok(r.Follower)}, auth=FOLLOWER, tags=GROWTH
    ),
    "DELETE /api/followers/me": Op(
        "Forget this follower", {204: DONE}, auth=FOLLOWER, tags=GROWTH
    ),
    "POST /api/followers/me/follows": Op(
        "Follow an organizer (via one of their mobs) or a place (circle)",
        {200: ok(r.Follow, "Already followed"), 201: ok(r.Follow, "Created"), 400: G400,
         404: G404, 422: G422},
        auth=FOLLOWER,
        body=b.FollowCreate,
        tags=GROWTH,
    ),
    "DELETE /api/followers/me/follows/{follow_id}": Op(
        "Unfollow", {204: DONE, 404: G404}, auth=FOLLOWER, tags=GROWTH
    ),
    "PUT /api/followers/me/push-subscription": Op(
        "Store the browser's Web Push subscription",
        {200: ok(r.Follower), 400: G400, 422: G422},
        auth=FOLLOWER,
        body=b.PushSubscription,
        description="Only push-service hosts are accepted (push_endpoint_refused).",
        tags=GROWTH,
    ),
    "DELETE /api/followers/me/push-subscription": Op(
        "Stop Web Push", {204: DONE}, auth=FOLLOWER, tags=GROWTH
    ),
    "PUT /api/followers/me/reminders/{mob_id}": Op(
        "Get this mob's reminders and notices by Web Push",
        {204: DONE, 401: "auth_required, token_invalid", 404: G404},
        auth=FOLLOWER,
        description=(
            "Reminders at REMINDER_OFFSETS_S before GO (default 24 h, 1 h, 10 min) and a "
            "notice when the mob is postponed, started now, moved or cancelled, on the "
            "follower's push subscription; never for a rehearsal."
        ),
        tags=GROWTH,
    ),
    "DELETE /api/followers/me/reminders/{mob_id}": Op(
        "No more reminders of this mob", {204: DONE, 404: G404}, auth=FOLLOWER, tags=GROWTH
    ),
    "PUT /api/mobs/{mob_id}/participants/me/push-subscription": Op(
        "A joined participant's Web Push subscription, for the mob's reminders and notices",
        {204: DONE, 400: G400, 401: "auth_required, token_invalid, token_expired", 404: G404,
         422: G422},
        auth=PARTICIPANT,
        body=b.PushSubscription,
        description="Only push-service hosts are accepted (push_endpoint_refused).",
        tags=GROWTH,
    ),
    "DELETE /api/mobs/{mob_id}/participants/me/push-subscription": Op(
        "Stop the mob's reminders and notices",
        {204: DONE, 401: "auth_required, token_invalid, token_expired", 404: G404},
        auth=PARTICIPANT,
        tags=GROWTH,
    ),
    "GET /api/push/public-key": Op(
        "The VAPID application server key (base64url) for pushManager.subscribe",
        {200: ok(r.PublicKey), 503: "push_not_configured"},
        tags=GROWTH,
    ),
    # --- pledges ---
    "POST /api/pledges": Op(
        "Pledge an amount per verified deed of a mob or a campaign",
        {201: ok(r.PledgeCreated), 400: G400, 404: G404, 409: G409},
        auth=SPONSOR + ", optional: without one a new sponsor is made",
        body=b.PledgeCreate,
        tags=GROWTH,
    ),
    "DELETE /api/pledges/{pledge_id}": Op(
        "Withdraw a pledge before GO",
        {204: DONE, 404: G404, 409: G409},
        auth=SPONSOR,
        tags=GROWTH,
    ),
    "GET /api/sponsors/me": Op(
        "Your pledges with what they owe now",
        {200: ok(r.SponsorPledges)},
        auth=SPONSOR,
        tags=GROWTH,
    ),
    "GET /api/sponsors/me/statement.csv": Op(
        "Your statement (CSV) once every pledged mob has ended",
        {200: _CSV, 409: "statement_not_ready"},
        auth=SPONSOR,
        tags=GROWTH,
    ),
    "GET /api/mobs/{mob_id}/pledges": Op(
        "Every pledge on the mob and its campaign, with sponsor names",
        {200: ok(r.MobPledges), 403: G403, 404: G404},
        auth=ORGANIZER,
        tags=GROWTH,
    ),
    "DELETE /api/mobs/{mob_id}/pledges/{pledge_id}": Op(
        "Decline (remove) a pledge made on your mob or its campaign",
        {204: DONE, 403: G403, 404: G404},
        auth=ORGANIZER,
        tags=GROWTH,
    ),
    "GET /api/mobs/{mob_id}/pledges/totals": Op(
        "Live pledge totals per currency (no sponsor names)",
        {200: ok(r.PledgeTotals), 404: G404},
        tags=GROWTH,
    ),
    # --- campaigns ---
    "POST /api/campaigns": Op(
        "A campaign: mobs in several zones with one GO instant",
        {201: ok(r.Campaign), 400: G400, 422: G422},
        auth=ORGANIZER,
        body=b.CampaignCreate,
        tags=GROWTH,
    ),
    "GET /api/organizers/me/campaigns": Op(
        "Your campaigns", {200: ok(r.MyCampaigns)}, auth=ORGANIZER, tags=GROWTH
    ),
    "GET /api/campaigns/{campaign_id}": Op(
        "A campaign: its mobs in local time, global counters, world map",
        {200: ok(r.Campaign), 404: G404},
        tags=GROWTH,
    ),
    "PATCH /api/campaigns/{campaign_id}": Op(
        "Change title, description or go_at (moves every coming mob)",
        {200: ok(r.Campaign), 400: G400, 403: G403, 404: G404, 409: G409, 422: G422},
        auth=ORGANIZER,
        body=b.CampaignPatch,
        tags=GROWTH,
    ),
    "POST /api/campaigns/{campaign_id}/mobs": Op(
        "Add one of your coming mobs: its GO becomes the campaign's",
        {201: ok(r.Campaign), 400: G400, 403: G403, 404: G404, 409: G409, 422: G422},
        auth=ORGANIZER,
        body=b.CampaignAddMob,
        tags=GROWTH,
    ),
    "DELETE /api/campaigns/{campaign_id}/mobs/{mob_id}": Op(
        "Take a mob out of the campaign",
        {204: DONE, 403: G403, 404: G404, 409: G409},
        auth=ORGANIZER,
        tags=GROWTH,
    ),
    "POST /api/campaigns/{campaign_id}/publish": Op(
        "Publish every draft mob of the campaign (all or none)",
        {200: ok(r.Campaign), 403: G403, 404: G404, 409: G409, 422: G422},
        auth=ORGANIZER,
        tags=GROWTH,
    ),
    "POST /api/campaigns/{campaign_id}/start-now": Op(
        "GO in lead_s seconds for every mob, at one instant",
        {200: ok(r.Campaign), 400: G400, 403: G403, 404: G404, 409: G409, 422: G422},
        auth=ORGANIZER,
        body=b.StartNow,
        tags=GROWTH,
    ),
    "POST /api/campaigns/{campaign_id}/postpone": Op(
        "Move every mob's GO later, to one instant",
        {200: ok(r.Campaign), 400: G400, 403: G403, 404: G404, 409: G409, 422: G422},
        auth=ORGANIZER,
        body=b.Postpone,
        tags=GROWTH,
    ),
    "POST /api/mobs/{mob_id}/copy": Op(
        "Copy a mob as a template into a new zone (tasks of the same kind and density)",
        {201: ok(r.Mob), 400: G400, 403: G403, 404: G404, 422: G422},
        auth=ORGANIZER,
        body=b.MobCopy,
        tags=GROWTH,
    ),
    "PUT /api/mobs/{mob_id}/time-zone": Op(
        "Set the mob's IANA time zone (for local times)",
        {200: ok(r.LocalTime), 400: G400, 403: G403, 404: G404, 422: G422},
        auth=ORGANIZER,
        body=b.TimeZone,
        tags=GROWTH,
    ),
    # --- summaries ---
    "GET /api/mobs/{mob_id}/summary": Op(
        "The after-action summary for the organizer",
        {200: ok(r.Summary), 403: G403, 404: G404},
        auth=ORGANIZER,
        tags=GROWTH,
    ),
    "GET /api/mobs/{mob_id}/summary.geojson": Op(
        "Zone and tasks with their counts as RFC 7946 GeoJSON (no one's position)",
        {200: ok(r.FeatureCollection, "GeoJSON", "application/geo+json"), 403: G403,
         404: G404},
        auth=ORGANIZER,
        tags=GROWTH,
    ),
    "GET /api/mobs/{mob_id}/summary.csv": Op(
        "A table of the summary as CSV",
        {200: _CSV, 400: G400, 403: G403, 404: G404},
        auth=ORGANIZER,
        query=q.SummaryTableQuery,
        tags=GROWTH,
    ),
    "GET /api/mobs/{mob_id}/public-summary": Op(
        "The privacy-safe summary anyone may see (page: /s/{mob_id})",
        {200: ok(r.PublicSummary), 404: G404},
        tags=GROWTH,
    ),
}  # fmt: skip
