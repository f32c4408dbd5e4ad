"""What pledges owe, derived from verified deeds (see ``server.domain.pledges``): the
currencies' minor units, the owed amount of one pledge, deeds counted per mob or campaign and
the totals per currency. Used by pledges and by campaigns (no sponsor names here)."""

from __future__ import annotations

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from server.infra.models import COUNTED_DEED_STATUSES, Campaign, Deed, Mob, MobGrowth, Pledge

__all__ = [
    "CURRENCY_EXPONENTS",
    "owed_minor",
    "format_minor",
    "verified_deeds",
    "campaign_mobs",
    "campaign_deeds",
    "totals_by_currency",
]

# Active ISO 4217 codes and their minor-unit exponents (funds and metals excluded).
_EXP0 = "BIF CLP DJF GNF ISK JPY KMF KRW PYG RWF UGX UYI VND VUV XAF XOF XPF"
_EXP3 = "BHD IQD JOD KWD LYD OMR TND"
_EXP4 = "CLF UYW"
_EXP2 = (
    "AED AFN ALL AMD ANG AOA ARS AUD AWG AZN BAM BBD BDT BGN BMD BND BOB BOV BRL BSD BTN BWP "
    "BYN BZD CAD CDF CHE CHF CHW CNY COP COU CRC CUC CUP CVE CZK DKK DOP DZD EGP ERN ETB EUR "
    "FJD FKP GBP GEL GHS GIP GMD GTQ GYD HKD HNL HTG HUF IDR ILS INR IRR JMD KES KGS KHR KPW "
    "KYD KZT LAK LBP LKR LRD LSL MAD MDL MGA MKD MMK MNT MOP MRU MUR MVR MWK MXN MXV MYR MZN "
    "NAD NGN NIO NOK NPR NZD PAB PEN PGK PHP PKR PLN QAR RON RSD RUB SAR SBD SCR SDG SEK SGD "
    "SHP SLE SLL SOS SRD SSP STN SVC SYP SZL THB TJS TMT TOP TRY TTD TWD TZS UAH USD USN UZS "
    "VED VES WST XCD XCG YER ZAR ZMW ZWG ZWL"
)
CURRENCY_EXPONENTS: dict[str, int] = {
    code: exp
    for codes, exp in ((_EXP2, 2), (_EXP0, 0), (_EXP3, 3), (_EXP4, 4))
    for code in codes.split()
}


def owed_minor(amount_minor: int, cap_minor: int | None, threshold: int | None, deeds: int) -> int:
    """What a pledge owes for ``deeds`` verified deeds.

    >>> owed_minor(150, None, 3, 2), owed_minor(150, None, 3, 3), owed_minor(150, 400, None, 5)
    (0, 450, 400)
    """
    if threshold is not None and deeds < threshold:
        return 0
    total = amount_minor * deeds
    return total if cap_minor is None else min(total, cap_minor)


def format_minor(amount: int, currency: str) -> str:
    """Minor units as a decimal string in the currency's major unit.

    >>> format_minor(123456, "EUR"), format_minor(500, "JPY"), format_minor(5, "KWD")
    ('1234.56', '500', '0.005')
    """
    exp = CURRENCY_EXPONENTS.get(currency, 2)
    if exp == 0:
        return str(amount)
    sign = "-" if amount < 0 else ""
    whole, part = divmod(abs(amount), 10**exp)
    return f"{sign}{whole}.{part:0{exp}d}"


def verified_deeds(session: Session, mob: Mob) -> int:
    """Deeds that count for ``mob``: accepted or approved; none for a rehearsal."""
    if mob.rehearsal:
        return 0
    return session.scalar(
        select(func.count()).where(Deed.mob_pk == mob.pk, Deed.status.in_(COUNTED_DEED_STATUSES))
    )


def campaign_mobs(session: Session, campaign: Campaign) -> list[Mob]:
    return list(
        session.scalars(
            select(Mob)
            .join(MobGrowth, MobGrowth.mob_pk == Mob.pk)
            .where(MobGrowth.campaign_pk == campaign.pk)
            .order_by(Mob.pk)
        )
    )


def campaign_deeds(session: Session, campaign: Campaign) -> int:
    """The campaign's verified deeds: the sum over its mobs (rehearsals count none)."""
    return session.scalar(
        select(func.count())
        .select_from(Deed)
        .join(Mob, Mob.pk == Deed.mob_pk)
        .join(MobGrowth, MobGrowth.mob_pk == Mob.pk)
        .where(
            MobGrowth.campaign_pk == campaign.pk,
            Mob.rehearsal.is_(False),
            Deed.status.in_(COUNTED_DEED_STATUSES),
        )
    )


def totals_by_currency(pledges: list[Pledge], deeds: int) -> list[dict]:
    by_currency: dict[str, dict] = {}
    for p in pledges:
        row = by_currency.setdefault(
            p.currency,
            {
                "currency": p.currency,
                "owed_minor": 0,
                "per_deed_minor": 0,
                "pledges": 0,
                "waiting_for_threshold": 0,
            },
        )
        owed = owed_minor(p.amount_minor, p.cap_minor, p.threshold_deeds, deeds)
        row["owed_minor"] += owed
        row["pledges"] += 1
        if p.threshold_deeds is not None and deeds < p.threshold_deeds:
            row["waiting_for_threshold"] += 1
        if p.cap_minor is None or owed < p.cap_minor:
            row["per_deed_minor"] += p.amount_minor  # what the next deed adds (uncapped ones)
    for row in by_currency.values():
        row["owed"] = format_minor(row["owed_minor"], row["currency"])
    return [by_currency[c] for c in sorted(by_currency)]
