"""Crowd density for spectators: people per H3 cell, small counts suppressed.

Individual positions never leave this module: only cells holding at least
DENSITY_MIN_PEOPLE people (k-anonymity, default 5) are reported, with the cell's outline so
that a map can draw it without an H3 library. Only people who have been in the zone for
DENSITY_TRUST_AFTER_S are counted: joining needs no account, so k fresh fake phones next to a
lone person would otherwise unmask their cell (docs/SECURITY.md, issue 15 §2).
"""

from __future__ import annotations

from collections import Counter
from datetime import timedelta

import h3
from sqlalchemy import select
from sqlalchemy.orm import Session

from config import Settings
from server.infra.models import Mob, Participant, utcnow

__all__ = ["density_cells", "density_json"]


def density_cells(points, resolution: int, min_people: int) -> list[tuple[str, int]]:
    """``[(cell, count)]`` for ``points`` = ``[(lon, lat)]``; cells below ``min_people`` left
    out. Sorted by cell id.

    >>> density_cells([(13.4, 52.5)] * 5 + [(2.35, 48.85)] * 4, 9, 5)
    [('891f1d48b67ffff', 5)]
    """
    counts = Counter(h3.latlng_to_cell(lat, lon, resolution) for lon, lat in points)
    return sorted((cell, n) for cell, n in counts.items() if n >= min_people)


def density_json(session: Session, mob: Mob, settings: Settings) -> dict:
    """The ``density`` payload of a mob (without ``mob``/``seq``)."""
    query = select(Participant.lon, Participant.lat).where(
        Participant.mob_pk == mob.pk, Participant.lat.is_not(None)
    )
    if settings.density_trust_after_s > 0:  # in the zone long enough to be hard to fake
        since = utcnow() - timedelta(seconds=settings.density_trust_after_s)
        query = query.where(Participant.entered_zone_at <= since)
    points = session.execute(query).all()
    cells = density_cells(points, settings.density_resolution, settings.density_min_people)
    return {
        "resolution": settings.density_resolution,
        "min_people": settings.density_min_people,
        "cells": [
            {
                "h3": cell,
                "count": count,
                "boundary": [
                    [round(lon, 6), round(lat, 6)] for lat, lon in h3.cell_to_boundary(cell)
                ],
            }
            for cell, count in cells
        ],
    }
