"""Sponsor pledges per verified deed of a mob or a campaign: a fund drive that pays for action.

A sponsor (no account: a token ``spn.<id>.<secret>``, returned once) pledges ``amount_minor``
per deed in a currency (ISO 4217, integer minor units: cents, yen, fils), optionally capped at
``cap_minor`` and optionally paid only when the target reaches ``threshold_deeds`` verified
deeds. What a pledge owes is derived, never stored:

    owed = 0                                  when threshold_deeds is set and deeds < threshold
    owed = min(deeds × amount_minor, cap_minor)   otherwise (no cap: deeds × amount_minor)

``deeds`` are verified deeds only: status ``accepted`` or ``approved`` (a flagged deed counts
once the organizer approves it, a rejected one never); a rehearsal mob's deeds never count. A
campaign pledge counts the deeds of every mob of the campaign, its threshold and cap apply to
that total. There is no payment processing: the statement (CSV, per sponsor, once every target
has ended) is what a sponsor pays against.
"""

from __future__ import annotations

import csv
import hmac
import io
from datetime import UTC, datetime

from sqlalchemy import select
from sqlalchemy.orm import Session

from server.domain import campaigns, mobs
from server.domain.fields import get_int, get_str
from server.domain.follows import check_secret_token, issue_secret_token
from server.domain.tally import (
    CURRENCY_EXPONENTS,
    campaign_deeds,
    campaign_mobs,
    format_minor,
    owed_minor,
    totals_by_currency,
    verified_deeds,
)
from server.infra.errors import ApiError
from server.infra.models import (
    CLOSED_STATUSES,
    Campaign,
    Mob,
    MobGrowth,
    Pledge,
    Sponsor,
    utcnow,
)

__all__ = [
    "CURRENCY_EXPONENTS",
    "TOKEN_PREFIX",
    "owed_minor",
    "format_minor",
    "verified_deeds",
    "campaign_mobs",
    "campaign_deeds",
    "create_sponsor",
    "sponsor_from_token",
    "create_pledge",
    "withdraw_pledge",
    "decline_pledge",
    "pledge_json",
    "sponsor_pledges",
    "mob_pledges",
    "totals_by_currency",
    "pledge_totals",
    "statement_csv",
]

TOKEN_PREFIX = "spn"
AMOUNT_MAX_MINOR = 10**12
CAP_MAX_MINOR = 10**15
THRESHOLD_MAX = 10**7


def _iso(value: datetime | None) -> str | None:
    if value is None:
        return None
    return value.astimezone(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def _target_deeds(session: Session, pledge: Pledge, cache: dict) -> int:
    key = ("m", pledge.mob_pk) if pledge.mob_pk is not None else ("c", pledge.campaign_pk)
    if key not in cache:
        cache[key] = (
            verified_deeds(session, pledge.mob)
            if pledge.mob_pk is not None
            else campaign_deeds(session, pledge.campaign)
        )
    return cache[key]


# --- sponsors and pledges ---


def create_sponsor(session: Session, name: str) -> tuple[Sponsor, str]:
    public_id, digest, token = issue_secret_token(TOKEN_PREFIX)
    sponsor = Sponsor(public_id=public_id, secret_hash=digest, name=name)
    session.add(sponsor)
    session.flush()
    return sponsor, token


def sponsor_from_token(session: Session, token: object) -> Sponsor:
    """The sponsor a token names, or a 401 ApiError."""
    if token is None or token == "":
        raise ApiError(
            401, "auth_required", "Send the sponsor token: 'Authorization: Bearer <token>'."
        )
    parsed = check_secret_token(token, TOKEN_PREFIX)
    sponsor = None
    if parsed is not None:
        sponsor = session.scalar(select(Sponsor).where(Sponsor.public_id == parsed[0]))
    if sponsor is None or not hmac.compare_digest(sponsor.secret_hash, parsed[1]):
        raise ApiError(401, "token_invalid", "The sponsor token is not valid.")
    return sponsor


def _currency(data: dict) -> str:
    code = get_str(data, "currency", max_len=3, min_len=3)
    if code not in CURRENCY_EXPONENTS:
        raise ApiError(
            400,
            "currency_invalid",
            f"{code!r} is not an ISO 4217 currency code (e.g. EUR, USD, JPY).",
            {"field": "currency"},
        )
    return code


def _target(session: Session, data: dict) -> tuple[Mob | None, Campaign | None]:
    if ("mob" in data) == ("campaign" in data):
        raise ApiError(
            400, "field_missing", "Send exactly one of mob or campaign.", {"field": "mob"}
        )
    if "mob" in data:
        mob = mobs.get_mob(session, get_str(data, "mob", max_len=16))
        if mob.status in CLOSED_STATUSES:
            raise ApiError(409, "mob_closed", f"The mob is {mob.status}; pledge to a coming one.")
        return mob, None
    campaign = campaigns.get_campaign(session, get_str(data, "campaign", max_len=16))
    members = campaign_mobs(session, campaign)
    if members and all(m.status in CLOSED_STATUSES for m in members):
        raise ApiError(409, "campaign_closed", "Every mob of this campaign has ended.")
    return None, campaign


def create_pledge(session: Session, sponsor: Sponsor, data: dict) -> Pledge:
    """A pledge of ``sponsor`` from a request body (see the module docstring)."""
    mob, campaign = _target(session, data)
    amount = get_int(data, "amount_minor", lo=1, hi=AMOUNT_MAX_MINOR)
    pledge = Pledge(
        sponsor_id=sponsor.id,
        mob_pk=mob.pk if mob else None,
        campaign_pk=campaign.pk if campaign else None,
        amount_minor=amount,
        currency=_currency(data),
        cap_minor=get_int(data, "cap_minor", lo=1, hi=CAP_MAX_MINOR, required=False),
        threshold_deeds=get_int(data, "threshold_deeds", lo=1, hi=THRESHOLD_MAX, required=False),
        created_at=utcnow(),
    )
    session.add(pledge)
    session.flush()
    return pledge


def _locked(session: Session, pledge: Pledge, now: datetime) -> bool:
    """A pledge cannot be withdrawn once its target's GO has come (unless it was cancelled)."""
    if pledge.mob_pk is not None:
        return pledge.mob.status != "cancelled" and now >= pledge.mob.go_at
    members = campaign_mobs(session, pledge.campaign)
    return any(m.status != "cancelled" and now >= m.go_at for m in members)


def withdraw_pledge(session: Session, sponsor: Sponsor, pledge_id: int) -> None:
    pledge = session.get(Pledge, pledge_id)
    if pledge is None or pledge.sponsor_id != sponsor.id:
        raise ApiError(404, "pledge_not_found", f"You have no pledge {pledge_id}.")
    if _locked(session, pledge, utcnow()):
        raise ApiError(409, "pledge_locked", "The action has started: the pledge stands.")
    session.delete(pledge)
    session.flush()


def decline_pledge(session: Session, mob: Mob, pledge_id: int) -> None:
    """The organizer removes a pledge made on their mob or its campaign (e.g. an abusive one:
    anyone may pledge, and pledges show in the public totals)."""
    pledge = session.get(Pledge, pledge_id)
    if pledge is None or pledge not in mob_pledges(session, mob):
        raise ApiError(404, "pledge_not_found", f"The mob has no pledge {pledge_id}.")
    session.delete(pledge)
    session.flush()


def _target_json(pledge: Pledge) -> dict:
    if pledge.mob_pk is not None:
        return {"type": "mob", "id": pledge.mob.id, "title": pledge.mob.title}
    return {"type": "campaign", "id": pledge.campaign.id, "title": pledge.campaign.title}


def pledge_json(session: Session, pledge: Pledge, cache: dict | None = None) -> dict:
    deeds = _target_deeds(session, pledge, {} if cache is None else cache)
    owed = owed_minor(pledge.amount_minor, pledge.cap_minor, pledge.threshold_deeds, deeds)
    return {
        "id": pledge.id,
        "target": _target_json(pledge),
        "amount_minor": pledge.amount_minor,
        "currency": pledge.currency,
        "cap_minor": pledge.cap_minor,
        "threshold_deeds": pledge.threshold_deeds,
        "deeds_counted": deeds,
        "threshold_met": pledge.threshold_deeds is None or deeds >= pledge.threshold_deeds,
        "owed_minor": owed,
        "owed": format_minor(owed, pledge.currency),
        "created_at": _iso(pledge.created_at),
    }


def sponsor_pledges(session: Session, sponsor: Sponsor) -> list[Pledge]:
    return list(
        session.scalars(select(Pledge).where(Pledge.sponsor_id == sponsor.id).order_by(Pledge.id))
    )


def _campaign_pk(session: Session, mob: Mob) -> int | None:
    return session.scalar(select(MobGrowth.campaign_pk).where(MobGrowth.mob_pk == mob.pk))


def mob_pledges(session: Session, mob: Mob) -> list[Pledge]:
    """The pledges on ``mob`` and on its campaign (if any)."""
    campaign_pk = _campaign_pk(session, mob)
    clause = Pledge.mob_pk == mob.pk
    if campaign_pk is not None:
        clause = clause | (Pledge.campaign_pk == campaign_pk)
    return list(session.scalars(select(Pledge).where(clause).order_by(Pledge.id)))


def pledge_totals(session: Session, mob: Mob) -> dict:
    """Live pledge totals of a mob (and of its campaign), per currency; no sponsor names.

    ``{deeds_counted, totals: [{currency, owed_minor, owed, per_deed_minor, pledges,
    waiting_for_threshold}], campaign: {id, deeds_counted, totals} | null}``
    """
    deeds = verified_deeds(session, mob)
    own = list(session.scalars(select(Pledge).where(Pledge.mob_pk == mob.pk)))
    body = {"deeds_counted": deeds, "totals": totals_by_currency(own, deeds), "campaign": None}
    campaign_pk = _campaign_pk(session, mob)
    if campaign_pk is not None:
        campaign = session.get(Campaign, campaign_pk)
        total = campaign_deeds(session, campaign)
        shared = list(session.scalars(select(Pledge).where(Pledge.campaign_pk == campaign_pk)))
        body["campaign"] = {
            "id": campaign.id,
            "deeds_counted": total,
            "totals": totals_by_currency(shared, total),
        }
    return body


# --- statement ---


def _ended(session: Session, pledge: Pledge) -> bool:
    if pledge.mob_pk is not None:
        return pledge.mob.status in CLOSED_STATUSES
    members = campaign_mobs(session, pledge.campaign)
    return bool(members) and all(m.status in CLOSED_STATUSES for m in members)


def _cell(value) -> str:
    """A CSV cell that a spreadsheet will not run as a formula."""
    text = "" if value is None else str(value)
    return "'" + text if text[:1] in ("=", "+", "-", "@", "\t", "\r") else text


STATEMENT_COLUMNS = [
    "sponsor",
    "pledge_id",
    "target_type",
    "target_id",
    "target_title",
    "go_at",
    "status",
    "verified_deeds",
    "amount_per_deed_minor",
    "currency",
    "cap_minor",
    "threshold_deeds",
    "threshold_met",
    "owed_minor",
    "owed",
]


def statement_csv(session: Session, sponsor: Sponsor) -> str:
    """The sponsor's statement once every pledged mob or campaign has ended (else 409): one row
    per pledge, then one ``total`` row per currency."""
    pledges = sponsor_pledges(session, sponsor)
    open_targets = sorted({_target_json(p)["id"] for p in pledges if not _ended(session, p)})
    if open_targets:
        raise ApiError(
            409,
            "statement_not_ready",
            "The statement is ready once every pledged mob has ended; still running: "
            + ", ".join(open_targets),
            {"targets": open_targets},
        )
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\r\n")
    writer.writerow(STATEMENT_COLUMNS)
    cache: dict = {}
    totals: dict[str, int] = {}
    for p in pledges:
        data = pledge_json(session, p, cache)
        target = p.mob if p.mob_pk is not None else p.campaign
        status = p.mob.status if p.mob_pk is not None else "ended"
        totals[p.currency] = totals.get(p.currency, 0) + data["owed_minor"]
        writer.writerow(
            [
                _cell(sponsor.name),
                p.id,
                data["target"]["type"],
                data["target"]["id"],
                _cell(data["target"]["title"]),
                _iso(target.go_at),
                status,
                data["deeds_counted"],
                p.amount_minor,
                p.currency,
                p.cap_minor,
                p.threshold_deeds,
                str(data["threshold_met"]).lower(),
                data["owed_minor"],
                data["owed"],
            ]
        )
    for currency in sorted(totals):
        writer.writerow(
            [
                _cell(sponsor.name),
                "total",
                "",
                "",
                "",
                "",
                "",
                "",
                "",
                currency,
                "",
                "",
                "",
                totals[currency],
                format_minor(totals[currency], currency),
            ]
        )
    return out.getvalue()
